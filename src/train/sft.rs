//! Supervised fine-tuning on the noisy generator's summaries: the π_sft every alignment run starts from and
//! is regularised towards (docs/method.md §2). Loss: −mean_b log π(y_b | x_b) over response tokens.

use super::batch::SequenceBatch;
use super::optim::{AdamW, AdamwConfig, Schedule};
use crate::bail;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head, TokenBatch};
use crate::task::TaskConfig;
use serde::{Deserialize, Serialize};

use crate::rng::streams::{SFT_PROMPTS, SFT_RESPONSES};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SftConfig {
    pub steps: u32,
    pub batch: usize,
    pub adamw: AdamwConfig,
    pub warmup_steps: u32,
}

impl Default for SftConfig {
    fn default() -> Self {
        SftConfig { steps: 400, batch: 64, adamw: AdamwConfig { lr: 2e-3, weight_decay: 0.0, ..AdamwConfig::default() }, warmup_steps: 20 }
    }
}

/// Trains a fresh policy; `on_step(step, loss)` sees every step (progress bars, the page's live plot).
pub async fn train_sft(e: &Engine, task: &TaskConfig, model_cfg: GptConfig, sft: &SftConfig, seed: u32, mut on_step: impl FnMut(u32, f32)) -> Result<Gpt> {
    task.validate()?;
    let model = Gpt::init(e, model_cfg, Head::Lm, seed)?;
    let t = task.context();
    let schedule = Schedule { warmup_steps: sft.warmup_steps, total_steps: sft.steps, min_lr_ratio: 0.1 };
    let mut opt = AdamW::new(e, &model.infos, sft.adamw, schedule);
    let acts = model.activations(e, sft.batch, t)?;
    let grads = model.zero_grads(e);
    let dseq = e.tensor(&vec![-1.0 / sft.batch as f32; sft.batch]);
    // A step's inputs, written in place each step (the GPU's bind groups over them are made once).
    let (tokens, targets, weights) = (e.zeros(sft.batch * t), e.zeros(sft.batch * t), e.zeros(sft.batch * t));
    for step in 0..sft.steps {
        crate::control::yield_point().await?;
        let first = step * sft.batch as u32;
        let prompts: Vec<Vec<u32>> = (0..sft.batch as u32).map(|i| task.prompt(seed, SFT_PROMPTS, first + i)).collect();
        let responses: Vec<Vec<u32>> = prompts.iter().enumerate().map(|(i, p)| task.generate(p, seed, SFT_RESPONSES, first + i as u32)).collect();
        let batch = SequenceBatch::new(&prompts, &responses, t);
        e.write_indices(&tokens, &batch.tokens)?;
        e.write_indices(&targets, &batch.targets)?;
        e.write(&weights, &batch.weights)?;
        Gpt::clear_grads(e, &grads)?;
        model.forward(e, &acts, &tokens)?;
        model.sequence_logprobs(e, &acts, &targets, &weights)?;
        model.backward(e, &acts, &grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &dseq)?;
        opt.step(e, &model.params, &grads)?;
        // The step's one readback, at its end: the loss is a metric here (its gradient is fixed, -1/B per sequence).
        let seq = e.read(&acts.sequence_logprobs).await?;
        let loss = -seq.iter().sum::<f32>() / sft.batch as f32;
        if !loss.is_finite() {
            bail!("SFT: the loss is not finite ({loss}) at step {step}: training diverged; lower sft.adamw.lr (now {})", sft.adamw.lr);
        }
        on_step(step, loss);
    }
    Ok(model)
}

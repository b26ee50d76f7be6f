//! Speed of the engine on the model sizes the issues name: a training step (forward, backward, AdamW on
//! 128 sequences of 32 tokens) and batched sampling. `alignment-gap bench` prints these as a table; the
//! page uses the same numbers to estimate run times. bench/pytorch_bench.py runs the same step in PyTorch.

use crate::engine::Engine;
use crate::error::Result;
use crate::model::sample::SampleSpec;
use crate::model::{Gpt, GptConfig, Head};
use crate::train::optim::{AdamW, AdamwConfig, Schedule};
use serde::Serialize;

pub const BATCH: usize = 128;
pub const CONTEXT: usize = 32;
pub const VOCAB: usize = 44;
const PROMPT: usize = 8;

/// (name, layers, d_model, heads)
pub const SIZES: [(&str, usize, usize, usize); 3] = [("S", 2, 64, 4), ("M", 4, 128, 4), ("L", 6, 256, 8)];

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub size: String,
    pub parameters: usize,
    pub backend: String,
    pub train_step_ms: f64,
    pub train_tokens_per_s: f64,
    pub train_gflops: f64,
    pub sample_tokens_per_s: f64,
}

pub fn now_ms() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now()
    }
}

/// Matmul FLOPs of one training step (forward + backward ≈ 3× forward), the usual accounting.
pub fn train_step_flops(cfg: &GptConfig, b: usize, t: usize) -> f64 {
    let (n, c, v, l) = (b * t, cfg.n_embd, cfg.vocab_size, cfg.n_layer);
    let per_layer = 24 * n * c * c + 4 * n * t * c;
    3.0 * (l * per_layer + 2 * n * c * v) as f64
}

pub async fn run_size(e: &Engine, name: &str, layers: usize, d_model: usize, heads: usize, repeats: usize) -> Result<BenchRow> {
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let model = Gpt::init(e, cfg, Head::Lm, 0)?;
    let (b, t) = (BATCH, CONTEXT);
    let ids: Vec<u32> = (0..b * t).map(|i| (crate::rng::uniform(1, 0, 0, i as u32) * VOCAB as f32) as u32 % VOCAB as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| if (i + 1) % t == 0 { 0 } else { ids[i + 1] }).collect();
    let weights: Vec<f32> = (0..b * t).map(|i| if i % t >= PROMPT && (i + 1) % t != 0 { 1.0 } else { 0.0 }).collect();
    let (tokens, targets, weights) = (e.indices(&ids), e.indices(&targets), e.tensor(&weights));
    let dseq = e.tensor(&vec![-1.0 / b as f32; b]);
    let acts = model.activations(e, b, t)?;
    let grads = model.zero_grads(e);
    let mut opt = AdamW::new(e, &model.infos, AdamwConfig::default(), Schedule::constant());
    let mut train_step_ms = 0.0;
    for i in 0..=repeats {
        let start = now_ms();
        Gpt::clear_grads(e, &grads)?;
        model.forward(e, &acts, &tokens)?;
        model.sequence_logprobs(e, &acts, &targets, &weights)?;
        model.backward(e, &acts, &grads, &crate::model::TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &dseq)?;
        // The optimiser reads back the gradient norm, so the step has finished when this returns.
        opt.step(e, &model.infos, &model.params, &grads).await?;
        if i > 0 {
            train_step_ms += (now_ms() - start) / repeats as f64; // step 0 is the warm-up
        }
    }
    let prompts: Vec<Vec<u32>> = (0..b).map(|r| ids[r * t..r * t + PROMPT].to_vec()).collect();
    // Every row runs all CONTEXT − PROMPT positions (finished rows keep stepping, emitting padding), so the
    // count of positions is exact whatever the samples are.
    let spec = SampleSpec { temperature: 1.0, max_len: CONTEXT, seed: 0, stream: 0, eos: 1, pad: 0 };
    let sample_repeats = repeats.div_ceil(2);
    let mut sample_ms = 0.0;
    for i in 0..=sample_repeats {
        let start = now_ms();
        model.sample(e, &prompts, &spec).await?;
        if i > 0 {
            sample_ms += (now_ms() - start) / sample_repeats as f64;
        }
    }
    Ok(BenchRow {
        size: name.to_string(),
        parameters: model.num_parameters(),
        backend: e.describe(),
        train_step_ms,
        train_tokens_per_s: (b * t) as f64 / (train_step_ms / 1e3),
        train_gflops: train_step_flops(&cfg, b, t) / (train_step_ms / 1e3) / 1e9,
        sample_tokens_per_s: (b * (CONTEXT - PROMPT)) as f64 / (sample_ms / 1e3),
    })
}

pub fn table(rows: &[BenchRow]) -> String {
    let mut s = format!(
        "{:<5} {:>10} {:>16} {:>16} {:>10} {:>18}  {}\n",
        "size", "params", "train step (ms)", "train tokens/s", "GFLOP/s", "sample tokens/s", "backend"
    );
    for r in rows {
        s += &format!(
            "{:<5} {:>10} {:>16.1} {:>16.0} {:>10.2} {:>18.0}  {}\n",
            r.size, r.parameters, r.train_step_ms, r.train_tokens_per_s, r.train_gflops, r.sample_tokens_per_s, r.backend
        );
    }
    s
}

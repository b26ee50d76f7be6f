//! The pairwise proxy preference model r(x, y1, y2) = σ(score(x ⊕ y1 ⊕ y2)) (docs/method.md §3.2): a GPT-2 with a scalar
//! head read at the last real token, initialised from the SFT trunk, trained on D_golden with the
//! position-debiased loss, and used through the sign rule y1 ≻ y2 iff r(x,y1,y2) − r(x,y2,y1) > 0.

use super::losses::{pairwise_pm, prefers_first};
use super::optim::{AdamW, AdamwConfig, Schedule};
use crate::bail;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{param_infos, params::init_values, Gpt, GptConfig, Head};
use crate::task::{TaskConfig, PAD};
use serde::{Deserialize, Serialize};

/// Labelled pairs: `first_wins[i]` is true when y1[i] ≻ y2[i].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pairs {
    pub prompts: Vec<Vec<u32>>,
    pub y1: Vec<Vec<u32>>,
    pub y2: Vec<Vec<u32>>,
    pub first_wins: Vec<bool>,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.prompts.len()
    }
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }
    /// (winner, loser) of pair i.
    pub fn ordered(&self, i: usize) -> (&[u32], &[u32]) {
        if self.first_wins[i] { (&self.y1[i], &self.y2[i]) } else { (&self.y2[i], &self.y1[i]) }
    }
}

/// What a preference model learns from: training pairs, and held-out pairs for early stopping.
#[derive(Clone, Copy)]
pub struct PmData<'a> {
    pub train: &'a Pairs,
    pub heldout: &'a Pairs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmConfig {
    pub steps: u32,
    pub batch: usize,
    pub adamw: AdamwConfig,
    /// Evaluate held-out accuracy every this many steps; keep the best (early stopping).
    pub eval_every: u32,
}

impl Default for PmConfig {
    fn default() -> Self {
        PmConfig { steps: 600, batch: 64, adamw: AdamwConfig { lr: 1e-3, ..AdamwConfig::default() }, eval_every: 100 }
    }
}

/// Context of the preference model: the prompt and two summaries.
pub fn pm_context(task: &TaskConfig) -> usize {
    task.prompt_len() + 2 * task.max_summary
}

/// Tokens of x ⊕ ya ⊕ yb per pair (right-padded) and the index of each sequence's last real token.
pub fn pm_inputs(task: &TaskConfig, prompts: &[Vec<u32>], ya: &[Vec<u32>], yb: &[Vec<u32>]) -> (Vec<u32>, Vec<u32>) {
    let t = pm_context(task);
    let mut tokens = vec![PAD; prompts.len() * t];
    let mut last = Vec::with_capacity(prompts.len());
    for (r, ((p, a), b)) in prompts.iter().zip(ya).zip(yb).enumerate() {
        let seq: Vec<u32> = p.iter().chain(a).chain(b).copied().take(t).collect();
        tokens[r * t..r * t + seq.len()].copy_from_slice(&seq);
        last.push(seq.len() as u32 - 1);
    }
    (tokens, last)
}

/// A preference model whose trunk is the SFT policy's (positions beyond the policy's context and the
/// scalar head start from GPT-2's initialisation).
pub async fn pm_from_policy(e: &Engine, policy: &Gpt, task: &TaskConfig, seed: u32) -> Result<Gpt> {
    let cfg = GptConfig { n_positions: pm_context(task), ..policy.config };
    let mut values = init_values(&cfg, Head::Score, seed);
    let trunk = policy.values(e).await?;
    for (i, v) in trunk.into_iter().enumerate() {
        if i == 1 {
            values[1][..v.len()].copy_from_slice(&v); // wpe: the policy's positions come first
        } else {
            values[i] = v;
        }
    }
    debug_assert_eq!(values.len(), param_infos(&cfg, Head::Score).len());
    Gpt::new(e, cfg, Head::Score, &values)
}

/// Scores of (x, ya, yb) for each pair, in batches of at most `batch`.
pub async fn scores(e: &Engine, pm: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], ya: &[Vec<u32>], yb: &[Vec<u32>], batch: usize) -> Result<Vec<f32>> {
    let t = pm_context(task);
    let mut out = Vec::with_capacity(prompts.len());
    for start in (0..prompts.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(prompts.len());
        let (tokens, last) = pm_inputs(task, &prompts[start..end], &ya[start..end], &yb[start..end]);
        let acts = pm.activations(e, end - start, t)?;
        pm.forward(e, &acts, &e.indices(&tokens))?;
        pm.score(e, &acts, &e.indices(&last))?;
        out.extend(e.read(&acts.scores).await?);
    }
    Ok(out)
}

/// The proxy's labels by the sign rule: true where y1 ≻ y2.
pub async fn prefers(e: &Engine, pm: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], y1: &[Vec<u32>], y2: &[Vec<u32>]) -> Result<Vec<bool>> {
    let s12 = scores(e, pm, task, prompts, y1, y2, 256).await?;
    let s21 = scores(e, pm, task, prompts, y2, y1, 256).await?;
    Ok(s12.iter().zip(&s21).map(|(&a, &b)| prefers_first(a, b)).collect())
}

/// Accuracy of the proxy's sign-rule labels against `pairs`' labels.
pub async fn accuracy(e: &Engine, pm: &Gpt, task: &TaskConfig, pairs: &Pairs) -> Result<f32> {
    let got = prefers(e, pm, task, &pairs.prompts, &pairs.y1, &pairs.y2).await?;
    Ok(got.iter().zip(&pairs.first_wins).filter(|(a, b)| a == b).count() as f32 / pairs.len().max(1) as f32)
}

/// Trains the proxy on `train` (cycling through it in order), keeping the parameters with the best held-out
/// accuracy. `on_step(step, evaluation)` sees every step (1-based); `evaluation` is `Some((train_loss,
/// heldout_accuracy))` at each evaluation. Returns (model, best accuracy).
pub async fn train_pm(
    e: &Engine,
    task: &TaskConfig,
    policy: &Gpt,
    PmData { train, heldout }: PmData<'_>,
    cfg: &PmConfig,
    seed: u32,
    mut on_step: impl FnMut(u32, Option<(f32, f32)>),
) -> Result<(Gpt, f32)> {
    if cfg.steps == 0 || cfg.eval_every == 0 {
        bail!("proxy.steps = {} and proxy.eval_every = {} must both be ≥ 1", cfg.steps, cfg.eval_every);
    }
    if train.len() < cfg.batch || heldout.is_empty() {
        bail!("proxy training needs ≥ batch ({}) training pairs and some held-out pairs; got {} and {}", cfg.batch, train.len(), heldout.len());
    }
    let pm = pm_from_policy(e, policy, task, seed).await?;
    let t = pm_context(task);
    let b = cfg.batch;
    let mut opt = AdamW::new(e, &pm.infos, cfg.adamw, Schedule { warmup_steps: 20, total_steps: cfg.steps, min_lr_ratio: 0.1 });
    // One batch holds both orders of each pair: (x, y_w, y_l) in rows 0..b, (x, y_l, y_w) in rows b..2b.
    let acts = pm.activations(e, 2 * b, t)?;
    let grads = pm.zero_grads(e);
    let (mut best, mut best_values, mut loss_sum) = (-1.0f32, pm.values(e).await?, 0.0f32);
    for step in 0..cfg.steps {
        crate::control::yield_point().await?;
        let idx: Vec<usize> = (0..b).map(|i| (step as usize * b + i) % train.len()).collect();
        let prompts: Vec<Vec<u32>> = idx.iter().map(|&i| train.prompts[i].clone()).chain(idx.iter().map(|&i| train.prompts[i].clone())).collect();
        let (w, l): (Vec<Vec<u32>>, Vec<Vec<u32>>) = idx.iter().map(|&i| (train.ordered(i).0.to_vec(), train.ordered(i).1.to_vec())).unzip();
        let first: Vec<Vec<u32>> = w.iter().chain(&l).cloned().collect();
        let second: Vec<Vec<u32>> = l.iter().chain(&w).cloned().collect();
        let (tokens, last) = pm_inputs(task, &prompts, &first, &second);
        let (tokens, last) = (e.indices(&tokens), e.indices(&last));
        Gpt::clear_grads(e, &grads)?;
        pm.forward(e, &acts, &tokens)?;
        pm.score(e, &acts, &last)?;
        let s = e.read(&acts.scores).await?;
        let (loss, d1, d2) = pairwise_pm(&s[..b], &s[b..]);
        if !loss.is_finite() {
            bail!("proxy PM: the loss is not finite ({loss}) at step {step}: training diverged; lower proxy.adamw.lr (now {})", cfg.adamw.lr);
        }
        loss_sum += loss;
        let dscores: Vec<f32> = d1.into_iter().chain(d2).collect();
        pm.backward_score(e, &acts, &grads, &tokens, &last, &e.tensor(&dscores))?;
        opt.step(e, &pm.infos, &pm.params, &grads).await?;
        if (step + 1) % cfg.eval_every != 0 && step + 1 != cfg.steps {
            on_step(step + 1, None);
        } else {
            let acc = accuracy(e, &pm, task, heldout).await?;
            on_step(step + 1, Some((loss_sum / cfg.eval_every as f32, acc)));
            loss_sum = 0.0;
            if acc > best {
                best = acc;
                best_values = pm.values(e).await?;
            }
        }
    }
    Ok((Gpt::new(e, pm.config, Head::Score, &best_values)?, best))
}

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

    /// (the first len − n pairs, the last n).
    pub fn split_tail(&self, n: usize) -> (Pairs, Pairs) {
        let cut = self.len() - n.min(self.len());
        let part = |r: std::ops::Range<usize>| Pairs {
            prompts: self.prompts[r.clone()].to_vec(),
            y1: self.y1[r.clone()].to_vec(),
            y2: self.y2[r.clone()].to_vec(),
            first_wins: self.first_wins[r].to_vec(),
        };
        (part(0..cut), part(cut..self.len()))
    }
}

/// What a preference model learns from: training pairs; validation pairs that early stopping selects
/// on (a split of D_golden); held-out pairs it is reported on once, at the end.
#[derive(Clone, Copy)]
pub struct PmData<'a> {
    pub train: &'a Pairs,
    pub validation: &'a Pairs,
    pub heldout: &'a Pairs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmConfig {
    /// Training steps at most (early stopping may end sooner).
    pub steps: u32,
    pub batch: usize,
    pub adamw: AdamwConfig,
    /// Evaluate on the validation split every this many steps; keep the model with the lowest
    /// validation loss (early stopping).
    pub eval_every: u32,
    /// The fraction of D_golden held back as the validation split (the proxy does not train on it).
    #[serde(default = "default_validation")]
    pub validation: f32,
    /// Stop after this many evaluations in a row without a lower validation loss (0: never stop early).
    #[serde(default)]
    pub patience: u32,
}

fn default_validation() -> f32 {
    0.05
}

impl Default for PmConfig {
    fn default() -> Self {
        PmConfig { steps: 600, batch: 64, adamw: AdamwConfig { lr: 1e-3, ..AdamwConfig::default() }, eval_every: 100, validation: default_validation(), patience: 0 }
    }
}

impl PmConfig {
    /// Pairs of a D_golden of `d_golden` pairs held back for validation (at least one).
    pub fn validation_pairs(&self, d_golden: usize) -> usize {
        ((d_golden as f64 * self.validation as f64).round() as usize).max(1)
    }
}

/// One evaluation during proxy training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmEval {
    /// Mean training loss since the previous evaluation.
    pub train_loss: f32,
    pub validation_loss: f32,
    pub validation_accuracy: f32,
}

/// A trained proxy: the model from its best validation loss, and its held-out accuracy (measured once).
pub struct TrainedPm {
    pub model: Gpt,
    pub heldout_accuracy: f32,
    /// The step whose model was kept, and the steps run (fewer than configured when stopped early).
    pub best_step: u32,
    pub steps_run: u32,
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

/// The training loss (position-debiased, as in training) and the sign-rule accuracy on `pairs`.
pub async fn loss_and_accuracy(e: &Engine, pm: &Gpt, task: &TaskConfig, pairs: &Pairs) -> Result<(f32, f32)> {
    let (w, l): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (0..pairs.len()).map(|i| (pairs.ordered(i).0.to_vec(), pairs.ordered(i).1.to_vec())).unzip();
    let forward = scores(e, pm, task, &pairs.prompts, &w, &l, 256).await?;
    let swapped = scores(e, pm, task, &pairs.prompts, &l, &w, 256).await?;
    let (loss, _, _) = pairwise_pm(&forward, &swapped);
    let right = forward.iter().zip(&swapped).filter(|(&a, &b)| prefers_first(a, b)).count();
    Ok((loss, right as f32 / pairs.len().max(1) as f32))
}

/// Trains the proxy on `train` (cycling through it in order) until `steps`, or until `patience`
/// evaluations in a row bring no lower validation loss; keeps the parameters with the lowest validation
/// loss and measures their held-out accuracy once. `on_step(step, evaluation)` sees every step (1-based),
/// with `Some` at each evaluation.
pub async fn train_pm(
    e: &Engine,
    task: &TaskConfig,
    policy: &Gpt,
    PmData { train, validation, heldout }: PmData<'_>,
    cfg: &PmConfig,
    seed: u32,
    mut on_step: impl FnMut(u32, Option<PmEval>),
) -> Result<TrainedPm> {
    if cfg.steps == 0 || cfg.eval_every == 0 {
        bail!("proxy.steps = {} and proxy.eval_every = {} must both be ≥ 1", cfg.steps, cfg.eval_every);
    }
    if train.len() < cfg.batch || validation.is_empty() || heldout.is_empty() {
        bail!(
            "proxy training needs ≥ batch ({}) training pairs and some validation and held-out pairs; got {}, {} and {}",
            cfg.batch, train.len(), validation.len(), heldout.len()
        );
    }
    let pm = pm_from_policy(e, policy, task, seed).await?;
    let t = pm_context(task);
    let b = cfg.batch;
    let mut opt = AdamW::new(e, &pm.infos, cfg.adamw, Schedule { warmup_steps: 20, total_steps: cfg.steps, min_lr_ratio: 0.1 });
    // One batch holds both orders of each pair: (x, y_w, y_l) in rows 0..b, (x, y_l, y_w) in rows b..2b.
    let acts = pm.activations(e, 2 * b, t)?;
    let grads = pm.zero_grads(e);
    // A step's inputs, written in place each step (the GPU's bind groups over them are made once).
    let (tokens_in, last_in, dscores_in) = (e.zeros(2 * b * t), e.zeros(2 * b), e.zeros(2 * b));
    let (mut best, mut best_values, mut loss_sum) = (f32::INFINITY, pm.values(e).await?, 0.0f32);
    let (mut best_step, mut since_best, mut steps_run) = (0, 0, 0);
    for step in 0..cfg.steps {
        steps_run = step + 1;
        crate::control::yield_point().await?;
        let idx: Vec<usize> = (0..b).map(|i| (step as usize * b + i) % train.len()).collect();
        let prompts: Vec<Vec<u32>> = idx.iter().map(|&i| train.prompts[i].clone()).chain(idx.iter().map(|&i| train.prompts[i].clone())).collect();
        let (w, l): (Vec<Vec<u32>>, Vec<Vec<u32>>) = idx.iter().map(|&i| (train.ordered(i).0.to_vec(), train.ordered(i).1.to_vec())).unzip();
        let first: Vec<Vec<u32>> = w.iter().chain(&l).cloned().collect();
        let second: Vec<Vec<u32>> = l.iter().chain(&w).cloned().collect();
        let (tokens, last) = pm_inputs(task, &prompts, &first, &second);
        e.write_indices(&tokens_in, &tokens)?;
        e.write_indices(&last_in, &last)?;
        let (tokens, last) = (&tokens_in, &last_in);
        Gpt::clear_grads(e, &grads)?;
        pm.forward(e, &acts, tokens)?;
        pm.score(e, &acts, last)?;
        let s = e.read(&acts.scores).await?;
        let (loss, d1, d2) = pairwise_pm(&s[..b], &s[b..]);
        if !loss.is_finite() {
            bail!("proxy PM: the loss is not finite ({loss}) at step {step}: training diverged; lower proxy.adamw.lr (now {})", cfg.adamw.lr);
        }
        loss_sum += loss;
        let dscores: Vec<f32> = d1.into_iter().chain(d2).collect();
        e.write(&dscores_in, &dscores)?;
        pm.backward_score(e, &acts, &grads, tokens, last, &dscores_in)?;
        opt.step(e, &pm.params, &grads)?;
        if (step + 1) % cfg.eval_every != 0 && step + 1 != cfg.steps {
            on_step(step + 1, None);
        } else {
            let since_eval = (step % cfg.eval_every + 1) as f32;
            let (validation_loss, validation_accuracy) = loss_and_accuracy(e, &pm, task, validation).await?;
            on_step(step + 1, Some(PmEval { train_loss: loss_sum / since_eval, validation_loss, validation_accuracy }));
            loss_sum = 0.0;
            if validation_loss < best {
                (best, best_step, since_best) = (validation_loss, step + 1, 0);
                best_values = pm.values(e).await?;
            } else {
                since_best += 1;
                if cfg.patience > 0 && since_best >= cfg.patience {
                    break;
                }
            }
        }
    }
    let model = Gpt::new(e, pm.config, Head::Score, &best_values)?;
    let heldout_accuracy = accuracy(e, &model, task, heldout).await?;
    Ok(TrainedPm { model, heldout_accuracy, best_step, steps_run })
}

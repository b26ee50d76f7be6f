//! The proxy preference model (docs/method.md §3.2), of one of two kinds: the paper's pairwise model
//! r(x, y1, y2) = σ(score(x ⊕ y1 ⊕ y2)) read at the last real token, or a Bradley–Terry model
//! r(x, y1, y2) = σ(s(x, y1) − s(x, y2)). Either is a GPT-2 with a scalar head initialised from the SFT trunk,
//! trained on D_golden with the position-debiased loss, and used through the sign rule
//! y1 ≻ y2 iff r(x,y1,y2) − r(x,y2,y1) > 0.

use super::losses::{pairwise_pm, prefers_first};
use super::optim::{AdamW, AdamwConfig, Schedule};
use crate::bail;
use crate::engine::{Engine, Op};
use crate::error::Result;
use crate::engine::Tensor;
use crate::model::{param_infos, params::init_values, Gpt, GptConfig, Head, ModelSize};
use crate::task::{TaskConfig, PAD, SEP};
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

/// Which preference model the proxy is (docs/method.md §3.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyKind {
    /// r(x, y1, y2) = σ(score(x ⊕ y1 ⊕ y2)) read at the last real token: the paper's architecture. Not
    /// antisymmetric, hence the position-debiased loss and the sign rule.
    #[default]
    Pairwise,
    /// r(x, y1, y2) = σ(s(x, y1) − s(x, y2)) with s a scalar score of one response: a pairwise preference
    /// in use (same loss, same sign rule), antisymmetric by construction.
    BradleyTerry,
}

/// How a Bradley–Terry proxy reads s(x, y) off its trunk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreRead {
    /// The scalar head summed over the response's tokens (<eos> included): a per-token score.
    #[default]
    Summed,
    /// The scalar head at the response's last real token.
    Last,
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
    /// pairwise (the paper's) or bradley_terry.
    #[serde(default)]
    pub kind: ProxyKind,
    /// Pairwise only: a <sep> between y1 and y2 (without it a y1 that runs out without <eos> runs into y2),
    /// and y2's positions beyond the policy's context start from the policy's own response positions
    /// instead of GPT-2's initialisation.
    #[serde(default)]
    pub separator: bool,
    /// Bradley–Terry only: how s(x, y) is read.
    #[serde(default)]
    pub score: ScoreRead,
    /// The proxy's trunk, `LxDhH` (null: the policy's size). A trunk of another size starts from the SFT policy
    /// of that size, trained on the seed's SFT data with its SFT config, as the paper's PM starts from a
    /// pretrained model of its own size; D_golden is still sampled from the policy's π_sft.
    #[serde(default, with = "crate::model::size_text::option")]
    pub trunk: Option<ModelSize>,
}

impl PmConfig {
    /// How a model trained by this config is read.
    pub fn form(&self) -> ProxyForm {
        ProxyForm { kind: self.kind, separator: self.separator, score: self.score }
    }

    /// The proxy's own trunk size when it is not `policy`'s (none: the trunk is the policy's π_sft, as every proxy's
    /// was before the trunk was a setting).
    pub fn trunk_apart_from(&self, policy: ModelSize) -> Option<ModelSize> {
        self.trunk.filter(|&t| t != policy)
    }

    /// Whether this is the proxy every experiment had before proxy kinds existed (pairwise, no separator):
    /// its cache keys and reports stay as they were.
    pub fn is_original(&self) -> bool {
        self.kind == ProxyKind::Pairwise && !self.separator
    }
}

fn default_validation() -> f32 {
    0.05
}

impl Default for PmConfig {
    fn default() -> Self {
        PmConfig {
            steps: 600,
            batch: 64,
            adamw: AdamwConfig { lr: 1e-3, ..AdamwConfig::default() },
            eval_every: 100,
            validation: default_validation(),
            patience: 0,
            kind: ProxyKind::Pairwise,
            separator: false,
            score: ScoreRead::Summed,
            trunk: None,
        }
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

/// How a proxy's model is read: its kind and the kind's options (everything but training).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyForm {
    pub kind: ProxyKind,
    pub separator: bool,
    pub score: ScoreRead,
}

impl ProxyForm {
    /// The context of one scored row: x ⊕ y1 [⊕ <sep>] ⊕ y2 for a pairwise proxy, x ⊕ y (the policy's
    /// context) for a Bradley–Terry one.
    pub fn context(&self, task: &TaskConfig) -> usize {
        match self.kind {
            ProxyKind::Pairwise => task.prompt_len() + 2 * task.max_summary + self.separator as usize,
            ProxyKind::BradleyTerry => task.context(),
        }
    }

}

/// A proxy preference model: its weights and how they are read.
pub struct Proxy {
    pub model: Gpt,
    pub form: ProxyForm,
}

/// A trained proxy: the model from its best validation loss, and its held-out accuracy (measured once).
pub struct TrainedPm {
    pub proxy: Proxy,
    pub heldout: PmAccuracy,
    /// The step whose model was kept, and the steps run (fewer than configured when stopped early).
    pub best_step: u32,
    pub steps_run: u32,
    /// The parameters at each step of a [`Ladder`], with their held-out accuracy, in the ladder's order.
    pub rungs: Vec<(u32, Proxy, PmAccuracy)>,
}

/// Snapshots of one proxy run at fixed steps (the proxy map's weaker proxies: the same recipe, stopped earlier).
/// Taking them changes nothing of the run itself: its learning-rate schedule still spans the recipe's `steps`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ladder<'a> {
    /// Steps to keep the parameters at, ascending.
    pub steps: &'a [u32],
    /// Stop after the last of them (the full proxy is not wanted: it is cached already). The run's own best
    /// model is then the best up to there, and not the recipe's.
    pub only: bool,
}

/// A proxy's sign-rule accuracy on golden-labelled pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PmAccuracy {
    /// Against every label, golden ties (labelled by a coin) included.
    pub with_ties: f32,
    /// On the pairs whose golden rewards differ.
    pub tie_free: f32,
    /// The share of pairs whose golden rewards are equal.
    pub tie_rate: f32,
}

impl PmAccuracy {
    /// The best accuracy with ties a proxy can expect: every untied pair right, the coin-flipped ties at ½.
    pub fn ceiling(&self) -> f32 {
        1.0 - self.tie_rate / 2.0
    }
}

/// Right-padded rows of `t` tokens, each the concatenation of its parts (cut at `t`), with the index of each
/// row's last real token and the span of its last part (the response a summed score reads).
struct Rows {
    tokens: Vec<u32>,
    last: Vec<u32>,
    spans: Vec<(usize, usize)>,
}

fn pack_rows<'a>(t: usize, rows: impl Iterator<Item = Vec<&'a [u32]>>) -> Rows {
    let mut out = Rows { tokens: vec![], last: vec![], spans: vec![] };
    for parts in rows {
        let seq: Vec<u32> = parts.iter().flat_map(|p| p.iter()).copied().take(t).collect();
        let start = parts[..parts.len() - 1].iter().map(|p| p.len()).sum::<usize>().min(seq.len());
        out.spans.push((start, seq.len()));
        out.last.push(seq.len() as u32 - 1);
        out.tokens.extend(&seq);
        out.tokens.extend(std::iter::repeat_n(PAD, t - seq.len()));
    }
    out
}

/// The rows a proxy scores for pairs (x, ya, yb): x ⊕ ya [⊕ <sep>] ⊕ yb per pair (pairwise), or (x, ya) for
/// every pair then (x, yb) for every pair (Bradley–Terry).
fn pair_rows(form: ProxyForm, task: &TaskConfig, prompts: &[Vec<u32>], ya: &[Vec<u32>], yb: &[Vec<u32>]) -> Rows {
    let t = form.context(task);
    let sep: &[u32] = if form.separator { &[SEP] } else { &[] };
    match form.kind {
        ProxyKind::Pairwise => pack_rows(t, (0..prompts.len()).map(|i| vec![&prompts[i][..], &ya[i][..], sep, &yb[i][..]])),
        ProxyKind::BradleyTerry => pack_rows(t, (0..prompts.len()).map(|i| vec![&prompts[i][..], &ya[i][..]]).chain((0..prompts.len()).map(|i| vec![&prompts[i][..], &yb[i][..]]))),
    }
}

/// The device buffers for scoring `rows` rows of a proxy (and backpropagating through them), made once and
/// written in place each time (the GPU's bind groups over them are made once).
pub struct Scorer<'a> {
    proxy: &'a Proxy,
    acts: crate::model::Activations,
    tokens: Tensor,
    last: Tensor,
    /// A Bradley–Terry proxy's summed read's buffers (none for a last-token read).
    summed: Option<SummedRead>,
    dscores: Tensor,
    /// A training batch's loss, computed on the device and read at the step's end.
    loss: Tensor,
}

/// The buffers of a score summed over each row's response span (B rows of T positions).
struct SummedRead {
    /// B·T zero indices: every position its own row for the scalar head.
    zeros: Tensor,
    /// The score at every position, and its gradient.
    at: Tensor,
    dat: Tensor,
    /// 1 on each row's span, 0 elsewhere (B·T), and the rows' summed scores (B).
    on_span: Tensor,
    scores: Tensor,
}

impl<'a> Scorer<'a> {
    /// Buffers for `rows` rows: a training batch of b pairs needs 2b (both orders of each pair, or each pair's
    /// two responses).
    pub fn new(e: &Engine, proxy: &'a Proxy, task: &TaskConfig, rows: usize) -> Result<Self> {
        let t = proxy.form.context(task);
        let summed = proxy.form.kind == ProxyKind::BradleyTerry && proxy.form.score == ScoreRead::Summed;
        Ok(Scorer {
            acts: proxy.model.activations(e, rows, t)?,
            tokens: e.zeros(rows * t),
            last: e.zeros(rows),
            summed: summed.then(|| SummedRead { zeros: e.zeros(rows * t), at: e.zeros(rows * t), dat: e.zeros(rows * t), on_span: e.zeros(rows * t), scores: e.zeros(rows) }),
            dscores: e.zeros(rows),
            loss: e.zeros(1),
            proxy,
        })
    }

    /// Each row's score, read on the host (the tests' reference for the device's path: `scores`, `record_batch`).
    #[cfg(all(test, not(target_arch = "wasm32")))]
    async fn forward(&self, e: &Engine, rows: &Rows) -> Result<Vec<f32>> {
        let m = &self.proxy.model;
        e.write_indices(&self.tokens, &rows.tokens)?;
        m.forward(e, &self.acts, &self.tokens)?;
        match &self.summed {
            None => {
                e.write_indices(&self.last, &rows.last)?;
                m.score(e, &self.acts, &self.last)?;
                e.read(&self.acts.scores).await
            }
            Some(SummedRead { zeros, at, .. }) => {
                m.score_every_position(e, &self.acts, zeros, at)?;
                let at = e.read(at).await?;
                let t = self.acts.t;
                Ok(rows.spans.iter().enumerate().map(|(r, &(a, b))| at[r * t + a..r * t + b].iter().sum()).collect())
            }
        }
    }

    /// One training batch of (winner, loser) pairs: returns the position-debiased loss and adds its gradient
    /// to `grads` ([`Scorer::record_batch`], then the loss read back).
    pub async fn train_batch(&self, e: &Engine, grads: &[Tensor], task: &TaskConfig, prompts: &[Vec<u32>], w: &[Vec<u32>], l: &[Vec<u32>]) -> Result<f32> {
        self.record_batch(e, grads, task, prompts, w, l)?;
        self.read_loss(e).await
    }

    /// One training batch recorded on the device, nothing read back: the rows' scores, the position-debiased loss
    /// and its gradient by each score (`Op::PreferenceLoss`: [`training_logits`], `pairwise_pm` and
    /// [`gradients_of_rows`] on the device), and the backward pass adding to `grads`. Its loss is
    /// [`Scorer::read_loss`], at the step's end.
    pub fn record_batch(&self, e: &Engine, grads: &[Tensor], task: &TaskConfig, prompts: &[Vec<u32>], w: &[Vec<u32>], l: &[Vec<u32>]) -> Result<()> {
        let form = self.proxy.form;
        let rows = training_rows(form, task, prompts, w, l);
        let m = &self.proxy.model;
        let (b, t) = (self.acts.b, self.acts.t);
        e.write_indices(&self.tokens, &rows.tokens)?;
        m.forward(e, &self.acts, &self.tokens)?;
        let scores = match &self.summed {
            Some(SummedRead { zeros, at, on_span, scores, .. }) => {
                let mut weights = vec![0f32; b * t];
                for (r, &(a, z)) in rows.spans.iter().enumerate() {
                    weights[r * t + a..r * t + z].iter_mut().for_each(|v| *v = 1.0);
                }
                e.write(on_span, &weights)?;
                m.score_every_position(e, &self.acts, zeros, at)?;
                e.run(Op::WeightedRowSum { b, t }, &[at, on_span], &[scores])?;
                scores
            }
            None => {
                e.write_indices(&self.last, &rows.last)?;
                m.score(e, &self.acts, &self.last)?;
                &self.acts.scores
            }
        };
        e.run(Op::PreferenceLoss { pairs: prompts.len(), kind: form.kind }, &[scores], &[&self.dscores, &self.loss])?;
        match &self.summed {
            Some(SummedRead { zeros, dat, on_span, .. }) => {
                e.run(Op::WeightedRowSumBackward { b, t }, &[&self.dscores, on_span], &[dat])?;
                m.backward_score_every_position(e, &self.acts, grads, &self.tokens, zeros, dat)
            }
            None => m.backward_score(e, &self.acts, grads, &self.tokens, &self.last, &self.dscores),
        }
    }

    /// The loss of the batch [`Scorer::record_batch`] recorded last (a readback).
    pub async fn read_loss(&self, e: &Engine) -> Result<f32> {
        Ok(e.read(&self.loss).await?[0])
    }
}

/// A proxy of kind `form` whose trunk is the SFT policy's. Positions beyond the policy's context start from
/// GPT-2's initialisation, or, for a pairwise proxy with a separator, from the policy's own positions one
/// summary (and the separator) earlier, so y2's block of positions starts where y1's did. The scalar head
/// starts from GPT-2's initialisation.
pub async fn pm_from_policy(e: &Engine, policy: &Gpt, task: &TaskConfig, form: ProxyForm, seed: u32) -> Result<Proxy> {
    let cfg = GptConfig { n_positions: form.context(task), ..policy.config };
    let mut values = init_values(&cfg, Head::Score, seed);
    let trunk = policy.values(e).await?;
    let c = cfg.n_embd;
    for (i, v) in trunk.into_iter().enumerate() {
        if i == 1 {
            // wpe: the policy's positions come first
            let n = v.len().min(values[1].len());
            values[1][..n].copy_from_slice(&v[..n]);
            if form.separator {
                let shift = task.max_summary + 1;
                for p in policy.config.n_positions..cfg.n_positions {
                    let from = (p - shift) * c;
                    values[1].copy_within(from..from + c, p * c);
                }
            }
        } else {
            values[i] = v;
        }
    }
    debug_assert_eq!(values.len(), param_infos(&cfg, Head::Score).len());
    Ok(Proxy { model: Gpt::new(e, cfg, Head::Score, &values)?, form })
}

/// The proxy's logits z(x, ya, yb) and z(x, yb, ya) of each pair (r = σ(z)), in batches of at most `batch`
/// pairs. For a Bradley–Terry proxy the second is exactly the first negated.
pub async fn pair_logits(e: &Engine, proxy: &Proxy, task: &TaskConfig, prompts: &[Vec<u32>], ya: &[Vec<u32>], yb: &[Vec<u32>], batch: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let (mut ab, mut ba) = (Vec::with_capacity(prompts.len()), Vec::with_capacity(prompts.len()));
    let form = proxy.form;
    for start in (0..prompts.len()).step_by(batch.max(1)) {
        let end = (start + batch).min(prompts.len());
        let (p, a, b) = (&prompts[start..end], &ya[start..end], &yb[start..end]);
        let n = end - start;
        match form.kind {
            ProxyKind::Pairwise => {
                ab.extend(scores(e, proxy, task, pair_rows(form, task, p, a, b)).await?);
                ba.extend(scores(e, proxy, task, pair_rows(form, task, p, b, a)).await?);
            }
            ProxyKind::BradleyTerry => {
                let (z, minus_z) = training_logits(form, &scores(e, proxy, task, pair_rows(form, task, p, a, b)).await?, n);
                ab.extend(z);
                ba.extend(minus_z);
            }
        }
    }
    Ok((ab, ba))
}

/// Each row's score, as [`Scorer`] reads it, in a row pass shared by the pool's workers (the same bits).
async fn scores(e: &Engine, proxy: &Proxy, task: &TaskConfig, rows: Rows) -> Result<Vec<f32>> {
    use super::parallel::rows::{pass_rows, Read, Rows as PassRows};
    let summed = proxy.form.kind == ProxyKind::BradleyTerry && proxy.form.score == ScoreRead::Summed;
    let read = match summed {
        true => Read::SummedScore { spans: rows.spans.iter().map(|&(a, b)| (a as u32, b as u32)).collect() },
        false => Read::Score { last: rows.last },
    };
    pass_rows(e, &proxy.model, None, PassRows { t: proxy.form.context(task), tokens: rows.tokens, read }).await
}

/// A Bradley–Terry proxy's score of each (prompt, response) row, 512 rows a pass; none for a pairwise proxy, which
/// only scores pairs. Responses judged again and again against the same others (each checkpoint's samples against
/// the evaluation's π_sft baseline) are scored once: a row's score does not depend on the rows passed with it.
pub async fn response_scores(e: &Engine, proxy: &Proxy, task: &TaskConfig, prompts: &[Vec<u32>], ys: &[Vec<u32>]) -> Result<Option<Vec<f32>>> {
    if proxy.form.kind != ProxyKind::BradleyTerry {
        return Ok(None);
    }
    let t = proxy.form.context(task);
    let mut out = Vec::with_capacity(prompts.len());
    for start in (0..prompts.len()).step_by(512) {
        let end = (start + 512).min(prompts.len());
        out.extend(scores(e, proxy, task, pack_rows(t, (start..end).map(|i| vec![&prompts[i][..], &ys[i][..]]))).await?);
    }
    Ok(Some(out))
}

/// [`prefers`] of `y1` over responses whose [`response_scores`] are `y2_scores`: the same labels, bit for bit, with
/// only `y1` scored.
pub async fn prefers_over_scored(e: &Engine, proxy: &Proxy, task: &TaskConfig, prompts: &[Vec<u32>], y1: &[Vec<u32>], y2_scores: &[f32]) -> Result<Vec<bool>> {
    let Some(s1) = response_scores(e, proxy, task, prompts, y1).await? else { crate::bail!("prefers_over_scored: a pairwise proxy scores pairs, not responses") };
    if s1.len() != y2_scores.len() {
        crate::bail!("prefers_over_scored: {} responses against {} known scores", s1.len(), y2_scores.len());
    }
    // As `pair_logits` and `training_logits` compute them: z = s1 − s2, and the swapped logit −z.
    Ok(s1.iter().zip(y2_scores).map(|(a, b)| {
        let z = a - b;
        prefers_first(z, -z)
    })
    .collect())
}

/// The proxy's labels by the sign rule: true where y1 ≻ y2.
pub async fn prefers(e: &Engine, proxy: &Proxy, task: &TaskConfig, prompts: &[Vec<u32>], y1: &[Vec<u32>], y2: &[Vec<u32>]) -> Result<Vec<bool>> {
    let (s12, s21) = pair_logits(e, proxy, task, prompts, y1, y2, 256).await?;
    Ok(s12.iter().zip(&s21).map(|(&a, &b)| prefers_first(a, b)).collect())
}

/// The proxy's sign-rule accuracy on `pairs` against their golden labels, with and without the golden ties.
pub async fn accuracy(e: &Engine, proxy: &Proxy, task: &TaskConfig, pairs: &Pairs) -> Result<PmAccuracy> {
    let got = prefers(e, proxy, task, &pairs.prompts, &pairs.y1, &pairs.y2).await?;
    let tied: Vec<bool> = (0..pairs.len()).map(|i| task.golden_reward(&pairs.prompts[i], &pairs.y1[i]) == task.golden_reward(&pairs.prompts[i], &pairs.y2[i])).collect();
    let right = |keep: &dyn Fn(usize) -> bool| {
        let kept: Vec<usize> = (0..pairs.len()).filter(|&i| keep(i)).collect();
        kept.iter().filter(|&&i| got[i] == pairs.first_wins[i]).count() as f32 / kept.len().max(1) as f32
    };
    Ok(PmAccuracy { with_ties: right(&|_| true), tie_free: right(&|i| !tied[i]), tie_rate: tied.iter().filter(|&&t| t).count() as f32 / pairs.len().max(1) as f32 })
}

/// The training loss (position-debiased, as in training) and the sign-rule accuracy on `pairs`.
pub async fn loss_and_accuracy(e: &Engine, proxy: &Proxy, task: &TaskConfig, pairs: &Pairs) -> Result<(f32, f32)> {
    let (w, l): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (0..pairs.len()).map(|i| (pairs.ordered(i).0.to_vec(), pairs.ordered(i).1.to_vec())).unzip();
    let (forward, swapped) = pair_logits(e, proxy, task, &pairs.prompts, &w, &l, 256).await?;
    let (loss, _, _) = pairwise_pm(&forward, &swapped);
    let right = forward.iter().zip(&swapped).filter(|(&a, &b)| prefers_first(a, b)).count();
    Ok((loss, right as f32 / pairs.len().max(1) as f32))
}

/// One training step's rows for `b` (winner, loser) pairs, and how the loss's gradient by each pair's two
/// logits reaches the rows' scores. Pairwise: rows (x, y_w, y_l) then (x, y_l, y_w), one logit each.
/// Bradley–Terry: rows (x, y_w) then (x, y_l); z(x, y_w, y_l) = s_w − s_l and z(x, y_l, y_w) = s_l − s_w.
fn training_rows(form: ProxyForm, task: &TaskConfig, prompts: &[Vec<u32>], w: &[Vec<u32>], l: &[Vec<u32>]) -> Rows {
    match form.kind {
        ProxyKind::Pairwise => {
            let p2: Vec<Vec<u32>> = prompts.iter().chain(prompts).cloned().collect();
            let first: Vec<Vec<u32>> = w.iter().chain(l).cloned().collect();
            let second: Vec<Vec<u32>> = l.iter().chain(w).cloned().collect();
            pair_rows(form, task, &p2, &first, &second)
        }
        ProxyKind::BradleyTerry => pair_rows(form, task, prompts, w, l),
    }
}

/// (z(x, ya, yb), z(x, yb, ya)) of `b` pairs from the scores of their rows ([`training_rows`]): pairwise, the
/// two orders' rows; Bradley–Terry, z = s(x, ya) − s(x, yb) from rows (x, ya) then (x, yb), and its negation.
fn training_logits(form: ProxyForm, s: &[f32], b: usize) -> (Vec<f32>, Vec<f32>) {
    logits_of_rows(form.kind, s, b)
}

/// [`training_logits`] by the proxy's kind alone (the device loss's CPU twin, `Op::PreferenceLoss`).
pub(crate) fn logits_of_rows(kind: ProxyKind, s: &[f32], b: usize) -> (Vec<f32>, Vec<f32>) {
    match kind {
        ProxyKind::Pairwise => (s[..b].to_vec(), s[b..].to_vec()),
        ProxyKind::BradleyTerry => {
            let z: Vec<f32> = (0..b).map(|i| s[i] - s[b + i]).collect();
            let minus_z = z.iter().map(|v| -v).collect();
            (z, minus_z)
        }
    }
}

/// d loss / d row score from d loss / d forward logit (`d1`) and / d swapped logit (`d2`), by the proxy's kind (also
/// the device loss's CPU twin, `Op::PreferenceLoss`).
pub(crate) fn gradients_of_rows(kind: ProxyKind, d1: Vec<f32>, d2: Vec<f32>) -> Vec<f32> {
    match kind {
        ProxyKind::Pairwise => d1.into_iter().chain(d2).collect(),
        // s_w enters the forward logit with +1 and the swapped one with −1; s_l the other way round.
        ProxyKind::BradleyTerry => d1.iter().zip(&d2).map(|(a, b)| a - b).chain(d1.iter().zip(&d2).map(|(a, b)| b - a)).collect(),
    }
}

/// Trains the proxy on `train` (cycling through it in order) until `steps`, or until `patience`
/// evaluations in a row bring no lower validation loss; keeps the parameters with the lowest validation
/// loss and measures their held-out accuracy once. `on_step(step, evaluation)` sees every step (1-based),
/// with `Some` at each evaluation.
pub async fn train_pm(e: &Engine, task: &TaskConfig, policy: &Gpt, data: PmData<'_>, cfg: &PmConfig, seed: u32, on_step: impl FnMut(u32, Option<PmEval>)) -> Result<TrainedPm> {
    train_pm_ladder(e, task, policy, data, cfg, seed, Ladder::default(), on_step).await
}

/// [`train_pm`], keeping the parameters at each step of `ladder` too (each measured on the held-out pairs).
/// A ladder step the run does not reach (early stopping ended it sooner) is refused by name.
#[allow(clippy::too_many_arguments)]
pub async fn train_pm_ladder(
    e: &Engine,
    task: &TaskConfig,
    policy: &Gpt,
    PmData { train, validation, heldout }: PmData<'_>,
    cfg: &PmConfig,
    seed: u32,
    ladder: Ladder<'_>,
    mut on_step: impl FnMut(u32, Option<PmEval>),
) -> Result<TrainedPm> {
    if let Some(&s) = ladder.steps.iter().find(|&&s| s == 0 || s > cfg.steps) {
        bail!("a proxy-map step {s} is not a step of the proxy's run: each must be in 1..={} (proxy.steps)", cfg.steps);
    }
    if cfg.steps == 0 || cfg.eval_every == 0 {
        bail!("proxy.steps = {} and proxy.eval_every = {} must both be ≥ 1", cfg.steps, cfg.eval_every);
    }
    if train.len() < cfg.batch || validation.is_empty() || heldout.is_empty() {
        bail!(
            "proxy training needs ≥ batch ({}) training pairs and some validation and held-out pairs; got {}, {} and {}",
            cfg.batch, train.len(), validation.len(), heldout.len()
        );
    }
    let form = cfg.form();
    let pm = pm_from_policy(e, policy, task, form, seed).await?;
    let b = cfg.batch;
    let mut opt = AdamW::new(e, &pm.model.infos, cfg.adamw, Schedule { warmup_steps: 20, total_steps: cfg.steps, min_lr_ratio: 0.1 });
    // One batch holds 2b rows: both orders of each pair (pairwise) or each pair's two responses (Bradley–Terry).
    let scorer = Scorer::new(e, &pm, task, 2 * b)?;
    let grads = pm.model.zero_grads(e);
    let (mut best, mut best_values, mut loss_sum) = (f32::INFINITY, pm.model.values(e).await?, 0.0f32);
    let (mut best_step, mut since_best, mut steps_run) = (0, 0, 0);
    let mut snapshots: Vec<(u32, Vec<Vec<f32>>)> = vec![];
    let last = match (ladder.only, ladder.steps.iter().max()) {
        (true, Some(&m)) => m,
        _ => cfg.steps,
    };
    for step in 0..last {
        steps_run = step + 1;
        crate::control::yield_point().await?;
        let idx: Vec<usize> = (0..b).map(|i| (step as usize * b + i) % train.len()).collect();
        let prompts: Vec<Vec<u32>> = idx.iter().map(|&i| train.prompts[i].clone()).collect();
        let (w, l): (Vec<Vec<u32>>, Vec<Vec<u32>>) = idx.iter().map(|&i| (train.ordered(i).0.to_vec(), train.ordered(i).1.to_vec())).unzip();
        Gpt::clear_grads(e, &grads)?;
        scorer.record_batch(e, &grads, task, &prompts, &w, &l)?;
        opt.step(e, &pm.model.params, &grads)?;
        // The step's one readback, at its end; a diverged step fails the run here, after its update.
        let loss = scorer.read_loss(e).await?;
        if !loss.is_finite() {
            bail!("proxy PM: the loss is not finite ({loss}) at step {step}: training diverged; lower proxy.adamw.lr (now {})", cfg.adamw.lr);
        }
        loss_sum += loss;
        if ladder.steps.contains(&(step + 1)) {
            snapshots.push((step + 1, pm.model.values(e).await?));
        }
        if (step + 1) % cfg.eval_every != 0 && step + 1 != cfg.steps {
            on_step(step + 1, None);
        } else {
            let since_eval = (step % cfg.eval_every + 1) as f32;
            let (validation_loss, validation_accuracy) = loss_and_accuracy(e, &pm, task, validation).await?;
            on_step(step + 1, Some(PmEval { train_loss: loss_sum / since_eval, validation_loss, validation_accuracy }));
            loss_sum = 0.0;
            if validation_loss < best {
                (best, best_step, since_best) = (validation_loss, step + 1, 0);
                best_values = pm.model.values(e).await?;
            } else {
                since_best += 1;
                if cfg.patience > 0 && since_best >= cfg.patience {
                    break;
                }
            }
        }
    }
    if let Some(&s) = ladder.steps.iter().find(|&&s| !snapshots.iter().any(|(at, _)| *at == s)) {
        bail!(
            "the proxy stopped early at step {steps_run} (no lower validation loss in {} evaluations), before proxy-map step {s}: a proxy map's steps must lie within the proxy's run",
            cfg.patience
        );
    }
    let mut rungs = vec![];
    for &s in ladder.steps {
        let values = &snapshots.iter().find(|(at, _)| *at == s).expect("checked above").1;
        let rung = Proxy { model: Gpt::new(e, pm.model.config, Head::Score, values)?, form };
        let measured = accuracy(e, &rung, task, heldout).await?;
        rungs.push((s, rung, measured));
    }
    let proxy = Proxy { model: Gpt::new(e, pm.model.config, Head::Score, &best_values)?, form };
    let heldout = accuracy(e, &proxy, task, heldout).await?;
    Ok(TrainedPm { proxy, heldout, best_step, steps_run, rungs })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Judging responses against others whose scores are known (the evaluation's baseline, scored once) gives the
    /// labels judging both sides does, bit for bit, for both score reads; a pairwise proxy has no response scores.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn judging_against_known_scores_gives_the_same_labels() {
        let task = TaskConfig::default();
        let e = Engine::cpu();
        let prompts: Vec<Vec<u32>> = (0..40).map(|i| task.prompt(1, 2, i)).collect();
        let (y1, y2): (Vec<Vec<u32>>, Vec<Vec<u32>>) = prompts.iter().enumerate().map(|(i, p)| (task.generate(p, 1, 3, i as u32), task.generate(p, 1, 4, i as u32))).unzip();
        for (kind, score) in [(ProxyKind::BradleyTerry, ScoreRead::Summed), (ProxyKind::BradleyTerry, ScoreRead::Last), (ProxyKind::Pairwise, ScoreRead::Summed)] {
            let form = ProxyForm { kind, separator: false, score };
            let config = GptConfig { n_layer: 1, n_embd: 16, n_head: 2, n_positions: form.context(&task), vocab_size: task.vocab_size() };
            let proxy = Proxy { model: Gpt::new(&e, config, Head::Score, &init_values(&config, Head::Score, 7)).unwrap(), form };
            let both = pollster::block_on(prefers(&e, &proxy, &task, &prompts, &y1, &y2)).unwrap();
            let known = pollster::block_on(response_scores(&e, &proxy, &task, &prompts, &y2)).unwrap();
            if kind == ProxyKind::Pairwise {
                assert!(known.is_none());
                continue;
            }
            let over = pollster::block_on(prefers_over_scored(&e, &proxy, &task, &prompts, &y1, &known.unwrap())).unwrap();
            assert_eq!(over, both, "{kind:?} {score:?}");
            assert!(both.iter().any(|&w| w) && both.iter().any(|&w| !w), "{kind:?} {score:?}: both labels occur");
        }
    }

    #[test]
    fn a_separator_sits_between_the_two_summaries_and_the_spans_cover_the_last_part() {
        let task = TaskConfig::default();
        let (x, a, b) = (vec![vec![10, 11, SEP]], vec![vec![20, 21]], vec![vec![30, crate::task::EOS]]);
        let form = ProxyForm { kind: ProxyKind::Pairwise, separator: true, score: ScoreRead::Summed };
        let rows = pair_rows(form, &task, &x, &a, &b);
        let t = form.context(&task);
        assert_eq!(t, task.prompt_len() + 2 * task.max_summary + 1);
        assert_eq!(&rows.tokens[..8], &[10, 11, SEP, 20, 21, SEP, 30, crate::task::EOS]);
        assert!(rows.tokens[8..t].iter().all(|&v| v == PAD));
        assert_eq!(rows.last, vec![7]);
        let bt = ProxyForm { kind: ProxyKind::BradleyTerry, ..form };
        let rows = pair_rows(bt, &task, &x, &a, &b);
        assert_eq!(rows.tokens.len(), 2 * task.context());
        assert_eq!(rows.spans, vec![(3, 5), (3, 5)]);
        assert_eq!(rows.last, vec![4, 4]);
        // The original proxy's input is unchanged: no separator, the prompt and two summaries.
        let original = ProxyForm { separator: false, ..form };
        let rows = pair_rows(original, &task, &x, &a, &b);
        assert_eq!(original.context(&task), task.prompt_len() + 2 * task.max_summary);
        assert_eq!(&rows.tokens[..7], &[10, 11, SEP, 20, 21, 30, crate::task::EOS]);
        assert_eq!(rows.last, vec![6]);
    }

    #[test]
    fn bradley_terry_row_gradients_are_the_chain_rule_of_the_pair_loss() {
        // loss(s) = pairwise_pm(s_w − s_l, s_l − s_w): its analytic gradient by each score against a central difference.
        let form = ProxyForm { kind: ProxyKind::BradleyTerry, separator: false, score: ScoreRead::Summed };
        let s = vec![0.3f32, -1.2, 2.0, 0.7, 0.1, 1.5];
        let loss = |s: &[f32]| {
            let (f, w) = training_logits(form, s, 3);
            pairwise_pm(&f, &w).0 as f64
        };
        let (f, w) = training_logits(form, &s, 3);
        let (_, d1, d2) = pairwise_pm(&f, &w);
        let analytic = gradients_of_rows(form.kind, d1, d2);
        for i in 0..s.len() {
            let h = 1e-2f32;
            let (mut up, mut down) = (s.clone(), s.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h as f64);
            assert!((numeric - analytic[i] as f64).abs() < 1e-4, "score {i}: numeric {numeric} analytic {}", analytic[i]);
        }
    }

    // Native only: these drive the engine with pollster, which the wasm build has not.
    #[cfg(not(target_arch = "wasm32"))]
    /// A tiny task and a Bradley–Terry proxy over a random trunk, for the whole-model checks below.
    fn tiny(score: ScoreRead, values: Option<&[Vec<f32>]>) -> (Engine, TaskConfig, Proxy) {
        let e = Engine::cpu();
        let task = TaskConfig { vocab_words: 8, key_words: 3, doc_len: 3, max_summary: 4, ..TaskConfig::default() };
        let cfg = GptConfig { n_layer: 1, n_embd: 8, n_head: 2, n_positions: task.context(), vocab_size: task.vocab_size() };
        let values = values.map(|v| v.to_vec()).unwrap_or_else(|| {
            let mut v = init_values(&cfg, Head::Score, 3);
            v.iter_mut().for_each(|t| t.iter_mut().enumerate().for_each(|(i, x)| *x = *x * 3.0 + 0.01 * ((i % 5) as f32 - 2.0)));
            v
        });
        let model = Gpt::new(&e, cfg, Head::Score, &values).unwrap();
        (e, task, Proxy { model, form: ProxyForm { kind: ProxyKind::BradleyTerry, separator: false, score } })
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn tiny_pairs(task: &TaskConfig) -> (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<Vec<u32>>) {
        let w = |i: usize| task.word_id(i);
        let prompts = vec![vec![w(0), w(4), w(5), SEP], vec![w(1), w(2), w(6), SEP]];
        let ya = vec![vec![w(0), crate::task::EOS], vec![w(1), w(2), w(2), crate::task::EOS]];
        let yb = vec![vec![w(7), w(4), w(4), w(0)], vec![w(6), crate::task::EOS]];
        (prompts, ya, yb)
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_bradley_terry_proxy_is_antisymmetric_exactly() {
        for score in [ScoreRead::Summed, ScoreRead::Last] {
            let (e, task, proxy) = tiny(score, None);
            let (p, a, b) = tiny_pairs(&task);
            let (ab, ba) = pollster::block_on(pair_logits(&e, &proxy, &task, &p, &a, &b, 256)).unwrap();
            // Scored the other way round, from scratch: z(x, yb, ya) is z(x, ya, yb) negated, bit for bit.
            let (ba2, ab2) = pollster::block_on(pair_logits(&e, &proxy, &task, &p, &b, &a, 256)).unwrap();
            for i in 0..p.len() {
                assert_eq!(ab[i].to_bits(), (-ba[i]).to_bits());
                assert_eq!(ab[i].to_bits(), ab2[i].to_bits(), "{score:?}: z(x, ya, yb) does not depend on the order it is asked in");
                assert_eq!(ba[i].to_bits(), ba2[i].to_bits());
                assert!(ab[i] != 0.0, "a constant score would pass trivially");
                // r(x, ya, yb) + r(x, yb, ya) = σ(z) + σ(−z) = 1, to the rounding of one sigmoid.
                let r = |z: f32| 1.0 / (1.0 + (-z as f64).exp());
                assert!((r(ab[i]) + r(ba[i]) - 1.0).abs() < 1e-15);
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// The proxy's training loss through the whole model, as `train_pm` computes it.
    fn bt_loss(e: &Engine, task: &TaskConfig, proxy: &Proxy) -> f64 {
        let (p, a, b) = tiny_pairs(task);
        let rows = training_rows(proxy.form, task, &p, &a, &b);
        let scorer = Scorer::new(e, proxy, task, 2 * p.len()).unwrap();
        let s = pollster::block_on(scorer.forward(e, &rows)).unwrap();
        let (f, w) = training_logits(proxy.form, &s, p.len());
        pairwise_pm(&f, &w).0 as f64
    }

    #[cfg(not(target_arch = "wasm32"))]
    /// Every parameter's analytic gradient (the summed read's positions and the chain rule through both
    /// responses) against five-point central differences of the loss, on a few entries of several tensors.
    #[test]
    fn bradley_terry_gradients_agree_with_finite_differences_through_the_model() {
        for score in [ScoreRead::Summed, ScoreRead::Last] {
            let (e, task, proxy) = tiny(score, None);
            let values = pollster::block_on(proxy.model.values(&e)).unwrap();
            let (p, a, b) = tiny_pairs(&task);
            // The training step's own path: scores, loss and its gradient on the device, then backward.
            let scorer = Scorer::new(&e, &proxy, &task, 2 * p.len()).unwrap();
            let grads = proxy.model.zero_grads(&e);
            Gpt::clear_grads(&e, &grads).unwrap();
            let loss = pollster::block_on(scorer.train_batch(&e, &grads, &task, &p, &a, &b)).unwrap();
            assert!((loss as f64 - bt_loss(&e, &task, &proxy)).abs() < 1e-6, "the device loss is the host's");
            let mut checked = 0;
            for (i, info) in proxy.model.infos.iter().enumerate().filter(|(i, _)| [0, 1, 2, 4, 8].contains(i) || *i + 1 == proxy.model.infos.len()) {
                let g = pollster::block_on(e.read(&grads[i])).unwrap();
                for k in [0, info.len() / 2, info.len() - 1] {
                    let h = 1e-2f32;
                    let at = |step: f32| {
                        let mut shifted = values.clone();
                        shifted[i][k] += step;
                        let (e, task, proxy) = tiny(score, Some(&shifted));
                        bt_loss(&e, &task, &proxy)
                    };
                    let numeric = (8.0 * (at(h) - at(-h)) - (at(2.0 * h) - at(-2.0 * h))) / (12.0 * h as f64);
                    let analytic = g[k] as f64;
                    let err = (numeric - analytic).abs() / numeric.abs().max(analytic.abs()).max(1e-2);
                    assert!(err < 2e-2, "{score:?} {} [{k}]: analytic {analytic} vs numeric {numeric}", info.name);
                    checked += 1;
                }
            }
            assert_eq!(checked, 18, "{score:?}");
        }
    }
}

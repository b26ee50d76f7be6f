//! One alignment step looked into (the page's "Step"): the step's pairs as trained, who labelled them, both judges'
//! views, the loss's margin against its target, and how each response's log-probs moved with the update.

use super::batch::SequenceBatch;
use super::losses::{gpo, Loss};
use super::pm::{prefers, Pairs, Proxy};
use super::eval::EvalSet;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Activations, Gpt};
use crate::task::TaskConfig;
use serde::Serialize;

/// One alignment step looked into (the page's "Step"): the step's pairs as trained, who labelled them, both judges'
/// views, IPO's h against its target, each pair's loss, and how the log-probs of the preferred and rejected responses
/// moved with the update, token by token.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepInside {
    /// The step (1-based: the update this shows).
    pub step: u32,
    /// Where the pairs came from: "online" (the policy's samples, proxy labels), "online_golden", "offline" (D_golden),
    /// "semi_online", "mixture".
    pub source: &'static str,
    /// Who ordered each pair into preferred and rejected: "proxy" or "golden".
    pub labels: &'static str,
    pub loss_name: Loss,
    pub beta: f32,
    /// IPO's target for h, 1/(2β): its loss is (βh − ½)² = β²(h − 1/(2β))².
    pub target: f32,
    /// The step's loss (the mean over its pairs): the number the run trains on and averages into `train_loss`.
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: f32,
    pub pairs: Vec<PairInside>,
}

/// One pair of a looked-into step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PairInside {
    pub prompt: String,
    pub preferred: String,
    pub rejected: String,
    pub golden_reward_preferred: f32,
    pub golden_reward_rejected: f32,
    /// Whether the proxy prefers the preferred response (none without a proxy, or when it ranks neither first).
    pub proxy_agrees: Option<bool>,
    /// Whether the golden reward ranks the preferred response higher (none on a tie).
    pub golden_agrees: Option<bool>,
    /// h = [log π(y_w) − log π_sft(y_w)] − [log π(y_l) − log π_sft(y_l)] before the update, and this pair's loss.
    pub h: f32,
    pub loss: f32,
    /// log π(y|x) of each response before and after the update.
    pub logp_preferred: [f32; 2],
    pub logp_rejected: [f32; 2],
    /// Each response token's log-prob before and after the update.
    pub tokens_preferred: Vec<TokenChange>,
    pub tokens_rejected: Vec<TokenChange>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TokenChange {
    pub token: String,
    pub before: f32,
    pub after: f32,
}

/// What a step to be looked into has in hand when its update is done.
pub(super) struct Trained<'b> {
    pub(super) step: u32,
    pub(super) pairs: &'b Pairs,
    pub(super) batch: &'b SequenceBatch,
    pub(super) logps: &'b [f32],
    pub(super) reference: &'b [f32],
    pub(super) token_logps: Vec<f32>,
    pub(super) loss: f32,
    pub(super) stats: super::optim::StepStats,
}

/// The [`StepInside`] of a step whose update `policy` has just taken (its log-probs are read again after it).
/// Where a step's pairs came from and who labelled them, as [`StepInside`] names them, with the proxy that also judges
/// them (the run's own, or the evaluation set's).
pub(super) struct Judged<'a> {
    pub(super) source: &'static str,
    pub(super) labels: &'static str,
    pub(super) proxy: Option<&'a Proxy>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn look_inside(e: &Engine, task: &TaskConfig, policy: &Gpt, acts: &Activations, judged: Judged<'_>, (loss_fn, beta): (Loss, f32), eval: &EvalSet<'_>, done: Trained<'_>) -> Result<StepInside> {
    let Trained { step, pairs, batch, logps, reference, token_logps, loss, stats } = done;
    let b = pairs.len();
    let (tokens, targets, weights) = (e.indices(&batch.tokens), e.indices(&batch.targets), e.tensor(&batch.weights));
    policy.forward(e, acts, &tokens)?;
    policy.sequence_logprobs(e, acts, &targets, &weights)?;
    let (after, token_after) = (e.read(&acts.sequence_logprobs).await?, e.read(&acts.token_logprobs).await?);
    let Judged { source: source_name, labels: labeller, proxy } = judged;
    let (preferred, rejected): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (0..b).map(|i| (pairs.ordered(i).0.to_vec(), pairs.ordered(i).1.to_vec())).unzip();
    // Asked both ways: the proxy may rank neither first (equal scores, as for two identical responses).
    let proxy_agrees: Vec<Option<bool>> = match proxy {
        Some(pm) => {
            let (ahead, behind) = (prefers(e, pm, task, &pairs.prompts, &preferred, &rejected).await?, prefers(e, pm, task, &pairs.prompts, &rejected, &preferred).await?);
            ahead.iter().zip(&behind).map(|(&a, &r)| (a || r).then_some(a)).collect()
        }
        None => vec![None; b],
    };
    let text = |p: &[u32]| eval.words.decode(p);
    let t = batch.t;
    let tokens_of = |row: usize| -> Result<Vec<TokenChange>> {
        (row * t..(row + 1) * t).filter(|&j| batch.weights[j] > 0.0).map(|j| Ok(TokenChange { token: text(&[batch.targets[j]])?, before: token_logps[j], after: token_after[j] })).collect()
    };
    let mut out = vec![];
    for i in 0..b {
        let (w, l) = (task.golden_reward(&pairs.prompts[i], &preferred[i]), task.golden_reward(&pairs.prompts[i], &rejected[i]));
        let h = (logps[i] - reference[i]) - (logps[b + i] - reference[b + i]);
        out.push(PairInside {
            prompt: text(&pairs.prompts[i])?,
            preferred: text(&preferred[i])?,
            rejected: text(&rejected[i])?,
            golden_reward_preferred: w,
            golden_reward_rejected: l,
            proxy_agrees: proxy_agrees[i],
            golden_agrees: (w != l).then_some(w > l),
            h,
            loss: gpo(loss_fn, beta, &logps[i..i + 1], &logps[b + i..b + i + 1], &reference[i..i + 1], &reference[b + i..b + i + 1]).0,
            logp_preferred: [logps[i], after[i]],
            logp_rejected: [logps[b + i], after[b + i]],
            tokens_preferred: tokens_of(i)?,
            tokens_rejected: tokens_of(b + i)?,
        });
    }
    Ok(StepInside { step, source: source_name, labels: labeller, loss_name: loss_fn, beta, target: 1.0 / (2.0 * beta), loss, lr: stats.lr, grad_norm: stats.grad_norm, pairs: out })
}


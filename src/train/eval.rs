//! Measurements (docs/method.md §4): golden win rate against a baseline policy, exact KL(π‖π_sft), and what the
//! samples look like (golden reward, length, repeats, hallucinations).

use super::batch::SequenceBatch;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::sample::SampleSpec;
use crate::model::{sequence_kl, Gpt};
use crate::task::{TaskConfig, EOS, NEVER_SAMPLED, PAD};
use serde::{Deserialize, Serialize};

/// One response per prompt from `policy` at temperature 1, cut after <eos>.
pub async fn sample_responses(e: &Engine, policy: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], seed: u32, stream: u32) -> Result<Vec<Vec<u32>>> {
    sample_mixture_responses(e, policy, None, task, prompts, seed, stream).await
}

/// [`sample_responses`] from the geometric mixture of `policy` and a reference with the reference's weight m
/// (`Gpt::sample_mixture`); none: from `policy` alone.
pub async fn sample_mixture_responses(e: &Engine, policy: &Gpt, mixture: Option<(&Gpt, f32)>, task: &TaskConfig, prompts: &[Vec<u32>], seed: u32, stream: u32) -> Result<Vec<Vec<u32>>> {
    let spec = SampleSpec { temperature: 1.0, max_len: task.context(), seed, stream, eos: EOS, pad: PAD, banned: NEVER_SAMPLED };
    let s = policy.sample_mixture(e, prompts, &spec, mixture).await?;
    Ok((0..prompts.len()).map(|r| s.response(r, EOS).to_vec()).collect())
}

/// Win rate of `ys` over `baseline` by the golden reward, ties counted half; also the fraction of ties.
pub fn golden_win_rate(task: &TaskConfig, prompts: &[Vec<u32>], ys: &[Vec<u32>], baseline: &[Vec<u32>]) -> (f32, f32) {
    let (mut score, mut ties) = (0.0, 0);
    for ((p, y), z) in prompts.iter().zip(ys).zip(baseline) {
        let (a, b) = (task.golden_reward(p, y), task.golden_reward(p, z));
        if a > b {
            score += 1.0;
        } else if a == b {
            score += 0.5;
            ties += 1;
        }
    }
    let n = prompts.len() as f32;
    (score / n, ties as f32 / n)
}

/// Exact KL(π‖π_ref) (docs/method.md §4): responses y ~ π, then Σ over response positions of the full-vocabulary
/// KL of the next-token distributions, averaged over prompts.
pub async fn kl_to_reference(e: &Engine, policy: &Gpt, reference: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], responses: &[Vec<u32>]) -> Result<f32> {
    let t = task.context();
    let batch = SequenceBatch::new(prompts, responses, t);
    let (b, v) = (batch.b, task.vocab_size());
    let tokens = e.indices(&batch.tokens);
    let (acts, acts_ref) = (policy.activations(e, b, t)?, reference.activations(e, b, t)?);
    policy.forward(e, &acts, &tokens)?;
    reference.forward(e, &acts_ref, &tokens)?;
    let out = e.zeros(b);
    sequence_kl(e, (&acts.logits, &acts_ref.logits), &e.tensor(&batch.weights), &e.zeros(b * t), &out, (b, t, v))?;
    let kl = e.read(&out).await?;
    Ok(kl.iter().sum::<f32>() / b as f32)
}

/// What a policy's responses look like, by the task's own counts.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ResponseStats {
    pub golden_reward: f32,
    pub length: f32,
    pub repeats: f32,
    pub hallucinations: f32,
    pub eos_rate: f32,
}

pub fn response_stats(task: &TaskConfig, prompts: &[Vec<u32>], ys: &[Vec<u32>]) -> ResponseStats {
    let n = prompts.len() as f32;
    let mut s = ResponseStats::default();
    for (p, y) in prompts.iter().zip(ys) {
        let doc = &p[..task.doc_len];
        let body: Vec<u32> = y.iter().copied().take_while(|&t| t != EOS).collect();
        s.golden_reward += task.golden_reward(p, y) / n;
        s.length += body.len() as f32 / n;
        let mut seen = Vec::new();
        for t in &body {
            if seen.contains(t) {
                s.repeats += 1.0 / n;
            } else {
                seen.push(*t);
                if !doc.contains(t) {
                    s.hallucinations += 1.0 / n;
                }
            }
        }
        s.eos_rate += (y.last() == Some(&EOS)) as u32 as f32 / n;
    }
    s
}

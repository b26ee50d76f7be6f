//! Training losses on the device, so that a step reads nothing back until its end: an alignment step's GPO family
//! (IPO, DPO, SLiC, Best-of-2) of each pair's summed log-probs, its gradient d loss / d log π, and the step's record
//! (the mean loss and the log-probs it came from); a proxy's position-debiased pair loss on its rows' scores and its
//! gradient by each score.
//!
//! In one place: the CPU twins (`train::losses` and `train::pm`'s own functions, so the CPU's bits are those of the
//! host computation),
//! the GPU launch with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/losses.wgsl`, in f32 where the twin sums in f64), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;
use crate::train::losses::{gpo, pairwise_pm, Loss};
use crate::train::pm::{gradients_of_rows, logits_of_rows, ProxyKind};

pub const SHADER: Shader = Shader { name: "losses", source: include_str!("../../../shaders/losses.wgsl"), entries: &["gpo", "preference"] };

// ---- CPU twin

/// From the policy's and π_ref's summed log-probs (winners in 0..P, losers in P..2P): dseq = d loss / d log π
/// (the same layout), and record = [mean loss, the policy's log-probs (2P), π_ref's (2P)].
pub fn pair_loss(dseq: &mut [f32], record: &mut [f32], logps: &[f32], reference: &[f32], loss: Loss, beta: f32) {
    let p = logps.len() / 2;
    let (value, dw, dl) = gpo(loss, beta, &logps[..p], &logps[p..], &reference[..p], &reference[p..]);
    dseq[..p].copy_from_slice(&dw);
    dseq[p..].copy_from_slice(&dl);
    record[0] = value;
    record[1..1 + 2 * p].copy_from_slice(logps);
    record[1 + 2 * p..].copy_from_slice(reference);
}

/// A proxy's training loss on its 2P rows' scores: each pair's forward and swapped logits (`logits_of_rows`), the
/// position-debiased loss (`pairwise_pm`, mean over pairs) into `loss[0]`, and d loss / d score per row
/// (`gradients_of_rows`).
pub fn preference_loss(dscores: &mut [f32], loss: &mut [f32], scores: &[f32], kind: ProxyKind) {
    let (forward, swapped) = logits_of_rows(kind, scores, scores.len() / 2);
    let (value, d1, d2) = pairwise_pm(&forward, &swapped);
    dscores.copy_from_slice(&gradients_of_rows(kind, d1, d2));
    loss[0] = value;
}

/// The loss's code in the shader's `loss`.
fn code(loss: Loss) -> u32 {
    match loss {
        Loss::Ipo => 0,
        Loss::Dpo => 1,
        Loss::Slic => 2,
        Loss::BestOf2 => 3,
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    pairs: u32,
    loss: u32,
    beta: f32,
    _pad: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const LOGPS: u32 = 1;
    pub const REFERENCE: u32 = 2;
    pub const DSEQ: u32 = 3;
    pub const RECORD: u32 = 4;
    pub const SCORES: u32 = 5;
    pub const DSCORES: u32 = 6;
    pub const LOSS: u32 = 7;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::PairLoss { loss, beta, .. } => {
            let [dseq, record] = o else { unreachable!() };
            pair_loss(dseq, record, i[0], i[1], loss, beta)
        }
        Op::PreferenceLoss { kind, .. } => {
            let [dscores, loss] = o else { unreachable!() };
            preference_loss(dscores, loss, i[0], kind)
        }
        _ => unreachable!("losses::run_cpu got {}", op.name()),
    }
}

/// One workgroup each: its threads stride over the pairs and meet in a workgroup sum for the mean.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        Op::PairLoss { pairs, loss, beta } => {
            let p = Params { pairs: pairs as u32, loss: code(loss), beta, _pad: 0 };
            g.dispatch("losses.gpo", bytemuck::bytes_of(&p), &[(LOGPS, t[0]), (REFERENCE, t[1]), (DSEQ, t[2]), (RECORD, t[3])], [1, 1, 1]);
        }
        Op::PreferenceLoss { pairs, kind } => {
            // `loss` is the proxy's kind here: 0 pairwise, 1 Bradley–Terry.
            let p = Params { pairs: pairs as u32, loss: (kind == ProxyKind::BradleyTerry) as u32, beta: 0.0, _pad: 0 };
            g.dispatch("losses.preference", bytemuck::bytes_of(&p), &[(SCORES, t[0]), (DSCORES, t[1]), (LOSS, t[2])], [1, 1, 1]);
        }
        _ => unreachable!("losses::run_gpu got {}", op.name()),
    }
    Ok(())
}

/// Every loss, on more pairs than the workgroup has threads (each thread takes several).
pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    let mut ops: Vec<Op> = Loss::ALL.iter().map(|&loss| Op::PairLoss { pairs: 75, loss, beta: 0.3 }).collect();
    ops.extend([ProxyKind::Pairwise, ProxyKind::BradleyTerry].map(|kind| Op::PreferenceLoss { pairs: 75, kind }));
    ops
}

//! An alignment step's loss on the device: the GPO family (IPO, DPO, SLiC, Best-of-2) of each pair's summed
//! log-probs, its gradient d loss / d log π, and the step's record (the mean loss and the log-probs it came from),
//! so that a step reads nothing back until its end.
//!
//! In one place: the CPU twin (`train::losses::gpo` itself, so the CPU's bits are those of the host computation),
//! the GPU launch with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/losses.wgsl`, in f32 where the twin sums in f64), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;
use crate::train::losses::{gpo, Loss};

pub const SHADER: Shader = Shader { name: "losses", source: include_str!("../../../shaders/losses.wgsl"), entries: &["gpo"] };

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
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::PairLoss { loss, beta, .. } = *op {
        let [dseq, record] = o else { unreachable!() };
        pair_loss(dseq, record, i[0], i[1], loss, beta)
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let Op::PairLoss { pairs, loss, beta } = *op else { unreachable!("losses::run_gpu got {}", op.name()) };
    let p = Params { pairs: pairs as u32, loss: code(loss), beta, _pad: 0 };
    // One workgroup: its threads stride over the pairs and meet in a workgroup sum for the mean.
    use binding::*;
    g.dispatch("losses.gpo", bytemuck::bytes_of(&p), &[(LOGPS, t[0]), (REFERENCE, t[1]), (DSEQ, t[2]), (RECORD, t[3])], [1, 1, 1]);
    Ok(())
}

/// Every loss, on more pairs than the workgroup has threads (each thread takes several).
pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    Loss::ALL.iter().map(|&loss| Op::PairLoss { pairs: 75, loss, beta: 0.3 }).collect()
}

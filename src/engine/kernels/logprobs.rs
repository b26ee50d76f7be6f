//! log π(target | row) from logits, for every row, and its gradient.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/logprobs.wgsl`), and the self-check cases.

use super::cpu_math::{exp, max, sum};
use super::{ids, CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "logprobs", source: include_str!("../../../shaders/logprobs.wgsl"), entries: &["forward", "backward"] };

// ---- CPU twin

/// lp[n] = log softmax(logits[n, :])[targets[n]] — the per-token log-probability of the next token.
pub fn token_logprobs(lp: &mut [f32], logits: &[f32], targets: &[u32], v: usize) {
    let mut scratch = vec![0.0; v];
    for ((o, row), &tgt) in lp.iter_mut().zip(logits.chunks_exact(v)).zip(targets) {
        *o = row[tgt as usize] - log_sum_exp(row, &mut scratch);
    }
}

/// log Σ exp(row), shifted by the row's max; `scratch` (one row long) holds the shifted exponentials.
fn log_sum_exp(row: &[f32], scratch: &mut [f32]) -> f32 {
    let m = max(row);
    for (e, x) in scratch.iter_mut().zip(row) {
        *e = exp(x - m);
    }
    m + sum(scratch).ln()
}

/// dlogits[n, :] = dlp[n] · (onehot(targets[n]) − softmax(logits[n, :])). Overwrites.
pub fn token_logprobs_backward(dlogits: &mut [f32], dlp: &[f32], logits: &[f32], targets: &[u32], v: usize) {
    for (((dl, row), &tgt), &g) in dlogits.chunks_exact_mut(v).zip(logits.chunks_exact(v)).zip(targets).zip(dlp) {
        let m = max(row);
        // dl holds exp(x − max) first, for the normaliser's sum.
        for (d, x) in dl.iter_mut().zip(row) {
            *d = exp(x - m);
        }
        let inv = 1.0 / sum(dl);
        for (j, d) in dl.iter_mut().enumerate() {
            *d = g * (if j == tgt as usize { 1.0 } else { 0.0 } - *d * inv);
        }
    }
}

/// log softmax of one row, into `out`.
pub(crate) fn log_softmax(out: &mut [f32], row: &[f32]) {
    let lse = log_sum_exp(row, out);
    for (o, x) in out.iter_mut().zip(row) {
        *o = x - lse;
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    v: u32,
    _pad: [u32; 2],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const LOGITS: u32 = 1;
    pub const TARGETS: u32 = 2;
    pub const LP: u32 = 3;
    pub const DLOGITS: u32 = 4;
    pub const DLP: u32 = 5;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::TokenLogprobs { v, .. } => token_logprobs(o[0], i[0], ids(i[1]), v),
        Op::TokenLogprobsBackward { v, .. } => token_logprobs_backward(o[0], i[0], i[1], ids(i[2]), v),
        _ => unreachable!("logprobs::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        Op::TokenLogprobs { n, v } => {
            let p = Params { n: n as u32, v: v as u32, _pad: [0; 2] };
            g.launch("logprobs.forward", bytemuck::bytes_of(&p), &[(LOGITS, t[0]), (TARGETS, t[1]), (LP, t[2])], n)
        }
        Op::TokenLogprobsBackward { n, v } => {
            // ins [dlp, logits, targets], outs [dlogits]
            let p = Params { n: n as u32, v: v as u32, _pad: [0; 2] };
            g.launch("logprobs.backward", bytemuck::bytes_of(&p), &[(DLP, t[0]), (LOGITS, t[1]), (TARGETS, t[2]), (DLOGITS, t[3])], n)
        }
        _ => unreachable!("logprobs::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let (n, v) = (s.b * s.t, s.v);
    vec![Op::TokenLogprobs { n, v }, Op::TokenLogprobsBackward { n, v }]
}

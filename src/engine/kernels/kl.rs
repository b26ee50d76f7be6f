//! The exact KL divergence between two rows of logits, over the whole vocabulary.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/kl.wgsl`), and the self-check cases.

use super::logprobs::log_softmax;
use super::cpu_math::exp;
use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "kl", source: include_str!("../../../shaders/kl.wgsl"), entries: &["main"] };

// ---- CPU twin

/// kl[n] = Σ_v p(v)·(log p(v) − log q(v)) with p = softmax(lp[n]), q = softmax(lq[n]): exact, over the vocabulary.
pub fn token_kl(kl: &mut [f32], logits_p: &[f32], logits_q: &[f32], v: usize) {
    let (mut a, mut b) = (vec![0.0; v], vec![0.0; v]);
    for ((o, p), q) in kl.iter_mut().zip(logits_p.chunks_exact(v)).zip(logits_q.chunks_exact(v)) {
        log_softmax(&mut a, p);
        log_softmax(&mut b, q);
        *o = (0..v).map(|j| exp(a[j]) * (a[j] - b[j])).sum();
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
    pub const LOGITS_P: u32 = 1;
    pub const LOGITS_Q: u32 = 2;
    pub const KL: u32 = 3;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::TokenKl { v, .. } = *op {
        token_kl(o[0], i[0], i[1], v)
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let Op::TokenKl { n, v } = *op else { unreachable!("kl::run_gpu got {}", op.name()) };
    let p = Params { n: n as u32, v: v as u32, _pad: [0; 2] };
    g.launch("kl.main", bytemuck::bytes_of(&p), &[(binding::LOGITS_P, t[0]), (binding::LOGITS_Q, t[1]), (binding::KL, t[2])], n)
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    vec![Op::TokenKl { n: s.b * s.t, v: s.v }]
}

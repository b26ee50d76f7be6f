//! The causal softmax of attention scores (scaled, masked above the diagonal), and its backward.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/attention.wgsl`), and the self-check cases.

use super::cpu_math::{exp, for_row_chunks, max, sum};
use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "attention", source: include_str!("../../../shaders/attention.wgsl"), entries: &["forward", "backward"] };

// ---- CPU twin

/// att[r, j] = softmax_j(scale · pre[r, j]) over j ≤ t (t = r mod T), 0 beyond: causal attention weights.
pub fn causal_softmax_forward(att: &mut [f32], pre: &[f32], t: usize, scale: f32) {
    for_row_chunks(att, t, |first, att| {
        let pre = &pre[first * t..first * t + att.len()];
        for (r, (a, p)) in att.chunks_exact_mut(t).zip(pre.chunks_exact(t)).enumerate() {
            let last = (first + r) % t;
            let m = max(&p[..=last]);
            // Over the whole row, masked (plain maps over whole rows vectorise; exp of −∞ is 0).
            for (a, &p) in a[..=last].iter_mut().zip(&p[..=last]) {
                *a = (p - m) * scale;
            }
            a[last + 1..].iter_mut().for_each(|v| *v = f32::NEG_INFINITY);
            a.iter_mut().for_each(|v| *v = exp(*v));
            let inv = 1.0 / sum(a);
            a.iter_mut().for_each(|v| *v *= inv);
        }
    });
}

/// dpre = scale · att ⊙ (datt − Σ_j att·datt), 0 beyond the causal edge. Overwrites.
pub fn causal_softmax_backward(dpre: &mut [f32], datt: &[f32], att: &[f32], t: usize, scale: f32) {
    for_row_chunks(dpre, t, |first, dpre| {
        let range = first * t..first * t + dpre.len();
        let (datt, att) = (&datt[range.clone()], &att[range]);
        for (r, ((dp, da), a)) in dpre.chunks_exact_mut(t).zip(datt.chunks_exact(t)).zip(att.chunks_exact(t)).enumerate() {
            let last = (first + r) % t;
            let dot: f32 = (0..=last).map(|j| a[j] * da[j]).sum();
            for j in 0..t {
                dp[j] = if j <= last { scale * a[j] * (da[j] - dot) } else { 0.0 };
            }
        }
    });
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    t: u32,
    scale: f32,
    _pad: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const SCORES: u32 = 1;
    pub const ATT: u32 = 2;
    pub const DATT: u32 = 3;
    pub const ATT_IN: u32 = 4;
    pub const DSCORES: u32 = 5;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::CausalSoftmaxForward { t, scale, .. } => causal_softmax_forward(o[0], i[0], t, scale),
        Op::CausalSoftmaxBackward { t, scale, .. } => causal_softmax_backward(o[0], i[0], i[1], t, scale),
        _ => unreachable!("attention::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        Op::CausalSoftmaxForward { rows, t: tt, scale } => {
            let p = Params { rows: rows as u32, t: tt as u32, scale, _pad: 0 };
            g.launch("attention.forward", bytemuck::bytes_of(&p), &[(SCORES, t[0]), (ATT, t[1])], rows)
        }
        Op::CausalSoftmaxBackward { rows, t: tt, scale } => {
            // ins [datt, att], outs [dpre]
            let p = Params { rows: rows as u32, t: tt as u32, scale, _pad: 0 };
            g.launch("attention.backward", bytemuck::bytes_of(&p), &[(DATT, t[0]), (ATT_IN, t[1]), (DSCORES, t[2])], rows)
        }
        _ => unreachable!("attention::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, h, .. } = *s;
    let scale = 1.0 / ((c / h) as f32).sqrt();
    vec![Op::CausalSoftmaxForward { rows: b * h * t, t, scale }, Op::CausalSoftmaxBackward { rows: b * h * t, t, scale }]
}

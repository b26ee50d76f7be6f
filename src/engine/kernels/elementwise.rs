//! Element-wise and row-wise ops: zero, add, mix, weighted row sums; and the CPU arithmetic of a linear layer's
//! epilogues (bias, GELU in tanh form, the residual), which the matrix product's CPU twin runs after its product.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/elementwise.wgsl`), and the self-check cases.

use super::cpu_math::{for_row_chunks, tanh};
use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "elementwise", source: include_str!("../../../shaders/elementwise.wgsl"), entries: &["zero", "add_into", "mix", "weighted_row_sum", "weighted_row_sum_backward"] };

// ---- CPU twin

/// y[n, :] += bias
pub fn add_bias(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// dbias += Σ_n dy[n, :]
pub fn bias_backward(dbias: &mut [f32], dy: &[f32]) {
    for row in dy.chunks_exact(dbias.len()) {
        for (d, v) in dbias.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// dst += src
pub fn add_into(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
}


/// out = (1 − w)·a + w·b
pub fn mix(out: &mut [f32], a: &[f32], b: &[f32], w: f32) {
    for i in 0..out.len() {
        out[i] = (1.0 - w) * a[i] + w * b[i];
    }
}

const GELU_SCALE: f32 = 0.797_884_6; // sqrt(2/π)

/// GELU, tanh form (GPT-2's "gelu_new"). Vectorised (`cpu_math::tanh`) and split over the run's threads.
pub fn gelu_forward(y: &mut [f32], x: &[f32]) {
    for_row_chunks(y, 1, |first, y| {
        let x = &x[first..first + y.len()];
        for (o, &v) in y.iter_mut().zip(x) {
            *o = gelu(v);
        }
    });
}


/// dy ← dy · gelu'(x), in place (the product's epilogue `Then::GeluBackward`).
pub fn gelu_backward_in_place(dy: &mut [f32], x: &[f32]) {
    for_row_chunks(dy, 1, |first, dy| {
        let x = &x[first..first + dy.len()];
        for (d, &v) in dy.iter_mut().zip(x) {
            *d = gelu_grad_times(*d, v);
        }
    });
}

/// y ← r + y, in place (the product's epilogue `Then::BiasResidual`: the residual plus the layer's output, in the
/// order the separate add of the residual stream summed them).
pub fn add_residual_in_place(y: &mut [f32], r: &[f32]) {
    for (v, &r) in y.iter_mut().zip(r) {
        *v = r + *v;
    }
}

/// gelu(v), tanh form.
#[inline(always)]
fn gelu(v: f32) -> f32 {
    0.5 * v * (1.0 + tanh(GELU_SCALE * (v + 0.044715 * v * v * v)))
}

/// g · gelu'(v).
#[inline(always)]
pub(crate) fn gelu_grad_times(g: f32, v: f32) -> f32 {
    let u = GELU_SCALE * (v + 0.044715 * v * v * v);
    let th = tanh(u);
    let du = GELU_SCALE * (1.0 + 3.0 * 0.044715 * v * v);
    g * (0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du)
}

/// out[b] = Σ_t w[b, t] · x[b, t] — the masked sum that turns token log-probs into log π(y|x).
pub fn weighted_row_sum(out: &mut [f32], x: &[f32], w: &[f32], t: usize) {
    for (b, o) in out.iter_mut().enumerate() {
        *o = (0..t).map(|i| w[b * t + i] * x[b * t + i]).sum();
    }
}

/// dx[b, t] = dout[b] · w[b, t]. Overwrites.
pub fn weighted_row_sum_backward(dx: &mut [f32], dout: &[f32], w: &[f32], t: usize) {
    for (i, d) in dx.iter_mut().enumerate() {
        *d = dout[i / t] * w[i];
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    /// Row width: of the bias, or of the rows a weighted sum runs over.
    c: u32,
    /// The mixture weight of `mix` (f32).
    weight: f32,
    _pad: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const A: u32 = 1;
    pub const B: u32 = 2;
    pub const OUT: u32 = 3;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::Zero { .. } => o[0].iter_mut().for_each(|v| *v = 0.0),
        Op::AddInto { .. } => add_into(o[0], i[0]),
        Op::Mix { weight, .. } => mix(o[0], i[0], i[1], weight),
        Op::WeightedRowSum { t, .. } => weighted_row_sum(o[0], i[0], i[1], t),
        Op::WeightedRowSumBackward { t, .. } => weighted_row_sum_backward(o[0], i[0], i[1], t),
        _ => unreachable!("elementwise::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    let p = |len: usize, c: usize| Params { len: len as u32, c: c as u32, weight: 0.0, _pad: 0 };
    let launch = |entry: &str, p: Params, buffers: &[(u32, &GpuTensor)], threads: usize| g.launch(&format!("elementwise.{entry}"), bytemuck::bytes_of(&p), buffers, threads);
    match *op {
        Op::Zero { len } => launch("zero", p(len, 1), &[(OUT, t[0])], len),
        Op::AddInto { len } => launch("add_into", p(len, 1), &[(A, t[0]), (OUT, t[1])], len),
        Op::Mix { len, weight } => launch("mix", Params { weight, ..p(len, 1) }, &[(A, t[0]), (B, t[1]), (OUT, t[2])], len),
        Op::WeightedRowSum { b, t: tt } => launch("weighted_row_sum", p(b, tt), &[(A, t[0]), (B, t[1]), (OUT, t[2])], b),
        Op::WeightedRowSumBackward { b, t: tt } => launch("weighted_row_sum_backward", p(b * tt, tt), &[(A, t[0]), (B, t[1]), (OUT, t[2])], b * tt),
        _ => unreachable!("elementwise::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, .. } = *s;
    let n = b * t;
    vec![
        Op::Zero { len: n * c },
        Op::AddInto { len: n * c },
        Op::Mix { len: n * c, weight: 0.3 },
        Op::WeightedRowSum { b, t },
        Op::WeightedRowSumBackward { b, t },
    ]
}

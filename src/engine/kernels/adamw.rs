//! One AdamW update of one tensor (torch.optim.AdamW: bias correction, decoupled weight decay).
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/adamw.wgsl`), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "adamw", source: include_str!("../../../shaders/adamw.wgsl"), entries: &["main"] };

// ---- CPU twin

/// One AdamW step with bias correction and decoupled weight decay (as torch.optim.AdamW), on the gradient
/// times `grad_scale` (the global-norm clip factor, `sum_squares::clip_scale`).
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &AdamwStep, grad_scale: f32) {
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    for i in 0..p.len() {
        let gi = g[i] * grad_scale;
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * gi;
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * gi * gi;
        p[i] -= h.lr * h.weight_decay * p[i];
        p[i] -= h.lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + h.eps);
    }
}

/// The scalars of one AdamW update of one tensor.
#[derive(Clone, Copy, Debug)]
pub struct AdamwStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub step: u32,
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    bias_correction1: f32,
    bias_correction2: f32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const GRAD: u32 = 1;
    pub const PARAM: u32 = 2;
    pub const M: u32 = 3;
    pub const V: u32 = 4;
    /// [clip factor, ‖g‖] (`Op::ClipScale`), read on the device.
    pub const CLIP: u32 = 5;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::Adamw { step, .. } = *op {
        let [p, m, v] = o else { unreachable!() };
        adamw(p, i[0], m, v, &step, i[1][0])
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    let Op::Adamw { len, step: h } = *op else { unreachable!("adamw::run_gpu got {}", op.name()) };
    let p = Params {
        len: len as u32,
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        weight_decay: h.weight_decay,
        bias_correction1: 1.0 - h.beta1.powi(h.step as i32),
        bias_correction2: 1.0 - h.beta2.powi(h.step as i32),
    };
    g.launch("adamw.main", bytemuck::bytes_of(&p), &[(GRAD, t[0]), (CLIP, t[1]), (PARAM, t[2]), (M, t[3]), (V, t[4])], len)
}

pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    let step = AdamwStep { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, step: 3 };
    vec![Op::Adamw { len: 1001, step }]
}

//! LayerNorm over rows of C channels (ε = LAYERNORM_EPS), forward and backward.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/layernorm.wgsl`), and the self-check cases.

use super::cpu_math::sum;
use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "layernorm", source: include_str!("../../../shaders/layernorm.wgsl"), entries: &["forward", "backward"] };

// ---- CPU twin

pub const LAYERNORM_EPS: f32 = 1e-5;

/// out = (x − mean) · rstd · w + b per row of C; saves mean and rstd (1/σ) for the backward pass.
pub fn layernorm_forward(out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], x: &[f32], w: &[f32], b: &[f32], c: usize) {
    for (n, (xr, o)) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)).enumerate() {
        let m = sum(xr) / c as f32;
        // o holds (x − mean)² first, for the variance's sum.
        for (o, v) in o.iter_mut().zip(xr) {
            *o = (v - m) * (v - m);
        }
        let var = sum(o) / c as f32;
        let s = 1.0 / (var + LAYERNORM_EPS).sqrt();
        for i in 0..c {
            o[i] = (xr[i] - m) * s * w[i] + b[i];
        }
        mean[n] = m;
        rstd[n] = s;
    }
}

/// dx += ∂L/∂x, dw += ∂L/∂w, db += ∂L/∂b for `layernorm_forward`.
pub fn layernorm_backward((dx, dw, db): (&mut [f32], &mut [f32], &mut [f32]), dout: &[f32], x: &[f32], w: &[f32], (mean, rstd): (&[f32], &[f32]), c: usize) {
    for (n, ((d, xr), dxr)) in dout.chunks_exact(c).zip(x.chunks_exact(c)).zip(dx.chunks_exact_mut(c)).enumerate() {
        let (m, s) = (mean[n], rstd[n]);
        // dnorm = dout·w; dx = s·(dnorm − mean(dnorm) − xhat·mean(dnorm·xhat))
        let (mut dnorm_mean, mut dnorm_xhat_mean) = (0.0, 0.0);
        for i in 0..c {
            let xhat = (xr[i] - m) * s;
            let dnorm = d[i] * w[i];
            dnorm_mean += dnorm;
            dnorm_xhat_mean += dnorm * xhat;
        }
        dnorm_mean /= c as f32;
        dnorm_xhat_mean /= c as f32;
        for i in 0..c {
            let xhat = (xr[i] - m) * s;
            db[i] += d[i];
            dw[i] += d[i] * xhat;
            dxr[i] += s * (d[i] * w[i] - dnorm_mean - xhat * dnorm_xhat_mean);
        }
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    _pad: [u32; 2],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const X: u32 = 1;
    pub const W: u32 = 2;
    pub const B: u32 = 3;
    pub const OUT: u32 = 4;
    pub const MEAN: u32 = 5;
    pub const RSTD: u32 = 6;
    pub const DX: u32 = 7;
    pub const DB: u32 = 8;
    pub const DW: u32 = 9;
    pub const DOUT: u32 = 10;
    pub const MEAN_IN: u32 = 11;
    pub const RSTD_IN: u32 = 12;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::LayernormForward { c, .. } => {
            let [out, mean, rstd] = o else { unreachable!() };
            layernorm_forward(out, mean, rstd, i[0], i[1], i[2], c)
        }
        Op::LayernormBackward { c, .. } => {
            let [dx, dw, db] = o else { unreachable!() };
            layernorm_backward((dx, dw, db), i[0], i[1], i[2], (i[3], i[4]), c)
        }
        _ => unreachable!("layernorm::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        Op::LayernormForward { n, c } => {
            let p = Params { n: n as u32, c: c as u32, _pad: [0; 2] };
            g.launch("layernorm.forward", bytemuck::bytes_of(&p), &[(X, t[0]), (W, t[1]), (B, t[2]), (OUT, t[3]), (MEAN, t[4]), (RSTD, t[5])], n)
        }
        Op::LayernormBackward { n, c } => {
            // ins [dout, x, w, mean, rstd], outs [dx, dw, db]
            let p = Params { n: n as u32, c: c as u32, _pad: [0; 2] };
            // One dispatch: a workgroup per channel for dw and db (each reduces its channel's rows in workgroup
            // memory), then workgroups of rows for dx.
            let groups = c + n.div_ceil(g.threads_per_group());
            let x = groups.min(g.max_groups());
            let y = groups.div_ceil(x);
            if y > g.max_groups() {
                crate::bail!("layernorm_backward: {n} rows and {c} channels exceed this adapter's dispatch limit");
            }
            let buffers = [(X, t[1]), (W, t[2]), (DOUT, t[0]), (MEAN_IN, t[3]), (RSTD_IN, t[4]), (DX, t[5]), (DW, t[6]), (DB, t[7])];
            g.dispatch("layernorm.backward", bytemuck::bytes_of(&p), &buffers, [x, y, 1]);
            Ok(())
        }
        _ => unreachable!("layernorm::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let (n, c) = (s.b * s.t, s.c);
    // The second backward has more rows than a workgroup has threads: each thread sums several.
    vec![Op::LayernormForward { n, c }, Op::LayernormBackward { n, c }, Op::LayernormBackward { n: 300, c: 9 }]
}

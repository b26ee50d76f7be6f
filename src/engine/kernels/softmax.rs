//! y[r, :] = softmax(x[r, :]), one workgroup per row.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/softmax.wgsl`), and the self-check cases.

use super::cpu_math::exp;
use super::{CheckShape, Shader};
use crate::bail;
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "softmax", source: include_str!("../../../shaders/softmax.wgsl"), entries: &["main"] };

// ---- CPU twin

/// Numerically stable softmax of each row of `cols` values: subtract the row max before exp.
pub fn softmax_rows(x: &[f32], y: &mut [f32], cols: usize) {
    for (xr, yr) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = exp(v - max);
            sum += *o;
        }
        let inv = 1.0 / sum;
        yr.iter_mut().for_each(|o| *o *= inv);
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rows: u32,
    cols: u32,
    /// Rows per dispatch slice: rows beyond the adapter's x limit continue in y.
    rows_per_slice: u32,
    _pad: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const X: u32 = 1;
    pub const Y: u32 = 2;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::SoftmaxRows { cols, .. } = *op {
        softmax_rows(i[0], o[0], cols)
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let Op::SoftmaxRows { rows, cols } = *op else { unreachable!("softmax::run_gpu got {}", op.name()) };
    let per_slice = rows.min(g.max_groups());
    let slices = rows.div_ceil(per_slice);
    if slices > g.max_groups() {
        bail!("softmax_rows: {rows} rows exceed this adapter's dispatch limit");
    }
    let p = Params { rows: rows as u32, cols: cols as u32, rows_per_slice: per_slice as u32, _pad: 0 };
    g.dispatch("softmax.main", bytemuck::bytes_of(&p), &[(binding::X, t[0]), (binding::Y, t[1])], [per_slice, slices, 1]);
    Ok(())
}

pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    [(1, 1), (1, 300), (300, 1), (37, 129), (3, 1000)].into_iter().map(|(rows, cols)| Op::SoftmaxRows { rows, cols }).collect()
}

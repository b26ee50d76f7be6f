//! Σ x² of one tensor into one slot of a buffer: every gradient's squared norm, read back once per step.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/sum_squares.wgsl`), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "sum_squares", source: include_str!("../../../shaders/sum_squares.wgsl"), entries: &["main"] };

// ---- CPU twin

/// Σ x² (f64 accumulation, so the clip factor does not depend on summation order).
pub fn sum_squares(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    slot: u32,
    _pad: [u32; 2],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const X: u32 = 1;
    pub const SUMS: u32 = 2;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    if let Op::SumSquares { slot, .. } = *op {
        o[0][slot] = sum_squares(i[0]) as f32
    }
}

/// One workgroup strides over the whole tensor: gradients here are small, and a single group needs no
/// second reduction pass.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let Op::SumSquares { len, slot, .. } = *op else { unreachable!("sum_squares::run_gpu got {}", op.name()) };
    let p = Params { len: len as u32, slot: slot as u32, _pad: [0; 2] };
    g.dispatch("sum_squares.main", bytemuck::bytes_of(&p), &[(binding::X, t[0]), (binding::SUMS, t[1])], [1, 1, 1]);
    Ok(())
}

pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    vec![Op::SumSquares { len: 1001, slot: 2, slots: 5 }]
}

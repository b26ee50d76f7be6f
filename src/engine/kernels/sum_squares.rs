//! The global gradient norm on the device: Σ x² of each tensor into one slot of a buffer, then the clip factor
//! from all the slots, which AdamW reads where it lies, so a step needs no readback to clip.
//!
//! In one place: the CPU twins (the plain references every WGSL kernel is checked against), the GPU launches
//! with the shader's uniform block as a typed struct and its bindings by name (the kernels are
//! `shaders/sum_squares.wgsl`), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "sum_squares", source: include_str!("../../../shaders/sum_squares.wgsl"), entries: &["main", "clip"] };

// ---- CPU twins

/// Σ x² (f64 accumulation, so the clip factor does not depend on summation order).
pub fn sum_squares(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

/// (clip factor, ‖g‖) from the squared norms of the gradient's parts: the factor is max_norm / (‖g‖ + 1e-6) when
/// ‖g‖ exceeds `max_norm` (torch.nn.utils.clip_grad_norm_), else 1 (also when ‖g‖ is not finite: the run's loss
/// check stops it then).
pub fn clip_scale(sums: &[f32], max_norm: Option<f32>) -> (f32, f32) {
    let norm = sums.iter().map(|&v| v as f64).sum::<f64>().sqrt() as f32;
    let factor = match max_norm {
        Some(max) if norm > max => max / (norm + 1e-6),
        _ => 1.0,
    };
    (factor, norm)
}

// ---- GPU launches

/// The shader's `Params` uniform block, field for field (16-byte multiple). `main` reads `len` and `slot`;
/// `clip` reads `len` (the slots), `max_norm` and `clips` (0: no clipping).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    len: u32,
    slot: u32,
    max_norm: f32,
    clips: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block). `clip` reads the slots as `X` and
/// writes [factor, ‖g‖] to `SUMS`.
mod binding {
    pub const X: u32 = 1;
    pub const SUMS: u32 = 2;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::SumSquares { slot, .. } => o[0][slot] = sum_squares(i[0]) as f32,
        Op::ClipScale { max_norm, .. } => {
            let (factor, norm) = clip_scale(i[0], max_norm);
            o[0].copy_from_slice(&[factor, norm]);
        }
        _ => unreachable!("sum_squares::run_cpu got {}", op.name()),
    }
}

/// One workgroup strides over the whole tensor: gradients here are small, and a single group needs no
/// second reduction pass. The clip factor is one thread's sum over the few slots.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    let (entry, p) = match *op {
        Op::SumSquares { len, slot, .. } => ("sum_squares.main", Params { len: len as u32, slot: slot as u32, max_norm: 0.0, clips: 0 }),
        Op::ClipScale { slots, max_norm } => ("sum_squares.clip", Params { len: slots as u32, slot: 0, max_norm: max_norm.unwrap_or(0.0), clips: max_norm.is_some() as u32 }),
        _ => unreachable!("sum_squares::run_gpu got {}", op.name()),
    };
    g.dispatch(entry, bytemuck::bytes_of(&p), &[(binding::X, t[0]), (binding::SUMS, t[1])], [1, 1, 1]);
    Ok(())
}

pub(crate) fn selfcheck_ops(_: &CheckShape) -> Vec<Op> {
    // The clip cases' slots are drawn in [0, 4) (selfcheck): 5 of them sum past 1, not past 100.
    vec![Op::SumSquares { len: 1001, slot: 2, slots: 5 }, Op::ClipScale { slots: 5, max_norm: Some(1.0) }, Op::ClipScale { slots: 5, max_norm: Some(100.0) }, Op::ClipScale { slots: 5, max_norm: None }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clip_factor_brings_the_norm_to_the_limit() {
        let (factor, norm) = clip_scale(&[9.0, 16.0], Some(1.0));
        assert_eq!(norm, 5.0);
        assert!((factor * norm - 1.0).abs() < 1e-6);
        assert_eq!(clip_scale(&[9.0, 16.0], Some(5.0)), (1.0, 5.0), "at the limit: no clipping");
        assert_eq!(clip_scale(&[9.0, 16.0], None), (1.0, 5.0));
        assert_eq!(clip_scale(&[f32::NAN], Some(1.0)).0, 1.0);
    }
}

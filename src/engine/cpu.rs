//! The CPU backend: every op runs its CPU twin (`engine::kernels::<family>`). The twins are the references
//! every WGSL kernel is tested against, so they favour being obviously right; GEMM goes to
//! `matrixmultiply` because a hand-written loop would be 50× slower and no clearer.

use super::Op;

pub struct CpuBackend;

/// Runs an op whose lengths `Op::check` has verified. Inputs and outputs in `Op`'s documented order.
pub fn run(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    super::kernels::run_cpu(op, i, o)
}

//! Every kernel, one module per family (one WGSL file each, in `shaders/`): the CPU twin, the GPU launch
//! with a typed uniform block and named bindings, and the family's self-check cases, side by side.
//! `cpu.rs` and `gpu.rs` only dispatch here.
//!
//! To add an op: its variant with shapes in `Op` (`op.rs`: the enum, `name`, `lengths`, `family`), then
//! in its family's module the twin, the `run_cpu`/`run_gpu` arms and a self-check case, and its entry
//! point in the family's `.wgsl` (listed in `SHADER`). A new family is one more module and shader, and a
//! line in each table below.

pub mod adamw;
pub mod attention;
pub mod cpu_math;
pub mod decode;
pub mod elementwise;
pub mod embed;
pub mod heads;
pub mod kl;
pub mod layernorm;
pub mod logprobs;
pub mod matmul;
pub mod score_head;
pub mod softmax;
pub mod sum_squares;

use super::gpu::{GpuBackend, GpuTensor};
use super::Op;
use crate::error::Result;

pub use crate::engine::gpu::Shader;

/// The kernel family an op belongs to: one module here, one shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Matmul,
    Softmax,
    Embed,
    Layernorm,
    Elementwise,
    Heads,
    Attention,
    Logprobs,
    Kl,
    ScoreHead,
    Decode,
    SumSquares,
    Adamw,
}

/// Every shader, compiled once when a GPU engine opens.
pub const SHADERS: [Shader; 13] = [
    matmul::SHADER,
    softmax::SHADER,
    embed::SHADER,
    layernorm::SHADER,
    elementwise::SHADER,
    heads::SHADER,
    attention::SHADER,
    logprobs::SHADER,
    adamw::SHADER,
    decode::SHADER,
    sum_squares::SHADER,
    kl::SHADER,
    score_head::SHADER,
];

/// Runs `op` with its CPU twin; inputs and outputs in `Op`'s documented order, lengths already checked.
pub fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match op.family() {
        Family::Matmul => matmul::run_cpu(op, i, o),
        Family::Softmax => softmax::run_cpu(op, i, o),
        Family::Embed => embed::run_cpu(op, i, o),
        Family::Layernorm => layernorm::run_cpu(op, i, o),
        Family::Elementwise => elementwise::run_cpu(op, i, o),
        Family::Heads => heads::run_cpu(op, i, o),
        Family::Attention => attention::run_cpu(op, i, o),
        Family::Logprobs => logprobs::run_cpu(op, i, o),
        Family::Kl => kl::run_cpu(op, i, o),
        Family::ScoreHead => score_head::run_cpu(op, i, o),
        Family::Decode => decode::run_cpu(op, i, o),
        Family::SumSquares => sum_squares::run_cpu(op, i, o),
        Family::Adamw => adamw::run_cpu(op, i, o),
    }
}

/// Records `op` on the GPU; buffers are the inputs then the outputs.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    match op.family() {
        Family::Matmul => matmul::run_gpu(g, op, t),
        Family::Softmax => softmax::run_gpu(g, op, t),
        Family::Embed => embed::run_gpu(g, op, t),
        Family::Layernorm => layernorm::run_gpu(g, op, t),
        Family::Elementwise => elementwise::run_gpu(g, op, t),
        Family::Heads => heads::run_gpu(g, op, t),
        Family::Attention => attention::run_gpu(g, op, t),
        Family::Logprobs => logprobs::run_gpu(g, op, t),
        Family::Kl => kl::run_gpu(g, op, t),
        Family::ScoreHead => score_head::run_gpu(g, op, t),
        Family::Decode => decode::run_gpu(g, op, t),
        Family::SumSquares => sum_squares::run_gpu(g, op, t),
        Family::Adamw => adamw::run_gpu(g, op, t),
    }
}

/// The deliberately awkward model shape the self-check runs model ops at: no size a multiple of a tile
/// or workgroup (B sequences, T positions, C channels, H heads, V vocabulary).
#[derive(Clone, Copy, Debug)]
pub struct CheckShape {
    pub b: usize,
    pub t: usize,
    pub c: usize,
    pub h: usize,
    pub v: usize,
}

/// Every family's self-check ops, in one list (`selfcheck` builds the inputs).
pub fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let families: [fn(&CheckShape) -> Vec<Op>; 13] = [
        matmul::selfcheck_ops,
        softmax::selfcheck_ops,
        embed::selfcheck_ops,
        layernorm::selfcheck_ops,
        elementwise::selfcheck_ops,
        heads::selfcheck_ops,
        attention::selfcheck_ops,
        logprobs::selfcheck_ops,
        kl::selfcheck_ops,
        score_head::selfcheck_ops,
        adamw::selfcheck_ops,
        sum_squares::selfcheck_ops,
        decode::selfcheck_ops,
    ];
    families.iter().flat_map(|f| f(s)).collect()
}

/// Token ids travel in f32 slots as u32 bit patterns (see `Engine::indices`).
pub(crate) fn ids(x: &[f32]) -> &[u32] {
    bytemuck::cast_slice(x)
}

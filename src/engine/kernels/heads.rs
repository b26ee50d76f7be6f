//! Moving between rows [B, T, C] and heads [B, H, T, D]: splitting q|k|v, and back.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/heads.wgsl`), and the self-check cases.

use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "heads", source: include_str!("../../../shaders/heads.wgsl"), entries: &["split_heads", "merge_heads_qkv", "heads_to_rows", "rows_to_heads"] };

// ---- CPU twin

/// qkv [B,T,3C] → q, k, v [B,H,T,D] (D = C/H), the layout batched attention matmuls want.
pub fn split_heads(q: &mut [f32], k: &mut [f32], v: &mut [f32], qkv: &[f32], t: usize, h: usize, d: usize) {
    let c = h * d;
    for (n, row) in qkv.chunks_exact(3 * c).enumerate() {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let dst = ((b * h + hh) * t + tt) * d;
            q[dst..dst + d].copy_from_slice(&row[hh * d..][..d]);
            k[dst..dst + d].copy_from_slice(&row[c + hh * d..][..d]);
            v[dst..dst + d].copy_from_slice(&row[2 * c + hh * d..][..d]);
        }
    }
}

/// The exact inverse of `split_heads`, for gradients: dqkv = merge(dq, dk, dv). Overwrites.
pub fn merge_heads_qkv(dqkv: &mut [f32], dq: &[f32], dk: &[f32], dv: &[f32], t: usize, h: usize, d: usize) {
    let c = h * d;
    for (n, row) in dqkv.chunks_exact_mut(3 * c).enumerate() {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let src = ((b * h + hh) * t + tt) * d;
            row[hh * d..][..d].copy_from_slice(&dq[src..src + d]);
            row[c + hh * d..][..d].copy_from_slice(&dk[src..src + d]);
            row[2 * c + hh * d..][..d].copy_from_slice(&dv[src..src + d]);
        }
    }
}

/// [B,H,T,D] → [B,T,C] when `to_rows`, else the inverse. Overwrites.
pub fn permute_heads(dst: &mut [f32], src: &[f32], t: usize, h: usize, d: usize, to_rows: bool) {
    let n_rows = src.len() / (h * d);
    for n in 0..n_rows {
        let (b, tt) = (n / t, n % t);
        for hh in 0..h {
            let heads = ((b * h + hh) * t + tt) * d;
            let rows = n * h * d + hh * d;
            if to_rows {
                dst[rows..rows + d].copy_from_slice(&src[heads..heads + d]);
            } else {
                dst[heads..heads + d].copy_from_slice(&src[rows..rows + d]);
            }
        }
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    t: u32,
    h: u32,
    d: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const ROWS_IN: u32 = 1;
    pub const Q: u32 = 2;
    pub const K: u32 = 3;
    pub const V: u32 = 4;
    pub const Q_IN: u32 = 5;
    pub const K_IN: u32 = 6;
    pub const V_IN: u32 = 7;
    pub const ROWS: u32 = 8;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::SplitHeads { t, h, d, .. } => {
            let [q, k, v] = o else { unreachable!() };
            split_heads(q, k, v, i[0], t, h, d)
        }
        Op::MergeHeadsQkv { t, h, d, .. } => merge_heads_qkv(o[0], i[0], i[1], i[2], t, h, d),
        Op::HeadsToRows { t, h, d, .. } => permute_heads(o[0], i[0], t, h, d, true),
        Op::RowsToHeads { t, h, d, .. } => permute_heads(o[0], i[0], t, h, d, false),
        _ => unreachable!("heads::run_cpu got {}", op.name()),
    }
}

/// Rows are [N, 3C] for q|k|v, else [N, C]; `Q`/`Q_IN` are the one heads tensor of the plain permutations.
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    let (Op::SplitHeads { n, t: tt, h, d } | Op::MergeHeadsQkv { n, t: tt, h, d } | Op::HeadsToRows { n, t: tt, h, d } | Op::RowsToHeads { n, t: tt, h, d }) = *op else {
        unreachable!("heads::run_gpu got {}", op.name())
    };
    let p = Params { n: n as u32, t: tt as u32, h: h as u32, d: d as u32 };
    let (entry, buffers): (&str, Vec<(u32, &GpuTensor)>) = match op {
        Op::SplitHeads { .. } => ("heads.split_heads", vec![(ROWS_IN, t[0]), (Q, t[1]), (K, t[2]), (V, t[3])]),
        Op::MergeHeadsQkv { .. } => ("heads.merge_heads_qkv", vec![(Q_IN, t[0]), (K_IN, t[1]), (V_IN, t[2]), (ROWS, t[3])]),
        Op::HeadsToRows { .. } => ("heads.heads_to_rows", vec![(Q_IN, t[0]), (ROWS, t[1])]),
        _ => ("heads.rows_to_heads", vec![(ROWS_IN, t[0]), (Q, t[1])]),
    };
    g.launch(entry, bytemuck::bytes_of(&p), &buffers, n * h * d)
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, h, .. } = *s;
    let (n, d) = (b * t, c / h);
    vec![Op::SplitHeads { n, t, h, d }, Op::MergeHeadsQkv { n, t, h, d }, Op::HeadsToRows { n, t, h, d }, Op::RowsToHeads { n, t, h, d }]
}

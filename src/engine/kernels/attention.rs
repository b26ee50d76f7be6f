//! Causal self-attention of a block, fused into one op each way: from q|k|v rows to output rows, and back.
//! The CPU twin is the unfused steps in their order (moving rows to heads, the batched products, the causal
//! softmax of the scaled scores and its backward), each a plain function here.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/attention.wgsl`), and the self-check cases.

use super::cpu_math::{exp, for_row_chunks, max, sum};
use super::matmul::matmul;
use super::{CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::{MatmulSpec, Op};
use std::cell::RefCell;
use crate::error::Result;

pub const SHADER: Shader = Shader {
    name: "attention",
    source: include_str!("../../../shaders/attention.wgsl"),
    entries: &["fused_forward", "fused_backward_rows", "fused_backward_columns"],
};

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


/// Causal self-attention of a block, fused: q|k|v rows ([N, 3C], N = B·T) in, the heads' outputs back in rows
/// ([N, C]) and the attention weights ([B·H, T, T], for the backward pass) out. Exactly the unfused ops in their
/// order — split into heads, scores = q·kᵀ per head, the causal softmax, att·v, back to rows — so the CPU's
/// results are the same bits as before the fusion; only the GPU runs it as one kernel.
pub fn attention_forward(out: &mut [f32], att: &mut [f32], qkv: &[f32], t: usize, h: usize, d: usize, scale: f32) {
    let n = out.len() / (h * d);
    let bh = n / t * h;
    with_scratch(5, n * h * d.max(t), |s| {
        let [q, k, v, scores, heads] = s else { unreachable!() };
        let (q, k, v, heads) = (&mut q[..n * h * d], &mut k[..n * h * d], &mut v[..n * h * d], &mut heads[..n * h * d]);
        let scores = &mut scores[..bh * t * t];
        split_heads(q, k, v, qkv, t, h, d);
        matmul(q, k, scores, MatmulSpec { batch: bh, m: t, n: t, k: d, a_transposed: false, b_transposed: true, accumulate: false });
        causal_softmax_forward(att, scores, t, scale);
        matmul(att, v, heads, MatmulSpec { batch: bh, m: t, n: d, k: t, a_transposed: false, b_transposed: false, accumulate: false });
        permute_heads(out, heads, t, h, d, true);
    });
}

/// The backward pass of [`attention_forward`]: from d loss / d out ([N, C]), the q|k|v rows and the weights, to
/// d loss / d qkv ([N, 3C], overwritten) and d loss / d scores (`dpre`, [B·H, T, T]: what the GPU's second pass
/// reads). The unfused ops in their order: rows to heads, datt = dheads·vᵀ, dv = attᵀ·dheads, the softmax's
/// backward, dq = dpre·k, dk = dpreᵀ·q, merged back into q|k|v rows.
pub fn attention_backward(dqkv: &mut [f32], dpre: &mut [f32], dout: &[f32], qkv: &[f32], att: &[f32], t: usize, h: usize, d: usize, scale: f32) {
    let n = dout.len() / (h * d);
    let bh = n / t * h;
    let c = n * h * d;
    with_scratch(8, c.max(bh * t * t), |s| {
        let [q, k, v, dheads, datt, dq, dk, dv] = s else { unreachable!() };
        let (q, k, v, dheads, dq, dk, dv) = (&mut q[..c], &mut k[..c], &mut v[..c], &mut dheads[..c], &mut dq[..c], &mut dk[..c], &mut dv[..c]);
        let datt = &mut datt[..bh * t * t];
        split_heads(q, k, v, qkv, t, h, d);
        permute_heads(dheads, dout, t, h, d, false);
        matmul(dheads, v, datt, MatmulSpec { batch: bh, m: t, n: t, k: d, a_transposed: false, b_transposed: true, accumulate: false });
        matmul(att, dheads, dv, MatmulSpec { batch: bh, m: t, n: d, k: t, a_transposed: true, b_transposed: false, accumulate: false });
        causal_softmax_backward(dpre, datt, att, t, scale);
        matmul(dpre, k, dq, MatmulSpec { batch: bh, m: t, n: d, k: t, a_transposed: false, b_transposed: false, accumulate: false });
        matmul(dpre, q, dk, MatmulSpec { batch: bh, m: t, n: d, k: t, a_transposed: true, b_transposed: false, accumulate: false });
        merge_heads_qkv(dqkv, dq, dk, dv, t, h, d);
    });
}

thread_local! {
    /// The fused twins' intermediates (q, k, v, scores, …), kept between calls so a training step does not
    /// allocate and fault in megabytes per layer.
    static SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `f` with `count` scratch buffers of at least `len` values each (their contents are whatever was left).
fn with_scratch(count: usize, len: usize, f: impl FnOnce(&mut [Vec<f32>])) {
    SCRATCH.with(|cell| {
        let mut held = cell.take();
        held.resize_with(count.max(held.len()), Vec::new);
        for buffer in held.iter_mut().take(count) {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
        f(&mut held[..count]);
        cell.replace(held);
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
    /// Heads and head width.
    h: u32,
    d: u32,
    _pad: [u32; 3],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const ATT: u32 = 1;
    pub const ATT_IN: u32 = 2;
    pub const DSCORES: u32 = 3;
    pub const QKV: u32 = 4;
    pub const OUT: u32 = 5;
    pub const DOUT: u32 = 6;
    pub const DQKV: u32 = 7;
    pub const DPRE_IN: u32 = 8;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::AttentionForward { t, h, d, scale, .. } => {
            let [out, att] = o else { unreachable!() };
            attention_forward(out, att, i[0], t, h, d, scale)
        }
        Op::AttentionBackward { t, h, d, scale, .. } => {
            let [dqkv, dpre] = o else { unreachable!() };
            attention_backward(dqkv, dpre, i[0], i[1], i[2], t, h, d, scale)
        }
        _ => unreachable!("attention::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        // One thread per (sequence, head, query position): B·H·T rows of the weights.
        Op::AttentionForward { n, t: tt, h, d, scale } => {
            // ins [qkv], outs [out, att]
            let p = Params { rows: (n * h) as u32, t: tt as u32, scale, h: h as u32, d: d as u32, _pad: [0; 3] };
            g.launch("attention.fused_forward", bytemuck::bytes_of(&p), &[(QKV, t[0]), (OUT, t[1]), (ATT, t[2])], n * h)
        }
        Op::AttentionBackward { n, t: tt, h, d, scale } => {
            // ins [dout, qkv, att], outs [dqkv, dpre]: a pass per query position (dpre and dq), then one per key
            // position (dk and dv, which sum over the query positions).
            let p = Params { rows: (n * h) as u32, t: tt as u32, scale, h: h as u32, d: d as u32, _pad: [0; 3] };
            g.launch(
                "attention.fused_backward_rows",
                bytemuck::bytes_of(&p),
                &[(DOUT, t[0]), (QKV, t[1]), (ATT_IN, t[2]), (DQKV, t[3]), (DSCORES, t[4])],
                n * h,
            )?;
            g.launch(
                "attention.fused_backward_columns",
                bytemuck::bytes_of(&p),
                &[(DOUT, t[0]), (QKV, t[1]), (ATT_IN, t[2]), (DQKV, t[3]), (DPRE_IN, t[4])],
                n * h,
            )
        }
        _ => unreachable!("attention::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, h, .. } = *s;
    let scale = 1.0 / ((c / h) as f32).sqrt();
    let (n, d) = (b * t, c / h);
    vec![
        Op::AttentionForward { n, t, h, d, scale },
        Op::AttentionBackward { n, t, h, d, scale },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kernels::run_cpu;

    /// The fused attention ops, on the CPU, are the same bits as the separate ops the model ran before (split into
    /// heads, the two batched products, the causal softmax, back to rows; and their backward), run twice so that the
    /// kept scratch is reused.
    #[test]
    fn fused_attention_on_the_cpu_is_the_separate_ops_bit_for_bit() {
        let (b, t, h, d) = (3, 7, 2, 5);
        let (n, c, bh) = (b * t, h * d, b * h);
        let scale = 1.0 / (d as f32).sqrt();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let run = |op: Op, ins: &[&[f32]], outs: &mut [Vec<f32>]| {
            let mut o: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
            run_cpu(&op, ins, &mut o);
        };
        for round in 0..2 {
            let qkv = crate::rng::uniform_vec(round, 1, 3 * n * c, -2.0, 2.0);
            let dout = crate::rng::uniform_vec(round, 2, n * c, -1.0, 1.0);
            let (mut q, mut k, mut v) = (vec![0.0; n * c], vec![0.0; n * c], vec![0.0; n * c]);
            split_heads(&mut q, &mut k, &mut v, &qkv, t, h, d);
            let (q, k, v) = (&q, &k, &v);
            let batched = |m, nn, kk, a_transposed, b_transposed| MatmulSpec { batch: bh, m, n: nn, k: kk, a_transposed, b_transposed, accumulate: false };
            let mut scores = vec![vec![0.0; bh * t * t]];
            run(Op::Matmul(batched(t, t, d, false, true)), &[q, k], &mut scores);
            let mut att = vec![vec![0.0; bh * t * t]];
            causal_softmax_forward(&mut att[0], &scores[0], t, scale);
            let mut heads = vec![vec![0.0; n * c]];
            run(Op::Matmul(batched(t, d, t, false, false)), &[&att[0], v], &mut heads);
            let mut out = vec![vec![0.0; n * c]];
            permute_heads(&mut out[0], &heads[0], t, h, d, true);
            let mut fused = vec![vec![f32::NAN; n * c], vec![f32::NAN; bh * t * t]];
            run(Op::AttentionForward { n, t, h, d, scale }, &[&qkv], &mut fused);
            assert_eq!((bits(&fused[0]), bits(&fused[1])), (bits(&out[0]), bits(&att[0])), "forward, round {round}");

            let mut dheads = vec![vec![0.0; n * c]];
            permute_heads(&mut dheads[0], &dout, t, h, d, false);
            let mut datt = vec![vec![0.0; bh * t * t]];
            run(Op::Matmul(batched(t, t, d, false, true)), &[&dheads[0], v], &mut datt);
            let mut dv = vec![vec![0.0; n * c]];
            run(Op::Matmul(batched(t, d, t, true, false)), &[&att[0], &dheads[0]], &mut dv);
            let mut dpre = vec![vec![0.0; bh * t * t]];
            causal_softmax_backward(&mut dpre[0], &datt[0], &att[0], t, scale);
            let mut dq = vec![vec![0.0; n * c]];
            run(Op::Matmul(batched(t, d, t, false, false)), &[&dpre[0], k], &mut dq);
            let mut dk = vec![vec![0.0; n * c]];
            run(Op::Matmul(batched(t, d, t, true, false)), &[&dpre[0], q], &mut dk);
            let mut dqkv = vec![vec![0.0; 3 * n * c]];
            merge_heads_qkv(&mut dqkv[0], &dq[0], &dk[0], &dv[0], t, h, d);
            let mut fused = vec![vec![f32::NAN; 3 * n * c], vec![f32::NAN; bh * t * t]];
            run(Op::AttentionBackward { n, t, h, d, scale }, &[&dout, &qkv, &att[0]], &mut fused);
            assert_eq!((bits(&fused[0]), bits(&fused[1])), (bits(&dqkv[0]), bits(&dpre[0])), "backward, round {round}");
        }
    }
}

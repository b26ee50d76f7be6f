//! Token and position embeddings of a sequence batch, and their gradients.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/embed.wgsl`), and the self-check cases.

use super::{ids, CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "embed", source: include_str!("../../../shaders/embed.wgsl"), entries: &["forward", "backward_wte", "backward_wpe"] };

// ---- CPU twin

/// out[n, :] = wte[tokens[n], :] + wpe[n % T, :]
pub fn embed_forward(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], t: usize, c: usize) {
    for (n, (o, &tok)) in out.chunks_exact_mut(c).zip(tokens).enumerate() {
        let (e, p) = (&wte[tok as usize * c..][..c], &wpe[(n % t) * c..][..c]);
        for i in 0..c {
            o[i] = e[i] + p[i];
        }
    }
}

/// dwte[tokens[n]] += dout[n]; dwpe[n % T] += dout[n]
pub fn embed_backward(dwte: &mut [f32], dwpe: &mut [f32], dout: &[f32], tokens: &[u32], t: usize, c: usize) {
    for (n, (d, &tok)) in dout.chunks_exact(c).zip(tokens).enumerate() {
        let e = &mut dwte[tok as usize * c..][..c];
        for i in 0..c {
            e[i] += d[i];
        }
        let p = &mut dwpe[(n % t) * c..][..c];
        for i in 0..c {
            p[i] += d[i];
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
    c: u32,
    vocab: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const TOKENS: u32 = 1;
    pub const WTE: u32 = 2;
    pub const WPE: u32 = 3;
    pub const OUT: u32 = 4;
    pub const DOUT: u32 = 5;
    pub const DWTE: u32 = 6;
    pub const DWPE: u32 = 7;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::EmbedForward { t, c, .. } => embed_forward(o[0], ids(i[0]), i[1], i[2], t, c),
        Op::EmbedBackward { t, c, .. } => {
            let [dwte, dwpe] = o else { unreachable!() };
            embed_backward(dwte, dwpe, i[0], ids(i[1]), t, c)
        }
        _ => unreachable!("embed::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    let params = |n: usize, tt: usize, c: usize, vocab: usize| Params { n: n as u32, t: tt as u32, c: c as u32, vocab: vocab as u32 };
    match *op {
        Op::EmbedForward { n, t: tt, c, vocab, .. } => {
            let p = params(n, tt, c, vocab);
            g.launch("embed.forward", bytemuck::bytes_of(&p), &[(TOKENS, t[0]), (WTE, t[1]), (WPE, t[2]), (OUT, t[3])], n * c)
        }
        Op::EmbedBackward { n, t: tt, c, vocab, .. } => {
            // ins [dout, tokens], outs [dwte, dwpe]
            let p = params(n, tt, c, vocab);
            g.launch("embed.backward_wte", bytemuck::bytes_of(&p), &[(TOKENS, t[1]), (DWTE, t[2]), (DOUT, t[0])], vocab * c)?;
            g.launch("embed.backward_wpe", bytemuck::bytes_of(&p), &[(DWPE, t[3]), (DOUT, t[0])], tt * c)
        }
        _ => unreachable!("embed::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, v, .. } = *s;
    let n = b * t;
    vec![Op::EmbedForward { n, t, c, vocab: v, context: t + 2 }, Op::EmbedBackward { n, t, c, vocab: v, context: t + 2 }]
}

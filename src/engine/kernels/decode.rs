//! One decoding step with a KV cache: embed a position, attend over the cache, draw the next token.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/decode.wgsl`), and the self-check cases.

use super::cpu_math::{dot, exp, max, sum};
use super::{ids, CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "decode", source: include_str!("../../../shaders/decode.wgsl"), entries: &["embed_position", "cached_attention", "sample_next"] };

// ---- CPU twin

/// out[b] = wte[tokens[b, pos]] + wpe[pos] — the embedding of one position while decoding.
pub fn embed_position(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], context: usize, pos: usize) {
    let c = wpe.len() / context;
    for (b, o) in out.chunks_exact_mut(c).enumerate() {
        let tok = tokens[b * context + pos] as usize;
        for i in 0..c {
            o[i] = wte[tok * c + i] + wpe[pos * c + i];
        }
    }
}

/// Stores this position's k and v into the caches ([B,H,context,D]) and attends over positions 0..=pos.
/// Where a decoding step attends: H heads of D, caches of `context` positions, the current position.
#[derive(Clone, Copy, Debug)]
pub struct CachePosition {
    pub h: usize,
    pub d: usize,
    pub context: usize,
    pub pos: usize,
}

pub fn cached_attention(kc: &mut [f32], vc: &mut [f32], out: &mut [f32], qkv: &[f32], at: CachePosition) {
    let CachePosition { h, d, context, pos } = at;
    let c = h * d;
    let scale = 1.0 / (d as f32).sqrt();
    let b_count = out.len() / c;
    let mut scores = vec![0.0; pos + 1];
    for b in 0..b_count {
        let row = &qkv[b * 3 * c..][..3 * c];
        for hh in 0..h {
            let cache = (b * h + hh) * context * d;
            kc[cache + pos * d..][..d].copy_from_slice(&row[c + hh * d..][..d]);
            vc[cache + pos * d..][..d].copy_from_slice(&row[2 * c + hh * d..][..d]);
            let q = &row[hh * d..][..d];
            for (j, s) in scores.iter_mut().enumerate() {
                *s = dot(q, &kc[cache + j * d..][..d]);
            }
            // as causal_softmax_forward: exp((s − max)·scale)
            let m = max(&scores);
            scores.iter_mut().for_each(|s| *s = exp((*s - m) * scale));
            let total = sum(&scores);
            let o = &mut out[b * c + hh * d..][..d];
            o.iter_mut().for_each(|v| *v = 0.0);
            for (j, s) in scores.iter().enumerate() {
                let w = s / total;
                for i in 0..d {
                    o[i] += w * vc[cache + j * d + i];
                }
            }
        }
    }
}

/// See `Op::SampleNext`. The draw inverts the CDF of softmax(logits/temperature) at u ~ U[0,1).
/// One decoding draw's settings (the scalars of `Op::SampleNext`).
#[derive(Clone, Copy, Debug)]
pub struct SampleStep {
    pub v: usize,
    pub context: usize,
    pub pos: usize,
    pub temperature: f32,
    pub seed: u32,
    pub stream: u32,
    /// The random draws of row b are those of row `row0 + b` of the whole batch (a part of it sampled apart).
    pub row0: u32,
    pub eos: u32,
    pub pad: u32,
    /// Token ids < 32 never drawn (bit j bans id j).
    pub banned: u32,
}

impl SampleStep {
    fn allowed(&self, j: usize) -> bool {
        j >= 32 || self.banned >> j & 1 == 0
    }
}

pub fn sample_next(tokens: &mut [u32], done: &mut [f32], logprobs: &mut [f32], logits: &[f32], step: &SampleStep) {
    let SampleStep { v, context, pos, temperature, seed, stream, row0, eos, pad, .. } = *step;
    for (b, row) in logits.chunks_exact(v).enumerate() {
        let slot = b * context + pos + 1;
        if done[b] != 0.0 {
            tokens[slot] = pad;
            logprobs[slot] = 0.0;
            continue;
        }
        // The log-prob is under the model's whole distribution; the draw is among the allowed tokens.
        let m_all = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = m_all + row.iter().map(|x| exp(x - m_all)).sum::<f32>().ln();
        let allowed = || row.iter().enumerate().filter(|&(j, _)| step.allowed(j));
        let m = allowed().fold(f32::NEG_INFINITY, |m, (_, &x)| m.max(x));
        let last = (0..v).rev().find(|&j| step.allowed(j)).expect("Op::check: some token is allowed");
        let tok = if temperature == 0.0 {
            // first maximum
            allowed().fold(None, |best: Option<usize>, (j, &x)| match best {
                Some(b) if !(x > row[b]) => Some(b),
                _ => Some(j),
            }).unwrap_or(last)
        } else {
            let total: f32 = allowed().map(|(_, x)| exp((x - m) / temperature)).sum();
            let target = crate::rng::uniform(seed, stream, row0 + b as u32, pos as u32) * total;
            let mut acc = 0.0;
            let mut pick = last;
            for (j, x) in allowed() {
                acc += exp((x - m) / temperature);
                if target < acc {
                    pick = j;
                    break;
                }
            }
            pick
        };
        tokens[slot] = tok as u32;
        logprobs[slot] = row[tok] - lse;
        if tok as u32 == eos {
            done[b] = 1.0;
        }
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    b: u32,
    c: u32,
    vocab: u32,
    context: u32,
    pos: u32,
    h: u32,
    d: u32,
    temperature: f32,
    seed: u32,
    stream: u32,
    eos: u32,
    pad: u32,
    banned: u32,
    row0: u32,
    _pad: [u32; 2],
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const TOKENS_IN: u32 = 1;
    pub const WTE: u32 = 2;
    pub const WPE: u32 = 3;
    pub const OUT: u32 = 4;
    pub const QKV: u32 = 5;
    pub const KCACHE: u32 = 6;
    pub const VCACHE: u32 = 7;
    pub const LOGITS: u32 = 8;
    pub const TOKENS_OUT: u32 = 9;
    pub const DONE: u32 = 10;
    pub const LOGPROBS: u32 = 11;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::EmbedPosition { context, pos, .. } => embed_position(o[0], ids(i[0]), i[1], i[2], context, pos),
        Op::CachedAttention { h, d, context, pos, .. } => {
            let [kc, vc, out] = o else { unreachable!() };
            cached_attention(kc, vc, out, i[0], CachePosition { h, d, context, pos })
        }
        Op::SampleNext { v, context, pos, temperature, seed, stream, row0, eos, pad, banned, .. } => {
            let [tokens, done, logprobs] = o else { unreachable!() };
            let step = SampleStep { v, context, pos, temperature, seed, stream, row0, eos, pad, banned };
            sample_next(bytemuck::cast_slice_mut(tokens), done, logprobs, i[0], &step)
        }
        _ => unreachable!("decode::run_cpu got {}", op.name()),
    }
}

/// The three entry points share one uniform block; each reads the fields it needs (the rest are 0).
pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    let u = |v: usize| v as u32;
    let zero = Params { b: 0, c: 0, vocab: 0, context: 0, pos: 0, h: 0, d: 0, temperature: 0.0, seed: 0, stream: 0, eos: 0, pad: 0, banned: 0, row0: 0, _pad: [0; 2] };
    match *op {
        Op::EmbedPosition { b, c, vocab, context, pos } => {
            let p = Params { b: u(b), c: u(c), vocab: u(vocab), context: u(context), pos: u(pos), ..zero };
            g.launch("decode.embed_position", bytemuck::bytes_of(&p), &[(TOKENS_IN, t[0]), (WTE, t[1]), (WPE, t[2]), (OUT, t[3])], b * c)
        }
        Op::CachedAttention { b, h, d, context, pos } => {
            let p = Params { b: u(b), c: u(h * d), context: u(context), pos: u(pos), h: u(h), d: u(d), ..zero };
            g.launch("decode.cached_attention", bytemuck::bytes_of(&p), &[(QKV, t[0]), (KCACHE, t[1]), (VCACHE, t[2]), (OUT, t[3])], b * h)
        }
        Op::SampleNext { b, v, context, pos, temperature, seed, stream, row0, eos, pad, banned } => {
            let p = Params { b: u(b), vocab: u(v), context: u(context), pos: u(pos), temperature, seed, stream, row0, eos, pad, banned, ..zero };
            g.launch("decode.sample_next", bytemuck::bytes_of(&p), &[(LOGITS, t[0]), (TOKENS_OUT, t[1]), (DONE, t[2]), (LOGPROBS, t[3])], b)
        }
        _ => unreachable!("decode::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, h, v } = *s;
    let d = c / h;
    vec![
        Op::EmbedPosition { b, c, vocab: v, context: t + 2, pos: t - 1 },
        Op::CachedAttention { b, h, d, context: t + 2, pos: 0 },
        Op::CachedAttention { b, h, d, context: t + 2, pos: t },
        Op::SampleNext { b: 4, v, context: t, pos: t - 3, temperature: 1.0, seed: 7, stream: 3, row0: 0, eos: 5, pad: 0, banned: 0 },
        Op::SampleNext { b: 4, v, context: t, pos: 2, temperature: 0.0, seed: 7, stream: 3, row0: 0, eos: 5, pad: 0, banned: 0b101 },
        Op::SampleNext { b: 4, v, context: t, pos: 2, temperature: 0.7, seed: 8, stream: 4, row0: 0, eos: 5, pad: 0, banned: 0b1011 },
        // A part of a batch sampled apart: its rows draw as rows 9.. of the whole batch.
        Op::SampleNext { b: 4, v, context: t, pos: t - 3, temperature: 1.0, seed: 7, stream: 3, row0: 9, eos: 5, pad: 0, banned: 0 },
    ]
}

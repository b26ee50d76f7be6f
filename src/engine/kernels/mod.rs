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
pub mod kl;
pub mod layernorm;
pub mod logprobs;
pub mod losses;
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
    Attention,
    Logprobs,
    Kl,
    ScoreHead,
    Decode,
    SumSquares,
    Adamw,
    Losses,
}

/// Every shader, compiled once when a GPU engine opens.
pub const SHADERS: [Shader; 13] = [
    matmul::SHADER,
    softmax::SHADER,
    embed::SHADER,
    layernorm::SHADER,
    elementwise::SHADER,
    attention::SHADER,
    logprobs::SHADER,
    adamw::SHADER,
    decode::SHADER,
    sum_squares::SHADER,
    kl::SHADER,
    score_head::SHADER,
    losses::SHADER,
];

/// Runs `op` with its CPU twin; inputs and outputs in `Op`'s documented order, lengths already checked.
pub fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match op.family() {
        Family::Matmul => matmul::run_cpu(op, i, o),
        Family::Softmax => softmax::run_cpu(op, i, o),
        Family::Embed => embed::run_cpu(op, i, o),
        Family::Layernorm => layernorm::run_cpu(op, i, o),
        Family::Elementwise => elementwise::run_cpu(op, i, o),
        Family::Attention => attention::run_cpu(op, i, o),
        Family::Logprobs => logprobs::run_cpu(op, i, o),
        Family::Kl => kl::run_cpu(op, i, o),
        Family::ScoreHead => score_head::run_cpu(op, i, o),
        Family::Decode => decode::run_cpu(op, i, o),
        Family::SumSquares => sum_squares::run_cpu(op, i, o),
        Family::Adamw => adamw::run_cpu(op, i, o),
        Family::Losses => losses::run_cpu(op, i, o),
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
        Family::Attention => attention::run_gpu(g, op, t),
        Family::Logprobs => logprobs::run_gpu(g, op, t),
        Family::Kl => kl::run_gpu(g, op, t),
        Family::ScoreHead => score_head::run_gpu(g, op, t),
        Family::Decode => decode::run_gpu(g, op, t),
        Family::SumSquares => sum_squares::run_gpu(g, op, t),
        Family::Adamw => adamw::run_gpu(g, op, t),
        Family::Losses => losses::run_gpu(g, op, t),
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
        attention::selfcheck_ops,
        logprobs::selfcheck_ops,
        kl::selfcheck_ops,
        score_head::selfcheck_ops,
        adamw::selfcheck_ops,
        sum_squares::selfcheck_ops,
        decode::selfcheck_ops,
        losses::selfcheck_ops,
    ];
    families.iter().flat_map(|f| f(s)).collect()
}

/// Token ids travel in f32 slots as u32 bit patterns (see `Engine::indices`).
pub(crate) fn ids(x: &[f32]) -> &[u32] {
    bytemuck::cast_slice(x)
}

#[cfg(test)]
mod tests {
    use super::SHADERS;

    /// Each family's Rust source, in `SHADERS`' order: its `Params` and `binding` constants are read from it.
    const SOURCES: [(&str, &str); 13] = [
        ("matmul", include_str!("matmul.rs")),
        ("softmax", include_str!("softmax.rs")),
        ("embed", include_str!("embed.rs")),
        ("layernorm", include_str!("layernorm.rs")),
        ("elementwise", include_str!("elementwise.rs")),
        ("attention", include_str!("attention.rs")),
        ("logprobs", include_str!("logprobs.rs")),
        ("adamw", include_str!("adamw.rs")),
        ("decode", include_str!("decode.rs")),
        ("sum_squares", include_str!("sum_squares.rs")),
        ("kl", include_str!("kl.rs")),
        ("score_head", include_str!("score_head.rs")),
        ("losses", include_str!("losses.rs")),
    ];

    /// The text between `open` and the next `close` after it.
    fn block<'a>(text: &'a str, open: &str, close: char) -> &'a str {
        let start = text.find(open).unwrap_or_else(|| panic!("no `{open}`")) + open.len();
        let len = text[start..].find(close).expect("closed");
        &text[start..start + len]
    }

    /// The 4-byte words of a `struct Params { … }` block (Rust or WGSL), in order: each field's name and scalar type,
    /// an array or vector one word per element (`name[i]`), padding (a name starting with `_`) as `_` whatever its
    /// spelling (`_pad: [u32; 3]` in Rust is `_pad0, _pad1, _pad2` in WGSL, whose uniform arrays have a 16-byte stride).
    fn words(body: &str) -> Vec<(String, String)> {
        let mut out = vec![];
        for (name, ty) in body
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .flat_map(|l| l.split(','))
            .filter_map(|f| f.split_once(':'))
            .map(|(n, t)| (n.trim().trim_start_matches("pub ").to_string(), t.trim().replace(' ', "")))
            .filter(|(n, t)| !n.is_empty() && !t.is_empty())
        {
            // [T;n] (Rust), array<T,n> or vecN<T> (WGSL): n words of T.
            let (scalar, n) = if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                let (t, n) = inner.split_once(';').expect("[T; n]");
                (t.to_string(), n.parse::<usize>().expect("a length"))
            } else if let Some(inner) = ty.strip_prefix("array<").and_then(|t| t.strip_suffix('>')) {
                let (t, n) = inner.split_once(',').expect("array<T, n>");
                (t.to_string(), n.parse::<usize>().expect("a length"))
            } else if let Some((n, t)) = ty.strip_prefix("vec").and_then(|t| t.split_once('<')) {
                (t.trim_end_matches('>').to_string(), n.parse::<usize>().expect("vecN"))
            } else {
                (ty.clone(), 1)
            };
            for i in 0..n {
                let word = if name.starts_with('_') { "_".to_string() } else if n == 1 { name.clone() } else { format!("{name}[{i}]") };
                out.push((word, scalar.clone()));
            }
        }
        out
    }

    /// The uniform block of every shader has the fields of its Rust `Params`, in order and of the same types, and
    /// every storage binding the Rust `binding` module names is the shader's variable of that name at that number
    /// (and the shader has no other): a mismatch would read garbage, not fail.
    #[test]
    fn every_shader_agrees_with_its_rust_params_and_bindings() {
        for (shader, (family, rust)) in SHADERS.iter().zip(SOURCES) {
            assert_eq!(shader.name, family);
            let wgsl = shader.source;
            let ours = words(block(rust, "struct Params {", '}'));
            let theirs = words(block(wgsl, "struct Params {", '}'));
            assert!(!ours.is_empty(), "{family}: no Params fields read");
            assert_eq!(ours, theirs, "{family}: Params in Rust and in WGSL differ");
            let rust_bindings: Vec<(String, u32)> = block(rust, "mod binding {", '}')
                .lines()
                .filter_map(|l| {
                    let (name, n) = l.trim().strip_prefix("pub const ")?.split_once(": u32 = ")?;
                    Some((name.to_lowercase(), n.trim_end_matches(';').parse().ok()?))
                })
                .collect();
            let wgsl_bindings: Vec<(String, u32)> = wgsl
                .lines()
                .filter_map(|l| {
                    let rest = l.trim().strip_prefix("@group(0) @binding(")?;
                    let (n, decl) = rest.split_once(')')?;
                    let name = decl.split_once('>')?.1.trim().split(':').next()?.trim();
                    Some((name.to_lowercase(), n.parse().ok()?))
                })
                .filter(|(_, n)| *n != 0)
                .collect();
            assert!(!rust_bindings.is_empty(), "{family}: no binding constants read");
            let (mut a, mut b) = (rust_bindings, wgsl_bindings);
            a.sort_by_key(|x| x.1);
            b.sort_by_key(|x| x.1);
            assert_eq!(a, b, "{family}: storage bindings in Rust and in WGSL differ");
        }
    }
}

//! The preference model's scalar head, read at each sequence's last token, and its backward.
//!
//! In one place: the CPU twin (the plain reference every WGSL kernel is checked against), the GPU launch
//! with the shader's uniform block as a typed struct and its bindings by name (the kernel is
//! `shaders/score_head.wgsl`), and the self-check cases.

use super::{ids, CheckShape, Shader};
use crate::engine::gpu::{GpuBackend, GpuTensor};
use crate::engine::Op;
use crate::error::Result;

pub const SHADER: Shader = Shader { name: "score_head", source: include_str!("../../../shaders/score_head.wgsl"), entries: &["forward", "backward_input", "backward_weight"] };

// ---- CPU twin

/// score[b] = lnf[b·T + last[b], :] · w — a scalar read at each sequence's last real token (as Hugging
/// Face's GPT2ForSequenceClassification does with one label).
pub fn score_head(score: &mut [f32], lnf: &[f32], last: &[u32], w: &[f32], t: usize) {
    let c = w.len();
    for (b, s) in score.iter_mut().enumerate() {
        let row = &lnf[(b * t + last[b] as usize) * c..][..c];
        *s = row.iter().zip(w).map(|(x, y)| x * y).sum();
    }
}

/// dlnf = dscore[b]·w at each last token and 0 elsewhere (overwrites); dw += Σ_b dscore[b]·lnf[last row].
pub fn score_head_backward(dlnf: &mut [f32], dw: &mut [f32], dscore: &[f32], lnf: &[f32], last: &[u32], w: &[f32], t: usize) {
    let c = w.len();
    dlnf.iter_mut().for_each(|v| *v = 0.0);
    for (b, &g) in dscore.iter().enumerate() {
        let r = (b * t + last[b] as usize) * c;
        for i in 0..c {
            dlnf[r + i] = g * w[i];
            dw[i] += g * lnf[r + i];
        }
    }
}

// ---- GPU launch

/// The shader's `Params` uniform block, field for field (16-byte multiple).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    b: u32,
    t: u32,
    c: u32,
    _pad: u32,
}

/// Binding numbers of the shader's storage buffers (0 is the uniform block).
mod binding {
    pub const LNF: u32 = 1;
    pub const LAST: u32 = 2;
    pub const W: u32 = 3;
    pub const SCORE: u32 = 4;
    pub const DSCORE: u32 = 5;
    pub const DW: u32 = 6;
    pub const DLNF: u32 = 7;
}

pub(crate) fn run_cpu(op: &Op, i: &[&[f32]], o: &mut [&mut [f32]]) {
    match *op {
        Op::ScoreHead { t, .. } => score_head(o[0], i[0], ids(i[1]), i[2], t),
        Op::ScoreHeadBackward { t, .. } => {
            let [dlnf, dw] = o else { unreachable!() };
            score_head_backward(dlnf, dw, i[0], i[1], ids(i[2]), i[3], t)
        }
        _ => unreachable!("score_head::run_cpu got {}", op.name()),
    }
}

pub(crate) fn run_gpu(g: &GpuBackend, op: &Op, t: &[&GpuTensor]) -> Result<()> {
    use binding::*;
    match *op {
        Op::ScoreHead { b, t: tt, c } => {
            // ins [lnf, last, w], outs [score]
            let p = Params { b: b as u32, t: tt as u32, c: c as u32, _pad: 0 };
            g.launch("score_head.forward", bytemuck::bytes_of(&p), &[(LNF, t[0]), (LAST, t[1]), (W, t[2]), (SCORE, t[3])], b)
        }
        Op::ScoreHeadBackward { b, t: tt, c } => {
            // ins [dscore, lnf, last, w], outs [dlnf, dw]
            let p = Params { b: b as u32, t: tt as u32, c: c as u32, _pad: 0 };
            g.launch("score_head.backward_input", bytemuck::bytes_of(&p), &[(DLNF, t[4]), (LAST, t[2]), (W, t[3]), (DSCORE, t[0])], b * tt * c)?;
            g.launch("score_head.backward_weight", bytemuck::bytes_of(&p), &[(LAST, t[2]), (DSCORE, t[0]), (LNF, t[1]), (DW, t[5])], c)
        }
        _ => unreachable!("score_head::run_gpu got {}", op.name()),
    }
}

pub(crate) fn selfcheck_ops(s: &CheckShape) -> Vec<Op> {
    let CheckShape { b, t, c, .. } = *s;
    vec![Op::ScoreHead { b, t, c }, Op::ScoreHeadBackward { b, t, c }]
}

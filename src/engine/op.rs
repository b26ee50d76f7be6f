//! Every op the engine offers, with its shapes, its inputs and outputs (in the order `Engine::run` takes
//! them) and the lengths it needs. Both backends dispatch on this one list.
//! Shapes: B sequences of T positions, N = B·T rows, C channels, H heads of D = C/H, V vocabulary.

use super::kernels::{adamw::AdamwStep, Family};
use super::{MatmulSpec, Tensor, Then};
use crate::bail;
use crate::error::Result;

#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// [a, b] → [c]
    Matmul(MatmulSpec),
    /// [a, b, then's inputs] → [c, then's outputs]: a product whose values go through [`Then`] before they are
    /// stored (a linear layer's bias, GELU or residual; GELU's backward)
    MatmulThen(MatmulSpec, Then),
    /// [x] → [y]
    SoftmaxRows { rows: usize, cols: usize },
    /// [tokens (u32), wte, wpe] → [out]; wpe holds `context` ≥ T positions
    EmbedForward { n: usize, t: usize, c: usize, vocab: usize, context: usize },
    /// [dout, tokens (u32)] → [dwte +=, dwpe +=]
    EmbedBackward { n: usize, t: usize, c: usize, vocab: usize, context: usize },
    /// [x, w, b] → [out, mean, rstd]
    LayernormForward { n: usize, c: usize },
    /// [dout, x, w, mean, rstd] → [dx +=, dw +=, db +=]
    LayernormBackward { n: usize, c: usize },
    /// [] → [x]: x = 0
    Zero { len: usize },
    /// [src] → [dst +=]
    AddInto { len: usize },
    /// [a, b] → [out]: out = (1 − weight)·a + weight·b (a geometric mixture of two models' logits)
    Mix { len: usize, weight: f32 },
    /// [qkv (N×3C)] → [out (N×C), att (B·H·T·T)]: a block's causal self-attention fused (split into heads,
    /// q·kᵀ, the causal softmax of scale·scores, att·v, back to rows), keeping the weights for the backward pass
    AttentionForward { n: usize, t: usize, h: usize, d: usize, scale: f32 },
    /// [dout (N×C), qkv, att] → [dqkv (N×3C), dpre (B·H·T·T)]: its backward; dpre (d loss / d scores) is the
    /// intermediate the GPU's second pass reads
    AttentionBackward { n: usize, t: usize, h: usize, d: usize, scale: f32 },
    /// [logits, targets (u32)] → [lp]
    TokenLogprobs { n: usize, v: usize },
    /// [dlp, logits, targets (u32)] → [dlogits]
    TokenLogprobsBackward { n: usize, v: usize },
    /// [logits_p, logits_ref] → [kl]: Σ_v p(v)·(log p(v) − log p_ref(v)) per row, exact over the vocabulary
    TokenKl { n: usize, v: usize },
    /// [lnf, last (u32), w] → [score]: score[b] = lnf[b·T + last[b], :]·w (the preference-model head)
    ScoreHead { b: usize, t: usize, c: usize },
    /// [dscore, lnf, last (u32), w] → [dlnf, dw +=]; dlnf is zero except at each sequence's last token
    ScoreHeadBackward { b: usize, t: usize, c: usize },
    /// [x, w] → [out]; x and w are B×T, out is B
    WeightedRowSum { b: usize, t: usize },
    /// [dout, w] → [dx]
    WeightedRowSumBackward { b: usize, t: usize },
    /// Decoding: [tokens (u32, B×context), wte, wpe] → [out (B×C)], embedding token `pos` of each row.
    EmbedPosition { b: usize, c: usize, vocab: usize, context: usize, pos: usize },
    /// Decoding: [qkv (B×3C)] → [k cache, v cache (B·H·context·D each), out (B×C)]: stores this position's k
    /// and v in the caches, then attends over positions 0..=pos.
    CachedAttention { b: usize, h: usize, d: usize, context: usize, pos: usize },
    /// Decoding: [logits (B×V)] → [tokens (u32, B×context), done (B), logprobs (B×context)]. Draws token pos+1
    /// of each unfinished row from softmax(logits/temperature) with the counter-based RNG keyed by
    /// (seed, stream, row, pos) (greedy when temperature is 0); records its log-prob under the
    /// temperature-1 distribution; a row that has drawn `eos` is done and gets `pad` from then on. Token ids
    /// below 32 whose bit is set in `banned` are never drawn (padding and separators are not words): the draw
    /// is from the distribution renormalised over the other tokens.
    SampleNext { b: usize, v: usize, context: usize, pos: usize, temperature: f32, seed: u32, stream: u32, row0: u32, eos: u32, pad: u32, banned: u32 },
    /// [x] → [sums]: sums[slot] = Σ x² (other slots untouched), so the squared norms of many tensors land in
    /// one buffer, which [`Op::ClipScale`] reads on the device
    SumSquares { len: usize, slot: usize, slots: usize },
    /// [sums (slots)] → [clip (2)]: the global gradient norm ‖g‖ = √Σ sums, and the factor the gradient is
    /// scaled by before the update: max_norm / (‖g‖ + 1e-6) when ‖g‖ exceeds `max_norm`, else 1. clip = [factor, ‖g‖].
    ClipScale { slots: usize, max_norm: Option<f32> },
    /// [logps (2P), reference (2P)] → [dseq (2P), record (1 + 4P)]: an alignment step's GPO loss on each pair's
    /// summed log-probs (winners in 0..P, losers in P..2P), its gradient d loss / d log π, and the step's record
    /// [mean loss, logps, reference] (read back once, at the step's end)
    PairLoss { pairs: usize, loss: crate::train::losses::Loss, beta: f32 },
    /// [scores (2P)] → [dscores (2P), loss (1)]: a proxy's training loss on its rows' scores (the position-debiased
    /// pair loss; pairwise: rows (x, y_w, y_l) then (x, y_l, y_w); Bradley–Terry: winners then losers) and its
    /// gradient by each row's score
    PreferenceLoss { pairs: usize, kind: crate::train::pm::ProxyKind },
    /// [grad, clip (2)] → [param, m, v]: the update of the gradient times clip[0] ([`Op::ClipScale`]'s factor)
    Adamw { len: usize, step: AdamwStep },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Matmul(_) => "matmul",
            Op::MatmulThen(_, Then::Bias) => "matmul+bias",
            Op::MatmulThen(_, Then::BiasGelu) => "matmul+bias+gelu",
            Op::MatmulThen(_, Then::BiasResidual) => "matmul+bias+residual",
            Op::MatmulThen(_, Then::GeluBackward) => "matmul+gelu_backward",
            Op::MatmulThen(_, Then::ColumnSumsOfB) => "matmul+bias_backward",
            Op::SoftmaxRows { .. } => "softmax_rows",
            Op::EmbedForward { .. } => "embed_forward",
            Op::EmbedBackward { .. } => "embed_backward",
            Op::LayernormForward { .. } => "layernorm_forward",
            Op::LayernormBackward { .. } => "layernorm_backward",
            Op::Zero { .. } => "zero",
            Op::AddInto { .. } => "add_into",
            Op::Mix { .. } => "mix",
            Op::AttentionForward { .. } => "attention_forward",
            Op::AttentionBackward { .. } => "attention_backward",
            Op::TokenLogprobs { .. } => "token_logprobs",
            Op::TokenLogprobsBackward { .. } => "token_logprobs_backward",
            Op::TokenKl { .. } => "token_kl",
            Op::ScoreHead { .. } => "score_head",
            Op::ScoreHeadBackward { .. } => "score_head_backward",
            Op::WeightedRowSum { .. } => "weighted_row_sum",
            Op::WeightedRowSumBackward { .. } => "weighted_row_sum_backward",
            Op::EmbedPosition { .. } => "embed_position",
            Op::CachedAttention { .. } => "cached_attention",
            Op::SampleNext { .. } => "sample_next",
            Op::SumSquares { .. } => "sum_squares",
            Op::ClipScale { .. } => "clip_scale",
            Op::Adamw { .. } => "adamw",
            Op::PairLoss { .. } => "pair_loss",
            Op::PreferenceLoss { .. } => "preference_loss",
        }
    }

    /// The matrix products it computes (its own, or those inside a fused op as its CPU twin runs them), for the
    /// profile's FLOPs and the GEMM bench's shapes.
    pub fn products(&self) -> Vec<MatmulSpec> {
        match *self {
            Op::Matmul(s) | Op::MatmulThen(s, _) => vec![s],
            Op::AttentionForward { n, t, h, d, .. } | Op::AttentionBackward { n, t, h, d, .. } => {
                let batch = n / t.max(1) * h;
                let product = |m, n, k, a_transposed, b_transposed| MatmulSpec { batch, m, n, k, a_transposed, b_transposed, accumulate: false };
                // q·kᵀ and att·v; backward: dheads·vᵀ, attᵀ·dheads, dpre·k, dpreᵀ·q (engine::kernels::attention)
                if matches!(self, Op::AttentionForward { .. }) {
                    vec![product(t, t, d, false, true), product(t, d, t, false, false)]
                } else {
                    vec![product(t, t, d, false, true), product(t, d, t, true, false), product(t, d, t, false, false), product(t, d, t, true, false)]
                }
            }
            _ => vec![],
        }
    }

    /// The kernel family (module under `engine/kernels/` and shader) that runs it.
    pub fn family(&self) -> Family {
        match self {
            Op::Matmul(_) | Op::MatmulThen(..) => Family::Matmul,
            Op::SoftmaxRows { .. } => Family::Softmax,
            Op::EmbedForward { .. } | Op::EmbedBackward { .. } => Family::Embed,
            Op::LayernormForward { .. } | Op::LayernormBackward { .. } => Family::Layernorm,
            Op::Zero { .. } | Op::AddInto { .. } | Op::Mix { .. } | Op::WeightedRowSum { .. } | Op::WeightedRowSumBackward { .. } => Family::Elementwise,
            Op::AttentionForward { .. } | Op::AttentionBackward { .. } => Family::Attention,
            Op::TokenLogprobs { .. } | Op::TokenLogprobsBackward { .. } => Family::Logprobs,
            Op::TokenKl { .. } => Family::Kl,
            Op::ScoreHead { .. } | Op::ScoreHeadBackward { .. } => Family::ScoreHead,
            Op::EmbedPosition { .. } | Op::CachedAttention { .. } | Op::SampleNext { .. } => Family::Decode,
            Op::SumSquares { .. } | Op::ClipScale { .. } => Family::SumSquares,
            Op::Adamw { .. } => Family::Adamw,
            Op::PairLoss { .. } | Op::PreferenceLoss { .. } => Family::Losses,
        }
    }

    /// The exact lengths of the inputs and outputs.
    pub fn lengths(&self) -> (Vec<usize>, Vec<usize>) {
        match *self {
            Op::Matmul(s) => (vec![s.a_len(), s.b_len()], vec![s.c_len()]),
            Op::MatmulThen(s, then) => {
                let (mut ins, mut outs) = (vec![s.a_len(), s.b_len()], vec![s.c_len()]);
                match then {
                    Then::Bias => ins.push(s.n),
                    Then::BiasGelu => {
                        ins.push(s.n);
                        outs.push(s.c_len());
                    }
                    Then::BiasResidual => ins.extend([s.n, s.c_len()]),
                    Then::GeluBackward => ins.push(s.c_len()),
                    Then::ColumnSumsOfB => outs.push(s.n),
                }
                (ins, outs)
            }
            Op::SoftmaxRows { rows, cols } => (vec![rows * cols], vec![rows * cols]),
            Op::EmbedForward { n, c, vocab, context, .. } => (vec![n, vocab * c, context * c], vec![n * c]),
            Op::EmbedBackward { n, c, vocab, context, .. } => (vec![n * c, n], vec![vocab * c, context * c]),
            Op::LayernormForward { n, c } => (vec![n * c, c, c], vec![n * c, n, n]),
            Op::LayernormBackward { n, c } => (vec![n * c, n * c, c, n, n], vec![n * c, c, c]),
            Op::Zero { len } => (vec![], vec![len]),
            Op::AddInto { len } => (vec![len], vec![len]),
            Op::Mix { len, .. } => (vec![len, len], vec![len]),
            Op::AttentionForward { n, h, d, t, .. } => (vec![3 * n * h * d], vec![n * h * d, n * h * t]),
            Op::AttentionBackward { n, h, d, t, .. } => (vec![n * h * d, 3 * n * h * d, n * h * t], vec![3 * n * h * d, n * h * t]),
            Op::TokenLogprobs { n, v } => (vec![n * v, n], vec![n]),
            Op::TokenLogprobsBackward { n, v } => (vec![n, n * v, n], vec![n * v]),
            Op::TokenKl { n, v } => (vec![n * v, n * v], vec![n]),
            Op::ScoreHead { b, t, c } => (vec![b * t * c, b, c], vec![b]),
            Op::ScoreHeadBackward { b, t, c } => (vec![b, b * t * c, b, c], vec![b * t * c, c]),
            Op::WeightedRowSum { b, t } => (vec![b * t, b * t], vec![b]),
            Op::WeightedRowSumBackward { b, t } => (vec![b, b * t], vec![b * t]),
            Op::EmbedPosition { b, c, vocab, context, .. } => (vec![b * context, vocab * c, context * c], vec![b * c]),
            Op::CachedAttention { b, h, d, context, .. } => (vec![3 * b * h * d], vec![b * h * context * d, b * h * context * d, b * h * d]),
            Op::SampleNext { b, v, context, .. } => (vec![b * v], vec![b * context, b, b * context]),
            Op::SumSquares { len, slots, .. } => (vec![len], vec![slots]),
            Op::ClipScale { slots, .. } => (vec![slots], vec![2]),
            Op::Adamw { len, .. } => (vec![len, 2], vec![len; 3]),
            Op::PairLoss { pairs, .. } => (vec![2 * pairs, 2 * pairs], vec![2 * pairs, 1 + 4 * pairs]),
            Op::PreferenceLoss { pairs, .. } => (vec![2 * pairs], vec![2 * pairs, 1]),
        }
    }

    pub fn check(&self, ins: &[&Tensor], outs: &[&Tensor]) -> Result<()> {
        let name = self.name();
        match *self {
            Op::Matmul(s) if s.batch == 0 || s.m == 0 || s.n == 0 || s.k == 0 => {
                bail!("matmul: batch, m, n and k must all be ≥ 1, got {s:?}")
            }
            Op::MatmulThen(s, Then::ColumnSumsOfB) if s.batch != 1 || s.b_transposed || s.m == 0 || s.n == 0 || s.k == 0 => {
                bail!("{name}: the column sums of B need batch 1, B not transposed and m, n, k ≥ 1, got {s:?}")
            }
            Op::MatmulThen(s, then) if then != Then::ColumnSumsOfB && (s.batch != 1 || s.accumulate || s.m == 0 || s.n == 0 || s.k == 0) => {
                bail!("{name}: a product with an epilogue has batch 1, does not accumulate and has m, n, k ≥ 1, got {s:?}")
            }
            Op::SoftmaxRows { rows, cols } if rows == 0 || cols == 0 => {
                bail!("softmax_rows: rows and cols must be ≥ 1, got {rows}×{cols}")
            }
            Op::EmbedForward { n, t, context, .. } | Op::EmbedBackward { n, t, context, .. } if t == 0 || n % t != 0 || t > context => {
                bail!("{name}: {n} rows are not whole sequences of T = {t}, or T exceeds the context {context}")
            }
            Op::AttentionForward { n, t, .. } | Op::AttentionBackward { n, t, .. } if t == 0 || n % t != 0 => {
                bail!("{name}: {n} rows are not whole sequences of T = {t}")
            }
            Op::EmbedPosition { pos, context, .. } | Op::CachedAttention { pos, context, .. } if pos >= context => {
                bail!("{name}: position {pos} is outside the context {context}")
            }
            Op::SampleNext { pos, context, temperature, .. } if pos + 1 >= context || !(temperature >= 0.0 && temperature.is_finite()) => {
                bail!("{name}: position {} must be < context {context} and temperature ({temperature}) finite and ≥ 0", pos + 1)
            }
            Op::SampleNext { v, banned, eos, .. } if (v <= 32 && (0..v).all(|j| banned >> j & 1 == 1)) || (eos < 32 && banned >> eos & 1 == 1) => {
                bail!("{name}: banned = {banned:#b} leaves no token of the {v} to draw, or bans <eos> ({eos})")
            }
            Op::SumSquares { slot, slots, .. } if slot >= slots => bail!("{name}: slot {slot} is outside 0..{slots}"),
            Op::PairLoss { pairs, beta, .. } if pairs == 0 || !beta.is_finite() => bail!("{name}: pairs ({pairs}) must be ≥ 1 and β ({beta}) finite"),
            Op::PreferenceLoss { pairs: 0, .. } => bail!("{name}: pairs must be ≥ 1"),
            Op::ClipScale { slots, max_norm } if slots == 0 || max_norm.is_some_and(|m| !(m > 0.0 && m.is_finite())) => {
                bail!("{name}: slots ({slots}) must be ≥ 1 and max_norm ({max_norm:?}) finite and > 0")
            }
            _ => {}
        }
        let (want_in, want_out) = self.lengths();
        if ins.len() != want_in.len() || outs.len() != want_out.len() {
            bail!("{name}: takes {} inputs and {} outputs, got {} and {}", want_in.len(), want_out.len(), ins.len(), outs.len());
        }
        for (kind, tensors, want) in [("input", ins, &want_in), ("output", outs, &want_out)] {
            for (i, (t, &w)) in tensors.iter().zip(want.iter()).enumerate() {
                if t.len() != w {
                    let which = match (name, kind, i) {
                        (m, "input", 0) if m.starts_with("matmul") => "A".to_string(),
                        (m, "input", 1) if m.starts_with("matmul") => "B".to_string(),
                        (m, "output", 0) if m.starts_with("matmul") => "C".to_string(),
                        _ => format!("{kind} {i}"),
                    };
                    bail!("{name}: {which} holds {t} values but {self:?} needs exactly {w}", t = t.len());
                }
            }
        }
        Ok(())
    }
}

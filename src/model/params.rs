//! The parameter list: Hugging Face GPT-2 names and layouts (Conv1D weights are [in, out], so a layer is
//! y = x·W + b), one tensor per entry. The LM head is tied to `transformer.wte.weight` and not stored.

use super::GptConfig;
use crate::rng;

/// What a model is for: a policy (LM head) or a pairwise preference model (scalar head on the last token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    Lm,
    Score,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub shape: Vec<usize>,
    /// AdamW weight decay applies to matrices (embeddings, projections), not to biases or LayerNorm gains.
    pub decay: bool,
}

/// The segment of a [`crate::engine::Packed`] parameter set each tensor goes to: those with weight decay (0), then
/// those without (1), so that AdamW runs once per segment with one decay.
pub const DECAY_SEGMENT: usize = 0;
pub const NO_DECAY_SEGMENT: usize = 1;

pub fn segments(infos: &[ParamInfo]) -> Vec<usize> {
    infos.iter().map(|i| if i.decay { DECAY_SEGMENT } else { NO_DECAY_SEGMENT }).collect()
}

impl ParamInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Tensors per transformer block in the parameter list.
const PER_LAYER: usize = 12;

/// One transformer block's tensors, by their Hugging Face names under `transformer.h.{l}.` (shapes for C
/// channels; Conv1D weights are [in, out]). Generic over what is held: parameters, gradients, infos.
pub struct Block<'a, T> {
    pub ln_1_weight: &'a T,        // [C]
    pub ln_1_bias: &'a T,          // [C]
    pub attn_c_attn_weight: &'a T, // [C, 3C]: the q, k and v projections side by side
    pub attn_c_attn_bias: &'a T,   // [3C]
    pub attn_c_proj_weight: &'a T, // [C, C]
    pub attn_c_proj_bias: &'a T,   // [C]
    pub ln_2_weight: &'a T,        // [C]
    pub ln_2_bias: &'a T,          // [C]
    pub mlp_c_fc_weight: &'a T,    // [C, 4C]
    pub mlp_c_fc_bias: &'a T,      // [4C]
    pub mlp_c_proj_weight: &'a T,  // [4C, C]
    pub mlp_c_proj_bias: &'a T,    // [C]
}

/// The whole parameter list by name, in [`param_infos`] order (the one place that order is read).
pub struct Named<'a, T> {
    pub wte: &'a T,             // transformer.wte.weight [V, C], also the tied LM head
    pub wpe: &'a T,             // transformer.wpe.weight [context, C]
    pub blocks: Vec<Block<'a, T>>,
    pub ln_f_weight: &'a T,     // transformer.ln_f.weight [C]
    pub ln_f_bias: &'a T,       // transformer.ln_f.bias [C]
    pub score: Option<&'a T>,   // score.weight [1, C] (preference models)
}

/// Names the entries of a list laid out as [`param_infos`] lays it out for `n_layer` blocks.
pub fn named<T>(list: &[T], n_layer: usize) -> Named<'_, T> {
    let block = |l: usize| {
        let b = &list[2 + l * PER_LAYER..2 + (l + 1) * PER_LAYER];
        Block {
            ln_1_weight: &b[0],
            ln_1_bias: &b[1],
            attn_c_attn_weight: &b[2],
            attn_c_attn_bias: &b[3],
            attn_c_proj_weight: &b[4],
            attn_c_proj_bias: &b[5],
            ln_2_weight: &b[6],
            ln_2_bias: &b[7],
            mlp_c_fc_weight: &b[8],
            mlp_c_fc_bias: &b[9],
            mlp_c_proj_weight: &b[10],
            mlp_c_proj_bias: &b[11],
        }
    };
    let end = 2 + n_layer * PER_LAYER;
    Named { wte: &list[0], wpe: &list[1], blocks: (0..n_layer).map(block).collect(), ln_f_weight: &list[end], ln_f_bias: &list[end + 1], score: list.get(end + 2) }
}

/// [wte, wpe, blocks…, ln_f.weight, ln_f.bias, (score.weight)]
pub fn param_infos(cfg: &GptConfig, head: Head) -> Vec<ParamInfo> {
    let (c, v, t) = (cfg.n_embd, cfg.vocab_size, cfg.n_positions);
    let p = |name: String, shape: Vec<usize>| ParamInfo { decay: shape.len() == 2, name, shape };
    let mut out = vec![p("transformer.wte.weight".into(), vec![v, c]), p("transformer.wpe.weight".into(), vec![t, c])];
    for l in 0..cfg.n_layer {
        let h = |s: &str| format!("transformer.h.{l}.{s}");
        out.extend([
            p(h("ln_1.weight"), vec![c]),
            p(h("ln_1.bias"), vec![c]),
            p(h("attn.c_attn.weight"), vec![c, 3 * c]),
            p(h("attn.c_attn.bias"), vec![3 * c]),
            p(h("attn.c_proj.weight"), vec![c, c]),
            p(h("attn.c_proj.bias"), vec![c]),
            p(h("ln_2.weight"), vec![c]),
            p(h("ln_2.bias"), vec![c]),
            p(h("mlp.c_fc.weight"), vec![c, 4 * c]),
            p(h("mlp.c_fc.bias"), vec![4 * c]),
            p(h("mlp.c_proj.weight"), vec![4 * c, c]),
            p(h("mlp.c_proj.bias"), vec![c]),
        ]);
    }
    out.push(p("transformer.ln_f.weight".into(), vec![c]));
    out.push(p("transformer.ln_f.bias".into(), vec![c]));
    if head == Head::Score {
        out.push(p("score.weight".into(), vec![1, c]));
    }
    out
}

/// GPT-2's initialisation: weights N(0, 0.02), the two residual projections of each block N(0, 0.02/√(2L)),
/// biases 0, LayerNorm gains 1. Normal draws come from the counter-based RNG (Box–Muller), keyed by
/// (seed, tensor index, element), so a seed gives the same model on every machine.
pub fn init_values(cfg: &GptConfig, head: Head, seed: u32) -> Vec<Vec<f32>> {
    let residual_std = 0.02 / (2.0 * cfg.n_layer as f32).sqrt();
    param_infos(cfg, head)
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let n = info.len();
            if info.name.ends_with("ln_1.weight") || info.name.ends_with("ln_2.weight") || info.name.ends_with("ln_f.weight") {
                vec![1.0; n]
            } else if info.shape.len() == 1 {
                vec![0.0; n]
            } else {
                let std = if info.name.ends_with("c_proj.weight") { residual_std } else { 0.02 };
                (0..n).map(|j| std * normal(seed, i as u32, j as u32)).collect()
            }
        })
        .collect()
}

fn normal(seed: u32, stream: u32, index: u32) -> f32 {
    let u1 = rng::uniform(seed, stream, 1, index).max(1e-7);
    let u2 = rng::uniform(seed, stream, 2, index);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `named` and `param_infos` agree on every name, for both heads.
    #[test]
    fn names_follow_the_parameter_list() {
        let cfg = GptConfig { n_layer: 2, n_embd: 8, n_head: 2, n_positions: 4, vocab_size: 7 };
        for head in [Head::Lm, Head::Score] {
            let infos = param_infos(&cfg, head);
            let names: Vec<&str> = infos.iter().map(|i| i.name.as_str()).collect();
            let n = named(&names, cfg.n_layer);
            assert_eq!((*n.wte, *n.wpe, *n.ln_f_weight, *n.ln_f_bias), ("transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "transformer.ln_f.bias"));
            assert_eq!(n.score.copied(), if head == Head::Score { Some("score.weight") } else { None });
            for (l, b) in n.blocks.iter().enumerate() {
                let fields = [
                    (b.ln_1_weight, "ln_1.weight"), (b.ln_1_bias, "ln_1.bias"), (b.attn_c_attn_weight, "attn.c_attn.weight"), (b.attn_c_attn_bias, "attn.c_attn.bias"),
                    (b.attn_c_proj_weight, "attn.c_proj.weight"), (b.attn_c_proj_bias, "attn.c_proj.bias"), (b.ln_2_weight, "ln_2.weight"), (b.ln_2_bias, "ln_2.bias"),
                    (b.mlp_c_fc_weight, "mlp.c_fc.weight"), (b.mlp_c_fc_bias, "mlp.c_fc.bias"), (b.mlp_c_proj_weight, "mlp.c_proj.weight"), (b.mlp_c_proj_bias, "mlp.c_proj.bias"),
                ];
                for (got, suffix) in fields {
                    assert_eq!(*got, format!("transformer.h.{l}.{suffix}"));
                }
            }
        }
    }
}

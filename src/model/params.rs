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

impl ParamInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Index of each tensor of one block in the parameter list.
pub const LN1_W: usize = 0;
pub const LN1_B: usize = 1;
pub const QKV_W: usize = 2;
pub const QKV_B: usize = 3;
pub const PROJ_W: usize = 4;
pub const PROJ_B: usize = 5;
pub const LN2_W: usize = 6;
pub const LN2_B: usize = 7;
pub const FC_W: usize = 8;
pub const FC_B: usize = 9;
pub const FCPROJ_W: usize = 10;
pub const FCPROJ_B: usize = 11;
pub const PER_LAYER: usize = 12;

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

//! The GPT-2 model on the engine: forward and hand-written backward, layer by layer (as llm.c does).
//! Every op goes through `Engine::run`, so the same code runs on the CPU twins and on WGSL.

pub mod checkpoint;
mod config;
pub mod params;
pub mod sample;

pub use config::{size_text, GptConfig, ModelSize};
pub use params::{param_infos, Head, ParamInfo};

use crate::bail;
use crate::engine::{Engine, MatmulSpec, Op, Packed, Tensor, Then};
use crate::error::Result;
use params::{Block, Named};

pub struct Gpt {
    pub config: GptConfig,
    pub head: Head,
    pub infos: Vec<ParamInfo>,
    /// In `infos`' order; packed by weight decay (`params::segments`).
    pub params: Packed,
}

/// One batch on the device: token ids, next-token targets (index tensors, B·T) and the weights that select
/// the response positions (B·T).
pub struct TokenBatch<'a> {
    pub tokens: &'a Tensor,
    pub targets: &'a Tensor,
    pub weights: &'a Tensor,
}

/// Everything the forward pass keeps for the backward pass, for B sequences of T tokens.
pub struct Activations {
    pub b: usize,
    pub t: usize,
    /// The residual stream entering each block, and leaving the last: L + 1 tensors of N·C.
    residual: Vec<Tensor>,
    layers: Vec<LayerActs>,
    lnf: Tensor,
    lnf_mean: Tensor,
    lnf_rstd: Tensor,
    /// [N, V] (policies only; a 1-element placeholder for a preference model)
    pub logits: Tensor,
    /// [B] the scalar head's output (preference models only; 1-element placeholder for a policy)
    pub scores: Tensor,
    /// log π(token[n+1] | tokens ≤ n), [N]
    pub token_logprobs: Tensor,
    /// Σ_t weight·token_logprob per sequence, [B]
    pub sequence_logprobs: Tensor,
    /// Gradient buffers of the backward pass, allocated once with the activations.
    scratch: Scratch,
}

struct LayerActs {
    ln1: Tensor,
    ln1_mean: Tensor,
    ln1_rstd: Tensor,
    qkv: Tensor,
    /// the causal attention weights, [B,H,T,T]
    att: Tensor,
    /// the heads' outputs (att·v) in rows, [N, C]
    attn_out: Tensor,
    /// residual after attention
    mid: Tensor,
    ln2: Tensor,
    ln2_mean: Tensor,
    ln2_rstd: Tensor,
    /// the MLP's pre-activation, [N, 4C]
    fc: Tensor,
    gelu: Tensor,
}

/// Gradient scratch for one backward pass (reused across layers).
struct Scratch {
    dres: Tensor,
    dlnf: Tensor,
    dlogits: Tensor,
    dlp: Tensor,
    dfc: Tensor,
    dln: Tensor,
    dattn_out: Tensor,
    /// d loss / d (q·kᵀ), [B,H,T,T]
    dscores: Tensor,
    dqkv: Tensor,
}

impl Gpt {
    pub fn new(engine: &Engine, config: GptConfig, head: Head, values: &[Vec<f32>]) -> Result<Self> {
        config.validate()?;
        let infos = param_infos(&config, head);
        if values.len() != infos.len() {
            bail!("model: expected {} parameter tensors, got {}", infos.len(), values.len());
        }
        for (info, v) in infos.iter().zip(values) {
            if v.len() != info.len() {
                bail!("model: {} has {} values, its shape {:?} needs {}", info.name, v.len(), info.shape, info.len());
            }
        }
        let values: Vec<&[f32]> = values.iter().map(|v| v.as_slice()).collect();
        let params = engine.pack(&values, &params::segments(&infos));
        Ok(Gpt { config, head, infos, params })
    }

    /// A freshly initialised model (GPT-2 init, see `params::init_values`).
    pub fn init(engine: &Engine, config: GptConfig, head: Head, seed: u32) -> Result<Self> {
        config.validate()?;
        Gpt::new(engine, config, head, &params::init_values(&config, head, seed))
    }

    pub fn num_parameters(&self) -> usize {
        self.infos.iter().map(|i| i.len()).sum()
    }

    /// The parameters by name.
    pub fn named(&self) -> Named<'_, Tensor> {
        params::named(&self.params, self.config.n_layer)
    }

    /// Zeroed gradient tensors, one per parameter, packed like the parameters.
    pub fn zero_grads(&self, engine: &Engine) -> Packed {
        let lens: Vec<usize> = self.infos.iter().map(|i| i.len()).collect();
        engine.pack_zeros(&lens, &params::segments(&self.infos))
    }

    /// Sets gradient tensors back to zero on the device (before each step's backward pass): one op per
    /// segment where they are packed in one buffer, else one per tensor.
    pub fn clear_grads(e: &Engine, grads: &Packed) -> Result<()> {
        for (_, g) in grads.units() {
            e.run(Op::Zero { len: g.len() }, &[], &[g])?;
        }
        Ok(())
    }

    pub fn activations(&self, engine: &Engine, b: usize, t: usize) -> Result<Activations> {
        let cfg = &self.config;
        if b == 0 || t == 0 {
            bail!("batch and sequence length must be ≥ 1, got {b}×{t}");
        }
        if t > cfg.n_positions {
            bail!("sequence length {t} exceeds the context n_positions = {}", cfg.n_positions);
        }
        let (n, c, h) = (b * t, cfg.n_embd, cfg.n_head);
        let z = |len: usize| engine.zeros(len);
        Ok(Activations {
            b,
            t,
            residual: (0..=cfg.n_layer).map(|_| z(n * c)).collect(),
            layers: (0..cfg.n_layer)
                .map(|_| LayerActs {
                    ln1: z(n * c),
                    ln1_mean: z(n),
                    ln1_rstd: z(n),
                    qkv: z(3 * n * c),
                    att: z(b * h * t * t),
                    attn_out: z(n * c),
                    mid: z(n * c),
                    ln2: z(n * c),
                    ln2_mean: z(n),
                    ln2_rstd: z(n),
                    fc: z(4 * n * c),
                    gelu: z(4 * n * c),
                })
                .collect(),
            lnf: z(n * c),
            lnf_mean: z(n),
            lnf_rstd: z(n),
            logits: z(if self.head == Head::Lm { n * cfg.vocab_size } else { 1 }),
            scores: z(if self.head == Head::Score { b } else { 1 }),
            token_logprobs: z(n),
            sequence_logprobs: z(b),
            scratch: Scratch::new(engine, cfg, b, t, if self.head == Head::Lm { cfg.vocab_size } else { 1 }),
        })
    }

    /// Checks token ids against the vocabulary (on the host, before they reach a kernel).
    pub fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        if let Some((i, &tok)) = tokens.iter().enumerate().find(|(_, &t)| t as usize >= self.config.vocab_size) {
            bail!("token id {tok} at position {i} is outside the vocabulary 0..{}", self.config.vocab_size);
        }
        Ok(())
    }

    /// Fills `acts` up to the logits, for `tokens` (B·T ids, an index tensor).
    pub fn forward(&self, e: &Engine, acts: &Activations, tokens: &Tensor) -> Result<()> {
        let cfg = &self.config;
        let (b, t, c, h, d, v) = (acts.b, acts.t, cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size);
        let n = b * t;
        let scale = 1.0 / (d as f32).sqrt();
        let w = self.named();
        e.run(Op::EmbedForward { n, t, c, vocab: v, context: cfg.n_positions }, &[tokens, w.wte, w.wpe], &[&acts.residual[0]])?;
        for (l, (a, p)) in acts.layers.iter().zip(&w.blocks).enumerate() {
            let out = BlockBuffers {
                ln1: (&a.ln1, &a.ln1_mean, &a.ln1_rstd),
                qkv: &a.qkv,
                attn_out: &a.attn_out,
                mid: &a.mid,
                ln2: (&a.ln2, &a.ln2_mean, &a.ln2_rstd),
                fc: &a.fc,
                gelu: &a.gelu,
                out: &acts.residual[l + 1],
            };
            // Causal self-attention over the whole sequence in one op, keeping the attention weights for the
            // backward pass (which reads q, k and v from the qkv rows again).
            let attention = |qkv: &Tensor, attn_out: &Tensor| e.run(Op::AttentionForward { n, t, h, d, scale }, &[qkv], &[attn_out, &a.att]);
            block_forward(e, p, &acts.residual[l], &out, (n, c), attention)?;
        }
        let last = &acts.residual[cfg.n_layer];
        e.run(Op::LayernormForward { n, c }, &[last, w.ln_f_weight, w.ln_f_bias], &[&acts.lnf, &acts.lnf_mean, &acts.lnf_rstd])?;
        if self.head == Head::Lm {
            // Tied head: logits = lnf · wteᵀ
            e.matmul(&acts.lnf, w.wte, &acts.logits, MatmulSpec { batch: 1, m: n, n: v, k: c, a_transposed: false, b_transposed: true, accumulate: false })?;
        }
        Ok(())
    }

    fn score_w(&self) -> Result<&Tensor> {
        self.named().score.ok_or_else(|| crate::Error::new("this model has an LM head, not a scalar head"))
    }

    /// After `forward`, for a preference model: scores[b] read at token `last[b]` of each sequence.
    pub fn score(&self, e: &Engine, acts: &Activations, last: &Tensor) -> Result<()> {
        if self.head != Head::Score {
            bail!("score: this model has an LM head, not a scalar head");
        }
        e.run(Op::ScoreHead { b: acts.b, t: acts.t, c: self.config.n_embd }, &[&acts.lnf, last, self.score_w()?], &[&acts.scores])
    }

    /// Backward from d loss / d scores ([B]) for a preference model; gradients are added to `grads`.
    pub fn backward_score(&self, e: &Engine, acts: &Activations, grads: &[Tensor], tokens: &Tensor, last: &Tensor, dscores: &Tensor) -> Result<()> {
        let (b, t, c) = (acts.b, acts.t, self.config.n_embd);
        let s = &acts.scratch;
        let dw = params::named(grads, self.config.n_layer).score.ok_or_else(|| crate::Error::new("backward_score: no gradient for score.weight"))?;
        e.run(Op::ScoreHeadBackward { b, t, c }, &[dscores, &acts.lnf, last, self.score_w()?], &[&s.dlnf, dw])?;
        self.backward_trunk(e, acts, grads, tokens, s)
    }

    /// After `forward`, for a preference model: the scalar head at every position, `out[n] = lnf[n]·w` ([B·T]),
    /// for a score summed over a response's tokens. It is the last-token head with every position its own row
    /// (`zeros`: B·T zero indices).
    pub fn score_every_position(&self, e: &Engine, acts: &Activations, zeros: &Tensor, out: &Tensor) -> Result<()> {
        e.run(Op::ScoreHead { b: acts.b * acts.t, t: 1, c: self.config.n_embd }, &[&acts.lnf, zeros, self.score_w()?], &[out])
    }

    /// Backward of [`Gpt::score_every_position`] from d loss / d out ([B·T]); gradients are added to `grads`.
    pub fn backward_score_every_position(&self, e: &Engine, acts: &Activations, grads: &[Tensor], tokens: &Tensor, zeros: &Tensor, dout: &Tensor) -> Result<()> {
        let s = &acts.scratch;
        let dw = params::named(grads, self.config.n_layer).score.ok_or_else(|| crate::Error::new("backward_score: no gradient for score.weight"))?;
        e.run(Op::ScoreHeadBackward { b: acts.b * acts.t, t: 1, c: self.config.n_embd }, &[dout, &acts.lnf, zeros, self.score_w()?], &[&s.dlnf, dw])?;
        self.backward_trunk(e, acts, grads, tokens, s)
    }

    /// After `forward`: per-token log-probs of `targets` and their `weights`-weighted sum per sequence,
    /// i.e. log π(y|x) summed over the response tokens the weights select.
    pub fn sequence_logprobs(&self, e: &Engine, acts: &Activations, targets: &Tensor, weights: &Tensor) -> Result<()> {
        let (b, t, v) = (acts.b, acts.t, self.config.vocab_size);
        e.run(Op::TokenLogprobs { n: b * t, v }, &[&acts.logits, targets], &[&acts.token_logprobs])?;
        e.run(Op::WeightedRowSum { b, t }, &[&acts.token_logprobs, weights], &[&acts.sequence_logprobs])
    }

    /// Backward from d loss / d sequence_logprobs ([B]) through the whole model; gradients are added to
    /// `grads` (zero them first for a fresh step).
    pub fn backward(&self, e: &Engine, acts: &Activations, grads: &[Tensor], batch: &TokenBatch, dseq: &Tensor) -> Result<()> {
        let (tokens, targets, weights) = (batch.tokens, batch.targets, batch.weights);
        let cfg = &self.config;
        let (b, t, c, v) = (acts.b, acts.t, cfg.n_embd, cfg.vocab_size);
        let n = b * t;
        if self.head != Head::Lm {
            bail!("backward: this model has a scalar head; use backward_score");
        }
        let s = &acts.scratch;
        e.run(Op::WeightedRowSumBackward { b, t }, &[dseq, weights], &[&s.dlp])?;
        e.run(Op::TokenLogprobsBackward { n, v }, &[&s.dlp, &acts.logits, targets], &[&s.dlogits])?;
        // logits = lnf·wteᵀ  ⇒  dlnf = dlogits·wte,  dwte += dlogitsᵀ·lnf
        e.matmul(&s.dlogits, self.named().wte, &s.dlnf, MatmulSpec { batch: 1, m: n, n: c, k: v, a_transposed: false, b_transposed: false, accumulate: false })?;
        e.matmul(&s.dlogits, &acts.lnf, params::named(grads, cfg.n_layer).wte, MatmulSpec { batch: 1, m: v, n: c, k: n, a_transposed: true, b_transposed: false, accumulate: true })?;
        self.backward_trunk(e, acts, grads, tokens, s)
    }

    /// From d loss / d lnf (in `s.dlnf`) down to the embeddings.
    fn backward_trunk(&self, e: &Engine, acts: &Activations, grads: &[Tensor], tokens: &Tensor, s: &Scratch) -> Result<()> {
        let cfg = &self.config;
        let (b, t, c, h, d, v) = (acts.b, acts.t, cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size);
        let n = b * t;
        let scale = 1.0 / (d as f32).sqrt();
        let (w, g) = (self.named(), params::named(grads, cfg.n_layer));
        let nl = cfg.n_layer;
        // The buffers are reused across steps; dres is accumulated into, so it starts from zero.
        e.run(Op::Zero { len: n * c }, &[], &[&s.dres])?;
        e.run(
            Op::LayernormBackward { n, c },
            &[&s.dlnf, &acts.residual[nl], w.ln_f_weight, &acts.lnf_mean, &acts.lnf_rstd],
            &[&s.dres, g.ln_f_weight, g.ln_f_bias],
        )?;
        for l in (0..nl).rev() {
            let (a, p, gl) = (&acts.layers[l], &w.blocks[l], &g.blocks[l]);
            // s.dres holds d/d residual[l+1]; the residual passes it straight to `mid`.
            // Through the MLP's projection and, in the same product, GELU (dfc = (dres·Wᵀ)·gelu'(fc)).
            linear_backward(e, &s.dres, &a.gelu, (p.mlp_c_proj_weight, gl.mlp_c_proj_weight, gl.mlp_c_proj_bias), (&s.dfc, Some(&a.fc)), (n, 4 * c, c))?;
            linear_backward(e, &s.dfc, &a.ln2, (p.mlp_c_fc_weight, gl.mlp_c_fc_weight, gl.mlp_c_fc_bias), (&s.dln, None), (n, c, 4 * c))?;
            e.run(Op::LayernormBackward { n, c }, &[&s.dln, &a.mid, p.ln_2_weight, &a.ln2_mean, &a.ln2_rstd], &[&s.dres, gl.ln_2_weight, gl.ln_2_bias])?;
            // s.dres now holds d/d mid.
            linear_backward(e, &s.dres, &a.attn_out, (p.attn_c_proj_weight, gl.attn_c_proj_weight, gl.attn_c_proj_bias), (&s.dattn_out, None), (n, c, c))?;
            // heads = att·v, att = causal softmax(scale·q·kᵀ)  ⇒  dqkv (engine::kernels::attention::attention_backward)
            e.run(Op::AttentionBackward { n, t, h, d, scale }, &[&s.dattn_out, &a.qkv, &a.att], &[&s.dqkv, &s.dscores])?;
            linear_backward(e, &s.dqkv, &a.ln1, (p.attn_c_attn_weight, gl.attn_c_attn_weight, gl.attn_c_attn_bias), (&s.dln, None), (n, c, 3 * c))?;
            e.run(Op::LayernormBackward { n, c }, &[&s.dln, &acts.residual[l], p.ln_1_weight, &a.ln1_mean, &a.ln1_rstd], &[&s.dres, gl.ln_1_weight, gl.ln_1_bias])?;
        }
        e.run(Op::EmbedBackward { n, t, c, vocab: v, context: cfg.n_positions }, &[&s.dres, tokens], &[g.wte, g.wpe])
    }
}

impl Scratch {
    /// `v`: the vocabulary for an LM head's logit gradients (1 for a scalar head).
    fn new(e: &Engine, cfg: &GptConfig, b: usize, t: usize, v: usize) -> Self {
        let (n, c, bh) = (b * t, cfg.n_embd, b * cfg.n_head);
        let z = |len: usize| e.zeros(len);
        Scratch {
            dres: z(n * c),
            dlnf: z(n * c),
            dlogits: z(if v > 1 { n * v } else { 1 }),
            dlp: z(n),
            dfc: z(4 * n * c),
            dln: z(n * c),
            dattn_out: z(n * c),
            dscores: z(bh * t * t),
            dqkv: z(3 * n * c),
        }
    }
}

/// Where one block's forward pass writes: (output, mean, rstd) of each LayerNorm and every intermediate.
/// Training keeps each in its own buffer for the backward pass; sampling reuses buffers.
pub(crate) struct BlockBuffers<'a> {
    pub ln1: (&'a Tensor, &'a Tensor, &'a Tensor),
    pub qkv: &'a Tensor,
    pub attn_out: &'a Tensor,
    pub mid: &'a Tensor,
    pub ln2: (&'a Tensor, &'a Tensor, &'a Tensor),
    /// The MLP's pre-activation and its GELU.
    pub fc: &'a Tensor,
    pub gelu: &'a Tensor,
    /// The residual stream leaving the block.
    pub out: &'a Tensor,
}

/// One GPT-2 block on n rows of c channels: x → LN → qkv → attention → projection (+x) → LN → MLP (+).
/// `attention(qkv, attn_out)` is the only part training and KV-cache sampling do differently.
pub(crate) fn block_forward(
    e: &Engine,
    p: &Block<'_, Tensor>,
    x: &Tensor,
    o: &BlockBuffers,
    (n, c): (usize, usize),
    attention: impl FnOnce(&Tensor, &Tensor) -> Result<()>,
) -> Result<()> {
    e.run(Op::LayernormForward { n, c }, &[x, p.ln_1_weight, p.ln_1_bias], &[o.ln1.0, o.ln1.1, o.ln1.2])?;
    // Each linear layer is one product with its bias (and GELU, or the residual) applied as its values are stored.
    let layer = |k_in, k_out| MatmulSpec::new(n, k_out, k_in);
    e.run(Op::MatmulThen(layer(c, 3 * c), Then::Bias), &[o.ln1.0, p.attn_c_attn_weight, p.attn_c_attn_bias], &[o.qkv])?;
    attention(o.qkv, o.attn_out)?;
    // mid = x + (attn_out·W + b)
    e.run(Op::MatmulThen(layer(c, c), Then::BiasResidual), &[o.attn_out, p.attn_c_proj_weight, p.attn_c_proj_bias, x], &[o.mid])?;
    e.run(Op::LayernormForward { n, c }, &[o.mid, p.ln_2_weight, p.ln_2_bias], &[o.ln2.0, o.ln2.1, o.ln2.2])?;
    // fc = ln2·W + b, gelu = GELU(fc)
    e.run(Op::MatmulThen(layer(c, 4 * c), Then::BiasGelu), &[o.ln2.0, p.mlp_c_fc_weight, p.mlp_c_fc_bias], &[o.gelu, o.fc])?;
    // out = mid + (gelu·W + b)
    e.run(Op::MatmulThen(layer(4 * c, c), Then::BiasResidual), &[o.gelu, p.mlp_c_proj_weight, p.mlp_c_proj_bias, o.mid], &[o.out])
}

/// For y = x·W + b: dx = dy·Wᵀ (overwrites), dW += xᵀ·dy, db += Σ_rows dy (two ops); `(w, dw, db)` are the layer's
/// weight and its two gradients. With `gelu_of = Some(pre)` (x = GELU(pre)), dx is d loss / d pre instead:
/// (dy·Wᵀ)·GELU'(pre), in the same product.
fn linear_backward(
    e: &Engine,
    dy: &Tensor,
    x: &Tensor,
    (w, dw, db): (&Tensor, &Tensor, &Tensor),
    (dx, gelu_of): (&Tensor, Option<&Tensor>),
    (n, k_in, k_out): (usize, usize, usize),
) -> Result<()> {
    let spec = MatmulSpec { batch: 1, m: n, n: k_in, k: k_out, a_transposed: false, b_transposed: true, accumulate: false };
    match gelu_of {
        Some(pre) => e.run(Op::MatmulThen(spec, Then::GeluBackward), &[dy, w, pre], &[dx])?,
        None => e.matmul(dy, w, dx, spec)?,
    }
    // dW += xᵀ·dy and, in the same op, db += Σ_rows dy
    let weight_grad = MatmulSpec { batch: 1, m: k_in, n: k_out, k: n, a_transposed: true, b_transposed: false, accumulate: true };
    e.run(Op::MatmulThen(weight_grad, Then::ColumnSumsOfB), &[x, dy], &[dw, db])
}

impl Gpt {
    /// Copies every parameter back to the host (for checkpoints and tests).
    pub async fn values(&self, e: &Engine) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(self.params.len());
        for p in self.params.iter() {
            out.push(e.read(p).await?);
        }
        Ok(out)
    }
}

/// Exact KL(π‖π_ref) summed over the positions `weights` selects, per sequence: Σ_t w[b,t]·Σ_v p(v)(log p(v) −
/// log p_ref(v)), from the logits of two models run on the same tokens. `token_kl` ([B·T]) is scratch;
/// the result goes to `out` ([B]). `(b, t, v)`: sequences, positions, vocabulary.
pub fn sequence_kl(e: &Engine, (logits, logits_ref): (&Tensor, &Tensor), weights: &Tensor, token_kl: &Tensor, out: &Tensor, (b, t, v): (usize, usize, usize)) -> Result<()> {
    e.run(Op::TokenKl { n: b * t, v }, &[logits, logits_ref], &[token_kl])?;
    e.run(Op::WeightedRowSum { b, t }, &[token_kl, weights], &[out])
}

//! Batched autoregressive sampling with a KV cache. One position of every sequence per step, all on the
//! device: the sampled token is written where the next step's embedding reads it, and only the finished
//! tokens and their log-probs are read back at the end.

use super::{Gpt, Head};
use crate::bail;
use crate::engine::{Engine, MatmulSpec, Op, Tensor};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleSpec {
    /// Softmax temperature; 0 is greedy.
    pub temperature: f32,
    /// Total length of each sequence, prompt included (≤ the context).
    pub max_len: usize,
    /// The counter-based RNG draws token p of row r from (seed, stream, r, p-1): `stream` is e.g. the
    /// training step, so each step samples afresh and a seed reproduces all of them.
    pub seed: u32,
    pub stream: u32,
    /// Row r draws as row `row0 + r` of a larger batch: a batch sampled in parts (by several workers) draws what it
    /// draws whole (0: the batch is whole).
    #[serde(default)]
    pub row0: u32,
    pub eos: u32,
    pub pad: u32,
    /// Token ids < 32 never drawn (bit j bans id j), e.g. padding and separators.
    pub banned: u32,
}

/// Sequences of `max_len` tokens: the prompt, the response, then `pad` after EOS.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub prompt_len: usize,
    pub tokens: Vec<Vec<u32>>,
    /// log π(token | prefix) at temperature 1 for each sampled position (0 for the prompt and padding).
    pub logprobs: Vec<Vec<f32>>,
}

impl Samples {
    /// The response of row `r`: tokens after the prompt, up to and including EOS.
    pub fn response(&self, r: usize, eos: u32) -> &[u32] {
        let resp = &self.tokens[r][self.prompt_len..];
        match resp.iter().position(|&t| t == eos) {
            Some(i) => &resp[..=i],
            None => resp,
        }
    }
}

/// One model's decoding state: its KV caches and the buffers of one position per row.
struct Decoder {
    caches: Vec<(Tensor, Tensor)>,
    x: [Tensor; 2],
    mid: Tensor,
    ln: Tensor,
    mean: Tensor,
    rstd: Tensor,
    qkv: Tensor,
    attn: Tensor,
    fc: Tensor,
    gelu: Tensor,
    logits: Tensor,
}

impl Decoder {
    fn new(e: &Engine, cfg: &super::GptConfig, b: usize) -> Self {
        let (c, h, d, v, ctx) = (cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size, cfg.n_positions);
        let z = |len: usize| e.zeros(len);
        Decoder {
            caches: (0..cfg.n_layer).map(|_| (z(b * h * ctx * d), z(b * h * ctx * d))).collect(),
            x: [z(b * c), z(b * c)],
            mid: z(b * c),
            ln: z(b * c),
            mean: z(b),
            rstd: z(b),
            qkv: z(3 * b * c),
            attn: z(b * c),
            fc: z(4 * b * c),
            gelu: z(4 * b * c),
            logits: z(b * v),
        }
    }

    /// Reads position `pos` of every row of `tokens` into the caches; with `logits`, also the next token's logits.
    fn step(&self, e: &Engine, model: &Gpt, tokens: &Tensor, b: usize, pos: usize, logits: bool) -> Result<()> {
        let cfg = &model.config;
        let (c, h, d, v, ctx) = (cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size, cfg.n_positions);
        let w = model.named();
        e.run(Op::EmbedPosition { b, c, vocab: v, context: ctx, pos }, &[tokens, w.wte, w.wpe], &[&self.x[0]])?;
        let mut cur = 0;
        for ((kc, vc), p) in self.caches.iter().zip(&w.blocks) {
            // One position per row: attend over the cached keys and values of positions 0..=pos.
            let attention = |qkv: &Tensor, attn_out: &Tensor| e.run(Op::CachedAttention { b, h, d, context: ctx, pos }, &[qkv], &[kc, vc, attn_out]);
            let out = super::BlockBuffers {
                ln1: (&self.ln, &self.mean, &self.rstd),
                qkv: &self.qkv,
                attn_out: &self.attn,
                mid: &self.mid,
                ln2: (&self.ln, &self.mean, &self.rstd),
                fc: &self.fc,
                gelu: &self.gelu,
                out: &self.x[1 - cur],
            };
            super::block_forward(e, p, &self.x[cur], &out, (b, c), attention)?;
            cur = 1 - cur;
        }
        if logits {
            e.run(Op::LayernormForward { n: b, c }, &[&self.x[cur], w.ln_f_weight, w.ln_f_bias], &[&self.ln, &self.mean, &self.rstd])?;
            e.matmul(&self.ln, w.wte, &self.logits, MatmulSpec { batch: 1, m: b, n: v, k: c, a_transposed: false, b_transposed: true, accumulate: false })?;
        }
        Ok(())
    }
}

impl Gpt {
    pub async fn sample(&self, e: &Engine, prompts: &[Vec<u32>], spec: &SampleSpec) -> Result<Samples> {
        self.sample_mixture(e, prompts, spec, None).await
    }

    /// Samples from the per-token geometric mixture π^(1−m)·π_ref^m of this model and `reference` (Calandriello
    /// et al. 2024's IPO-MD): at each position the two models' logits are mixed, (1 − m)·z + m·z_ref, and the
    /// token drawn from their softmax. m = 0 is this model's own sampling, m = 1 the reference's, exactly. The
    /// log-probs returned are the mixture's.
    pub async fn sample_mixture(&self, e: &Engine, prompts: &[Vec<u32>], spec: &SampleSpec, mixture: Option<(&Gpt, f32)>) -> Result<Samples> {
        let cfg = &self.config;
        if self.head != Head::Lm {
            bail!("sample: a preference model cannot generate");
        }
        let Some(first) = prompts.first() else { bail!("sample: no prompts") };
        let p = first.len();
        if p == 0 || prompts.iter().any(|x| x.len() != p) {
            bail!("sample: prompts must be non-empty and of equal length");
        }
        if spec.max_len <= p || spec.max_len > cfg.n_positions {
            bail!("max_len = {} is out of range {}..={} (longer than the prompt, within the context)", spec.max_len, p + 1, cfg.n_positions);
        }
        if !(spec.temperature >= 0.0 && spec.temperature.is_finite()) {
            bail!("temperature = {} is out of range: finite and ≥ 0", spec.temperature);
        }
        if let Some((reference, m)) = mixture {
            if reference.head != Head::Lm || reference.config.vocab_size != cfg.vocab_size || reference.config.n_positions != cfg.n_positions {
                bail!("sample: the mixture's reference must be a policy with the same vocabulary and context");
            }
            if !(0.0..=1.0).contains(&m) {
                bail!("mixture = {m} is out of range [0, 1] (the reference's weight in the mixture)");
            }
        }
        for x in prompts {
            self.check_tokens(x)?;
        }
        self.check_tokens(&[spec.eos, spec.pad])?;
        let (b, v, ctx) = (prompts.len(), cfg.vocab_size, cfg.n_positions);
        let mut init = vec![spec.pad; b * ctx];
        for (r, x) in prompts.iter().enumerate() {
            init[r * ctx..r * ctx + p].copy_from_slice(x);
        }
        let tokens = e.indices(&init);
        let done = e.zeros(b);
        let logprobs = e.zeros(b * ctx);
        let own = Decoder::new(e, cfg, b);
        let other = mixture.map(|(reference, m)| (reference, m, Decoder::new(e, &reference.config, b), e.zeros(b * v)));
        for pos in 0..spec.max_len - 1 {
            // Still reading the prompt: the caches are filled, nothing to draw.
            let draws = pos + 1 >= p;
            own.step(e, self, &tokens, b, pos, draws)?;
            if let Some((reference, _, dec, _)) = &other {
                dec.step(e, reference, &tokens, b, pos, draws)?;
            }
            if !draws {
                continue;
            }
            let logits = match &other {
                Some((_, m, dec, mixed)) => {
                    e.run(Op::Mix { len: b * v, weight: *m }, &[&own.logits, &dec.logits], &[mixed])?;
                    mixed
                }
                None => &own.logits,
            };
            let op = Op::SampleNext { b, v, context: ctx, pos, temperature: spec.temperature, seed: spec.seed, stream: spec.stream, row0: spec.row0, eos: spec.eos, pad: spec.pad, banned: spec.banned };
            e.run(op, &[logits], &[&tokens, &done, &logprobs])?;
        }
        let all: Vec<u32> = e.read(&tokens).await?.iter().map(|t| t.to_bits()).collect();
        let lps = e.read(&logprobs).await?;
        let l = spec.max_len;
        Ok(Samples {
            prompt_len: p,
            tokens: (0..b).map(|r| all[r * ctx..r * ctx + l].to_vec()).collect(),
            logprobs: (0..b).map(|r| lps[r * ctx..r * ctx + l].to_vec()).collect(),
        })
    }
}

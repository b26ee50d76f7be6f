//! Batched autoregressive sampling with a KV cache. One position of every sequence per step, all on the
//! device: the sampled token is written where the next step's embedding reads it, and only the finished
//! tokens and their log-probs are read back at the end.

use super::{Gpt, Head};
use crate::bail;
use crate::engine::{Engine, MatmulSpec, Op, Tensor};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleSpec {
    /// Softmax temperature; 0 is greedy.
    pub temperature: f32,
    /// Total length of each sequence, prompt included (≤ the context).
    pub max_len: usize,
    /// The counter-based RNG draws token p of row r from (seed, stream, r, p-1): `stream` is e.g. the
    /// training step, so each step samples afresh and a seed reproduces all of them.
    pub seed: u32,
    pub stream: u32,
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

impl Gpt {
    pub async fn sample(&self, e: &Engine, prompts: &[Vec<u32>], spec: &SampleSpec) -> Result<Samples> {
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
        for x in prompts {
            self.check_tokens(x)?;
        }
        self.check_tokens(&[spec.eos, spec.pad])?;
        let (b, c, h, d, v, ctx) = (prompts.len(), cfg.n_embd, cfg.n_head, cfg.head_dim(), cfg.vocab_size, cfg.n_positions);
        let mut init = vec![spec.pad; b * ctx];
        for (r, x) in prompts.iter().enumerate() {
            init[r * ctx..r * ctx + p].copy_from_slice(x);
        }
        let tokens = e.indices(&init);
        let done = e.zeros(b);
        let logprobs = e.zeros(b * ctx);
        let caches: Vec<(Tensor, Tensor)> = (0..cfg.n_layer).map(|_| (e.zeros(b * h * ctx * d), e.zeros(b * h * ctx * d))).collect();
        let z = |len: usize| e.zeros(len);
        let (x, mid, ln, mean, rstd) = ([z(b * c), z(b * c)], z(b * c), z(b * c), z(b), z(b));
        let (qkv, attn, proj, fc, gelu, fc_proj, logits) = (z(3 * b * c), z(b * c), z(b * c), z(4 * b * c), z(4 * b * c), z(b * c), z(b * v));
        let n = b;
        let w = self.named();
        for pos in 0..spec.max_len - 1 {
            e.run(Op::EmbedPosition { b, c, vocab: v, context: ctx, pos }, &[&tokens, w.wte, w.wpe], &[&x[0]])?;
            let mut cur = 0;
            for ((kc, vc), p) in caches.iter().zip(&w.blocks) {
                // One position per row: attend over the cached keys and values of positions 0..=pos.
                let attention = |qkv: &Tensor, attn_out: &Tensor| e.run(Op::CachedAttention { b, h, d, context: ctx, pos }, &[qkv], &[kc, vc, attn_out]);
                let out = super::BlockBuffers {
                    ln1: (&ln, &mean, &rstd),
                    qkv: &qkv,
                    attn_out: &attn,
                    attn_proj: &proj,
                    mid: &mid,
                    ln2: (&ln, &mean, &rstd),
                    fc: &fc,
                    gelu: &gelu,
                    fc_proj: &fc_proj,
                    out: &x[1 - cur],
                };
                super::block_forward(e, p, &x[cur], &out, (n, c), attention)?;
                cur = 1 - cur;
            }
            if pos + 1 < p {
                continue; // still reading the prompt: the caches are filled, nothing to draw
            }
            e.run(Op::LayernormForward { n, c }, &[&x[cur], w.ln_f_weight, w.ln_f_bias], &[&ln, &mean, &rstd])?;
            e.matmul(&ln, w.wte, &logits, MatmulSpec { batch: 1, m: n, n: v, k: c, a_transposed: false, b_transposed: true, accumulate: false })?;
            let op = Op::SampleNext { b, v, context: ctx, pos, temperature: spec.temperature, seed: spec.seed, stream: spec.stream, eos: spec.eos, pad: spec.pad, banned: spec.banned };
            e.run(op, &[&logits], &[&tokens, &done, &logprobs])?;
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

//! Sampling with the KV cache: it must agree with a full forward pass, with itself across backends for a
//! seed, and handle EOS.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alignment_gap::engine::Engine;
use alignment_gap::model::sample::{SampleSpec, Samples};
use alignment_gap::model::{Gpt, GptConfig, Head};

const CONFIG: GptConfig = GptConfig { n_layer: 2, n_embd: 32, n_head: 4, n_positions: 16, vocab_size: 13 };
const EOS: u32 = 1;
const PAD: u32 = 0;

fn prompts() -> Vec<Vec<u32>> {
    (0..6).map(|r| vec![2 + r % 5, 3 + (r * 7) % 9, 4, 5 + r % 3]).collect()
}

fn spec(seed: u32, stream: u32) -> SampleSpec {
    SampleSpec { temperature: 1.0, max_len: 14, seed, stream, row0: 0, eos: EOS, pad: PAD, banned: 0 }
}

/// A model whose samples are varied: init with larger weights than GPT-2's so the distribution is not flat.
fn model(e: &Engine) -> Gpt {
    let mut values = alignment_gap::model::params::init_values(&CONFIG, Head::Lm, 3);
    for v in values.iter_mut() {
        v.iter_mut().for_each(|x| *x *= 4.0);
    }
    Gpt::new(e, CONFIG, Head::Lm, &values).unwrap()
}

fn sample(e: &Engine, seed: u32, stream: u32) -> Samples {
    pollster::block_on(model(e).sample(e, &prompts(), &spec(seed, stream))).unwrap()
}

/// The log-probs recorded while sampling (KV cache, one position at a time) equal those of one full
/// forward pass over the finished sequences.
fn cache_agrees_with_full_forward(e: &Engine) {
    let m = model(e);
    let s = pollster::block_on(m.sample(e, &prompts(), &spec(11, 0))).unwrap();
    let (b, t) = (s.tokens.len(), s.tokens[0].len());
    let flat: Vec<u32> = s.tokens.concat();
    let targets: Vec<u32> = s.tokens.iter().flat_map(|row| row[1..].iter().copied().chain([PAD])).collect();
    let acts = m.activations(e, b, t).unwrap();
    m.forward(e, &acts, &e.indices(&flat)).unwrap();
    m.sequence_logprobs(e, &acts, &e.indices(&targets), &e.tensor(&vec![1.0; b * t])).unwrap();
    let full = pollster::block_on(e.read(&acts.token_logprobs)).unwrap();
    let mut compared = 0;
    for r in 0..b {
        let n = s.response(r, EOS).len();
        for pos in s.prompt_len..s.prompt_len + n {
            let (cached, direct) = (s.logprobs[r][pos], full[r * t + pos - 1]);
            assert!((cached - direct).abs() <= 1e-4 * direct.abs().max(1.0), "row {r} pos {pos}: cache {cached} vs full {direct}");
            compared += 1;
        }
    }
    assert!(compared > 20, "only {compared} sampled positions compared");
}

#[test]
fn cpu_cache_agrees_with_full_forward() {
    cache_agrees_with_full_forward(&Engine::cpu());
}

#[test]
fn gpu_cache_agrees_with_full_forward() {
    let Some(e) = common::gpu() else { return };
    cache_agrees_with_full_forward(&e);
}

#[test]
fn eos_ends_a_response_and_pads_the_rest() {
    let s = sample(&Engine::cpu(), 5, 0);
    let mut ended = 0;
    for (row, prompt) in s.tokens.iter().zip(prompts()) {
        assert_eq!(&row[..4], &prompt[..]);
        if let Some(i) = row[s.prompt_len..].iter().position(|&t| t == EOS) {
            ended += 1;
            assert!(row[s.prompt_len + i + 1..].iter().all(|&t| t == PAD), "{row:?}");
        }
    }
    assert!(ended > 0, "no row drew EOS; the test model needs another seed");
}

#[test]
fn a_seed_reproduces_samples_and_streams_differ() {
    let e = Engine::cpu();
    assert_eq!(sample(&e, 7, 2), sample(&e, 7, 2));
    assert_ne!(sample(&e, 7, 2).tokens, sample(&e, 7, 3).tokens);
    assert_ne!(sample(&e, 7, 2).tokens, sample(&e, 8, 2).tokens);
}

/// The same seed gives the same tokens on the GPU as on the CPU (up to float rounding, which on these
/// inputs changes no draw).
#[test]
fn gpu_samples_equal_cpu_samples() {
    let Some(g) = common::gpu() else { return };
    let (cpu, gpu) = (sample(&Engine::cpu(), 21, 4), sample(&g, 21, 4));
    assert_eq!(cpu.tokens, gpu.tokens);
    for (a, b) in cpu.logprobs.concat().iter().zip(gpu.logprobs.concat()) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn bad_sampling_requests_name_the_problem() {
    let e = Engine::cpu();
    let m = model(&e);
    let bad = |prompts: Vec<Vec<u32>>, spec: SampleSpec| pollster::block_on(m.sample(&e, &prompts, &spec)).unwrap_err().to_string();
    assert!(bad(vec![vec![2; 16]], spec(0, 0)).contains("max_len"));
    assert!(bad(vec![vec![2, 3], vec![2]], spec(0, 0)).contains("equal length"));
    assert!(bad(vec![vec![99]], spec(0, 0)).contains("outside the vocabulary"));
    assert!(bad(vec![vec![2]], SampleSpec { temperature: -1.0, ..spec(0, 0) }).contains("temperature"));
    assert!(bad(vec![vec![2]], SampleSpec { max_len: 17, ..spec(0, 0) }).contains("max_len = 17"));
}

/// Banned tokens (padding, the separator) are never drawn, even where the model puts most of its mass on
/// them, at temperature 1 and greedily, on both backends; their log-prob is still the model's.
fn banned_tokens_are_never_drawn(e: &Engine) {
    use alignment_gap::engine::Op;
    let (b, v, context) = (64, 13, 4);
    // Token 0 and 2 get logit 6, every other token 0 (so each banned token holds ~45 % of the mass).
    let logits: Vec<f32> = (0..b * v).map(|i| if i % v == 0 || i % v == 2 { 6.0 } else { 0.0 }).collect();
    for temperature in [1.0, 0.0] {
        let (tokens, done, lp) = (e.indices(&vec![7; b * context]), e.zeros(b), e.zeros(b * context));
        let op = Op::SampleNext { b, v, context, pos: 0, temperature, seed: 5, stream: 1, row0: 0, eos: EOS, pad: PAD, banned: 1 << 0 | 1 << 2 };
        e.run(op, &[&e.tensor(&logits)], &[&tokens, &done, &lp]).unwrap();
        let drawn: Vec<u32> = pollster::block_on(e.read(&tokens)).unwrap().iter().map(|x| x.to_bits()).collect();
        let firsts: Vec<u32> = (0..b).map(|r| drawn[r * context + 1]).collect();
        assert!(firsts.iter().all(|&t| t != 0 && t != 2 && (t as usize) < v), "temperature {temperature}: {firsts:?}");
        if temperature == 1.0 {
            assert!(firsts.iter().collect::<std::collections::HashSet<_>>().len() > 3, "the draw still varies: {firsts:?}");
        } else {
            assert!(firsts.iter().all(|&t| t == 1), "greedy takes the first allowed maximum: {firsts:?}");
        }
        let lse = (2.0 * 6f32.exp() + (v - 2) as f32).ln();
        let lp = pollster::block_on(e.read(&lp)).unwrap();
        assert!((lp[1] - (0.0 - lse)).abs() < 1e-5, "log-prob under the whole distribution: {}", lp[1]);
    }
    let none_left = Op::SampleNext { b, v: 3, context, pos: 0, temperature: 1.0, seed: 5, stream: 1, row0: 0, eos: 9, pad: PAD, banned: 0b111 };
    let (tokens, done, lp) = (e.indices(&vec![7; b * context]), e.zeros(b), e.zeros(b * context));
    let err = e.run(none_left, &[&e.zeros(b * 3)], &[&tokens, &done, &lp]).unwrap_err();
    assert!(err.message.contains("leaves no token"), "{err}");
}

#[test]
fn cpu_never_draws_banned_tokens() {
    banned_tokens_are_never_drawn(&Engine::cpu());
}

#[test]
fn gpu_never_draws_banned_tokens() {
    let Some(e) = common::gpu() else { return };
    banned_tokens_are_never_drawn(&e);
}

/// IPO-MD's mixture sampling: weight 0 on the reference is the model's own sampling and weight 1 the reference's,
/// token for token; in between it draws from neither alone, and its log-probs are the mixture's (a full forward of
/// both models, logits mixed, gives them back).
fn mixture_ends_are_each_model(e: &Engine) {
    let (m, reference) = (model(e), {
        let mut values = alignment_gap::model::params::init_values(&CONFIG, Head::Lm, 8);
        values.iter_mut().for_each(|v| v.iter_mut().for_each(|x| *x *= 4.0));
        Gpt::new(e, CONFIG, Head::Lm, &values).unwrap()
    });
    let run = |model: &Gpt, mixture: Option<(&Gpt, f32)>| pollster::block_on(model.sample_mixture(e, &prompts(), &spec(5, 2), mixture)).unwrap();
    let (own, other) = (run(&m, None), run(&reference, None));
    assert_eq!(run(&m, Some((&reference, 0.0))), own);
    assert_eq!(run(&m, Some((&reference, 1.0))).tokens, other.tokens);
    let half = run(&m, Some((&reference, 0.5)));
    assert!(half.tokens != own.tokens && half.tokens != other.tokens, "a half mixture follows neither model alone");
    // The recorded log-prob of each drawn token is log softmax((z + z_ref) / 2) at it.
    let (b, t, v) = (prompts().len(), spec(5, 2).max_len, CONFIG.vocab_size);
    let logits = |g: &Gpt| {
        let acts = g.activations(e, b, t).unwrap();
        let tokens: Vec<u32> = half.tokens.concat();
        g.forward(e, &acts, &e.indices(&tokens)).unwrap();
        pollster::block_on(e.read(&acts.logits)).unwrap()
    };
    let (za, zb) = (logits(&m), logits(&reference));
    let p = prompts()[0].len();
    for r in 0..b {
        for pos in p..t {
            let tok = half.tokens[r][pos];
            if tok == PAD {
                break;
            }
            let row = |z: &[f32]| z[(r * t + pos - 1) * v..(r * t + pos) * v].to_vec();
            let mixed: Vec<f32> = row(&za).iter().zip(row(&zb)).map(|(a, b)| 0.5 * a + 0.5 * b).collect();
            let max = mixed.iter().cloned().fold(f32::MIN, f32::max);
            let lse = max + mixed.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
            let want = mixed[tok as usize] - lse;
            assert!((half.logprobs[r][pos] - want).abs() < 1e-4, "row {r} pos {pos}: {} vs {want}", half.logprobs[r][pos]);
        }
    }
    let bad = pollster::block_on(m.sample_mixture(e, &prompts(), &spec(5, 2), Some((&reference, 1.5)))).unwrap_err().to_string();
    assert!(bad.contains("mixture = 1.5"), "{bad}");
}

#[test]
fn cpu_mixture_ends_are_each_model() {
    mixture_ends_are_each_model(&Engine::cpu());
}

#[test]
fn gpu_mixture_ends_are_each_model() {
    let Some(g) = common::gpu() else { return };
    mixture_ends_are_each_model(&g);
}

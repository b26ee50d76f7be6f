//! The CPU engine against PyTorch + transformers, tensor by tensor (llm.c's test_gpt2, in Rust).
//! The fixtures are made by tests/pytorch/make_fixture.py and make_bt_fixture.py (not run by CI); see their
//! docstrings.
#![cfg(not(target_arch = "wasm32"))]

use alignment_gap::engine::{Engine, Packed, Tensor};
use alignment_gap::model::checkpoint::read_all;
use alignment_gap::model::{Activations, Gpt, GptConfig, Head};
use alignment_gap::selfcheck::relative_error;
use alignment_gap::train::optim::{AdamW, AdamwConfig, Schedule};
use std::collections::HashMap;

mod common;

const TOL: f32 = 1e-4;

struct Fixture {
    t: HashMap<String, (Vec<usize>, Vec<f32>)>,
    meta: serde_json::Value,
}

impl Fixture {
    fn load() -> Self {
        Self::load_file("gpt2_tiny.safetensors")
    }
    fn load_file(name: &str) -> Self {
        let bytes = std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (t, meta) = read_all(&bytes).unwrap();
        Fixture { t, meta: serde_json::from_str(&meta["fixture"]).unwrap() }
    }
    fn get(&self, name: &str) -> &[f32] {
        &self.t.get(name).unwrap_or_else(|| panic!("fixture lacks {name}")).1
    }
    fn ids(&self, name: &str) -> Vec<u32> {
        self.get(name).iter().map(|&v| v as u32).collect()
    }
    fn config(&self) -> GptConfig {
        serde_json::from_value(self.meta["config"].clone()).unwrap()
    }
}

/// One forward + backward of the fixture's loss: returns (loss, grads).
struct Batch {
    tokens: Tensor,
    targets: Tensor,
    weights: Tensor,
    dseq: Tensor,
    b: usize,
    t: usize,
}

impl Batch {
    fn new(e: &Engine, f: &Fixture) -> Self {
        let (b, t) = (f.meta["batch"].as_u64().unwrap() as usize, f.meta["seq"].as_u64().unwrap() as usize);
        Batch {
            tokens: e.indices(&f.ids("tokens")),
            targets: e.indices(&f.ids("targets")),
            weights: e.tensor(f.get("weights")),
            // loss = −mean_b seq_logprob[b]  ⇒  d loss / d seq_logprob[b] = −1/B
            dseq: e.tensor(&vec![-1.0 / b as f32; b]),
            b,
            t,
        }
    }

    /// `acts` may be reused across calls, as training does (the backward buffers live in it).
    fn loss_and_grads(&self, e: &Engine, model: &Gpt, acts: &Activations) -> (f32, Vec<f32>, Packed) {
        model.forward(e, acts, &self.tokens).unwrap();
        model.sequence_logprobs(e, acts, &self.targets, &self.weights).unwrap();
        let seq = pollster::block_on(e.read(&acts.sequence_logprobs)).unwrap();
        let loss = -seq.iter().sum::<f32>() / self.b as f32;
        let grads = model.zero_grads(e);
        let batch = alignment_gap::model::TokenBatch { tokens: &self.tokens, targets: &self.targets, weights: &self.weights };
        model.backward(e, acts, &grads, &batch, &self.dseq).unwrap();
        (loss, pollster::block_on(e.read(&acts.logits)).unwrap(), grads)
    }
}

fn model_from_fixture(e: &Engine, f: &Fixture) -> Gpt {
    let config = f.config();
    let infos = alignment_gap::model::param_infos(&config, Head::Lm);
    let values: Vec<Vec<f32>> = infos.iter().map(|i| f.get(&format!("param.{}", i.name)).to_vec()).collect();
    Gpt::new(e, config, Head::Lm, &values).unwrap()
}

fn report(name: &str, got: &[f32], want: &[f32]) -> bool {
    match relative_error(got, want) {
        Some(err) if err <= TOL => {
            println!("OK   {name:<40} max rel err {err:.2e}");
            true
        }
        other => {
            println!("FAIL {name:<40} max rel err {other:?}");
            false
        }
    }
}

fn forward_loss_and_gradients_match_pytorch(e: &Engine) {
    let f = Fixture::load();
    let e = e;
    let model = model_from_fixture(e, &f);
    let batch = Batch::new(e, &f);
    let acts = model.activations(e, batch.b, batch.t).unwrap();
    let (loss, logits, grads) = batch.loss_and_grads(e, &model, &acts);
    let mut ok = report("logits", &logits, f.get("logits"));
    ok &= report("loss", &[loss], f.get("loss"));
    for (info, g) in model.infos.iter().zip(&grads) {
        let got = pollster::block_on(e.read(g)).unwrap();
        ok &= report(&format!("grad {}", info.name), &got, f.get(&format!("grad.{}", info.name)));
    }
    assert!(ok, "some tensors differ from PyTorch by more than {TOL}");
}

fn adamw_trajectory_matches_pytorch(e: &Engine) {
    let f = Fixture::load();
    let e = e;
    let model = model_from_fixture(e, &f);
    let batch = Batch::new(e, &f);
    let o = &f.meta["adamw"];
    let s = &f.meta["schedule"];
    let num = |v: &serde_json::Value| v.as_f64().unwrap() as f32;
    let config = AdamwConfig {
        lr: num(&o["lr"]),
        beta1: num(&o["beta1"]),
        beta2: num(&o["beta2"]),
        eps: num(&o["eps"]),
        weight_decay: num(&o["weight_decay"]),
        max_grad_norm: Some(num(&o["max_grad_norm"])),
    };
    let schedule = Schedule {
        warmup_steps: s["warmup_steps"].as_u64().unwrap() as u32,
        total_steps: s["total_steps"].as_u64().unwrap() as u32,
        min_lr_ratio: num(&s["min_lr_ratio"]),
    };
    let mut opt = AdamW::new(e, &model.infos, config, schedule);
    let acts = model.activations(e, batch.b, batch.t).unwrap();
    let (mut losses, mut norms) = (vec![], vec![]);
    for _ in 0..f.meta["steps"].as_u64().unwrap() {
        let (loss, _, grads) = batch.loss_and_grads(e, &model, &acts);
        opt.step(e, &model.params, &grads).unwrap();
        let stats = pollster::block_on(opt.last_stats(e)).unwrap();
        losses.push(loss);
        norms.push(stats.grad_norm);
    }
    losses.push(batch.loss_and_grads(e, &model, &acts).0);
    println!("loss trajectory: {losses:?}");
    let ok = report("grad norm per step", &norms, f.get("trajectory.grad_norm")) & report("loss per step", &losses, f.get("trajectory.loss"));
    for (i, (g, w)) in losses.iter().zip(f.get("trajectory.loss")).enumerate() {
        assert!(((g - w) / w).abs() <= TOL, "step {i}: loss {g} vs PyTorch {w}");
    }
    assert!(ok);
}

#[test]
fn cpu_forward_loss_and_gradients_match_pytorch() {
    forward_loss_and_gradients_match_pytorch(&Engine::cpu());
}

#[test]
fn cpu_adamw_trajectory_matches_pytorch() {
    adamw_trajectory_matches_pytorch(&Engine::cpu());
}

/// The whole model on WGSL (every kernel, composed) against the same PyTorch reference.
#[test]
fn gpu_forward_loss_and_gradients_match_pytorch() {
    let Some(e) = common::gpu() else { return };
    forward_loss_and_gradients_match_pytorch(&e);
}

#[test]
fn gpu_adamw_trajectory_matches_pytorch() {
    let Some(e) = common::gpu() else { return };
    adamw_trajectory_matches_pytorch(&e);
}

/// The preference-model head (GPT2ForSequenceClassification, one label): scores and every gradient.
fn preference_model_matches_pytorch(e: &Engine) {
    let f = Fixture::load();
    let config = f.config();
    let infos = alignment_gap::model::param_infos(&config, Head::Score);
    let values: Vec<Vec<f32>> = infos.iter().map(|i| f.get(&format!("pm.param.{}", i.name)).to_vec()).collect();
    let model = Gpt::new(e, config, Head::Score, &values).unwrap();
    let b = f.get("pm.last").len();
    let tokens = f.ids("pm.tokens");
    let t = tokens.len() / b;
    let (tok, last) = (e.indices(&tokens), e.indices(&f.ids("pm.last")));
    let acts = model.activations(e, b, t).unwrap();
    model.forward(e, &acts, &tok).unwrap();
    model.score(e, &acts, &last).unwrap();
    let scores = pollster::block_on(e.read(&acts.scores)).unwrap();
    let grads = model.zero_grads(e);
    // loss = Σ_b coef[b]·score[b]  ⇒  d loss / d score = coef
    model.backward_score(e, &acts, &grads, &tok, &last, &e.tensor(f.get("pm.coef"))).unwrap();
    let mut ok = report("pm scores", &scores, f.get("pm.scores"));
    for (info, g) in model.infos.iter().zip(&grads) {
        let got = pollster::block_on(e.read(g)).unwrap();
        ok &= report(&format!("pm grad {}", info.name), &got, f.get(&format!("pm.grad.{}", info.name)));
    }
    assert!(ok, "some preference-model tensors differ from PyTorch by more than {TOL}");
}

#[test]
fn cpu_preference_model_matches_pytorch() {
    preference_model_matches_pytorch(&Engine::cpu());
}

#[test]
fn gpu_preference_model_matches_pytorch() {
    let Some(e) = common::gpu() else { return };
    preference_model_matches_pytorch(&e);
}

/// The Bradley–Terry proxy's training loss and every gradient, for both score reads, from the raw prompts and
/// responses: the Rust packing of rows (x, y) and their spans, the summed or last-token read, the chain rule
/// from z = s_w − s_l through both responses, and the model, against make_bt_fixture.py's PyTorch.
fn bradley_terry_proxy_matches_pytorch(e: &Engine) {
    use alignment_gap::task::TaskConfig;
    use alignment_gap::train::pm::{Proxy, ProxyForm, ProxyKind, ScoreRead, Scorer};
    let f = Fixture::load_file("bt_proxy.safetensors");
    let num = |k: &str| f.meta["task"][k].as_u64().unwrap() as usize;
    let task = TaskConfig { vocab_words: num("vocab_words"), key_words: num("key_words"), doc_len: num("doc_len"), max_summary: num("max_summary"), ..TaskConfig::default() };
    let config = f.config();
    assert_eq!((config.n_positions, config.vocab_size), (task.context(), task.vocab_size()), "the fixture's model fits its task");
    let b = f.meta["pairs"].as_u64().unwrap() as usize;
    // Responses are padded with −1 in the fixture; the prompts are all doc_len words and <sep>.
    let rows_of = |name: &str, width: usize| -> Vec<Vec<u32>> { f.get(name).chunks(width).map(|r| r.iter().take_while(|&&v| v >= 0.0).map(|&v| v as u32).collect()).collect() };
    let (prompts, w, l) = (rows_of("prompts", task.prompt_len()), rows_of("winners", task.max_summary), rows_of("losers", task.max_summary));
    assert_eq!((prompts.len(), w.len(), l.len()), (b, b, b));
    let infos = alignment_gap::model::param_infos(&config, Head::Score);
    let values: Vec<Vec<f32>> = infos.iter().map(|i| f.get(&format!("param.{}", i.name)).to_vec()).collect();
    let mut ok = true;
    for (read, score) in [("summed", ScoreRead::Summed), ("last", ScoreRead::Last)] {
        let proxy = Proxy { model: Gpt::new(e, config, Head::Score, &values).unwrap(), form: ProxyForm { kind: ProxyKind::BradleyTerry, separator: false, score } };
        let scorer = Scorer::new(e, &proxy, &task, 2 * b).unwrap();
        let grads = proxy.model.zero_grads(e);
        Gpt::clear_grads(e, &grads).unwrap();
        let loss = pollster::block_on(scorer.train_batch(e, &grads, &task, &prompts, &w, &l)).unwrap();
        ok &= report(&format!("bt {read} loss"), &[loss], f.get(&format!("{read}.loss")));
        // With a last-token read each row adds its score's gradient to ln_f's bias through the same head
        // vector, and a pair's two rows add +d and −d: that gradient is exactly 0 in PyTorch and rounding in
        // f32 here, so an all-zero reference is held to TOL of the read's largest gradient instead.
        let largest = proxy.model.infos.iter().flat_map(|i| f.get(&format!("{read}.grad.{}", i.name))).fold(0f32, |m, v| m.max(v.abs()));
        for (info, g) in proxy.model.infos.iter().zip(&grads) {
            let got = pollster::block_on(e.read(g)).unwrap();
            let name = format!("bt {read} grad {}", info.name);
            let want = f.get(&format!("{read}.grad.{}", info.name));
            if want.iter().all(|&v| v == 0.0) {
                let err = got.iter().fold(0f32, |m, v| m.max(v.abs())) / largest;
                println!("{}  {name:<40} exactly 0 in PyTorch; max |got| / largest gradient {err:.2e}", if err <= TOL { "OK " } else { "FAIL" });
                ok &= err <= TOL;
            } else {
                ok &= report(&name, &got, want);
            }
        }
    }
    assert!(ok, "some Bradley–Terry proxy tensors differ from PyTorch by more than {TOL}");
}

#[test]
fn cpu_bradley_terry_proxy_matches_pytorch() {
    bradley_terry_proxy_matches_pytorch(&Engine::cpu());
}

#[test]
fn gpu_bradley_terry_proxy_matches_pytorch() {
    let Some(e) = common::gpu() else { return };
    bradley_terry_proxy_matches_pytorch(&e);
}

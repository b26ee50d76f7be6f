//! Native kernel tests: every WGSL kernel against its CPU twin on a real adapter (lavapipe on CI), and the
//! CPU twins against a naive f64 loop. Run with `cargo test`; output per check with `-- --nocapture`.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use alignment_gap::engine::{Engine, MatmulSpec};
use common::gpu;
use alignment_gap::rng::uniform_vec;
use alignment_gap::selfcheck::{self, relative_error, SelfCheckReport};

fn print(report: &SelfCheckReport) {
    println!("{}", report.engine);
    for r in &report.results {
        let err = r.relative_error.map(|e| format!("{e:.2e}")).unwrap_or_else(|| "-".into());
        println!("  {} {:<36} {err:>9} {}", if r.passed { "OK  " } else { "FAIL" }, r.name, r.message.as_deref().unwrap_or(""));
    }
}

#[test]
fn gpu_kernels_match_cpu_twins() {
    let Some(engine) = gpu() else { return };
    let report = pollster::block_on(selfcheck::run(&engine));
    print(&report);
    assert!(report.results.len() >= 30);
    assert_eq!(report.failed, 0, "{}", report.summary_line());
}

#[test]
fn cpu_twins_match_naive_reference() {
    let report = pollster::block_on(selfcheck::run(&Engine::cpu()));
    print(&report);
    assert_eq!(report.failed, 0, "{}", report.summary_line());
}

/// The checker itself must be able to fail: a NaN left in the output, or a wrong value, is caught.
#[test]
fn checker_catches_unwritten_and_wrong_outputs() {
    let want = [1.0, -2.0, 3.0];
    assert_eq!(relative_error(&[1.0, f32::NAN, 3.0], &want), None);
    assert!(relative_error(&[1.0, -2.0, 3.01], &want).unwrap() > selfcheck::TOLERANCE);
    assert_eq!(relative_error(&want, &want), Some(0.0));
}

/// More rows than one dispatch dimension holds (65535): the softmax continues in the y dimension.
#[test]
fn gpu_softmax_beyond_one_dispatch_dimension() {
    let Some(engine) = gpu() else { return };
    let (rows, cols) = (70_001, 3);
    let x = uniform_vec(5, 0, rows * cols, -4.0, 4.0);
    let (tx, ty) = (engine.tensor(&x), engine.tensor(&vec![f32::NAN; x.len()]));
    engine.softmax_rows(&tx, &ty, rows, cols).unwrap();
    let got = pollster::block_on(engine.read(&ty)).unwrap();
    let err = relative_error(&got, &selfcheck::naive_softmax(&x, cols)).expect("every row written");
    assert!(err < 1e-5, "relative error {err}");
}

/// A transformer-sized product on the GPU, beyond the self-check's small shapes.
#[test]
fn gpu_matmul_at_model_scale() {
    let Some(engine) = gpu() else { return };
    let spec = MatmulSpec { batch: 1, m: 130, n: 192, k: 64, a_transposed: false, b_transposed: false, accumulate: false };
    let a = uniform_vec(1, 0, spec.a_len(), -1.0, 1.0);
    let b = uniform_vec(1, 1, spec.b_len(), -1.0, 1.0);
    let (ta, tb, tc) = (engine.tensor(&a), engine.tensor(&b), engine.tensor(&vec![f32::NAN; spec.c_len()]));
    engine.matmul(&ta, &tb, &tc, spec).unwrap();
    let got = pollster::block_on(engine.read(&tc)).unwrap();
    let err = relative_error(&got, &selfcheck::naive_matmul(&a, &b, &[], spec)).expect("every element written");
    assert!(err < 1e-5, "relative error {err}");
}

#[test]
fn shape_errors_name_the_tensor() {
    let engine = Engine::cpu();
    let spec = MatmulSpec::new(2, 3, 4);
    let (a, b, c) = (engine.zeros(8), engine.zeros(11), engine.zeros(6));
    let err = engine.matmul(&a, &b, &c, spec).unwrap_err().to_string();
    assert!(err.contains("B holds 11 values") && err.contains("exactly 12"), "{err}");
    let err = engine.softmax_rows(&a, &c, 2, 4).unwrap_err().to_string();
    assert!(err.contains("softmax_rows") && err.contains("rows: 2, cols: 4") && err.contains("exactly 8"), "{err}");
    let err = engine.matmul(&a, &a, &a, MatmulSpec::new(0, 1, 1)).unwrap_err().to_string();
    assert!(err.contains("≥ 1"), "{err}");
}

#[test]
fn tensors_of_the_other_backend_are_refused() {
    let Some(engine) = gpu() else { return };
    let cpu = Engine::cpu();
    let (a, b) = (cpu.zeros(4), engine.zeros(4));
    let err = engine.softmax_rows(&a, &b, 2, 2).unwrap_err().to_string();
    assert!(err.contains("other backend"), "{err}");
}

/// Parameters packed in one buffer (the GPU's flat layout): every part reads back as given, and an AdamW
/// step by segment (two dispatches for Σg², two for the update) leaves every parameter and moment exactly
/// where a step tensor by tensor does, weight decay included, and the gaps between parts at zero.
fn slices(v: &[Vec<f32>]) -> Vec<&[f32]> {
    v.iter().map(|x| x.as_slice()).collect()
}

#[test]
fn gpu_packed_parameters_step_like_separate_tensors() {
    use alignment_gap::engine::Packed;
    use alignment_gap::model::{param_infos, params::segments, Head};
    use alignment_gap::train::optim::{AdamW, AdamwConfig, Schedule};
    let Some(e) = gpu() else { return };
    let cfg = alignment_gap::model::GptConfig { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 8, vocab_size: 11 };
    let infos = param_infos(&cfg, Head::Score);
    let draw = |stream: u32| -> Vec<Vec<f32>> { infos.iter().enumerate().map(|(i, p)| uniform_vec(stream, i as u32, p.len(), -1.0, 1.0)).collect() };
    let (values, grads) = (draw(1), draw(2));
    let packed = e.pack(&slices(&values), &segments(&infos));
    assert_eq!(packed.segments.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![0, 1], "weights and the rest, each in one view");
    for (part, want) in packed.iter().zip(&values) {
        assert_eq!(&pollster::block_on(e.read(part)).unwrap(), want);
    }
    let separate = |v: &[Vec<f32>]| Packed { parts: v.iter().map(|x| e.tensor(x)).collect(), segment_of: segments(&infos), segments: Vec::new() };
    let config = AdamwConfig { lr: 1e-2, weight_decay: 0.1, max_grad_norm: None, ..AdamwConfig::default() };
    let run = |params: &Packed, grads: &Packed| {
        let mut opt = AdamW::new(&e, &infos, config, Schedule::constant());
        let mut norms = vec![];
        for _ in 0..3 {
            opt.step(&e, params, grads).unwrap();
            norms.push(pollster::block_on(opt.last_stats(&e)).unwrap().grad_norm);
        }
        let (m, v) = pollster::block_on(opt.moments(&e)).unwrap();
        let p: Vec<Vec<f32>> = params.iter().map(|t| pollster::block_on(e.read(t)).unwrap()).collect();
        (p, m, v, norms)
    };
    let (p1, m1, v1, n1) = run(&packed, &e.pack(&slices(&grads), &segments(&infos)));
    let (p2, m2, v2, n2) = run(&separate(&values), &separate(&grads));
    assert_eq!((p1, m1, v1), (p2, m2, v2));
    assert_ne!(values, pollster::block_on(async { let mut out = vec![]; for t in packed.iter() { out.push(e.read(t).await.unwrap()) } out }), "the step moved the parameters");
    for (a, b) in n1.iter().zip(&n2) {
        assert!((a - b).abs() <= 1e-5 * b, "gradient norm {a} by segment, {b} by tensor");
    }
    // Gaps still zero: each segment's Σx² is its parts' Σx².
    let sum_sq = |x: &[f32]| x.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
    for (segment, whole) in &packed.segments {
        let parts: f64 = packed.iter().zip(segments(&infos)).filter(|(_, s)| s == segment).map(|(t, _)| sum_sq(&pollster::block_on(e.read(t)).unwrap())).sum();
        let all = sum_sq(&pollster::block_on(e.read(whole)).unwrap());
        assert!((all - parts).abs() <= 1e-9 * parts, "segment {segment}: Σx² {all} over the view, {parts} over its parts");
    }
}

/// A readback from a device that was lost fails as `ErrorKind::GpuLost` (what the page goes on on the CPU after),
/// and a readback that merely fails does not claim to be one.
#[test]
fn a_lost_device_is_told_apart_by_its_kind() {
    use alignment_gap::error::ErrorKind;
    let Some(e) = gpu() else { return };
    let t = e.tensor(&[1.0, 2.0, 3.0]);
    assert_eq!(pollster::block_on(e.read(&t)).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(pollster::block_on(e.read(&Engine::cpu().tensor(&[1.0]))).unwrap_err().kind, ErrorKind::Failed, "a CPU tensor on the GPU");
    let Engine::Gpu(g) = &e else { unreachable!() };
    g.lose_device();
    let err = pollster::block_on(e.read(&t)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::GpuLost, "{err}");
}

/// A GPU training step is recorded once and replayed: after the first step a step makes no uniform block or bind
/// group but AdamW's (its learning rate and bias corrections change every step), submits once and reads back
/// once, at its end (its loss: the clip factor is computed and read on the device). Two runs from one init end
/// bit-identical, and equal to the CPU's run within rounding.
#[test]
fn a_gpu_training_step_is_recorded_once_and_replayed() {
    use alignment_gap::model::{Gpt, GptConfig, Head, TokenBatch};
    use alignment_gap::train::optim::{AdamW, AdamwConfig, Schedule};
    let Some(gpu) = gpu() else { return };
    let cfg = GptConfig { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 8, vocab_size: 11 };
    let (b, t) = (3, 8);
    let ids: Vec<u32> = (0..b * t).map(|i| (i * 7 % 11) as u32).collect();
    let targets: Vec<u32> = (0..b * t).map(|i| ids[(i + 1) % (b * t)]).collect();
    let weights: Vec<f32> = (0..b * t).map(|i| if i % t >= 2 { 1.0 } else { 0.0 }).collect();
    // Clipping on (the default max norm 1 is reached at this init), a warm-up so the learning rate moves.
    let train = |e: &Engine, steps: usize, mut after_step: Box<dyn FnMut(usize) + '_>| -> Vec<Vec<f32>> {
        let model = Gpt::init(e, cfg, Head::Lm, 3).unwrap();
        let acts = model.activations(e, b, t).unwrap();
        let grads = model.zero_grads(e);
        let mut opt = AdamW::new(e, &model.infos, AdamwConfig { lr: 1e-2, weight_decay: 0.1, ..AdamwConfig::default() }, Schedule { warmup_steps: 2, total_steps: steps as u32, min_lr_ratio: 0.1 });
        let (tokens, targets, weights, dseq) = (e.indices(&ids), e.indices(&targets), e.tensor(&weights), e.tensor(&vec![-1.0 / b as f32; b]));
        for step in 0..steps {
            Gpt::clear_grads(e, &grads).unwrap();
            model.forward(e, &acts, &tokens).unwrap();
            model.sequence_logprobs(e, &acts, &targets, &weights).unwrap();
            model.backward(e, &acts, &grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &dseq).unwrap();
            opt.step(e, &model.params, &grads).unwrap();
            pollster::block_on(e.read(&acts.sequence_logprobs)).unwrap();
            after_step(step);
        }
        assert!(pollster::block_on(opt.last_stats(e)).unwrap().grad_norm > 1.0, "the test clips");
        pollster::block_on(model.values(e)).unwrap()
    };
    let Engine::Gpu(g) = &gpu else { unreachable!() };
    let mut at = vec![];
    let first = train(&gpu, 5, Box::new(|_| at.push(g.counters())));
    for w in at[1..].windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!((b.submits - a.submits, b.readbacks - a.readbacks), (1, 1), "one submit and one readback per step");
        assert!(b.uniforms_created - a.uniforms_created <= 2, "only AdamW's uniforms are new: {}", b.uniforms_created - a.uniforms_created);
        assert_eq!(b.bind_groups_created - a.bind_groups_created, b.uniforms_created - a.uniforms_created, "a bind group is new only where its uniform is");
        // Fused attention, epilogues and one-dispatch LayerNorm backward (issue 28): a 2-layer step in ≤ 60.
        assert!(b.dispatches - a.dispatches <= 60, "{} dispatches in a 2-layer step", b.dispatches - a.dispatches);
    }
    let again = train(&gpu, 5, Box::new(|_| {}));
    assert_eq!(first, again, "two GPU runs from one init differ");
    let cpu = train(&Engine::cpu(), 5, Box::new(|_| {}));
    for (i, (x, y)) in first.iter().zip(&cpu).enumerate() {
        for (u, v) in x.iter().zip(y) {
            assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "tensor {i}: GPU {u} vs CPU {v}");
        }
    }
}

/// A weight gradient's product (xᵀ·dy, few tiles, k = B·T) split along k: the same bits every run, and the same
/// values as one pass and the CPU twin up to rounding.
#[test]
fn gpu_split_k_is_deterministic_and_matches_one_pass() {
    use alignment_gap::engine::kernels::matmul::k_splits;
    let Some(e) = gpu() else { return };
    let Engine::Gpu(g) = &e else { unreachable!() };
    let spec = MatmulSpec { batch: 1, m: 64, n: 192, k: 4096, a_transposed: true, b_transposed: false, accumulate: true };
    assert_eq!(k_splits(&spec), 16, "12 tiles, split 16 ways: 192 workgroups of k 256");
    let a = uniform_vec(5, 1, spec.a_len(), -1.0, 1.0);
    let b = uniform_vec(5, 2, spec.b_len(), -1.0, 1.0);
    let c0 = uniform_vec(5, 3, spec.c_len(), -1.0, 1.0);
    let product = |split: bool| {
        g.set_splits_k(split);
        let (ta, tb, tc) = (e.tensor(&a), e.tensor(&b), e.tensor(&c0));
        e.matmul(&ta, &tb, &tc, spec).unwrap();
        pollster::block_on(e.read(&tc)).unwrap()
    };
    let (split, again, one_pass) = (product(true), product(true), product(false));
    assert_eq!(split, again, "split-K differs run to run");
    let cpu = Engine::cpu();
    let tc = cpu.tensor(&c0);
    cpu.matmul(&cpu.tensor(&a), &cpu.tensor(&b), &tc, spec).unwrap();
    let want = pollster::block_on(cpu.read(&tc)).unwrap();
    for (name, got) in [("split-K", &split), ("one pass", &one_pass)] {
        let err = alignment_gap::selfcheck::relative_error(got, &want).unwrap();
        assert!(err < 1e-5, "{name}: relative error {err:e} against the CPU twin");
    }
    assert_ne!(split, one_pass, "the two passes sum in another order (so the test compares two kernels)");
}

/// The tiled matmul (workgroup memory, the hardware GPUs' kernel) against the CPU twin on a step's shapes, ragged
/// edges, transposes, batches and split-K, on whatever adapter the tests have (lavapipe here, where it is not the
/// default): the same values up to rounding, and the same bits on a second run.
#[test]
fn gpu_tiled_matmul_matches_the_cpu_twin_on_step_shapes() {
    let Some(e) = gpu() else { return };
    let Engine::Gpu(g) = &e else { unreachable!() };
    let (tiled, split) = (g.tiled_matmul(), g.splits_k());
    let specs = [
        MatmulSpec { batch: 1, m: 4096 / 8, n: 192, k: 64, a_transposed: false, b_transposed: false, accumulate: false },
        MatmulSpec { batch: 1, m: 64, n: 192, k: 4096 / 8, a_transposed: true, b_transposed: false, accumulate: true },
        MatmulSpec { batch: 1, m: 100, n: 44, k: 70, a_transposed: false, b_transposed: true, accumulate: false },
        MatmulSpec { batch: 6, m: 32, n: 32, k: 16, a_transposed: false, b_transposed: true, accumulate: false },
        MatmulSpec { batch: 1, m: 1, n: 65, k: 17, a_transposed: true, b_transposed: true, accumulate: true },
    ];
    let cpu = Engine::cpu();
    for spec in specs {
        let a = uniform_vec(9, 1, spec.a_len(), -1.0, 1.0);
        let b = uniform_vec(9, 2, spec.b_len(), -1.0, 1.0);
        let c0 = uniform_vec(9, 3, spec.c_len(), -1.0, 1.0);
        let tc = cpu.tensor(&c0);
        cpu.matmul(&cpu.tensor(&a), &cpu.tensor(&b), &tc, spec).unwrap();
        let want = pollster::block_on(cpu.read(&tc)).unwrap();
        for split_k in [false, true] {
            g.set_tiled_matmul(true);
            g.set_splits_k(split_k);
            let product = || {
                let (ta, tb, tc) = (e.tensor(&a), e.tensor(&b), e.tensor(&c0));
                e.matmul(&ta, &tb, &tc, spec).unwrap();
                pollster::block_on(e.read(&tc)).unwrap()
            };
            let (got, again) = (product(), product());
            g.set_tiled_matmul(tiled);
            g.set_splits_k(split);
            assert_eq!(got, again, "{spec:?}: the tiled kernel differs run to run");
            let err = alignment_gap::selfcheck::relative_error(&got, &want).unwrap_or(f32::INFINITY);
            assert!(err < 1e-5, "{spec:?} (split-K {split_k}): relative error {err:e} against the CPU twin");
        }
    }
}

/// The SFT loop writes each step's batch into the same buffers: after its first step a step makes no bind group
/// but AdamW's (whose uniform changes every step), and reads back once.
#[test]
fn gpu_sft_steps_reuse_their_bind_groups() {
    use alignment_gap::model::GptConfig;
    use alignment_gap::task::TaskConfig;
    use alignment_gap::train::sft::{train_sft, SftConfig};
    let Some(e) = gpu() else { return };
    let Engine::Gpu(g) = &e else { unreachable!() };
    let task = TaskConfig::default();
    let cfg = GptConfig { n_layer: 1, n_embd: 16, n_head: 2, n_positions: task.context(), vocab_size: task.vocab_size() };
    let mut at = vec![];
    pollster::block_on(train_sft(&e, &task, cfg, &SftConfig { steps: 5, batch: 4, ..SftConfig::default() }, 0, |_, _| at.push(g.counters()))).unwrap();
    for w in at[1..].windows(2) {
        let (a, b) = (w[0], w[1]);
        assert_eq!(b.readbacks - a.readbacks, 1, "one readback per SFT step");
        assert!(b.bind_groups_created - a.bind_groups_created <= 2, "a step made {} bind groups", b.bind_groups_created - a.bind_groups_created);
    }
}

/// The in-step profile (GPU timestamps at each op's pass, nothing waiting between ops) times the same ops, with the
/// same calls, as the profile that runs each op to completion; every time is finite and the step's is positive.
#[test]
fn ops_are_timed_inside_the_step_by_gpu_timestamps() {
    use alignment_gap::bench;
    use alignment_gap::engine::profile::OpTime;
    let Some(gpu) = gpu() else { return };
    let Engine::Gpu(g) = &gpu else { unreachable!() };
    let whole = pollster::block_on(bench::profile_size(&gpu, 1, 16, 2, 1)).unwrap();
    let Some(in_step) = pollster::block_on(bench::profile_size_in_step(&gpu, 1, 16, 2, 1)).unwrap() else {
        assert!(!g.adapter.timestamps, "an adapter with timestamps gives the in-step profile");
        return;
    };
    let calls = |times: &[OpTime]| {
        let mut v: Vec<(&str, u64)> = times.iter().map(|t| (t.name, t.calls)).collect();
        v.sort();
        v
    };
    assert_eq!(calls(&whole), calls(&in_step));
    assert!(in_step.iter().all(|t| t.seconds.is_finite() && t.seconds >= 0.0), "{in_step:?}");
    assert!(in_step.iter().map(|t| t.seconds).sum::<f64>() > 0.0, "{in_step:?}");
}

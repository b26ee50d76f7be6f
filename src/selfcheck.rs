//! Kernel self-checks: every op run on the engine under test against a reference, on random inputs of
//! awkward shapes (1×N, N×1, sizes that are no multiple of any tile), with the output poisoned by NaN
//! so an element a kernel forgets to write fails the check.
//!
//! On the GPU the reference is the CPU twin; on the CPU backend it is a naive f64 loop. `doctor`, the
//! page's device panel, and the native and browser tests all run this same list.

use crate::engine::{gpu::AdapterSummary, kernels, AdapterRequest, BackendChoice, Engine, MatmulSpec, Op};
use crate::error::Result;
use crate::rng::uniform_vec;
use serde::Serialize;

/// Largest tolerated max|got − want| / max|want| (f32 accumulation over ≤ a few hundred terms).
pub const TOLERANCE: f32 = 1e-4;

#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub reference: String,
    /// max|got − want| / max|want|; None when the op itself failed.
    pub relative_error: Option<f32>,
    pub passed: bool,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SelfCheckReport {
    pub engine: String,
    pub passed: usize,
    pub failed: usize,
    pub results: Vec<CheckResult>,
}

impl SelfCheckReport {
    pub fn summary_line(&self) -> String {
        format!("self-check: {} passed, {} failed", self.passed, self.failed)
    }
}

/// One op on fixed random inputs. `outs` are the outputs' starting contents: NaN where the op overwrites
/// (an unwritten element stays NaN), random where it accumulates (an unwritten element keeps its start).
struct Case {
    name: String,
    op: Op,
    ins: Vec<Vec<f32>>,
    outs: Vec<Vec<f32>>,
}

fn random(seed: u32, stream: u32, len: usize, scale: f32) -> Vec<f32> {
    uniform_vec(seed, stream, len, -scale, scale)
}

/// Token ids in 0..vocab, as the u32 bit patterns index tensors hold.
fn random_ids(seed: u32, len: usize, vocab: usize) -> Vec<f32> {
    (0..len).map(|i| f32::from_bits((crate::rng::uniform(seed, 9, 0, i as u32) * vocab as f32) as u32 % vocab as u32)).collect()
}

/// Builds a case from the op: inputs random, outputs poisoned or random as the op needs.
fn case(name: String, op: Op, seed: u32) -> Case {
    let (in_lens, out_lens) = op.lengths();
    let ids_at: &[usize] = match op {
        Op::EmbedForward { .. } => &[0],
        Op::EmbedBackward { .. } => &[1],
        Op::TokenLogprobs { .. } => &[1],
        Op::TokenLogprobsBackward { .. } => &[2],
        Op::ScoreHead { .. } => &[1],
        Op::EmbedPosition { .. } => &[0],
        Op::ScoreHeadBackward { .. } => &[2],
        _ => &[],
    };
    let vocab = match op {
        Op::EmbedForward { vocab, .. } | Op::EmbedBackward { vocab, .. } => vocab,
        Op::TokenLogprobs { v, .. } | Op::TokenLogprobsBackward { v, .. } => v,
        // "last token" indices must lie inside each sequence
        Op::ScoreHead { t, .. } | Op::ScoreHeadBackward { t, .. } => t,
        Op::EmbedPosition { vocab, .. } => vocab,
        _ => 0,
    };
    let ins = in_lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            if ids_at.contains(&i) {
                random_ids(seed, len, vocab)
            } else if matches!(op, Op::LayernormBackward { .. }) && i == 4 {
                uniform_vec(seed, i as u32, len, 0.5, 2.0) // rstd > 0
            } else if matches!(op, Op::ClipScale { .. }) {
                uniform_vec(seed, i as u32, len, 0.0, 4.0) // squared norms ≥ 0
            } else if let (Op::AttentionBackward { t, scale, .. }, 2) = (op, i) {
                // att: a real causal softmax, so the backward sees consistent inputs
                let mut att = vec![0.0; len];
                kernels::attention::causal_softmax_forward(&mut att, &random(seed, 7, len, 3.0), t, scale);
                att
            } else {
                random(seed, i as u32, len, if matches!(op, Op::SoftmaxRows { .. }) { 5.0 } else { 2.0 })
            }
        })
        .collect();
    let accumulates = matches!(
        op,
        Op::Zero { .. } | Op::SumSquares { .. } | Op::EmbedBackward { .. } | Op::ScoreHeadBackward { .. } | Op::LayernormBackward { .. } | Op::AddInto { .. } | Op::Adamw { .. }
    ) || matches!(op, Op::Matmul(s) | Op::MatmulThen(s, _) if s.accumulate);
    let outs = out_lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            if let Op::SampleNext { b, context, pos, .. } = op {
                // tokens keep their earlier positions; rows 0 and 2 of 4 are already done
                return match i {
                    0 => (0..len).map(|j| f32::from_bits(if j % context <= pos { (j % 7) as u32 } else { 0xFFFF })).collect(),
                    1 => (0..b).map(|r| if r % 2 == 0 { 1.0 } else { 0.0 }).collect(),
                    _ => vec![0.5; len],
                };
            }
            if matches!(op, Op::CachedAttention { .. }) && i < 2 {
                return random(seed, 20 + i as u32, len, 1.0); // earlier positions of the caches
            }
            if !accumulates {
                vec![f32::NAN; len]
            } else if matches!(op, Op::Adamw { .. }) && i == 2 {
                uniform_vec(seed, 20 + i as u32, len, 0.0, 0.01) // second moment ≥ 0
            } else {
                random(seed, 20 + i as u32, len, 1.0)
            }
        })
        .collect();
    Case { name, op, ins, outs }
}

fn matmul_name(s: &MatmulSpec) -> String {
    format!(
        "matmul{} {}{} {}x{}x{}{}",
        if s.batch > 1 { format!(" batch {}", s.batch) } else { String::new() },
        if s.a_transposed { "T" } else { "N" },
        if s.b_transposed { "T" } else { "N" },
        s.m, s.n, s.k,
        if s.accumulate { " +=" } else { "" },
    )
}

/// The list every self-check runs, small enough for a software adapter in a browser: each kernel
/// family's cases (`engine::kernels::<family>::selfcheck_ops`), model ops at a deliberately awkward size
/// (B 3, T 7, C 12, H 3 (D 4), V 29: no multiple of a tile or workgroup size).
fn cases() -> Vec<Case> {
    let shape = kernels::CheckShape { b: 3, t: 7, c: 12, h: 3, v: 29 };
    let kernels::CheckShape { b, t, c, h, v } = shape;
    kernels::selfcheck_ops(&shape)
        .into_iter()
        .enumerate()
        .map(|(i, op)| {
            let name = match op {
                Op::Matmul(s) => matmul_name(&s),
                Op::MatmulThen(s, _) => matmul_name(&s).replacen("matmul", op.name(), 1),
                Op::SoftmaxRows { rows, cols } => format!("softmax_rows {rows}x{cols}"),
                Op::EmbedPosition { pos, .. } | Op::CachedAttention { pos, .. } => format!("{} (B{b} T{t} C{c} H{h} V{v}) pos {pos}", op.name()),
                Op::SampleNext { pos, temperature, row0, .. } => {
                    let part = if row0 > 0 { format!(", rows from {row0}") } else { String::new() };
                    format!("{} (B{b} T{t} C{c} H{h} V{v}) pos {pos}, temperature {temperature}{part}", op.name())
                }
                Op::ClipScale { slots, max_norm } => format!("clip_scale {slots} slots, max_norm {max_norm:?}"),
                Op::PairLoss { pairs, loss, beta } => format!("pair_loss {}, {pairs} pairs, β {beta}", loss.name()),
                Op::PreferenceLoss { pairs, kind } => format!("preference_loss {kind:?}, {pairs} pairs"),
                _ => format!("{} (B{b} T{t} C{c} H{h} V{v})", op.name()),
            };
            case(name, op, 1000 + i as u32)
        })
        .collect()
}

/// max|got − want| / max|want|, or None if `got` holds a non-finite value (a poisoned, unwritten slot).
pub fn relative_error(got: &[f32], want: &[f32]) -> Option<f32> {
    if got.len() != want.len() || got.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    let diff = got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    Some(diff / scale)
}

/// Plain triple loop in f64: the reference for the CPU twin itself.
pub fn naive_matmul(a: &[f32], b: &[f32], c_in: &[f32], s: MatmulSpec) -> Vec<f32> {
    let (ar, ac) = s.a_strides();
    let (br, bc) = s.b_strides();
    let mut c = vec![0f32; s.c_len()];
    for t in 0..s.batch {
        for i in 0..s.m {
            for j in 0..s.n {
                let mut acc = 0f64;
                for l in 0..s.k {
                    acc += a[t * s.m * s.k + i * ar + l * ac] as f64 * b[t * s.k * s.n + l * br + j * bc] as f64;
                }
                let idx = t * s.m * s.n + i * s.n + j;
                c[idx] = if s.accumulate { (c_in[idx] as f64 + acc) as f32 } else { acc as f32 };
            }
        }
    }
    c
}

pub fn naive_softmax(x: &[f32], cols: usize) -> Vec<f32> {
    x.chunks(cols)
        .flat_map(|r| {
            let m = r.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let e: Vec<f64> = r.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| (v / s) as f32)
        })
        .collect()
}

/// The reference outputs of a case: the CPU twin for a GPU engine; for the CPU engine a naive f64 loop
/// where one exists (other CPU twins are checked against PyTorch by the fixture test instead).
fn reference(engine: &Engine, case: &Case) -> Option<Vec<Vec<f32>>> {
    if engine.is_gpu() {
        let ins: Vec<&[f32]> = case.ins.iter().map(|v| v.as_slice()).collect();
        let mut outs = case.outs.clone();
        let mut o: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
        kernels::run_cpu(&case.op, &ins, &mut o);
        return Some(outs);
    }
    match case.op {
        Op::Matmul(spec) => Some(vec![naive_matmul(&case.ins[0], &case.ins[1], &case.outs[0], spec)]),
        Op::SoftmaxRows { cols, .. } => Some(vec![naive_softmax(&case.ins[0], cols)]),
        _ => None,
    }
}

/// Runs `case` on `engine`: the worst relative error over its outputs.
async fn run_case(engine: &Engine, case: &Case, want: &[Vec<f32>]) -> Result<Option<f32>> {
    let ins: Vec<_> = case.ins.iter().map(|v| engine.tensor(v)).collect();
    let outs: Vec<_> = case.outs.iter().map(|v| engine.tensor(v)).collect();
    engine.run(case.op, &ins.iter().collect::<Vec<_>>(), &outs.iter().collect::<Vec<_>>())?;
    let mut worst = Some(0f32);
    for (i, (t, w)) in outs.iter().zip(want).enumerate() {
        let got = engine.read(t).await?;
        // Token ids are u32 bit patterns: they must match exactly (as floats they would be denormals).
        let err = if matches!(case.op, Op::SampleNext { .. }) && i == 0 {
            let same = got.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
            Some(if same { 0.0 } else { f32::INFINITY })
        } else {
            relative_error(&got, w)
        };
        worst = match (worst, err) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    Ok(worst)
}

/// Runs every case that has a reference on `engine`. On a GPU the products that split along k are run both ways
/// (split-K and one pass), whichever this adapter uses by default, so that both kernels are checked everywhere.
pub async fn run(engine: &Engine) -> SelfCheckReport {
    let mut results = Vec::new();
    let check = |case: Case, want: Vec<Vec<f32>>| async move {
        let reference = if engine.is_gpu() { "CPU twin" } else { "naive f64 loop" };
        let (relative_error, message) = match run_case(engine, &case, &want).await {
            Ok(Some(e)) => (Some(e), None),
            Ok(None) => (None, Some("output holds NaN/inf (an element was not written?)".to_string())),
            Err(e) => (None, Some(e.to_string())),
        };
        let passed = relative_error.is_some_and(|e| e <= TOLERANCE);
        CheckResult { name: case.name, reference: reference.into(), relative_error, passed, message }
    };
    for case in cases() {
        let Some(want) = reference(engine, &case) else { continue };
        results.push(check(case, want).await);
    }
    if let Engine::Gpu(g) = engine {
        let usual = g.splits_k();
        g.set_splits_k(!usual);
        let other = if usual { "one pass" } else { "split-K" };
        let splits = |op: &Op| matches!(*op, Op::Matmul(s) | Op::MatmulThen(s, crate::engine::Then::ColumnSumsOfB) if kernels::matmul::k_splits(&s) > 1);
        for mut case in cases().into_iter().filter(|c| splits(&c.op)) {
            let Some(want) = reference(engine, &case) else { continue };
            case.name = format!("{}, {other}", case.name);
            results.push(check(case, want).await);
        }
        g.set_splits_k(usual);
        // Every matmul case with the other matmul kernel too (the tiled one on software adapters, the
        // register-blocked one on hardware), in one pass and split-K as the adapter does.
        let tiled = g.tiled_matmul();
        g.set_tiled_matmul(!tiled);
        let other = if tiled { "register-blocked kernel" } else { "tiled kernel" };
        for mut case in cases().into_iter().filter(|c| matches!(c.op, Op::Matmul(_) | Op::MatmulThen(..))) {
            let Some(want) = reference(engine, &case) else { continue };
            case.name = format!("{}, {other}", case.name);
            results.push(check(case, want).await);
        }
        g.set_tiled_matmul(tiled);
    }
    let passed = results.iter().filter(|r| r.passed).count();
    SelfCheckReport { engine: engine.describe(), passed, failed: results.len() - passed, results }
}

/// What `alignment-gap doctor` prints and the page's device panel shows.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    /// Every adapter found (natively); in a browser, the one it offers.
    pub adapters: Vec<AdapterSummary>,
    pub backend: String,
    /// Why the backend is not the one asked for (e.g. no WebGPU), if it is not.
    pub note: Option<String>,
    pub selfcheck: SelfCheckReport,
}

pub async fn doctor(choice: BackendChoice, request: &AdapterRequest) -> Result<DoctorReport> {
    let (engine, note) = Engine::open(choice, request).await?;
    #[cfg(not(target_arch = "wasm32"))]
    let adapters = crate::engine::gpu::list_adapters().await;
    #[cfg(target_arch = "wasm32")]
    let adapters = match &engine {
        Engine::Gpu(g) => vec![g.adapter.clone()],
        Engine::Cpu => vec![],
    };
    let selfcheck = run(&engine).await;
    Ok(DoctorReport { adapters, backend: engine.identity(), note, selfcheck })
}

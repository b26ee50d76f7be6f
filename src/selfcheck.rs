//! Kernel self-checks: every op run on the engine under test against a reference, on random inputs of
//! awkward shapes (1×N, N×1, sizes that are no multiple of any tile), with the output poisoned by NaN
//! so an element a kernel forgets to write fails the check.
//!
//! On the GPU the reference is the CPU twin; on the CPU backend it is a naive f64 loop. `doctor`, the
//! page's device panel, and the native and browser tests all run this same list.

use crate::engine::{cpu, gpu::AdapterSummary, AdapterRequest, BackendChoice, Engine, MatmulSpec};
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

enum Case {
    Matmul(MatmulSpec),
    Softmax { rows: usize, cols: usize, scale: f32 },
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Matmul(s) => format!(
                "matmul{} {}{} {}x{}x{}{}",
                if s.batch > 1 { format!(" batch {}", s.batch) } else { String::new() },
                if s.a_transposed { "T" } else { "N" },
                if s.b_transposed { "T" } else { "N" },
                s.m, s.n, s.k,
                if s.accumulate { " +=" } else { "" },
            ),
            Case::Softmax { rows, cols, scale } => format!("softmax_rows {rows}x{cols} (inputs ±{scale})"),
        }
    }
}

/// The list every self-check runs, small enough for a software adapter in a browser.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let shapes = [(1, 1, 1), (1, 37, 5), (37, 1, 5), (33, 65, 17), (5, 7, 130), (64, 32, 48)];
    for (m, n, k) in shapes {
        for (a_transposed, b_transposed) in [(false, false), (false, true), (true, false), (true, true)] {
            out.push(Case::Matmul(MatmulSpec { batch: 1, m, n, k, a_transposed, b_transposed, accumulate: false }));
        }
    }
    out.push(Case::Matmul(MatmulSpec { batch: 3, m: 7, n: 13, k: 29, a_transposed: false, b_transposed: true, accumulate: false }));
    out.push(Case::Matmul(MatmulSpec { batch: 2, m: 9, n: 5, k: 11, a_transposed: true, b_transposed: false, accumulate: true }));
    out.push(Case::Matmul(MatmulSpec { batch: 1, m: 33, n: 65, k: 17, a_transposed: true, b_transposed: false, accumulate: true }));
    for (rows, cols, scale) in [(1, 1, 1.0), (1, 300, 5.0), (300, 1, 5.0), (37, 129, 5.0), (3, 1000, 30.0)] {
        out.push(Case::Softmax { rows, cols, scale });
    }
    out
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

/// Runs `case` on `engine`; returns (got, want).
async fn run_case(engine: &Engine, case: &Case, seed: u32) -> Result<(Vec<f32>, Vec<f32>)> {
    match *case {
        Case::Matmul(spec) => {
            let a = uniform_vec(seed, 0, spec.a_len(), -1.0, 1.0);
            let b = uniform_vec(seed, 1, spec.b_len(), -1.0, 1.0);
            let c0 = if spec.accumulate { uniform_vec(seed, 2, spec.c_len(), -1.0, 1.0) } else { vec![f32::NAN; spec.c_len()] };
            let want = if engine.is_gpu() {
                let mut c = c0.clone();
                cpu::matmul(&a, &b, &mut c, spec);
                c
            } else {
                naive_matmul(&a, &b, &c0, spec)
            };
            let (ta, tb, tc) = (engine.tensor(&a), engine.tensor(&b), engine.tensor(&c0));
            engine.matmul(&ta, &tb, &tc, spec)?;
            Ok((engine.read(&tc).await?, want))
        }
        Case::Softmax { rows, cols, scale } => {
            let x = uniform_vec(seed, 0, rows * cols, -scale, scale);
            let want = if engine.is_gpu() {
                let mut y = vec![f32::NAN; x.len()];
                cpu::softmax_rows(&x, &mut y, cols);
                y
            } else {
                naive_softmax(&x, cols)
            };
            let (tx, ty) = (engine.tensor(&x), engine.tensor(&vec![f32::NAN; x.len()]));
            engine.softmax_rows(&tx, &ty, rows, cols)?;
            Ok((engine.read(&ty).await?, want))
        }
    }
}

/// Runs every case on `engine`.
pub async fn run(engine: &Engine) -> SelfCheckReport {
    let reference = if engine.is_gpu() { "CPU twin" } else { "naive f64 loop" };
    let mut results = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let (relative_error, message) = match run_case(engine, case, 1000 + i as u32).await {
            Ok((got, want)) => match relative_error(&got, &want) {
                Some(e) => (Some(e), None),
                None => (None, Some("output holds NaN/inf (an element was not written?)".to_string())),
            },
            Err(e) => (None, Some(e.to_string())),
        };
        let passed = relative_error.is_some_and(|e| e <= TOLERANCE);
        results.push(CheckResult { name: case.name(), reference: reference.into(), relative_error, passed, message });
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
        Engine::Cpu(_) => vec![],
    };
    let selfcheck = run(&engine).await;
    Ok(DoctorReport { adapters, backend: engine.describe(), note, selfcheck })
}

//! Speed of the engine on the model sizes the issues name: a training step (forward, backward, AdamW on
//! 128 sequences of 32 tokens) and batched sampling. `alignment-gap bench` prints these as a table; the
//! page uses the same numbers to estimate run times. bench/pytorch_bench.py runs the same step in PyTorch.

use crate::clock::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::sample::SampleSpec;
use crate::model::{Gpt, GptConfig, Head};
use crate::train::optim::{AdamW, AdamwConfig, Schedule};
use serde::Serialize;

pub const BATCH: usize = 128;
pub const CONTEXT: usize = 32;
pub const VOCAB: usize = 44;
const PROMPT: usize = 8;

/// (name, layers, d_model, heads)
pub const SIZES: [(&str, usize, usize, usize); 3] = [("S", 2, 64, 4), ("M", 4, 128, 4), ("L", 6, 256, 8)];

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub size: String,
    pub parameters: usize,
    pub backend: String,
    pub train_step_ms: f64,
    pub train_tokens_per_s: f64,
    pub train_gflops: f64,
    pub sample_tokens_per_s: f64,
}

/// Matmul FLOPs of one training step (forward + backward ≈ 3× forward), the usual accounting.
pub fn train_step_flops(cfg: &GptConfig, b: usize, t: usize) -> f64 {
    let (n, c, v, l) = (b * t, cfg.n_embd, cfg.vocab_size, cfg.n_layer);
    let per_layer = 24 * n * c * c + 4 * n * t * c;
    3.0 * (l * per_layer + 2 * n * c * v) as f64
}

/// The f32 rate attainable here, in GFLOP/s: the best of three 1024³ GEMMs after a warm-up (on the CPU,
/// matrixmultiply with this process's GEMM threads, `MATMUL_NUM_THREADS`; on a GPU, our matmul kernel).
/// Train-step GFLOP/s are reported as a fraction of it.
pub async fn peak_gflops(e: &Engine) -> Result<f64> {
    let n = 1024;
    let a = e.tensor(&crate::rng::uniform_vec(1, 1, n * n, -1.0, 1.0));
    let b = e.tensor(&crate::rng::uniform_vec(1, 2, n * n, -1.0, 1.0));
    let c = e.zeros(n * n);
    let spec = crate::engine::MatmulSpec { batch: 1, m: n, n, k: n, a_transposed: false, b_transposed: false, accumulate: false };
    let mut best = f64::INFINITY;
    for i in 0..4 {
        let start = now_ms();
        e.matmul(&a, &b, &c, spec)?;
        e.read(&c).await?; // waits for the GEMM (the copy of 4 MiB is small beside 2.1 GFLOP)
        if i > 0 {
            best = best.min(now_ms() - start);
        }
    }
    Ok(2.0 * (n * n * n) as f64 / (best / 1e3) / 1e9)
}

/// One training step of the bench's model at size `name`, profiled op by op (see `engine::profile`):
/// per op, calls and milliseconds per step.
pub async fn profile_size(e: &Engine, layers: usize, d_model: usize, heads: usize, steps: usize) -> Result<Vec<crate::engine::profile::OpTime>> {
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(e, cfg)?;
    setup.step(e).await?; // warm-up, not profiled
    crate::engine::profile::start();
    for _ in 0..steps {
        setup.step(e).await?;
    }
    Ok(per_step(crate::engine::profile::stop(), steps))
}

/// A profile's totals over `steps` steps, per step.
fn per_step(mut times: Vec<crate::engine::profile::OpTime>, steps: usize) -> Vec<crate::engine::profile::OpTime> {
    for t in &mut times {
        t.calls /= steps as u64;
        t.seconds /= steps as f64;
        t.flops /= steps as f64;
        t.bytes /= steps as f64;
    }
    times
}

/// [`profile_size`] timed inside the real step by GPU timestamps: each op's GPU time with nothing waiting between ops.
/// None where the engine is not a GPU with timestamps.
#[cfg(not(target_arch = "wasm32"))]
pub async fn profile_size_in_step(e: &Engine, layers: usize, d_model: usize, heads: usize, steps: usize) -> Result<Option<Vec<crate::engine::profile::OpTime>>> {
    let Engine::Gpu(g) = e else { return Ok(None) };
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(e, cfg)?;
    setup.step(e).await?; // warm-up, not profiled
    if !g.start_op_timing() {
        return Ok(None);
    }
    crate::engine::profile::start_in_step();
    for _ in 0..steps {
        setup.step(e).await?;
    }
    for (name, seconds) in g.take_op_times().await? {
        crate::engine::profile::add_seconds(name, seconds);
    }
    Ok(Some(per_step(crate::engine::profile::stop(), steps)))
}

/// The host's work for one training step on a GPU: what the step dispatches and what that costs the host
/// (`engine::gpu::HostCounters`, per step), with the step's time.
#[derive(Clone, Debug, Serialize)]
pub struct HostWork {
    pub size: String,
    pub dispatches: f64,
    /// Host µs to record one dispatch (find or make its uniform block and bind group, encode it).
    pub record_us_per_dispatch: f64,
    /// Host µs of the submits per dispatch (wgpu's validation and encoding for the driver). Neither includes GPU time.
    pub submit_us_per_dispatch: f64,
    pub uniforms_created: f64,
    pub bind_groups_created: f64,
    pub submits: f64,
    /// Reads of a tensor back to the host; the last one ends the step.
    pub readbacks: f64,
    pub step_ms: f64,
}

/// [`HostWork`] averaged over `steps` steps after a warm-up one; none on the CPU (it records nothing).
pub async fn host_work(e: &Engine, name: &str, layers: usize, d_model: usize, heads: usize, steps: usize) -> Result<Option<HostWork>> {
    let crate::engine::Engine::Gpu(g) = e else { return Ok(None) };
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(e, cfg)?;
    setup.step(e).await?;
    let (before, start) = (g.counters(), now_ms());
    for _ in 0..steps {
        setup.step(e).await?;
    }
    let (after, ms) = (g.counters(), now_ms() - start);
    let per = |a: u64, b: u64| (a - b) as f64 / steps as f64;
    let dispatches = per(after.dispatches, before.dispatches);
    Ok(Some(HostWork {
        size: name.to_string(),
        dispatches,
        record_us_per_dispatch: (after.record_seconds - before.record_seconds) * 1e6 / (dispatches * steps as f64).max(1.0),
        submit_us_per_dispatch: (after.submit_seconds - before.submit_seconds) * 1e6 / (dispatches * steps as f64).max(1.0),
        uniforms_created: per(after.uniforms_created, before.uniforms_created),
        bind_groups_created: per(after.bind_groups_created, before.bind_groups_created),
        submits: per(after.submits, before.submits),
        readbacks: per(after.readbacks, before.readbacks),
        step_ms: ms / steps as f64,
    }))
}

/// The host-work table, a row per size.
pub fn host_table(rows: &[HostWork]) -> String {
    let mut s = format!(
        "{:<5} {:>11} {:>18} {:>18} {:>13} {:>12} {:>9} {:>10} {:>10}\n",
        "size", "dispatches", "record µs/dispatch", "submit µs/dispatch", "uniforms new", "groups new", "submits", "readbacks", "step (ms)"
    );
    for r in rows {
        s += &format!(
            "{:<5} {:>11.0} {:>18.2} {:>18.2} {:>13.1} {:>12.1} {:>9.1} {:>10.1} {:>10.1}\n",
            r.size, r.dispatches, r.record_us_per_dispatch, r.submit_us_per_dispatch, r.uniforms_created, r.bind_groups_created, r.submits, r.readbacks, r.step_ms
        );
    }
    s
}

/// The bench's model, batch and optimiser: one training step of 128 × 32 tokens.
struct StepSetup {
    model: Gpt,
    tokens: crate::engine::Tensor,
    targets: crate::engine::Tensor,
    weights: crate::engine::Tensor,
    dseq: crate::engine::Tensor,
    acts: crate::model::Activations,
    grads: crate::engine::Packed,
    opt: AdamW,
    ids: Vec<u32>,
}

impl StepSetup {
    fn new(e: &Engine, cfg: GptConfig) -> Result<Self> {
        let model = Gpt::init(e, cfg, Head::Lm, 0)?;
        let (b, t) = (BATCH, CONTEXT);
        let ids: Vec<u32> = (0..b * t).map(|i| (crate::rng::uniform(1, 0, 0, i as u32) * VOCAB as f32) as u32 % VOCAB as u32).collect();
        let targets: Vec<u32> = (0..b * t).map(|i| if (i + 1) % t == 0 { 0 } else { ids[i + 1] }).collect();
        let weights: Vec<f32> = (0..b * t).map(|i| if i % t >= PROMPT && (i + 1) % t != 0 { 1.0 } else { 0.0 }).collect();
        let acts = model.activations(e, b, t)?;
        let grads = model.zero_grads(e);
        let opt = AdamW::new(e, &model.infos, AdamwConfig::default(), Schedule::constant());
        Ok(StepSetup {
            tokens: e.indices(&ids),
            targets: e.indices(&targets),
            weights: e.tensor(&weights),
            dseq: e.tensor(&vec![-1.0 / b as f32; b]),
            model,
            acts,
            grads,
            opt,
            ids,
        })
    }

    /// One step, ended as a training loop ends it: by reading the step's loss back (so it has finished when this
    /// returns).
    async fn step(&mut self, e: &Engine) -> Result<()> {
        let (model, acts, grads) = (&self.model, &self.acts, &self.grads);
        Gpt::clear_grads(e, grads)?;
        model.forward(e, acts, &self.tokens)?;
        model.sequence_logprobs(e, acts, &self.targets, &self.weights)?;
        model.backward(e, acts, grads, &crate::model::TokenBatch { tokens: &self.tokens, targets: &self.targets, weights: &self.weights }, &self.dseq)?;
        self.opt.step(e, &model.params, grads)?;
        e.read(&acts.sequence_logprobs).await?;
        Ok(())
    }
}

pub async fn run_size(e: &Engine, name: &str, layers: usize, d_model: usize, heads: usize, repeats: usize) -> Result<BenchRow> {
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(e, cfg)?;
    let (b, t) = (BATCH, CONTEXT);
    let mut train_step_ms = 0.0;
    for i in 0..=repeats {
        let start = now_ms();
        setup.step(e).await?;
        if i > 0 {
            train_step_ms += (now_ms() - start) / repeats as f64; // step 0 is the warm-up
        }
    }
    let (model, ids) = (&setup.model, &setup.ids);
    let prompts: Vec<Vec<u32>> = (0..b).map(|r| ids[r * t..r * t + PROMPT].to_vec()).collect();
    // Every row runs all CONTEXT − PROMPT positions (finished rows keep stepping, emitting padding), so the
    // count of positions is exact whatever the samples are.
    let spec = SampleSpec { temperature: 1.0, max_len: CONTEXT, seed: 0, stream: 0, row0: 0, eos: 1, pad: 0, banned: crate::task::NEVER_SAMPLED };
    let sample_repeats = repeats.div_ceil(2);
    let mut sample_ms = 0.0;
    for i in 0..=sample_repeats {
        let start = now_ms();
        model.sample(e, &prompts, &spec).await?;
        if i > 0 {
            sample_ms += (now_ms() - start) / sample_repeats as f64;
        }
    }
    Ok(BenchRow {
        size: name.to_string(),
        parameters: model.num_parameters(),
        backend: e.describe(),
        train_step_ms,
        train_tokens_per_s: (b * t) as f64 / (train_step_ms / 1e3),
        train_gflops: train_step_flops(&cfg, b, t) / (train_step_ms / 1e3) / 1e9,
        sample_tokens_per_s: (b * (CONTEXT - PROMPT)) as f64 / (sample_ms / 1e3),
    })
}

/// The bench table; with `peak` (GFLOP/s, from [`peak_gflops`]) each train step's share of it.
pub fn table(rows: &[BenchRow], peak: Option<f64>) -> String {
    let mut s = format!(
        "{:<5} {:>10} {:>16} {:>16} {:>10} {:>8} {:>18}  {}\n",
        "size", "params", "train step (ms)", "train tokens/s", "GFLOP/s", "of peak", "sample tokens/s", "backend"
    );
    for r in rows {
        let share = peak.map(|p| format!("{:.0} %", 100.0 * r.train_gflops / p)).unwrap_or_else(|| "-".into());
        s += &format!(
            "{:<5} {:>10} {:>16.1} {:>16.0} {:>10.2} {:>8} {:>18.0}  {}\n",
            r.size, r.parameters, r.train_step_ms, r.train_tokens_per_s, r.train_gflops, share, r.sample_tokens_per_s, r.backend
        );
    }
    s
}

/// A data-parallel alignment step at a bench size (`train::parallel`), through this thread's chunk pool (native
/// threads, or the page's helper workers): the batch's 128 rows as 64 (winner, loser) pairs of offline IPO (β 0.1,
/// π_sft's log-probs given, as an offline run reads them), split into `chunks`; each chunk's forward and backward on
/// its worker's replica; the gradients summed in chunk order; the same AdamW step. Returns ms per step (after a
/// warm-up step) and the last step's summed gradient (for the bit-for-bit check across worker counts). Each step's
/// copy of the parameters to every worker, and each chunk's activations, are counted.
pub async fn align_step_size(layers: usize, d_model: usize, heads: usize, chunks: usize, repeats: usize) -> Result<(f64, Vec<Vec<f32>>)> {
    use crate::train::parallel::{current, gather, step_jobs, ChunkModels};
    let e = Engine::cpu();
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(&e, cfg)?;
    let (b, t) = (BATCH, CONTEXT);
    if chunks == 0 || chunks > b / 2 {
        crate::bail!("data-parallel chunks = {chunks} is out of range 1..={} (the bench step's pairs)", b / 2);
    }
    let ids = setup.ids.clone();
    let batch = crate::train::batch::SequenceBatch {
        b,
        t,
        targets: (0..b * t).map(|i| if (i + 1) % t == 0 { 0 } else { ids[i + 1] }).collect(),
        weights: (0..b * t).map(|i| if i % t >= PROMPT && (i + 1) % t != 0 { 1.0 } else { 0.0 }).collect(),
        tokens: ids,
    };
    let reference = vec![-20.0; b];
    let reference_values = setup.model.values(&e).await?;
    let reference_id = crate::train::parallel::values_id(&reference_values);
    let (mut total, mut last) = (0.0, vec![]);
    for i in 0..=repeats {
        let start = now_ms();
        let values = setup.model.values(&e).await?;
        let jobs = step_jobs(&batch, chunks, Some(&reference), crate::train::losses::Loss::Ipo, 0.1);
        let models = ChunkModels { config: cfg, policy: &values, reference: &reference_values, reference_id };
        let sum = gather(current().train_chunks(models, jobs).await?, b / 2, chunks)?.gradient;
        for (part, g) in setup.grads.parts.iter().zip(&sum) {
            e.write(part, g)?;
        }
        setup.opt.step(&e, &setup.model.params, &setup.grads)?;
        last = sum;
        if i > 0 {
            total += now_ms() - start;
        }
    }
    Ok((total / repeats.max(1) as f64, last))
}

/// One matmul shape of a training step, timed on the CPU with each GEMM (ms per call, the better of two
/// interleaved timings each).
#[derive(Clone, Debug, Serialize)]
pub struct GemmRow {
    pub size: String,
    pub spec: crate::engine::MatmulSpec,
    pub calls_per_step: u64,
    pub ours_ms: f64,
    pub mm_ms: f64,
    /// The GEMM `matmul` uses for this shape today.
    pub chosen: CpuGemm,
}

use crate::engine::kernels::matmul::CpuGemm;

/// Every distinct matmul shape of one training step at a bench size, on the CPU: computed with our kernel
/// (natively the direct one, in the browser the 4×8 panel one) and with matrixmultiply, each repeated until 40 ms have passed (at least 3 calls) so that the
/// browser's millisecond clock still resolves it, twice, interleaved; the better time of each is kept. The
/// shapes come from profiling one step (`engine::profile`). What the browser's GEMM choice is measured by.
pub async fn gemm_size(e: &Engine, name: &str, layers: usize, d_model: usize, heads: usize) -> Result<Vec<GemmRow>> {
    use crate::engine::kernels::matmul::{chosen_gemm, matmul_with};
    if e.is_gpu() {
        crate::bail!("the GEMM bench times the CPU's two GEMMs: use the cpu backend");
    }
    let cfg = GptConfig { n_layer: layers, n_embd: d_model, n_head: heads, n_positions: CONTEXT, vocab_size: VOCAB };
    let mut setup = StepSetup::new(e, cfg)?;
    setup.step(e).await?; // warm-up
    crate::engine::profile::start();
    setup.step(e).await?;
    let (_, shapes) = crate::engine::profile::stop_with_matmuls();
    let mut rows = vec![];
    for (i, (spec, calls)) in shapes.into_iter().enumerate() {
        let a = crate::rng::uniform_vec(11, 3 * i as u32, spec.a_len(), -1.0, 1.0);
        let b = crate::rng::uniform_vec(11, 3 * i as u32 + 1, spec.b_len(), -1.0, 1.0);
        let mut c = crate::rng::uniform_vec(11, 3 * i as u32 + 2, spec.c_len(), -1.0, 1.0);
        let mut time = |gemm: CpuGemm| {
            let (start, mut calls) = (now_ms(), 0u32);
            loop {
                matmul_with(&a, &b, &mut c, spec, gemm);
                calls += 1;
                let elapsed = now_ms() - start;
                if calls >= 3 && elapsed >= 40.0 {
                    return elapsed / calls as f64;
                }
            }
        };
        let (d1, p1, d2, p2) = (time(CpuGemm::Ours), time(CpuGemm::Matrixmultiply), time(CpuGemm::Ours), time(CpuGemm::Matrixmultiply));
        rows.push(GemmRow { size: name.to_string(), spec, calls_per_step: calls, ours_ms: d1.min(d2), mm_ms: p1.min(p2), chosen: chosen_gemm(&spec) });
    }
    Ok(rows)
}

/// The GEMM bench's rows as a table, largest share of the step first, with the step's matmul time by
/// today's choice, by the faster GEMM per shape, and by each GEMM alone.
pub fn gemm_table(rows: &[GemmRow]) -> String {
    let mut sorted: Vec<&GemmRow> = rows.iter().collect();
    let per_step = |r: &GemmRow, ms: f64| ms * r.calls_per_step as f64;
    sorted.sort_by(|x, y| per_step(y, y.ours_ms.min(y.mm_ms)).total_cmp(&per_step(x, x.ours_ms.min(x.mm_ms))));
    let mut s = format!("  {:<22} {:>3} {:>3} {:>3} {:>6} {:>10} {:>10} {:>8} {:>7}\n", "batch×m×n×k", "Aᵀ", "Bᵀ", "+C", "calls", "ours ms", "mm ms", "faster", "used");
    let yes = |b: bool| if b { "y" } else { "-" };
    for r in &sorted {
        let sp = r.spec;
        let faster = if r.ours_ms <= r.mm_ms { "ours" } else { "mm" };
        let used = match r.chosen {
            CpuGemm::Ours => "ours",
            CpuGemm::Matrixmultiply => "mm",
        };
        s += &format!(
            "  {:<22} {:>3} {:>3} {:>3} {:>6} {:>10.3} {:>10.3} {:>8} {:>7}\n",
            format!("{}×{}×{}×{}", sp.batch, sp.m, sp.n, sp.k), yes(sp.a_transposed), yes(sp.b_transposed), yes(sp.accumulate), r.calls_per_step, r.ours_ms, r.mm_ms, faster, used
        );
    }
    let total = |pick: &dyn Fn(&GemmRow) -> f64| rows.iter().map(|r| per_step(r, pick(r))).sum::<f64>();
    s += &format!(
        "  matmul ms per step: as chosen {:.1}, faster per shape {:.1}, all ours {:.1}, all matrixmultiply {:.1}\n",
        total(&|r| if r.chosen == CpuGemm::Ours { r.ours_ms } else { r.mm_ms }),
        total(&|r| r.ours_ms.min(r.mm_ms)),
        total(&|r| r.ours_ms),
        total(&|r| r.mm_ms)
    );
    s
}

/// The per-op profile of one size as a table: per op, calls (an op may be more than one dispatch on a GPU) and ms per step, share of
/// the step, GFLOP/s, and the bytes each op must move with the rate that makes.
#[cfg(not(target_arch = "wasm32"))]
/// `how`: how the ops were timed, for the heading.
pub fn profile_table(size: &str, times: &[crate::engine::profile::OpTime], how: &str) -> String {
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    let calls: u64 = times.iter().map(|t| t.calls).sum();
    let mut s = format!("size {size}: {:.1} ms per profiled step ({how}), {calls} ops per step\n", total * 1e3);
    s += &format!("  {:<26} {:>6} {:>10} {:>7} {:>9} {:>9} {:>7}\n", "op", "calls", "ms/step", "share", "GFLOP/s", "MB/step", "GB/s");
    for t in times {
        let gflops = if t.flops > 0.0 { format!("{:.1}", t.flops / t.seconds / 1e9) } else { "-".into() };
        s += &format!(
            "  {:<26} {:>6} {:>10.2} {:>6.1}% {:>9} {:>9.1} {:>7.1}\n",
            t.name, t.calls, t.seconds * 1e3, 100.0 * t.seconds / total, gflops, t.bytes / 1e6, t.bytes / t.seconds / 1e9
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MatmulSpec;

    /// A profile lists each matmul shape once, with its calls, in the order first seen.
    #[test]
    fn a_profile_lists_the_matmul_shapes_with_their_calls() {
        let e = Engine::cpu();
        let (wide, narrow) = (MatmulSpec::new(4, 8, 3), MatmulSpec::new(2, 2, 5));
        let run = |s: MatmulSpec| e.matmul(&e.zeros(s.a_len()), &e.zeros(s.b_len()), &e.zeros(s.c_len()), s).unwrap();
        crate::engine::profile::start();
        run(wide);
        run(narrow);
        run(wide);
        let (times, shapes) = crate::engine::profile::stop_with_matmuls();
        assert_eq!(shapes, vec![(wide, 2), (narrow, 1)]);
        assert_eq!(times.iter().find(|t| t.name == "matmul").map(|t| t.calls), Some(3));
    }

    /// The GEMM table's totals weigh each shape's ms per call by its calls per step.
    #[test]
    fn the_gemm_table_totals_weigh_shapes_by_calls() {
        let row = |n: usize, calls: u64, ours_ms: f64, mm_ms: f64, chosen: CpuGemm| GemmRow { size: "S".into(), spec: MatmulSpec::new(8, n, 8), calls_per_step: calls, ours_ms, mm_ms, chosen };
        let rows = [row(16, 2, 1.0, 2.0, CpuGemm::Matrixmultiply), row(128, 3, 4.0, 1.0, CpuGemm::Matrixmultiply)];
        let table = gemm_table(&rows);
        // as chosen 2·2 + 3·1 = 7, faster per shape 2·1 + 3·1 = 5, all ours 2 + 12 = 14, all matrixmultiply 4 + 3 = 7.
        assert!(table.contains("as chosen 7.0, faster per shape 5.0, all ours 14.0, all matrixmultiply 7.0"), "{table}");
        // The largest share of the step first: 3 calls × 1 ms before 2 calls × 1 ms.
        assert!(table.lines().nth(1).unwrap().trim_start().starts_with("1×8×128×8"), "{table}");
    }
}

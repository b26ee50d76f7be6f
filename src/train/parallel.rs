//! Data-parallel training on the CPU (issue 30, item 3): a batch's rows are split into a fixed number of chunks;
//! each chunk's gradient is computed on a CPU engine and model replica of its own, by whichever worker (a native
//! thread, a page's Web Worker) it is handed to; the chunk gradients are then summed in chunk order. The result
//! depends on the number of chunks, never on the number of workers. It differs in the last bits from one pass over
//! the whole batch (whose weight-gradient GEMMs sum every row at once), so a trainer that uses it makes it a mode of
//! its own: `align_chunks` (alignment runs; `AlignConfig::chunks`), 0 by default in the CLI, the page's default on
//! its CPU backend.
//!
//! Who computes the chunks is a [`ChunkPool`]: [`ThreadPool`] natively, the page's helper workers in the browser
//! (`web.rs`), one after another ([`ThreadPool`] of one thread) where there is no other.
//! `alignment-gap bench --data-parallel N` times an alignment step with it on 1 and 2 threads; the page's worker
//! (`node bench/wasm.mjs --data-parallel N`) on 1 and 2 workers.

use super::batch::SequenceBatch;
use super::eval::response_logprobs;
use super::losses::{gpo_of_batch, Loss};
use crate::model::sample::SampleSpec;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head, TokenBatch};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;

pub mod rows;
use rows::{ModelRef, Rows};

/// Rows [start, end) of chunk `i` of `chunks` over `rows` rows: the first `rows % chunks` chunks hold one row more.
pub fn chunk_rows(rows: usize, chunks: usize, i: usize) -> Range<usize> {
    let (per, extra) = (rows / chunks, rows % chunks);
    let start = i * per + i.min(extra);
    start..start + per + usize::from(i < extra)
}

/// One chunk of an alignment step (a GPO loss over pairs): its pairs' winners, then their losers, as `t`-token rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkJob {
    /// Its place in the step: chunk `chunk` of `chunks` ([`chunk_rows`] over the step's pairs).
    pub chunk: usize,
    pub chunks: usize,
    pub t: usize,
    #[serde(skip)]
    pub tokens: Vec<u32>,
    #[serde(skip)]
    pub targets: Vec<u32>,
    #[serde(skip)]
    pub weights: Vec<f32>,
    /// π_sft's summed log-probs of its rows where the run knows them already (an offline run's shared pass);
    /// none: the chunk computes them.
    #[serde(skip)]
    pub reference: Option<Vec<f32>>,
    pub loss: Loss,
    pub beta: f32,
    /// Pairs in the whole step: the chunk's loss and gradient are divided by it, so the chunks' parts sum to the
    /// step's mean.
    pub batch_pairs: usize,
}

impl ChunkJob {
    /// Rows of the chunk: two per pair.
    pub fn rows(&self) -> usize {
        self.tokens.len() / self.t.max(1)
    }
}

/// What a chunk hands back: the gradient of its part of the step's loss (one vector per parameter tensor), and its
/// rows' summed log-probs under the policy and π_sft.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkOut {
    pub chunk: usize,
    pub grads: Vec<Vec<f32>>,
    pub logps: Vec<f32>,
    pub reference: Vec<f32>,
}

/// The models a step's chunks read: the policy's parameters as the step begins, and π_sft's (the same for a whole
/// run: `reference_id` names them, so that a worker that holds them already need not be sent them again).
#[derive(Clone, Copy)]
pub struct ChunkModels<'a> {
    pub config: GptConfig,
    pub policy: &'a [Vec<f32>],
    pub reference: &'a [Vec<f32>],
    pub reference_id: u64,
}

/// A model's parameters' identity: 64-bit FNV-1a of their bits.
pub fn values_id(values: &[Vec<f32>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values.iter().flatten() {
        h ^= v.to_bits() as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One chunk of an alignment step on a worker's [`Replicas`]: π_sft's log-probs of its rows (unless given), the policy's
/// forward pass, the GPO loss's gradient for its pairs (divided by the step's pair count) and the backward pass.
async fn train_chunk(r: &mut Replicas, job: &ChunkJob) -> Result<ChunkOut> {
    let (rows, t) = (job.rows(), job.t);
    if rows == 0 || !rows.is_multiple_of(2) || job.targets.len() != rows * t || job.weights.len() != rows * t {
        crate::bail!("data-parallel chunk {}: {rows} rows of {t} tokens with {} targets and {} weights; it needs an even number of rows, two per pair", job.chunk, job.targets.len(), job.weights.len());
    }
    let n = rows / 2;
    let e = &r.e;
    let reference_logps = match (&job.reference, &r.reference) {
        (Some(known), _) => known.clone(),
        (None, Some((_, sft))) => {
            let batch = SequenceBatch { b: rows, t, tokens: job.tokens.clone(), targets: job.targets.clone(), weights: job.weights.clone() };
            let acts = buffers(&mut r.reference_acts, rows, t, || sft.activations(e, rows, t))?;
            response_logprobs(e, sft, acts, &batch).await?
        }
        (None, None) => crate::bail!("data-parallel chunk {}: neither π_sft's log-probs nor π_sft", job.chunk),
    };
    let policy = &r.policy;
    let (acts, grads) = buffers(&mut r.buffers, rows, t, || Ok((policy.activations(e, rows, t)?, policy.zero_grads(e))))?;
    let (tokens, targets, weights) = (e.indices(&job.tokens), e.indices(&job.targets), e.tensor(&job.weights));
    policy.forward(e, acts, &tokens)?;
    policy.sequence_logprobs(e, acts, &targets, &weights)?;
    let logps = e.read(&acts.sequence_logprobs).await?;
    let known = &reference_logps;
    let (_, dw, dl) = gpo_of_batch(job.loss, job.beta, &logps[..n], &logps[n..], &known[..n], &known[n..], job.batch_pairs);
    let dseq: Vec<f32> = dw.into_iter().chain(dl).collect();
    Gpt::clear_grads(e, grads)?;
    policy.backward(e, acts, grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &e.tensor(&dseq))?;
    let mut out = Vec::with_capacity(grads.parts.len());
    for g in &grads.parts {
        out.push(e.read(g).await?);
    }
    Ok(ChunkOut { chunk: job.chunk, grads: out, logps, reference: reference_logps })
}

/// The buffers kept for chunks of `rows` × `t` tokens, made by `make` the first time.
fn buffers<T>(kept: &mut Vec<(usize, usize, T)>, rows: usize, t: usize, make: impl FnOnce() -> Result<T>) -> Result<&mut T> {
    let i = match kept.iter().position(|(r, tt, _)| (*r, *tt) == (rows, t)) {
        Some(i) => i,
        None => {
            kept.push((rows, t, make()?));
            kept.len() - 1
        }
    };
    Ok(&mut kept[i].2)
}

/// What a worker keeps from step to step (one per thread: a page's worker, a native pool thread): a CPU engine's
/// replica of the policy, its parameters overwritten each step, of π_sft (rebuilt when another is sent), and each chunk
/// size's activations and gradient buffers. Built afresh every step, they cost about as much as a small chunk's own
/// arithmetic (`bench --data-parallel`). Every value a chunk reads is overwritten before it is read, so the results
/// are the bits of fresh buffers.
struct Replicas {
    e: Engine,
    config: GptConfig,
    policy: Gpt,
    reference: Option<(u64, Gpt)>,
    buffers: Vec<(usize, usize, (crate::model::Activations, crate::engine::Packed))>,
    reference_acts: Vec<(usize, usize, crate::model::Activations)>,
}

thread_local! {
    static REPLICAS: std::cell::RefCell<Option<Replicas>> = const { std::cell::RefCell::new(None) };
}

impl Replicas {
    /// This thread's replicas, holding `policy` (made on first use, or for another config). Taken out while in use
    /// and put back by [`Replicas::keep`]; a caller that finds them taken (none does: a worker runs one job at a time)
    /// would get fresh ones.
    fn take(config: GptConfig, policy: &[Vec<f32>]) -> Result<Self> {
        match REPLICAS.with(|r| r.borrow_mut().take()) {
            Some(r) if r.config == config => {
                if policy.len() != r.policy.params.parts.len() {
                    crate::bail!("data-parallel: {} parameter tensors sent for a model of {}", policy.len(), r.policy.params.parts.len());
                }
                for (part, values) in r.policy.params.parts.iter().zip(policy) {
                    r.e.write(part, values)?;
                }
                Ok(r)
            }
            _ => {
                let e = Engine::cpu();
                let policy = Gpt::new(&e, config, Head::Lm, policy)?;
                Ok(Replicas { e, config, policy, reference: None, buffers: vec![], reference_acts: vec![] })
            }
        }
    }

    fn keep(self) {
        REPLICAS.with(|r| *r.borrow_mut() = Some(self));
    }
}

/// `jobs` computed one after another on this thread's [`Replicas`] of `models` (π_sft's made only when a job needs it).
pub async fn compute_chunks(models: ChunkModels<'_>, jobs: &[ChunkJob]) -> Result<Vec<ChunkOut>> {
    let mut r = Replicas::take(models.config, models.policy)?;
    if jobs.iter().any(|j| j.reference.is_none()) && r.reference.as_ref().map(|(id, _)| *id) != Some(models.reference_id) {
        r.reference = Some((models.reference_id, Gpt::new(&r.e, models.config, Head::Lm, models.reference)?));
    }
    let mut outs = Vec::with_capacity(jobs.len());
    for job in jobs {
        match train_chunk(&mut r, job).await {
            Ok(out) => outs.push(out),
            Err(e) => return Err(e),
        }
    }
    r.keep();
    Ok(outs)
}

/// The chunk jobs of one alignment step over `batch` (winners in rows 0..b, losers in b..2b): chunk c holds pairs
/// [`chunk_rows`]`(b, chunks, c)`, their winners then their losers; `reference` (the batch's π_sft log-probs in the
/// batch's row order), when known, is split the same way.
pub fn step_jobs(batch: &SequenceBatch, chunks: usize, reference: Option<&[f32]>, loss: Loss, beta: f32) -> Vec<ChunkJob> {
    let (b, t) = (batch.b / 2, batch.t);
    (0..chunks)
        .map(|c| {
            let pairs = chunk_rows(b, chunks, c);
            let rows: Vec<usize> = pairs.clone().chain(pairs.map(|i| b + i)).collect();
            let take = |v: &[u32]| rows.iter().flat_map(|&r| v[r * t..(r + 1) * t].iter().copied()).collect::<Vec<u32>>();
            ChunkJob {
                chunk: c,
                chunks,
                t,
                tokens: take(&batch.tokens),
                targets: take(&batch.targets),
                weights: rows.iter().flat_map(|&r| batch.weights[r * t..(r + 1) * t].iter().copied()).collect(),
                reference: reference.map(|known| rows.iter().map(|&r| known[r]).collect()),
                loss,
                beta,
                batch_pairs: b,
            }
        })
        .collect()
}

/// A step's chunk results gathered ([`gather`]).
pub struct Gathered {
    /// The chunks' gradients summed in chunk order, one vector per parameter tensor.
    pub gradient: Vec<Vec<f32>>,
    /// The policy's and π_sft's summed log-probs of every row, in the batch's order (winners, then losers).
    pub logps: Vec<f32>,
    pub reference: Vec<f32>,
}

/// The step's chunk results gathered: the gradient summed in chunk order, and the policy's and π_sft's log-probs
/// of every row in the batch's order (winners, then losers).
pub fn gather(mut outs: Vec<ChunkOut>, b: usize, chunks: usize) -> Result<Gathered> {
    outs.sort_by_key(|o| o.chunk);
    if outs.len() != chunks || outs.iter().enumerate().any(|(i, o)| o.chunk != i) {
        crate::bail!("data-parallel: {} chunk results came back for {chunks} chunks", outs.len());
    }
    let (mut logps, mut reference) = (vec![0.0; 2 * b], vec![0.0; 2 * b]);
    let mut sum: Option<Vec<Vec<f32>>> = None;
    for out in outs {
        let pairs = chunk_rows(b, chunks, out.chunk);
        for (j, r) in pairs.clone().chain(pairs.map(|i| b + i)).enumerate() {
            logps[r] = out.logps[j];
            reference[r] = out.reference[j];
        }
        match &mut sum {
            None => sum = Some(out.grads),
            Some(sum) => {
                for (s, g) in sum.iter_mut().zip(out.grads) {
                    s.iter_mut().zip(g).for_each(|(s, g)| *s += g);
                }
            }
        }
    }
    Ok(Gathered { gradient: sum.expect("chunks ≥ 1"), logps, reference })
}

/// A future a [`ChunkPool`] hands back (not `Send`: the browser's is single-threaded).
pub type ChunkFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<ChunkOut>>> + 'a>>;

/// Who computes a step's chunks. Chunk c goes to worker c mod [`ChunkPool::workers`]; every worker computes its
/// chunks with [`compute_chunks`], so the results are the same bits whoever computes them.
pub trait ChunkPool {
    /// Workers computing chunks at once (1: one after another, here).
    fn workers(&self) -> usize;
    fn train_chunks<'a>(&'a self, models: ChunkModels<'a>, jobs: Vec<ChunkJob>) -> ChunkFuture<'a>;
    /// The responses to `parts[1..]` (parts of one batch, each with its spec's `row0`), sampled by the other workers
    /// from a policy of `config` with parameters `policy`, part i by worker i; the caller samples `parts[0]` itself
    /// meanwhile, then awaits this.
    fn sample_parts<'a>(&'a self, config: GptConfig, policy: &'a [Vec<f32>], parts: Vec<(Vec<Vec<u32>>, SampleSpec)>) -> SampleFuture<'a>;
    /// The reads of `parts` (parts 1.. of one row pass, [`rows::pass_rows`]) through `models`, part i by worker i;
    /// the caller passes part 0 itself meanwhile, then awaits this.
    fn pass_parts<'a>(&'a self, models: &[ModelRef<'a>], parts: Vec<Rows>) -> PassFuture<'a>;
}

/// The other workers' reads, part by part, as a pool hands them back.
pub type PassFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>>> + 'a>>;

/// The other workers' responses, part by part, as a pool hands them back.
pub type SampleFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<Vec<u32>>>>> + 'a>>;

/// One response per prompt from `policy` (cut after `spec.eos`). With a pool of several workers and the CPU engine,
/// the batch is sampled in parts, one per worker, each drawing as its rows of the whole batch draw (`SampleSpec::row0`):
/// each row's tokens depend only on its own prompt and draws (every kernel computes each row alone), so the responses
/// are the whole batch's, bit for bit, however many workers share it.
pub async fn sample_responses(e: &Engine, policy: &Gpt, prompts: &[Vec<u32>], spec: SampleSpec) -> Result<Vec<Vec<u32>>> {
    let pool = current();
    let parts = pool.workers().min(prompts.len() / MIN_SAMPLE_ROWS).max(1);
    let respond = |s: crate::model::sample::Samples| (0..s.tokens.len()).map(|r| s.response(r, spec.eos).to_vec()).collect::<Vec<_>>();
    if parts == 1 || e.is_gpu() || policy.head != Head::Lm {
        return Ok(respond(policy.sample(e, prompts, &spec).await?));
    }
    let part = |i: usize| {
        let rows = chunk_rows(prompts.len(), parts, i);
        (prompts[rows.clone()].to_vec(), SampleSpec { row0: spec.row0 + rows.start as u32, ..spec })
    };
    let values = policy.values(e).await?;
    let others = pool.sample_parts(policy.config, &values, (0..parts).map(part).collect());
    let (own, own_spec) = part(0);
    let mut out = respond(policy.sample(e, &own, &own_spec).await?);
    for responses in others.await? {
        out.extend(responses);
    }
    if out.len() != prompts.len() {
        crate::bail!("data-parallel sampling: {} responses came back for {} prompts", out.len(), prompts.len());
    }
    Ok(out)
}

/// Fewer rows than this per worker are not worth a worker's round trip: a batch is split into at most
/// rows / `MIN_SAMPLE_ROWS` parts.
pub const MIN_SAMPLE_ROWS: usize = 8;

/// A part's responses, sampled on this thread's replica of the policy (what a helper does).
pub async fn sample_part(config: GptConfig, policy: &[Vec<f32>], prompts: &[Vec<u32>], spec: SampleSpec) -> Result<Vec<Vec<u32>>> {
    let r = Replicas::take(config, policy)?;
    let s = r.policy.sample(&r.e, prompts, &spec).await?;
    r.keep();
    Ok((0..s.tokens.len()).map(|row| s.response(row, spec.eos).to_vec()).collect())
}

/// Chunks on `threads` native threads (one: in place, which is also what a browser worker without helpers does).
pub struct ThreadPool {
    pub threads: usize,
}

impl ChunkPool for ThreadPool {
    fn workers(&self) -> usize {
        self.threads.max(1)
    }

    fn sample_parts<'a>(&'a self, config: GptConfig, policy: &'a [Vec<f32>], parts: Vec<(Vec<Vec<u32>>, SampleSpec)>) -> SampleFuture<'a> {
        #[cfg(target_arch = "wasm32")]
        {
            // One thread: the caller sampled part 0; the rest are sampled here, one after another.
            Box::pin(async move {
                let mut out = vec![];
                for (prompts, spec) in parts.into_iter().skip(1) {
                    out.push(sample_part(config, policy, &prompts, spec).await?);
                }
                Ok(out)
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            // Part i on pool thread i − 1, posted now: they sample while the caller samples part 0.
            let policy = std::sync::Arc::new(policy.to_vec());
            let replies: Vec<_> = parts
                .into_iter()
                .enumerate()
                .skip(1)
                .map(|(i, (prompts, spec))| {
                    let policy = policy.clone();
                    pool_threads::run(i - 1, move || pollster::block_on(sample_part(config, &policy, &prompts, spec)))
                })
                .collect();
            Box::pin(async move { replies.into_iter().map(pool_threads::Reply::wait).collect() })
        }
    }

    fn pass_parts<'a>(&'a self, models: &[ModelRef<'a>], parts: Vec<Rows>) -> PassFuture<'a> {
        #[cfg(target_arch = "wasm32")]
        {
            // One thread: the rest of the parts here, one after another.
            let models = models.to_vec();
            Box::pin(async move {
                let mut out = vec![];
                for part in &parts {
                    out.push(rows::pass_part(&models, part).await?);
                }
                Ok(out)
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            // Part i on pool thread i − 1, posted now. Every thread is sent the models' values; one that holds a
            // model already (by its id) uses its own.
            let owned = std::sync::Arc::new(models.iter().map(|m| (m.config, m.head, m.id, m.values.to_vec())).collect::<Vec<_>>());
            let replies: Vec<_> = parts
                .into_iter()
                .enumerate()
                .map(|(i, part)| {
                    let owned = owned.clone();
                    pool_threads::run(i, move || {
                        let models: Vec<ModelRef> = owned.iter().map(|(config, head, id, values)| ModelRef { config: *config, head: *head, id: *id, values }).collect();
                        pollster::block_on(rows::pass_part(&models, &part))
                    })
                })
                .collect();
            Box::pin(async move { replies.into_iter().map(pool_threads::Reply::wait).collect() })
        }
    }

    fn train_chunks<'a>(&'a self, models: ChunkModels<'a>, jobs: Vec<ChunkJob>) -> ChunkFuture<'a> {
        let threads = self.workers().min(jobs.len().max(1));
        if threads == 1 {
            return Box::pin(async move { compute_chunks(models, &jobs).await });
        }
        #[cfg(target_arch = "wasm32")]
        unreachable!("a browser has no threads: its pool is the page's workers");
        #[cfg(not(target_arch = "wasm32"))]
        Box::pin(async move {
            // Worker w's chunks on pool thread w − 1 (each keeps its replicas from step to step); worker 0's here.
            let reference = if jobs.iter().any(|j| j.reference.is_none()) { models.reference.to_vec() } else { vec![] };
            let shared = std::sync::Arc::new((models.policy.to_vec(), reference));
            let (config, reference_id) = (models.config, models.reference_id);
            let replies: Vec<_> = (1..threads)
                .map(|w| {
                    let mine: Vec<ChunkJob> = jobs.iter().filter(|j| j.chunk % threads == w).cloned().collect();
                    let shared = shared.clone();
                    pool_threads::run(w - 1, move || {
                        let models = ChunkModels { config, policy: &shared.0, reference: &shared.1, reference_id };
                        pollster::block_on(compute_chunks(models, &mine))
                    })
                })
                .collect();
            let own: Vec<ChunkJob> = jobs.iter().filter(|j| j.chunk % threads == 0).cloned().collect();
            let mut outs = compute_chunks(models, &own).await;
            // Every reply is waited for, even after an error, so that no thread still works on this step.
            for reply in replies {
                outs = match (outs, reply.wait()) {
                    (Ok(mut ours), Ok(theirs)) => {
                        ours.extend(theirs);
                        Ok(ours)
                    }
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
            }
            outs
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// The native pool's threads: started on first use and kept, so that each keeps its [`Replicas`] from step to step.
/// Thread i runs the tasks posted to it in order.
mod pool_threads {
    use std::sync::{mpsc, Mutex};

    type Task = Box<dyn FnOnce() + Send>;
    static SENDERS: Mutex<Vec<mpsc::Sender<Task>>> = Mutex::new(Vec::new());

    /// A task's result, to wait for.
    pub struct Reply<T>(mpsc::Receiver<crate::Result<T>>);

    impl<T> Reply<T> {
        pub fn wait(self) -> crate::Result<T> {
            self.0.recv().unwrap_or_else(|_| Err(crate::Error::new("data-parallel: a pool thread panicked")))
        }
    }

    /// Runs `task` on pool thread `i`, after the tasks posted to it before.
    pub fn run<T: Send + 'static>(i: usize, task: impl FnOnce() -> crate::Result<T> + Send + 'static) -> Reply<T> {
        let (tx, rx) = mpsc::channel();
        let mut task: Option<Task> = Some(Box::new(move || {
            let _ = tx.send(task());
        }));
        let mut senders = SENDERS.lock().unwrap_or_else(|p| p.into_inner());
        while senders.len() <= i {
            let next = senders.len();
            senders.push(spawn(next));
        }
        // A thread that panicked in an earlier task is gone: a new one takes its place.
        if let Err(mpsc::SendError(back)) = senders[i].send(task.take().expect("one task")) {
            senders[i] = spawn(i);
            let _ = senders[i].send(back);
        }
        Reply(rx)
    }

    fn spawn(i: usize) -> mpsc::Sender<Task> {
        let (tx, rx) = mpsc::channel::<Task>();
        std::thread::Builder::new()
            .name(format!("data-parallel-{i}"))
            .spawn(move || {
                for task in rx {
                    task();
                }
            })
            .expect("could not start a data-parallel thread");
        tx
    }
}

/// Threads a native [`ThreadPool`] uses when none is installed (the CLI's `--threads`).
static DEFAULT_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

pub fn set_default_threads(threads: usize) {
    DEFAULT_THREADS.store(threads.max(1), std::sync::atomic::Ordering::Relaxed);
}

thread_local! {
    static INSTALLED: std::cell::RefCell<Option<Rc<dyn ChunkPool>>> = const { std::cell::RefCell::new(None) };
}

/// Makes `pool` this thread's pool (the page's run worker installs its helpers for a run); none: back to the
/// default. Returns the one it replaces.
pub fn install(pool: Option<Rc<dyn ChunkPool>>) -> Option<Rc<dyn ChunkPool>> {
    INSTALLED.with(|p| std::mem::replace(&mut *p.borrow_mut(), pool))
}

/// This thread's pool: the installed one, else native threads ([`set_default_threads`]; one in a browser).
pub fn current() -> Rc<dyn ChunkPool> {
    INSTALLED.with(|p| p.borrow().clone()).unwrap_or_else(|| Rc::new(ThreadPool { threads: DEFAULT_THREADS.load(std::sync::atomic::Ordering::Relaxed) }))
}

/// The wire format of a chunk request and its reply between a page's run worker and its helpers: 4-byte words,
/// little-endian. A request is [header length][header JSON, padded to 4 bytes][the policy's values][π_sft's values,
/// when sent][each job's tokens, targets, weights and, when known, π_sft's log-probs]; a reply is [header length]
/// [header JSON][each chunk's gradient, log-probs, π_sft's log-probs].
pub mod wire {
    use super::rows::{Read, ReadKind};
    use super::*;

    /// What a request holds, named by its header.
    #[derive(Serialize, Deserialize)]
    enum RequestHeader {
        /// A step's chunks (their data follows each), after the policy's values and π_sft's when sent.
        Train { config: GptConfig, reference_id: u64, reference_sent: bool, jobs: Vec<(ChunkJob, bool)> },
        /// A part of a batch to sample: the spec (its `row0` the part's first row), and the part's prompts' count and
        /// length, after the policy's values.
        Sample { config: GptConfig, spec: SampleSpec, prompts: usize, len: usize },
        /// A part of a row pass: its models (each with its values when sent), then its rows.
        Pass { models: Vec<PassModel>, kind: ReadKind, rows: usize, t: usize },
    }

    /// A row pass's model as named in a request.
    #[derive(Serialize, Deserialize)]
    struct PassModel {
        config: GptConfig,
        score_head: bool,
        id: u64,
        sent: bool,
    }

    fn header(bytes: &mut Vec<u8>, h: &impl Serialize) {
        let mut text = serde_json::to_vec(h).expect("a header serialises");
        while text.len() % 4 != 0 {
            text.push(b' ');
        }
        bytes.extend((text.len() as u32).to_le_bytes());
        bytes.extend(text);
    }

    fn floats(bytes: &mut Vec<u8>, v: &[f32]) {
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    }

    fn words(bytes: &mut Vec<u8>, v: &[u32]) {
        bytes.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    }

    /// Reads a message: its header, then its words in order.
    struct Reader<'b> {
        bytes: &'b [u8],
        at: usize,
    }

    impl<'b> Reader<'b> {
        fn open<H: for<'de> Deserialize<'de>>(bytes: &'b [u8]) -> Result<(H, Self)> {
            let bad = |why: String| crate::Error::new(format!("data-parallel message: {why}"));
            let len = bytes.get(..4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize).ok_or_else(|| bad("shorter than its header's length".into()))?;
            let text = bytes.get(4..4 + len).ok_or_else(|| bad(format!("its header of {len} bytes is cut off")))?;
            let h = serde_json::from_slice(text).map_err(|e| bad(format!("header: {e}")))?;
            Ok((h, Reader { bytes, at: 4 + len }))
        }
        fn take(&mut self, n: usize) -> Result<&'b [u8]> {
            let part = self.bytes.get(self.at..self.at + 4 * n).ok_or_else(|| crate::Error::new(format!("data-parallel message: cut off at byte {} ({} words wanted)", self.at, n)))?;
            self.at += 4 * n;
            Ok(part)
        }
        fn floats(&mut self, n: usize) -> Result<Vec<f32>> {
            Ok(self.take(n)?.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
        }
        fn words(&mut self, n: usize) -> Result<Vec<u32>> {
            Ok(self.take(n)?.chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
        }
        fn model(&mut self, config: &GptConfig, head: Head) -> Result<Vec<Vec<f32>>> {
            crate::model::params::param_infos(config, head).iter().map(|i| self.floats(i.len())).collect()
        }
        fn end(&self) -> Result<()> {
            match self.at == self.bytes.len() {
                true => Ok(()),
                false => crate::bail!("data-parallel message: {} bytes left over", self.bytes.len() - self.at),
            }
        }
    }

    /// A request for `jobs`, with π_sft's values when `send_reference`.
    pub fn request(models: ChunkModels, jobs: &[ChunkJob], send_reference: bool) -> Vec<u8> {
        let mut bytes = vec![];
        let jobs_meta = jobs.iter().map(|j| (ChunkJob { tokens: vec![], targets: vec![], weights: vec![], reference: None, ..j.clone() }, j.reference.is_some())).collect();
        header(&mut bytes, &RequestHeader::Train { config: models.config, reference_id: models.reference_id, reference_sent: send_reference, jobs: jobs_meta });
        models.policy.iter().for_each(|v| floats(&mut bytes, v));
        if send_reference {
            models.reference.iter().for_each(|v| floats(&mut bytes, v));
        }
        for j in jobs {
            words(&mut bytes, &j.tokens);
            words(&mut bytes, &j.targets);
            floats(&mut bytes, &j.weights);
            if let Some(r) = &j.reference {
                floats(&mut bytes, r);
            }
        }
        bytes
    }

    /// A request for the responses of a part of a batch: the policy's values, the part's prompts (all of one length) and
    /// the spec, whose `row0` is the part's first row in the batch.
    pub fn sample_request(config: GptConfig, policy: &[Vec<f32>], prompts: &[Vec<u32>], spec: SampleSpec) -> Vec<u8> {
        let mut bytes = vec![];
        let len = prompts.first().map_or(0, Vec::len);
        header(&mut bytes, &RequestHeader::Sample { config, spec, prompts: prompts.len(), len });
        policy.iter().for_each(|v| floats(&mut bytes, v));
        prompts.iter().for_each(|p| words(&mut bytes, p));
        bytes
    }

    /// A request for part of a row pass through `models` (values sent only where `send` says so).
    pub fn pass_request(models: &[ModelRef], send: &[bool], rows: &Rows) -> Vec<u8> {
        let mut bytes = vec![];
        let named = models.iter().zip(send).map(|(m, &sent)| PassModel { config: m.config, score_head: m.head == Head::Score, id: m.id, sent }).collect();
        header(&mut bytes, &RequestHeader::Pass { models: named, kind: rows.kind(), rows: rows.len(), t: rows.t });
        for (m, &sent) in models.iter().zip(send) {
            if sent {
                m.values.iter().for_each(|v| floats(&mut bytes, v));
            }
        }
        words(&mut bytes, &rows.tokens);
        match &rows.read {
            Read::Logps { targets, weights } => {
                words(&mut bytes, targets);
                floats(&mut bytes, weights);
            }
            Read::Kl { weights } => floats(&mut bytes, weights),
            Read::Score { last } => words(&mut bytes, last),
            Read::SummedScore { spans } => spans.iter().for_each(|&(a, b)| words(&mut bytes, &[a, b])),
        }
        bytes
    }

    /// A request read back.
    pub enum Work {
        /// A step's chunks of a policy of `config`, with π_sft's values when sent, and their id.
        Train { config: GptConfig, policy: Vec<Vec<f32>>, reference: Option<Vec<Vec<f32>>>, reference_id: u64, jobs: Vec<ChunkJob> },
        /// Responses to a part of a batch.
        Sample { config: GptConfig, policy: Vec<Vec<f32>>, spec: SampleSpec, prompts: Vec<Vec<u32>> },
        /// A part of a row pass: its models (config, head, id, values: empty when not sent) and rows.
        Pass { models: Vec<(GptConfig, Head, u64, Vec<Vec<f32>>)>, rows: Rows },
    }

    /// Reads a request; each chunk job's row count follows from its place in the step.
    pub fn read_request(bytes: &[u8]) -> Result<Work> {
        let (h, mut r): (RequestHeader, _) = Reader::open(bytes)?;
        let work = match h {
            RequestHeader::Sample { config, spec, prompts, len } => {
                let policy = r.model(&config, Head::Lm)?;
                let prompts = (0..prompts).map(|_| r.words(len)).collect::<Result<Vec<_>>>()?;
                Work::Sample { config, policy, spec, prompts }
            }
            RequestHeader::Train { config, reference_id, reference_sent, jobs: metas } => {
                let policy = r.model(&config, Head::Lm)?;
                let reference = if reference_sent { Some(r.model(&config, Head::Lm)?) } else { None };
                let mut jobs = vec![];
                for (job, has_reference) in metas {
                    let n = job_rows(&job)? * job.t;
                    let (tokens, targets, weights) = (r.words(n)?, r.words(n)?, r.floats(n)?);
                    let reference = if has_reference { Some(r.floats(n / job.t)?) } else { None };
                    jobs.push(ChunkJob { tokens, targets, weights, reference, ..job });
                }
                Work::Train { config, policy, reference, reference_id, jobs }
            }
            RequestHeader::Pass { models: named, kind, rows, t } => {
                let mut models = vec![];
                for m in named {
                    let head = if m.score_head { Head::Score } else { Head::Lm };
                    let values = if m.sent { r.model(&m.config, head)? } else { vec![] };
                    models.push((m.config, head, m.id, values));
                }
                let n = rows * t;
                let tokens = r.words(n)?;
                let read = match kind {
                    ReadKind::Logps => Read::Logps { targets: r.words(n)?, weights: r.floats(n)? },
                    ReadKind::Kl => Read::Kl { weights: r.floats(n)? },
                    ReadKind::Score => Read::Score { last: r.words(rows)? },
                    ReadKind::SummedScore => Read::SummedScore { spans: r.words(2 * rows)?.chunks_exact(2).map(|p| (p[0], p[1])).collect() },
                };
                Work::Pass { models, rows: Rows { t, tokens, read } }
            }
        };
        r.end()?;
        Ok(work)
    }

    /// A reply holding a part's reads.
    pub fn pass_reply(reads: &[f32]) -> Vec<u8> {
        let mut bytes = vec![];
        header(&mut bytes, &reads.len());
        floats(&mut bytes, reads);
        bytes
    }

    pub fn read_pass_reply(bytes: &[u8]) -> Result<Vec<f32>> {
        let (n, mut r): (usize, _) = Reader::open(bytes)?;
        let reads = r.floats(n)?;
        r.end()?;
        Ok(reads)
    }

    /// A job's rows, from its place in the step: two per pair of its chunk.
    fn job_rows(job: &ChunkJob) -> Result<usize> {
        let chunks = job.chunks;
        if chunks == 0 || job.chunk >= chunks || chunks > job.batch_pairs {
            crate::bail!("data-parallel message: chunk {} of {chunks} over {} pairs", job.chunk, job.batch_pairs);
        }
        Ok(2 * chunk_rows(job.batch_pairs, chunks, job.chunk).len())
    }

    #[derive(Serialize, Deserialize)]
    struct ReplyHeader {
        config: GptConfig,
        chunks: Vec<(usize, usize)>,
    }

    /// A reply holding `outs` (gradients of a model of `config`).
    pub fn reply(config: GptConfig, outs: &[ChunkOut]) -> Vec<u8> {
        let mut bytes = vec![];
        header(&mut bytes, &ReplyHeader { config, chunks: outs.iter().map(|o| (o.chunk, o.logps.len())).collect() });
        for o in outs {
            o.grads.iter().for_each(|g| floats(&mut bytes, g));
            floats(&mut bytes, &o.logps);
            floats(&mut bytes, &o.reference);
        }
        bytes
    }

    #[derive(Serialize, Deserialize)]
    struct SampleReplyHeader {
        lens: Vec<usize>,
    }

    /// A reply holding a part's responses.
    pub fn sample_reply(responses: &[Vec<u32>]) -> Vec<u8> {
        let mut bytes = vec![];
        header(&mut bytes, &SampleReplyHeader { lens: responses.iter().map(Vec::len).collect() });
        responses.iter().for_each(|y| words(&mut bytes, y));
        bytes
    }

    pub fn read_sample_reply(bytes: &[u8]) -> Result<Vec<Vec<u32>>> {
        let (h, mut r): (SampleReplyHeader, _) = Reader::open(bytes)?;
        let responses = h.lens.iter().map(|&n| r.words(n)).collect::<Result<Vec<_>>>()?;
        r.end()?;
        Ok(responses)
    }

    pub fn read_reply(bytes: &[u8]) -> Result<Vec<ChunkOut>> {
        let (h, mut r): (ReplyHeader, _) = Reader::open(bytes)?;
        let mut outs = vec![];
        for (chunk, rows) in h.chunks {
            let grads = r.model(&h.config, Head::Lm)?;
            outs.push(ChunkOut { chunk, grads, logps: r.floats(rows)?, reference: r.floats(rows)? });
        }
        r.end()?;
        Ok(outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request and a reply read back as they were sent, with and without π_sft and its log-probs; a message cut
    /// short or with bytes left over is refused.
    #[test]
    fn chunk_messages_read_back_as_sent() {
        let config = GptConfig { n_layer: 1, n_embd: 8, n_head: 2, n_positions: 3, vocab_size: 5 };
        let (policy, reference) = (crate::model::params::init_values(&config, Head::Lm, 1), crate::model::params::init_values(&config, Head::Lm, 2));
        let batch = SequenceBatch { b: 10, t: 3, tokens: (0..30).map(|i| i % 5).collect(), targets: (0..30).map(|i| (i + 1) % 5).collect(), weights: (0..30).map(|i| (i % 3) as f32 * 0.5).collect() };
        let known: Vec<f32> = (0..10).map(|i| -(i as f32) - 0.25).collect();
        let models = ChunkModels { config, policy: &policy, reference: &reference, reference_id: values_id(&reference) };
        for (known, send) in [(None, true), (Some(&known[..]), false)] {
            let jobs = step_jobs(&batch, 2, known, Loss::Dpo, 0.25);
            assert_eq!(jobs.iter().map(ChunkJob::rows).collect::<Vec<_>>(), vec![6, 4], "5 pairs in 2 chunks: 3 and 2");
            let bytes = wire::request(models, &jobs, send);
            let wire::Work::Train { config: back_config, policy: back_policy, reference: sent, reference_id, jobs: back_jobs } = wire::read_request(&bytes).unwrap() else { panic!("a training request") };
            assert_eq!((back_config, &back_policy), (config, &policy));
            assert_eq!((sent.as_ref(), reference_id), (send.then_some(&reference), values_id(&reference)));
            assert_eq!(back_jobs, jobs);
            assert!(wire::read_request(&bytes[..bytes.len() - 4]).is_err() && wire::read_request(&[bytes.clone(), vec![0; 4]].concat()).is_err());
        }
        let outs = vec![ChunkOut { chunk: 1, grads: reference.clone(), logps: vec![-1.0, -2.0], reference: vec![-3.0, f32::MIN_POSITIVE] }];
        assert_eq!(wire::read_reply(&wire::reply(config, &outs)).unwrap(), outs);
        assert_ne!(values_id(&policy), values_id(&reference));
        let spec = SampleSpec { temperature: 1.0, max_len: 3, seed: 4, stream: 5, row0: 6, eos: 1, pad: 0, banned: 1 };
        let prompts = vec![vec![2, 3], vec![4, 2]];
        let wire::Work::Sample { config: c, policy: back_policy, spec: s, prompts: p } = wire::read_request(&wire::sample_request(config, &policy, &prompts, spec)).unwrap() else { panic!("a sampling request") };
        assert_eq!((c, s, p, &back_policy), (config, spec, prompts, &policy));
        let responses = vec![vec![3, 1], vec![], vec![4]];
        assert_eq!(wire::read_sample_reply(&wire::sample_reply(&responses)).unwrap(), responses);
        // Row passes, one per read, with one model sent and one named only.
        let scorer = crate::model::params::init_values(&config, Head::Score, 3);
        let reads = [
            rows::Read::Logps { targets: vec![1, 2, 3, 4, 0, 1], weights: vec![0.0, 1.0, 0.5, 0.0, 1.0, 1.0] },
            rows::Read::Kl { weights: vec![0.0, 1.0, 0.5, 0.0, 1.0, 1.0] },
            rows::Read::Score { last: vec![2, 1] },
            rows::Read::SummedScore { spans: vec![(1, 3), (0, 2)] },
        ];
        for read in reads {
            let rows = rows::Rows { t: 3, tokens: vec![4, 3, 2, 1, 0, 4], read };
            let first = rows::ModelRef { config, head: if matches!(rows.read, rows::Read::Score { .. } | rows::Read::SummedScore { .. }) { Head::Score } else { Head::Lm }, id: 7, values: &scorer };
            let first = rows::ModelRef { values: if first.head == Head::Score { &scorer } else { &policy }, ..first };
            let second = rows::ModelRef { config, head: Head::Lm, id: 9, values: &reference };
            let bytes = wire::pass_request(&[first, second], &[true, false], &rows);
            let wire::Work::Pass { models, rows: back } = wire::read_request(&bytes).unwrap() else { panic!("a row pass") };
            assert_eq!(back, rows);
            assert_eq!(models.len(), 2);
            assert_eq!((models[0].0, models[0].1, models[0].2, &models[0].3), (config, first.head, 7, &first.values.to_vec()));
            assert_eq!((models[1].1, models[1].2, models[1].3.len()), (Head::Lm, 9, 0), "named, not sent");
            assert!(wire::read_request(&bytes[..bytes.len() - 4]).is_err());
        }
        let reads = vec![-1.5, 0.0, f32::MAX];
        assert_eq!(wire::read_pass_reply(&wire::pass_reply(&reads)).unwrap(), reads);
    }

    /// A batch sampled in parts by 2 or 3 threads, each part drawing as its rows of the whole batch: the whole batch's
    /// responses, bit for bit. (Native threads; in the browser the page test runs the same split over Web Workers.)
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn a_batch_sampled_in_parts_is_the_whole_batch() {
        let config = GptConfig { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 9, vocab_size: 11 };
        let values = crate::model::params::init_values(&config, Head::Lm, 3);
        let e = Engine::cpu();
        let model = Gpt::new(&e, config, Head::Lm, &values).unwrap();
        let prompts: Vec<Vec<u32>> = (0..27u32).map(|i| vec![2 + i % 7, 3 + i % 5, 2 + i % 3]).collect();
        let spec = SampleSpec { temperature: 1.0, max_len: 9, seed: 5, stream: 2, row0: 0, eos: 1, pad: 0, banned: 1 };
        let whole = pollster::block_on(sample_responses(&e, &model, &prompts, spec)).unwrap();
        for threads in [2, 3] {
            install(Some(Rc::new(ThreadPool { threads })));
            let parts = pollster::block_on(sample_responses(&e, &model, &prompts, spec));
            install(None);
            assert_eq!(parts.unwrap(), whole, "{threads} threads");
        }
        assert!(whole.iter().any(|y| y.len() > 1) && whole.windows(2).any(|w| w[0] != w[1]), "the draws differ by row");
    }

    #[test]
    fn chunks_cover_the_rows_in_order_and_differ_by_at_most_one() {
        let all: Vec<Range<usize>> = (0..4).map(|i| chunk_rows(10, 4, i)).collect();
        assert_eq!(all, vec![0..3, 3..6, 6..8, 8..10]);
        assert_eq!(chunk_rows(8, 8, 7), 7..8);
    }
}

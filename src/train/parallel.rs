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
//! `alignment-gap bench --data-parallel N` times the bench's step with [`chunked_gradients`].

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

/// Rows [start, end) of chunk `i` of `chunks` over `rows` rows: the first `rows % chunks` chunks hold one row more.
pub fn chunk_rows(rows: usize, chunks: usize, i: usize) -> Range<usize> {
    let (per, extra) = (rows / chunks, rows % chunks);
    let start = i * per + i.min(extra);
    start..start + per + usize::from(i < extra)
}

#[cfg(not(target_arch = "wasm32"))]
/// Σ over `chunks` chunks of `rows` rows, in chunk order, of `gradient(engine, model, rows)`: each chunk's
/// gradient (one vector per parameter tensor) computed on a CPU engine holding a replica of the model
/// (`config`, `head`, `values`). Chunk i runs on thread i mod `threads`; each thread builds its replica once.
/// Bit for bit the same for every `threads`.
pub fn chunked_gradients<F>(config: GptConfig, head: Head, values: &[Vec<f32>], rows: usize, chunks: usize, threads: usize, gradient: F) -> Result<Vec<Vec<f32>>>
where
    F: Fn(&Engine, &Gpt, Range<usize>) -> Result<Vec<Vec<f32>>> + Sync,
{
    if chunks == 0 || chunks > rows || threads == 0 {
        crate::bail!("data-parallel: chunks = {chunks} must be in 1..={rows} (the batch's rows) and threads = {threads} ≥ 1");
    }
    let threads = threads.min(chunks);
    let per_thread = |t: usize| -> Result<Vec<(usize, Vec<Vec<f32>>)>> {
        let e = Engine::cpu();
        let model = Gpt::new(&e, config, head, values)?;
        (t..chunks).step_by(threads).map(|i| Ok((i, gradient(&e, &model, chunk_rows(rows, chunks, i))?))).collect()
    };
    let mut parts: Vec<(usize, Vec<Vec<f32>>)> = if threads == 1 {
        per_thread(0)?
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || per_thread(t))).collect();
            handles.into_iter().map(|h| h.join().expect("a data-parallel thread panicked")).collect::<Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect()
    };
    parts.sort_by_key(|(i, _)| *i);
    let mut parts = parts.into_iter().map(|(_, g)| g);
    let mut sum = parts.next().expect("chunks ≥ 1");
    for part in parts {
        for (s, g) in sum.iter_mut().zip(part) {
            s.iter_mut().zip(g).for_each(|(s, g)| *s += g);
        }
    }
    Ok(sum)
}

#[cfg(not(target_arch = "wasm32"))]
/// One chunk's gradient of the sequence log-prob loss −(1/`batch_rows`)·Σ_rows log p(row), for a batch of rows of
/// `t` tokens (`ids`, `targets`, `weights`: the whole batch's, row-major): the bench's and SFT's loss, as
/// [`chunked_gradients`] wants it.
#[allow(clippy::too_many_arguments)]
pub fn sequence_logprob_gradient(e: &Engine, m: &Gpt, rows: Range<usize>, t: usize, batch_rows: usize, ids: &[u32], targets: &[u32], weights: &[f32]) -> Result<Vec<Vec<f32>>> {
    let (n, span) = (rows.len(), rows.start * t..rows.end * t);
    let acts = m.activations(e, n, t)?;
    let (tokens, targets, weights) = (e.indices(&ids[span.clone()]), e.indices(&targets[span.clone()]), e.tensor(&weights[span]));
    m.forward(e, &acts, &tokens)?;
    m.sequence_logprobs(e, &acts, &targets, &weights)?;
    let grads = m.zero_grads(e);
    // Every chunk's rows carry −1/batch_rows, so the chunks' gradients sum to the whole batch's.
    m.backward(e, &acts, &grads, &crate::model::TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &e.tensor(&vec![-1.0 / batch_rows as f32; n]))?;
    grads.parts.iter().map(|g| pollster::block_on(e.read(g))).collect()
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

/// One chunk of an alignment step, on `e`: π_sft's log-probs of its rows (unless given), the policy's forward pass,
/// the GPO loss's gradient for its pairs (divided by the step's pair count) and the backward pass.
pub async fn train_chunk(e: &Engine, policy: &Gpt, reference: Option<&Gpt>, job: &ChunkJob) -> Result<ChunkOut> {
    let (rows, t) = (job.rows(), job.t);
    if rows == 0 || rows % 2 != 0 || job.targets.len() != rows * t || job.weights.len() != rows * t {
        crate::bail!("data-parallel chunk {}: {rows} rows of {t} tokens with {} targets and {} weights; it needs an even number of rows, two per pair", job.chunk, job.targets.len(), job.weights.len());
    }
    let n = rows / 2;
    let reference_logps = match (&job.reference, reference) {
        (Some(r), _) => r.clone(),
        (None, Some(sft)) => {
            let batch = SequenceBatch { b: rows, t, tokens: job.tokens.clone(), targets: job.targets.clone(), weights: job.weights.clone() };
            response_logprobs(e, sft, &sft.activations(e, rows, t)?, &batch).await?
        }
        (None, None) => crate::bail!("data-parallel chunk {}: neither π_sft's log-probs nor π_sft", job.chunk),
    };
    let acts = policy.activations(e, rows, t)?;
    let (tokens, targets, weights) = (e.indices(&job.tokens), e.indices(&job.targets), e.tensor(&job.weights));
    policy.forward(e, &acts, &tokens)?;
    policy.sequence_logprobs(e, &acts, &targets, &weights)?;
    let logps = e.read(&acts.sequence_logprobs).await?;
    let r = &reference_logps;
    let (_, dw, dl) = gpo_of_batch(job.loss, job.beta, &logps[..n], &logps[n..], &r[..n], &r[n..], job.batch_pairs);
    let dseq: Vec<f32> = dw.into_iter().chain(dl).collect();
    let grads = policy.zero_grads(e);
    policy.backward(e, &acts, &grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &e.tensor(&dseq))?;
    let mut out = Vec::with_capacity(grads.parts.len());
    for g in &grads.parts {
        out.push(e.read(g).await?);
    }
    Ok(ChunkOut { chunk: job.chunk, grads: out, logps, reference: reference_logps })
}

/// `jobs` computed one after another on a CPU engine of their own, with replicas of `models` (π_sft's built only
/// when a job needs it).
pub async fn compute_chunks(models: ChunkModels<'_>, jobs: &[ChunkJob]) -> Result<Vec<ChunkOut>> {
    let e = Engine::cpu();
    let policy = Gpt::new(&e, models.config, Head::Lm, models.policy)?;
    let reference = match jobs.iter().any(|j| j.reference.is_none()) {
        true => Some(Gpt::new(&e, models.config, Head::Lm, models.reference)?),
        false => None,
    };
    let mut outs = Vec::with_capacity(jobs.len());
    for job in jobs {
        outs.push(train_chunk(&e, &policy, reference.as_ref(), job).await?);
    }
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

/// The step's chunk results gathered: the gradient summed in chunk order, and the policy's and π_sft's log-probs
/// of every row in the batch's order (winners, then losers).
pub fn gather(mut outs: Vec<ChunkOut>, b: usize, chunks: usize) -> Result<(Vec<Vec<f32>>, Vec<f32>, Vec<f32>)> {
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
    Ok((sum.expect("chunks ≥ 1"), logps, reference))
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
}

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

/// A part's responses, sampled on a CPU engine of its own with a replica of the policy (what a helper does).
pub async fn sample_part(config: GptConfig, policy: &[Vec<f32>], prompts: &[Vec<u32>], spec: SampleSpec) -> Result<Vec<Vec<u32>>> {
    let e = Engine::cpu();
    let model = Gpt::new(&e, config, Head::Lm, policy)?;
    let s = model.sample(&e, prompts, &spec).await?;
    Ok((0..s.tokens.len()).map(|r| s.response(r, spec.eos).to_vec()).collect())
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
            // Each other part on a thread of its own, started now: they sample while the caller samples part 0.
            let handles: Vec<_> = parts
                .into_iter()
                .skip(1)
                .map(|(prompts, spec)| {
                    let policy = policy.to_vec();
                    std::thread::spawn(move || pollster::block_on(sample_part(config, &policy, &prompts, spec)))
                })
                .collect();
            Box::pin(async move { handles.into_iter().map(|h| h.join().expect("a sampling thread panicked")).collect() })
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
            let jobs = &jobs;
            let parts = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|w| {
                        s.spawn(move || {
                            let mine: Vec<ChunkJob> = jobs.iter().filter(|j| j.chunk % threads == w).cloned().collect();
                            pollster::block_on(compute_chunks(models, &mine))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("a data-parallel thread panicked")).collect::<Result<Vec<_>>>()
            })?;
            Ok(parts.into_iter().flatten().collect())
        })
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
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct RequestHeader {
        config: GptConfig,
        reference_id: u64,
        reference_sent: bool,
        jobs: Vec<(ChunkJob, bool)>,
        /// A sampling request instead: the spec (its `row0` the part's first row), and the part's prompts' count and
        /// length.
        #[serde(default)]
        sample: Option<(SampleSpec, usize, usize)>,
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
        fn model(&mut self, config: &GptConfig) -> Result<Vec<Vec<f32>>> {
            crate::model::params::param_infos(config, Head::Lm).iter().map(|i| self.floats(i.len())).collect()
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
        header(&mut bytes, &RequestHeader { config: models.config, reference_id: models.reference_id, reference_sent: send_reference, jobs: jobs_meta, sample: None });
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
        header(&mut bytes, &RequestHeader { config, reference_id: 0, reference_sent: false, jobs: vec![], sample: Some((spec, prompts.len(), len)) });
        policy.iter().for_each(|v| floats(&mut bytes, v));
        prompts.iter().for_each(|p| words(&mut bytes, p));
        bytes
    }

    /// A request read back: the models' config, the policy's values, and its work.
    pub struct Request {
        pub config: GptConfig,
        pub policy: Vec<Vec<f32>>,
        pub work: Work,
    }

    pub enum Work {
        /// A step's chunks, with π_sft's values when sent, and their id.
        Train { reference: Option<Vec<Vec<f32>>>, reference_id: u64, jobs: Vec<ChunkJob> },
        /// Responses to a part of a batch.
        Sample { spec: SampleSpec, prompts: Vec<Vec<u32>> },
    }

    /// Reads a request; each job's row count follows from its place in the step.
    pub fn read_request(bytes: &[u8]) -> Result<Request> {
        let (h, mut r): (RequestHeader, _) = Reader::open(bytes)?;
        let policy = r.model(&h.config)?;
        if let Some((spec, rows, len)) = h.sample {
            let prompts = (0..rows).map(|_| r.words(len)).collect::<Result<Vec<_>>>()?;
            r.end()?;
            return Ok(Request { config: h.config, policy, work: Work::Sample { spec, prompts } });
        }
        let reference = if h.reference_sent { Some(r.model(&h.config)?) } else { None };
        let mut jobs = vec![];
        for (job, has_reference) in h.jobs {
            let n = job_rows(&job)? * job.t;
            let (tokens, targets, weights) = (r.words(n)?, r.words(n)?, r.floats(n)?);
            let reference = if has_reference { Some(r.floats(n / job.t)?) } else { None };
            jobs.push(ChunkJob { tokens, targets, weights, reference, ..job });
        }
        r.end()?;
        Ok(Request { config: h.config, policy, work: Work::Train { reference, reference_id: h.reference_id, jobs } })
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
            let grads = r.model(&h.config)?;
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
            let back = wire::read_request(&bytes).unwrap();
            assert_eq!((back.config, &back.policy), (config, &policy));
            let wire::Work::Train { reference: sent, reference_id, jobs: back_jobs } = back.work else { panic!("a training request") };
            assert_eq!((sent.as_ref(), reference_id), (send.then_some(&reference), values_id(&reference)));
            assert_eq!(back_jobs, jobs);
            assert!(wire::read_request(&bytes[..bytes.len() - 4]).is_err() && wire::read_request(&[bytes.clone(), vec![0; 4]].concat()).is_err());
        }
        let outs = vec![ChunkOut { chunk: 1, grads: reference.clone(), logps: vec![-1.0, -2.0], reference: vec![-3.0, f32::MIN_POSITIVE] }];
        assert_eq!(wire::read_reply(&wire::reply(config, &outs)).unwrap(), outs);
        assert_ne!(values_id(&policy), values_id(&reference));
        let spec = SampleSpec { temperature: 1.0, max_len: 3, seed: 4, stream: 5, row0: 6, eos: 1, pad: 0, banned: 1 };
        let prompts = vec![vec![2, 3], vec![4, 2]];
        let back = wire::read_request(&wire::sample_request(config, &policy, &prompts, spec)).unwrap();
        let wire::Work::Sample { spec: s, prompts: p } = back.work else { panic!("a sampling request") };
        assert_eq!((s, p, back.policy), (spec, prompts, policy));
        let responses = vec![vec![3, 1], vec![], vec![4]];
        assert_eq!(wire::read_sample_reply(&wire::sample_reply(&responses)).unwrap(), responses);
    }

    /// A batch sampled in parts by 2 or 3 threads, each part drawing as its rows of the whole batch: the whole batch's
    /// responses, bit for bit.
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

    /// The sequence log-prob loss of a tiny model, chunked: the same bits for 1, 2 and 3 threads, and the
    /// one-pass gradient up to rounding.
    #[test]
    fn chunked_gradients_do_not_depend_on_the_thread_count() {
        let config = GptConfig { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 6, vocab_size: 11 };
        let values = crate::model::params::init_values(&config, Head::Lm, 4);
        let (rows, t) = (7, 6);
        let ids: Vec<u32> = (0..rows * t).map(|i| (i as u32 * 7 + 3) % 11).collect();
        let targets: Vec<u32> = (0..rows * t).map(|i| if (i + 1) % t == 0 { 0 } else { ids[i + 1] }).collect();
        let weights: Vec<f32> = (0..rows * t).map(|i| if i % t >= 2 && (i + 1) % t != 0 { 1.0 } else { 0.0 }).collect();
        let gradient = |e: &Engine, m: &Gpt, r: Range<usize>| sequence_logprob_gradient(e, m, r, t, rows, &ids, &targets, &weights);
        let one = chunked_gradients(config, Head::Lm, &values, rows, 3, 1, gradient).unwrap();
        for threads in [2, 3] {
            let many = chunked_gradients(config, Head::Lm, &values, rows, 3, threads, gradient).unwrap();
            assert!(one.iter().zip(&many).all(|(a, b)| a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits()))), "{threads} threads");
        }
        let whole = chunked_gradients(config, Head::Lm, &values, rows, 1, 1, gradient).unwrap();
        for (a, b) in one.iter().zip(&whole) {
            let err = crate::selfcheck::relative_error(a, b).unwrap();
            assert!(err < 1e-5, "chunked against one pass: {err:e}");
        }
        assert!(one.iter().flatten().any(|v| *v != 0.0));
        assert!(chunked_gradients(config, Head::Lm, &values, rows, 8, 1, gradient).is_err(), "more chunks than rows");
    }
}

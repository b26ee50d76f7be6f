//! Online and offline alignment (docs/method.md §2), one loss and one update for both so that the comparison is
//! fair: the same GPO loss, β, learning rate and batch. Offline: batches of D_golden in order. Online: each
//! step samples two responses per prompt from the current policy and labels them with the proxy (or, for
//! the reference "golden policy", with the golden preference). The online stream is kept for replay.

use super::batch::SequenceBatch;
use super::eval::{evaluate, sample_mixture_responses, Checkpoint, EvalSet};
use super::inspect::{look_inside, Judged, Trained};
use super::losses::{gpo, Loss};
use super::optim::{AdamW, AdamwConfig, Schedule};
use super::pm::{prefers, Pairs, Proxy};
use crate::bail;
use crate::clock::now_ms;
use phases::Phase;
use crate::engine::{Engine, Op};
use crate::error::Result;
use crate::model::{Gpt, Head, TokenBatch};
use crate::rng::uniform;
use crate::task::TaskConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlignConfig {
    pub loss: Loss,
    pub beta: f32,
    pub adamw: AdamwConfig,
    pub steps: u32,
    /// Pairs per step.
    pub batch: usize,
    /// Evaluate every this many steps (and at step 0 and the last step).
    pub eval_every: u32,
    /// The replicate's seed: it keys the run's prompts, samples and label coins.
    pub seed: u32,
    /// Steps of linear learning-rate warm-up from 0, then the constant lr.
    #[serde(default)]
    pub warmup_steps: u32,
    /// Also evaluate at this many log-spaced steps (dense early, where KL moves fastest): see
    /// [`AlignConfig::is_eval_step`].
    #[serde(default)]
    pub log_evals: u32,
    /// Train on past `steps` until the run is past its best (see [`PastBest`]); none: stop at `steps`.
    #[serde(default)]
    pub past_best: Option<PastBest>,
    /// Data-parallel steps (`super::parallel`): each step's pairs split into this many chunks, each chunk's
    /// gradient computed alone (by the installed pool's workers) and the chunks' gradients summed in order. The
    /// numbers depend on this count, not on how many workers share it; they differ in the last bits from one pass
    /// over the batch (0, the default). CPU backend only.
    #[serde(default)]
    pub chunks: u32,
}

/// A stopping rule that trains a run past its best checkpoint, so that no run is cut off while still
/// improving (the paper's offline sweep was long enough that its runs peaked): after the run's `steps`,
/// training goes on, checkpointing every `eval_every` steps, while the best golden win rate so far (the
/// earliest, on a tie) was reached fewer than `patience` steps before the last checkpoint, up to `max_steps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastBest {
    pub patience: u32,
    pub max_steps: u32,
}

impl PastBest {
    /// Whether a run whose checkpoints so far are `checkpoints` has improved within the last `patience` steps
    /// (so is not yet past its best).
    pub fn still_improving(&self, checkpoints: &[Checkpoint]) -> bool {
        let Some(last) = checkpoints.last() else { return true };
        let best = checkpoints.iter().fold(&checkpoints[0], |b, c| if selected_on(c) > selected_on(b) { c } else { b });
        last.step - best.step < self.patience
    }
}

/// What the stopping rule reads off a checkpoint: its golden win rate on the validation prompts where they were
/// measured, else (experiments without them, from before they existed) on the evaluation prompts.
fn selected_on(c: &Checkpoint) -> f32 {
    c.validation_win_rate.unwrap_or(c.golden_win_rate)
}

impl AlignConfig {
    /// Whether `step` (1-based) ends with a checkpoint: every `eval_every` steps, the last step, and the
    /// steps round(steps^(i/log_evals)) for i = 1..=log_evals (and the cap of a [`PastBest`] run).
    pub fn is_eval_step(&self, step: u32) -> bool {
        step % self.eval_every == 0
            || step == self.steps
            || self.past_best.is_some_and(|p| step == p.max_steps)
            || log_spaced(self.steps, self.log_evals).contains(&step)
    }

    /// Whether step `step` (0-based; `step` steps are done) is trained, given the checkpoints so far: every
    /// step before `steps`; after it, up to a [`PastBest`] rule's cap, on to the next checkpoint, where the rule
    /// decides again.
    pub fn trains_step(&self, step: u32, checkpoints: &[Checkpoint]) -> bool {
        if step < self.steps {
            return true;
        }
        match self.past_best {
            Some(p) if step < p.max_steps => !self.is_eval_step(step) || p.still_improving(checkpoints),
            _ => false,
        }
    }
}

/// `n` steps spaced evenly in log between 1 and `steps` (duplicates merged).
pub fn log_spaced(steps: u32, n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (1..=n).map(|i| ((steps as f64).powf(i as f64 / n as f64).round() as u32).clamp(1, steps)).collect();
    v.dedup();
    v
}

/// Where a run's pairs come from.
pub enum Source<'a> {
    /// D_golden (or any fixed dataset), in order, cycling; with the reference's log-probs of its pairs when
    /// other runs share them.
    Offline(&'a Pairs, Option<&'a ReferenceLogps>),
    /// Pairs sampled from the policy being trained.
    Online(Online<'a>),
}

/// How an online run samples and labels its pairs. [`Online::proxy`] is the paper's online IPO; each other field
/// at its default value leaves the run exactly that (the same prompts, sample streams and labels).
#[derive(Clone, Copy)]
pub struct Online<'a> {
    /// The proxy PM that labels the pairs; none: the golden preference does (the paper's "golden policy").
    pub proxy: Option<&'a Proxy>,
    /// Semi-online (beyond the paper; Lanchantin et al. 2025): every `refresh` steps, the next `refresh` steps'
    /// pairs are sampled at once from the current policy and labelled, then trained on in order; 0 never
    /// refreshes (every pair sampled from π_sft at step 0); 1 samples every step.
    pub refresh: u32,
    /// IPO-MD (beyond the paper; Calandriello et al. 2024): the two samples of each prompt are drawn from the
    /// per-token geometric mixture π_θ^(1−m)·π_sft^m; m leans the data toward π_sft; 0 samples from π_θ.
    pub mixture: f32,
}

impl Source<'_> {
    /// Where this source's pairs come from and who labels them, for a step looked into.
    fn judged<'e>(&'e self, eval: &'e EvalSet<'e>) -> Judged<'e> {
        let (source, labels, proxy) = match self {
            Source::Offline(..) => ("offline", "golden", eval.proxy),
            Source::Online(Online { proxy: None, .. }) => ("online_golden", "golden", eval.proxy),
            Source::Online(Online { proxy: Some(pm), refresh, mixture }) => {
                let name = if *refresh != 1 {
                    "semi_online"
                } else if *mixture != 0.0 {
                    "mixture"
                } else {
                    "online"
                };
                (name, "proxy", Some(*pm))
            }
        };
        Judged { source, labels, proxy }
    }
}

impl<'a> Online<'a> {
    /// Online IPO: two samples per prompt from the current policy, every step, labelled by `proxy`.
    pub fn proxy(proxy: &'a Proxy) -> Self {
        Online { proxy: Some(proxy), refresh: 1, mixture: 0.0 }
    }

    /// Online IPO labelled by the golden preference.
    pub fn golden() -> Self {
        Online { proxy: None, refresh: 1, mixture: 0.0 }
    }

    /// The step's pairs, sampled from the policy (or its mixture with `sft`) and labelled.
    #[allow(clippy::too_many_arguments)]
    async fn pairs(&self, e: &Engine, task: &TaskConfig, policy: &Gpt, sft: &Gpt, seed: u32, step: u32, b: usize) -> Result<Pairs> {
        let mixture = (self.mixture != 0.0).then_some((sft, self.mixture));
        online_pairs(e, task, policy, mixture, self.proxy, seed, step, b).await
    }
}

use crate::rng::streams::{ALIGN_COINS, ALIGN_PROMPTS, ALIGN_SAMPLES, MAX_ONLINE_STEPS};

/// π_sft's summed log-probs of a fixed dataset's pairs (winner, loser), filled in as offline runs reach them:
/// the offline runs of a seed over D_golden (the sweep trains up to eight, each past a thousand steps) share
/// one reference pass per pair instead of one per step of each run. A row's log-prob does not depend on the
/// rows batched with it (every kernel computes each row alone), so a run reads exactly what it would have
/// computed; a test checks a run with a shared, already filled set against one without.
#[derive(Default)]
pub struct ReferenceLogps(std::cell::RefCell<Vec<Option<(f32, f32)>>>);

impl ReferenceLogps {
    /// The log-probs of pairs `idx` in a batch's order (winners, then losers), when all are known.
    fn get(&self, idx: &[usize]) -> Option<Vec<f32>> {
        let known = self.0.borrow();
        let pairs: Vec<(f32, f32)> = idx.iter().map(|&i| known.get(i).copied().flatten()).collect::<Option<_>>()?;
        Some(pairs.iter().map(|p| p.0).chain(pairs.iter().map(|p| p.1)).collect())
    }

    fn put(&self, idx: &[usize], reference: &[f32]) {
        let mut known = self.0.borrow_mut();
        let b = idx.len();
        for (j, &i) in idx.iter().enumerate() {
            if known.len() <= i {
                known.resize(i + 1, None);
            }
            known[i] = Some((reference[j], reference[b + j]));
        }
    }
}


/// The pairs of online step `step`: `b` prompts, two samples each from `policy` (the step's own sample
/// streams), labelled by the proxy `pm`, or by the golden preference when there is none.
#[allow(clippy::too_many_arguments)]
async fn online_pairs(e: &Engine, task: &TaskConfig, policy: &Gpt, mixture: Option<(&Gpt, f32)>, pm: Option<&Proxy>, seed: u32, step: u32, b: usize) -> Result<Pairs> {
    let prompts: Vec<Vec<u32>> = (0..b).map(|i| task.prompt(seed, ALIGN_PROMPTS, step * b as u32 + i as u32)).collect();
    let y1 = sample_mixture_responses(e, policy, mixture, task, &prompts, seed, ALIGN_SAMPLES.0 + 2 * step).await?;
    let y2 = sample_mixture_responses(e, policy, mixture, task, &prompts, seed, ALIGN_SAMPLES.0 + 2 * step + 1).await?;
    let first_wins = match pm {
        Some(pm) => prefers(e, pm, task, &prompts, &y1, &y2).await?,
        None => (0..b).map(|i| task.golden_label(&prompts[i], &y1[i], &y2[i], uniform(seed, ALIGN_COINS, step, i as u32))).collect(),
    };
    Ok(Pairs { prompts, y1, y2, first_wins })
}

/// Where a run stands at one of its checkpoints: what resuming it there needs. Its policy, the optimiser's moments,
/// and what it has gathered (its checkpoints, its online stream, a semi-online run's buffered pairs). Everything else
/// a step draws is keyed by the step (counter-based random numbers; offline data by position; the lr schedule by the
/// optimiser's step), so a run resumed from here takes exactly the steps the uninterrupted run takes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlignState {
    /// Steps done (the last checkpoint's step).
    pub step: u32,
    /// The policy's parameter tensors and AdamW's first and second moments, in the model's parameter order
    /// (kept as models beside this record: see `pipeline::align_run`).
    #[serde(skip)]
    pub params: Vec<Vec<f32>>,
    #[serde(skip)]
    pub adam_m: Vec<Vec<f32>>,
    #[serde(skip)]
    pub adam_v: Vec<Vec<f32>>,
    pub checkpoints: Vec<Checkpoint>,
    /// An online run's labelled pairs so far, in training order.
    pub stream: Pairs,
    /// A semi-online run's pairs of its last refresh, for the steps from `buffered_from` on.
    pub buffered: Vec<Pairs>,
    pub buffered_from: u32,
}

/// Runs one alignment run from π_sft. `on_checkpoint` sees each evaluation as it happens. Returns the final
/// policy, the checkpoints and, for online runs, the stream of labelled pairs in training order.
pub async fn align(
    e: &Engine,
    task: &TaskConfig,
    sft: &Gpt,
    source: Source<'_>,
    cfg: &AlignConfig,
    eval: &EvalSet<'_>,
    on_checkpoint: impl FnMut(&Checkpoint),
) -> Result<(Gpt, Vec<Checkpoint>, Pairs)> {
    align_from(e, task, sft, source, cfg, eval, None, on_checkpoint, None).await
}

/// [`align`], from `resume` (a state this run's `on_state` was handed before) instead of from π_sft when given:
/// its checkpoints are reported again, then training goes on from its step. With `on_state`, every checkpoint
/// after which the run trains on hands over the run's [`AlignState`].
#[allow(clippy::too_many_arguments)]
pub async fn align_from(
    e: &Engine,
    task: &TaskConfig,
    sft: &Gpt,
    source: Source<'_>,
    cfg: &AlignConfig,
    eval: &EvalSet<'_>,
    resume: Option<AlignState>,
    mut on_checkpoint: impl FnMut(&Checkpoint),
    mut on_state: Option<&mut dyn FnMut(AlignState) -> Result<()>>,
) -> Result<(Gpt, Vec<Checkpoint>, Pairs)> {
    if sft.head != Head::Lm {
        bail!("align: π_sft must be a policy");
    }
    if !(cfg.beta > 0.0 && cfg.beta.is_finite()) {
        bail!("beta = {} is out of range: finite and > 0", cfg.beta);
    }
    match &source {
        Source::Offline(d, _) if d.len() < cfg.batch => bail!("offline data holds {} pairs, fewer than one batch ({})", d.len(), cfg.batch),
        Source::Online(_) if cfg.steps > MAX_ONLINE_STEPS => {
            bail!("steps = {} is out of range 1..={MAX_ONLINE_STEPS} for an online run (each step's samples have their own random stream)", cfg.steps)
        }
        _ => {}
    }
    if let (Some(p), Source::Online(_)) = (cfg.past_best, &source) {
        if p.max_steps > MAX_ONLINE_STEPS {
            bail!("align: an online run trained past its best stops by {MAX_ONLINE_STEPS} steps at most (each step's samples have their own random stream); its cap is {}", p.max_steps);
        }
    }
    let seed = cfg.seed;
    let t = task.context();
    let b = cfg.batch;
    if cfg.chunks > 0 && e.is_gpu() {
        bail!("align_chunks = {}: data-parallel steps run on the CPU backend (each chunk's gradient on a CPU worker); set align_chunks = 0 on a GPU", cfg.chunks);
    }
    if cfg.chunks as usize > b {
        bail!("align_chunks = {} is out of range 0..={b}: at most one chunk per pair of the batch (batch = {b})", cfg.chunks);
    }
    // What the chunks read besides the policy: π_sft's parameters, the same for the whole run.
    let chunk_reference = match cfg.chunks {
        0 => None,
        _ => {
            let values = sft.values(e).await?;
            let id = super::parallel::values_id(&values);
            Some((values, id))
        }
    };
    if let Some(r) = &resume {
        if r.checkpoints.last().map(|c| c.step) != Some(r.step) || r.params.len() != sft.params.len() {
            bail!("align: a saved state must end with its step's checkpoint and hold every parameter tensor (step {}, {} checkpoints)", r.step, r.checkpoints.len());
        }
    }
    let policy = match &resume {
        Some(r) => Gpt::new(e, sft.config, Head::Lm, &r.params)?,
        None => Gpt::new(e, sft.config, Head::Lm, &sft.values(e).await?)?,
    };
    // Linear warm-up, then constant: without it the first steps of a small-β run jump far in KL.
    let mut opt = AdamW::new(e, &policy.infos, cfg.adamw, Schedule { warmup_steps: cfg.warmup_steps, total_steps: cfg.warmup_steps, min_lr_ratio: 1.0 });
    let (acts, acts_ref) = (policy.activations(e, 2 * b, t)?, sft.activations(e, 2 * b, t)?);
    let grads = policy.zero_grads(e);
    // A step's inputs, written in place each step (the GPU's bind groups over them are made once).
    let (tokens, targets, weights, dseq_in) = (e.zeros(2 * b * t), e.zeros(2 * b * t), e.zeros(2 * b * t), e.zeros(2 * b));
    // π_ref's log-probs when they are known, and the step's record (`Op::PairLoss`): its one readback.
    let (reference_in, record) = (e.zeros(2 * b), e.zeros(1 + 4 * b));
    // Online IPO measures its own stream (Fig. 6); the semi-online and mixture runs are not asked to.
    let measures_stream = matches!(source, Source::Online(Online { proxy: Some(_), refresh: 1, mixture }) if mixture == 0.0);
    let AlignState { mut step, mut checkpoints, mut stream, mut buffered, mut buffered_from, .. } = match resume {
        Some(r) => {
            opt.restore(e, &r.adam_m, &r.adam_v, r.step)?;
            r
        }
        None => {
            let t0 = now_ms();
            let first = evaluate(e, &policy, sft, task, eval, 0, None, None).await?;
            phases::add(Phase::Evaluation, now_ms() - t0);
            AlignState { checkpoints: vec![first], ..AlignState::default() }
        }
    };
    for c in &checkpoints {
        on_checkpoint(c);
    }
    // A look asked for before this run began was meant for a step of another stage.
    crate::control::take_step_request();
    // Checkpoints reset the mean training loss, so a run resumed at one starts it afresh too.
    let mut loss_sum = 0.0;
    let mut since = 0;
    while cfg.trains_step(step, &checkpoints) {
        crate::control::yield_point().await?;
        // Taken before anything else awaits: a run trained side by side must not take this run's request.
        let look = crate::control::take_step_request();
        // The pairs of this step.
        let t0 = now_ms();
        // Offline: the dataset's pairs this step reads, in order, cycling.
        let offline_idx: Vec<usize> = match &source {
            Source::Offline(d, _) => (0..b).map(|i| (step as usize * b + i) % d.len()).collect(),
            _ => vec![],
        };
        let pairs = match &source {
            Source::Offline(d, _) => {
                let idx = &offline_idx;
                Pairs {
                    prompts: idx.iter().map(|&i| d.prompts[i].clone()).collect(),
                    y1: idx.iter().map(|&i| d.y1[i].clone()).collect(),
                    y2: idx.iter().map(|&i| d.y2[i].clone()).collect(),
                    first_wins: idx.iter().map(|&i| d.first_wins[i]).collect(),
                }
            }
            Source::Online(online) if online.refresh == 1 => online.pairs(e, task, &policy, sft, seed, step, b).await?,
            Source::Online(online) => {
                let refresh = online.refresh;
                let due = step == 0 || (refresh != 0 && step % refresh == 0);
                if due {
                    let until = if refresh == 0 { cfg.steps } else { (step + refresh).min(cfg.steps) };
                    buffered.clear();
                    for j in step..until {
                        buffered.push(online.pairs(e, task, &policy, sft, seed, j, b).await?);
                    }
                    buffered_from = step;
                }
                buffered[(step - buffered_from) as usize].clone()
            }
        };
        let t1 = now_ms();
        phases::add(Phase::Pairs, t1 - t0);
        // Winners in rows 0..b, losers in rows b..2b.
        let prompts: Vec<Vec<u32>> = pairs.prompts.iter().chain(&pairs.prompts).cloned().collect();
        let ys: Vec<Vec<u32>> = (0..b).map(|i| pairs.ordered(i).0.to_vec()).chain((0..b).map(|i| pairs.ordered(i).1.to_vec())).collect();
        let batch = SequenceBatch::new(&prompts, &ys, t);
        e.write_indices(&tokens, &batch.tokens)?;
        e.write_indices(&targets, &batch.targets)?;
        e.write(&weights, &batch.weights)?;
        let known = match &source {
            Source::Offline(_, Some(known)) => Some((known, known.get(&offline_idx))),
            _ => None,
        };
        let (lp, reference, loss, token_logps) = match &chunk_reference {
            None => {
                // The whole step on the device, read back once at its end: π_ref's log-probs (known, or a forward
                // pass of π_sft on the same batch), the policy's, the loss and its gradient, backward, the update.
                let reference_t = match &known {
                    Some((_, Some(r))) => {
                        e.write(&reference_in, r)?;
                        &reference_in
                    }
                    _ => {
                        sft.forward(e, &acts_ref, &tokens)?;
                        sft.sequence_logprobs(e, &acts_ref, &targets, &weights)?;
                        &acts_ref.sequence_logprobs
                    }
                };
                Gpt::clear_grads(e, &grads)?;
                policy.forward(e, &acts, &tokens)?;
                policy.sequence_logprobs(e, &acts, &targets, &weights)?;
                e.run(Op::PairLoss { pairs: b, loss: cfg.loss, beta: cfg.beta }, &[&acts.sequence_logprobs, reference_t], &[&dseq_in, &record])?;
                policy.backward(e, &acts, &grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &dseq_in)?;
                opt.step(e, &policy.params, &grads)?;
                let record = e.read(&record).await?;
                // A non-finite loss fails the run here, after its update: the checkpoints before it are whole.
                let loss = record[0];
                if !loss.is_finite() {
                    bail!("step {step}: the {:?} loss is not finite ({loss}); lower the learning rate", cfg.loss);
                }
                let token_logps = if look { e.read(&acts.token_logprobs).await? } else { vec![] };
                (record[1..1 + 2 * b].to_vec(), record[1 + 2 * b..].to_vec(), loss, token_logps)
            }
            Some((reference_values, reference_id)) => {
                // Data-parallel: the chunks' gradients, summed in chunk order, stand in for the backward pass.
                use super::parallel::{current, gather, step_jobs, ChunkModels, Gathered};
                let chunks = cfg.chunks as usize;
                let jobs = step_jobs(&batch, chunks, known.as_ref().and_then(|(_, r)| r.as_deref()), cfg.loss, cfg.beta);
                let values = policy.values(e).await?;
                let models = ChunkModels { config: policy.config, policy: &values, reference: reference_values, reference_id: *reference_id };
                let Gathered { gradient: sum, logps: lp, reference } = gather(current().train_chunks(models, jobs).await?, b, chunks)?;
                let (loss, _, _) = gpo(cfg.loss, cfg.beta, &lp[..b], &lp[b..], &reference[..b], &reference[b..]);
                if !loss.is_finite() {
                    bail!("step {step}: the {:?} loss is not finite ({loss}); lower the learning rate", cfg.loss);
                }
                for (part, g) in grads.parts.iter().zip(&sum) {
                    e.write(part, g)?;
                }
                opt.step(e, &policy.params, &grads)?;
                // A step looked into shows the policy's per-token log-probs of the batch: one more forward pass here
                // (each row's log-probs do not depend on the rows beside it, so they are the chunks' own).
                let token_logps = match look {
                    true => {
                        policy.forward(e, &acts, &tokens)?;
                        policy.sequence_logprobs(e, &acts, &targets, &weights)?;
                        e.read(&acts.token_logprobs).await?
                    }
                    false => vec![],
                };
                (lp, reference, loss, token_logps)
            }
        };
        if let Some((known, None)) = &known {
            known.put(&offline_idx, &reference);
        }
        phases::add(Phase::Training, now_ms() - t1);
        if look {
            let stats = opt.last_stats(e).await?;
            let done = Trained { step: step + 1, pairs: &pairs, batch: &batch, logps: &lp, reference: &reference, token_logps, loss, stats };
            let inside = look_inside(e, task, &policy, &acts, source.judged(eval), (cfg.loss, cfg.beta), eval, done).await?;
            crate::control::report_step(serde_json::to_value(&inside).map_err(|e| crate::Error::new(e.to_string()))?);
        }
        loss_sum += loss;
        since += 1;
        if !matches!(source, Source::Offline(..)) {
            stream.prompts.extend(pairs.prompts);
            stream.y1.extend(pairs.y1);
            stream.y2.extend(pairs.y2);
            stream.first_wins.extend(pairs.first_wins);
        }
        step += 1;
        if cfg.is_eval_step(step) {
            let t0 = now_ms();
            let c = evaluate(e, &policy, sft, task, eval, step, Some(loss_sum / since as f32), measures_stream.then_some(&stream)).await?;
            phases::add(Phase::Evaluation, now_ms() - t0);
            on_checkpoint(&c);
            checkpoints.push(c);
            loss_sum = 0.0;
            since = 0;
            if let Some(keep) = on_state.as_mut().filter(|_| cfg.trains_step(step, &checkpoints)) {
                let (adam_m, adam_v) = opt.moments(e).await?;
                let params = policy.values(e).await?;
                (*keep)(AlignState { step, params, adam_m, adam_v, checkpoints: checkpoints.clone(), stream: stream.clone(), buffered: buffered.clone(), buffered_from })?;
            }
        }
    }
    Ok((policy, checkpoints, stream))
}

/// Where alignment runs spend their time, summed over every run this process trains (all threads): making
/// each step's pairs (online: sampling two responses per prompt and labelling them; offline: reading them),
/// the training step itself (forward, backward, AdamW, the reference's log-probs), and the checkpoints'
/// evaluations. `reproduce` prints the totals. On a GPU one run's wait may overlap its side-by-side
/// partner's work, so there the split is approximate; on the CPU nothing overlaps.
pub mod phases {
    use std::sync::Mutex;

    #[derive(Clone, Copy)]
    pub enum Phase {
        Pairs,
        Training,
        Evaluation,
    }

    pub const NAMES: [&str; 3] = ["pairs (sampling and labelling)", "training steps", "evaluation"];

    static TOTALS: Mutex<[f64; 3]> = Mutex::new([0.0; 3]);

    pub fn add(phase: Phase, ms: f64) {
        if let Ok(mut t) = TOTALS.lock() {
            t[phase as usize] += ms / 1e3;
        }
    }

    /// Seconds per phase, in [`NAMES`]' order.
    pub fn totals() -> [f64; 3] {
        TOTALS.lock().map(|t| *t).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {

    fn checkpoints(win_rates: &[(u32, f32)]) -> Vec<super::Checkpoint> {
        let c = |&(step, golden_win_rate): &(u32, f32)| super::Checkpoint {
            step,
            kl: 0.0,
            golden_win_rate,
            ties: 0.0,
            classifier_accuracy: 0.5,
            proxy_win_rate: None,
            train_loss: None,
            responses: Default::default(),
            samples: vec![],
            ..Default::default()
        };
        win_rates.iter().map(c).collect()
    }

    #[test]
    fn a_run_trains_on_until_its_best_is_patience_steps_behind() {
        use super::{AlignConfig, PastBest};
        let rule = PastBest { patience: 300, max_steps: 2000 };
        // Best at the last checkpoint: still improving; best 200 steps back: still; 300 back: past it.
        assert!(rule.still_improving(&checkpoints(&[(0, 0.5), (900, 0.7), (1000, 0.8)])));
        assert!(rule.still_improving(&checkpoints(&[(0, 0.5), (800, 0.8), (1000, 0.7)])));
        assert!(!rule.still_improving(&checkpoints(&[(0, 0.5), (700, 0.8), (1000, 0.7)])));
        // A tie counts from the earliest checkpoint that reached it.
        assert!(!rule.still_improving(&checkpoints(&[(0, 0.5), (700, 0.8), (1000, 0.8)])));
        let cfg = AlignConfig {
            loss: crate::train::losses::Loss::Ipo,
            beta: 0.1,
            adamw: Default::default(),
            steps: 1000,
            batch: 8,
            eval_every: 100,
            seed: 0,
            warmup_steps: 0,
            log_evals: 0,
            past_best: Some(rule),
            chunks: 0,
        };
        let rising = checkpoints(&[(0, 0.5), (1000, 0.8)]);
        let past = checkpoints(&[(0, 0.5), (600, 0.8), (1000, 0.7)]);
        // Every step of the length is trained; after it the rule decides at checkpoints only, and the cap holds.
        assert!(cfg.trains_step(999, &past));
        assert!(!cfg.trains_step(1000, &past) && cfg.trains_step(1000, &rising));
        assert!(cfg.trains_step(1050, &past), "between checkpoints a run goes on to the next one");
        assert!(cfg.is_eval_step(2000) && !cfg.trains_step(2000, &rising));
        assert!(!AlignConfig { past_best: None, ..cfg }.trains_step(1000, &rising));
    }

    #[test]
    fn the_stopping_rule_reads_the_validation_prompts_where_they_were_measured() {
        use super::PastBest;
        let rule = PastBest { patience: 300, max_steps: 2000 };
        // The reported win rate still rises; the validation prompts' peaked 400 steps back: past its best.
        let mut c = checkpoints(&[(0, 0.5), (600, 0.7), (800, 0.75), (1000, 0.8)]);
        for (ck, v) in c.iter_mut().zip([0.5, 0.8, 0.7, 0.7]) {
            ck.validation_win_rate = Some(v);
        }
        assert!(!rule.still_improving(&c));
        // And the other way round: the reported win rate fell, the validation one still rises.
        for (ck, (g, v)) in c.iter_mut().zip([(0.5, 0.5), (0.9, 0.6), (0.7, 0.7), (0.6, 0.8)]) {
            (ck.golden_win_rate, ck.validation_win_rate) = (g, Some(v));
        }
        assert!(rule.still_improving(&c));
    }

    #[test]
    fn log_spaced_checkpoints_are_dense_early() {
        assert_eq!(super::log_spaced(300, 8), vec![2, 4, 8, 17, 35, 72, 147, 300]);
        assert_eq!(super::log_spaced(10, 20).first(), Some(&1));
        assert!(super::log_spaced(10, 20).windows(2).all(|w| w[0] < w[1]));
        assert!(super::log_spaced(300, 0).is_empty());
    }

    #[test]
    fn warm_up_rises_linearly_then_holds() {
        use crate::train::optim::Schedule;
        let s = Schedule { warmup_steps: 10, total_steps: 10, min_lr_ratio: 1.0 };
        assert_eq!(s.factor(1), 0.1);
        assert_eq!(s.factor(5), 0.5);
        assert_eq!(s.factor(10), 1.0);
        assert_eq!(s.factor(11), 1.0);
        assert_eq!(s.factor(1000), 1.0);
        let none = Schedule { warmup_steps: 0, total_steps: 0, min_lr_ratio: 1.0 };
        assert_eq!(none.factor(1), 1.0);
    }
}

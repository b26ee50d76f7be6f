//! Online and offline alignment (docs/method.md §2), one loss and one update for both so that the comparison is
//! fair: the same GPO loss, β, learning rate and batch. Offline: batches of D_golden in order. Online: each
//! step samples two responses per prompt from the current policy and labels them with the proxy (or, for
//! the reference "golden policy", with the golden preference). The online stream is kept for replay.

use super::batch::SequenceBatch;
use super::eval::{golden_win_rate, kl_to_reference, response_stats, sample_mixture_responses, sample_responses, ResponseStats};
use super::losses::{gpo, Loss};
use super::optim::{AdamW, AdamwConfig, Schedule};
use super::pm::{prefers, Pairs};
use crate::bail;
use crate::clock::now_ms;
use phases::Phase;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Activations, Gpt, Head, TokenBatch};
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
        let best = checkpoints.iter().fold(&checkpoints[0], |b, c| if c.golden_win_rate > b.golden_win_rate { c } else { b });
        last.step - best.step < self.patience
    }
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

/// Fixed evaluation data shared by every run of an experiment.
#[derive(Clone)]
pub struct EvalSet<'a> {
    /// Prompts for the golden win rate, and the baseline policy's responses to them.
    pub win_prompts: Vec<Vec<u32>>,
    pub baseline: Vec<Vec<u32>>,
    /// Prompts for the KL estimate.
    pub kl_prompts: Vec<Vec<u32>>,
    /// Held-out golden pairs for policy-as-classifier accuracy, and π_sft's summed log-probs of their two
    /// responses (fixed, so computed once: see [`EvalSet::new`]).
    pub heldout: Pairs,
    pub heldout_sft_logps: PairLogps,
    /// Also measure each checkpoint's policy as a classifier of pairs of its own samples (the paper's
    /// self-classification; it costs a second sampling pass per checkpoint).
    pub self_classification: bool,
    /// Also measure online runs' checkpoints on the stretch of their own stream just before them: the proxy's
    /// labels and the policy as a classifier, against golden labels (the paper's Fig. 6).
    pub stream_classification: bool,
    /// For an offline run: the online run of its setting, whose stream stretches each checkpoint's policy is
    /// measured on, at the online checkpoint of the nearest KL (Fig. 6's "offline policy at similar KL").
    pub online_stream: Option<OnlineStream>,
    /// The proxy PM, to report how often it prefers the policy over the baseline (none: not reported).
    pub proxy: Option<&'a Gpt>,
    /// The task's tokenizer, built once, for the sample texts.
    pub words: crate::tokenizer::WordTokenizer,
    /// Seed of the evaluation samplers (the same for every checkpoint of every run).
    pub seed: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub step: u32,
    pub kl: f32,
    pub golden_win_rate: f32,
    pub ties: f32,
    pub classifier_accuracy: f32,
    /// Mean over the held-out pairs of log π(y_w) − log π_sft(y_w), y_w the golden winner (the paper's Fig. 8,
    /// right; TRL's `rewards/chosen` is β times it). None in runs measured before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_logratio: Option<f32>,
    /// The policy as a classifier of golden-labelled pairs of its own samples ([`EvalSet::self_classification`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_classifier_accuracy: Option<f32>,
    /// The distinct pairs it was measured on (of `win_prompts`; some when measured, 0 when every pair was
    /// two identical responses and the accuracy is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_classified_pairs: Option<u32>,
    /// The paper's Fig. 6: the online step whose stream stretch ([`STREAM_STRETCH`] pairs before it) this
    /// checkpoint was measured on (its own for an online run; for an offline run, its online run's checkpoint of
    /// the nearest KL), the policy's classifier accuracy on it, and (online) the proxy's labels' accuracy, all
    /// against golden labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_policy_accuracy: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_proxy_accuracy: Option<f32>,
    /// How often the proxy PM prefers the policy's response to the baseline's (identical responses count
    /// half); beside the golden win rate it shows the proxy being exploited.
    pub proxy_win_rate: Option<f32>,
    /// Mean training loss since the previous checkpoint (none at step 0).
    pub train_loss: Option<f32>,
    pub responses: ResponseStats,
    #[serde(default)]
    pub samples: Vec<SampleText>,
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
    pub proxy: Option<&'a Gpt>,
    /// Semi-online (beyond the paper; Lanchantin et al. 2025): every `refresh` steps, the next `refresh` steps'
    /// pairs are sampled at once from the current policy and labelled, then trained on in order; 0 never
    /// refreshes (every pair sampled from π_sft at step 0); 1 samples every step.
    pub refresh: u32,
    /// IPO-MD (beyond the paper; Calandriello et al. 2024): the two samples of each prompt are drawn from the
    /// per-token geometric mixture π_θ^(1−m)·π_sft^m; m leans the data toward π_sft; 0 samples from π_θ.
    pub mixture: f32,
}

impl<'a> Online<'a> {
    /// Online IPO: two samples per prompt from the current policy, every step, labelled by `proxy`.
    pub fn proxy(proxy: &'a Gpt) -> Self {
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

use crate::rng::streams::{ALIGN_COINS, ALIGN_PROMPTS, ALIGN_SAMPLES, EVAL_KL_SAMPLES, EVAL_SELF_COINS, EVAL_SELF_SAMPLES, EVAL_STREAM_COINS, EVAL_WIN_SAMPLES, MAX_ONLINE_STEPS};

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

/// Summed response log-probs of `ys` under `model` for `prompts` (batched in one pass).
async fn response_logprobs(e: &Engine, model: &Gpt, acts: &Activations, batch: &SequenceBatch) -> Result<Vec<f32>> {
    model.forward(e, acts, &e.indices(&batch.tokens))?;
    model.sequence_logprobs(e, acts, &e.indices(&batch.targets), &e.tensor(&batch.weights))?;
    e.read(&acts.sequence_logprobs).await
}

/// The fixed prompts of an evaluation set, and the baseline policy's responses to the win-rate ones.
pub struct EvalPrompts {
    pub win_prompts: Vec<Vec<u32>>,
    pub baseline: Vec<Vec<u32>>,
    pub kl_prompts: Vec<Vec<u32>>,
}

impl<'a> EvalSet<'a> {
    pub async fn new(e: &Engine, sft: &Gpt, task: &TaskConfig, prompts: EvalPrompts, heldout: Pairs, proxy: Option<&'a Gpt>, seed: u32) -> Result<Self> {
        let EvalPrompts { win_prompts, baseline, kl_prompts } = prompts;
        let heldout_sft_logps = pair_logps(e, sft, task, &heldout).await?;
        Ok(EvalSet { win_prompts, baseline, kl_prompts, heldout, heldout_sft_logps, self_classification: false, stream_classification: false, online_stream: None, proxy, words: task.tokenizer()?, seed })
    }
}

/// Pairs of an online stream that a checkpoint's stream classification reads: the last this many sampled up to it.
pub const STREAM_STRETCH: usize = 512;

/// An online run's stream (proxy-labelled pairs in training order, `batch` per step) and its checkpoints'
/// (step, KL), for measuring another run's policies on it.
#[derive(Clone, Debug, Default)]
pub struct OnlineStream {
    pub pairs: Pairs,
    pub checkpoints: Vec<(u32, f32)>,
    pub batch: usize,
}

/// The stretch of `stream` that ends at pair `end` ([`STREAM_STRETCH`] pairs), golden-labelled (coins keyed by each
/// pair's position in the stream, so every policy measured on a stretch sees the same labels), and the stream's
/// own (proxy) labels of it.
fn stretch<'s>(task: &TaskConfig, stream: &'s Pairs, end: usize, seed: u32) -> (Pairs, &'s [bool]) {
    let (end, start) = (end.min(stream.len()), end.min(stream.len()).saturating_sub(STREAM_STRETCH));
    let pairs = Pairs {
        prompts: stream.prompts[start..end].to_vec(),
        y1: stream.y1[start..end].to_vec(),
        y2: stream.y2[start..end].to_vec(),
        first_wins: (start..end).map(|j| task.golden_label(&stream.prompts[j], &stream.y1[j], &stream.y2[j], uniform(seed, EVAL_STREAM_COINS, 0, j as u32))).collect(),
    };
    (pairs, &stream.first_wins[start..end])
}

/// What a checkpoint measures on a stream stretch: the online step whose stretch, the policy's accuracy as a
/// classifier of it, and (on its own stream) the proxy's labels' accuracy.
struct StreamMeasure {
    step: u32,
    policy: f32,
    proxy: Option<f32>,
}

async fn stream_measure(e: &Engine, policy: &Gpt, sft: &Gpt, task: &TaskConfig, set: &EvalSet<'_>, step: u32, kl: f32, own: Option<&Pairs>) -> Result<Option<StreamMeasure>> {
    if step == 0 {
        return Ok(None);
    }
    let (stream, at, own) = match (own, &set.online_stream) {
        (Some(s), _) if set.stream_classification => (s, step, true),
        (None, Some(o)) => {
            // The online checkpoint (past its start) whose KL is nearest this one's, in ln KL.
            let gap = |k: f32| (k.max(1e-6).ln() - kl.max(1e-6).ln()).abs();
            let Some(&(at, _)) = o.checkpoints.iter().filter(|c| c.0 > 0).min_by(|a, b| gap(a.1).total_cmp(&gap(b.1))) else { return Ok(None) };
            (&o.pairs, at, false)
        }
        _ => return Ok(None),
    };
    let batch = match (own, &set.online_stream) {
        (false, Some(o)) => o.batch,
        _ => stream.len() / step as usize,
    };
    let (golden, proxy_labels) = stretch(task, stream, at as usize * batch, set.seed);
    if golden.is_empty() {
        return Ok(None);
    }
    let sft_margins = pair_margins(e, sft, task, &golden).await?;
    let accuracy = classifier_accuracy(e, policy, &sft_margins, task, &golden).await?;
    let proxy = own.then(|| proxy_labels.iter().zip(&golden.first_wins).filter(|(a, b)| a == b).count() as f32 / golden.len() as f32);
    Ok(Some(StreamMeasure { step: at, policy: accuracy, proxy }))
}

/// How many of the win-rate prompts each checkpoint keeps as text, for the page's sample viewer.
pub const SAMPLES_KEPT: usize = 4;

/// One response of a checkpoint's policy beside the baseline's, as text, with both judges' views.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SampleText {
    pub prompt: String,
    pub response: String,
    pub baseline: String,
    /// The document's key words (what a good summary covers).
    pub key_words: Vec<String>,
    pub golden_reward: f32,
    pub baseline_golden_reward: f32,
    /// Whether the proxy prefers this response to the baseline's (none without a proxy).
    pub proxy_prefers: Option<bool>,
}

/// Summed response log-probs of both sides of every pair: (log π(y1), log π(y2)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairLogps {
    pub y1: Vec<f32>,
    pub y2: Vec<f32>,
}

impl PairLogps {
    /// log π(y1) − log π(y2) for every pair.
    pub fn margins(&self) -> Vec<f32> {
        self.y1.iter().zip(&self.y2).map(|(a, b)| a - b).collect()
    }

    /// The golden winner's log-prob of every pair.
    pub fn winners(&self, first_wins: &[bool]) -> Vec<f32> {
        first_wins.iter().enumerate().map(|(i, &first)| if first { self.y1[i] } else { self.y2[i] }).collect()
    }
}

/// log π(y1) − log π(y2) for every pair.
pub async fn pair_margins(e: &Engine, model: &Gpt, task: &TaskConfig, pairs: &Pairs) -> Result<Vec<f32>> {
    Ok(pair_logps(e, model, task, pairs).await?.margins())
}

/// [`PairLogps`] of `model` on `pairs`, both sides of a chunk in one batched pass.
pub async fn pair_logps(e: &Engine, model: &Gpt, task: &TaskConfig, pairs: &Pairs) -> Result<PairLogps> {
    let t = task.context();
    let mut out = PairLogps { y1: Vec::with_capacity(pairs.len()), y2: Vec::with_capacity(pairs.len()) };
    let chunk = 256;
    for start in (0..pairs.len()).step_by(chunk) {
        let end = (start + chunk).min(pairs.len());
        let prompts: Vec<Vec<u32>> = pairs.prompts[start..end].iter().chain(&pairs.prompts[start..end]).cloned().collect();
        let ys: Vec<Vec<u32>> = pairs.y1[start..end].iter().chain(&pairs.y2[start..end]).cloned().collect();
        let batch = SequenceBatch::new(&prompts, &ys, t);
        let n = end - start;
        let acts = model.activations(e, 2 * n, t)?;
        let lp = response_logprobs(e, model, &acts, &batch).await?;
        out.y1.extend_from_slice(&lp[..n]);
        out.y2.extend_from_slice(&lp[n..2 * n]);
    }
    Ok(out)
}

/// Policy-as-classifier accuracy (docs/method.md §4): predict y1 ≻ y2 iff [log π(y1) − log π(y2)] − [log π_sft(y1) −
/// log π_sft(y2)] > 0, against the golden labels. `sft_margins` are π_sft's [`pair_margins`].
pub async fn classifier_accuracy(e: &Engine, policy: &Gpt, sft_margins: &[f32], task: &TaskConfig, pairs: &Pairs) -> Result<f32> {
    let margins = pair_margins(e, policy, task, pairs).await?;
    Ok(accuracy_of(&margins, sft_margins, &pairs.first_wins))
}

/// The mean [`classifier_score`] of the implicit reward margins `margins − sft_margins` against the labels.
pub fn accuracy_of(margins: &[f32], sft_margins: &[f32], first_wins: &[bool]) -> f32 {
    let score: f32 = margins.iter().zip(sft_margins).zip(first_wins).map(|((m, r), &first)| classifier_score(*m - *r, first)).sum();
    score / first_wins.len().max(1) as f32
}

/// The policy as a classifier of pairs of its own samples (the paper's self-classification, §5): its win-rate
/// samples `ys` against a second sample per prompt, golden-labelled, pairs of two identical responses left out
/// (no classifier can order them): the accuracy, none when every pair is identical, and the pairs counted.
async fn self_classifier_accuracy(e: &Engine, policy: &Gpt, sft: &Gpt, task: &TaskConfig, set: &EvalSet<'_>, ys: &[Vec<u32>]) -> Result<(Option<f32>, u32)> {
    let second = sample_responses(e, policy, task, &set.win_prompts, set.seed, EVAL_SELF_SAMPLES).await?;
    let mut pairs = Pairs::default();
    for (i, p) in set.win_prompts.iter().enumerate() {
        if ys[i] != second[i] {
            pairs.first_wins.push(task.golden_label(p, &ys[i], &second[i], uniform(set.seed, EVAL_SELF_COINS, 0, i as u32)));
            pairs.prompts.push(p.clone());
            pairs.y1.push(ys[i].clone());
            pairs.y2.push(second[i].clone());
        }
    }
    if pairs.is_empty() {
        return Ok((None, 0));
    }
    let sft_margins = pair_margins(e, sft, task, &pairs).await?;
    Ok((Some(classifier_accuracy(e, policy, &sft_margins, task, &pairs).await?), pairs.len() as u32))
}

/// One pair's classifier score from the policy's implicit reward margin h = (log π − log π_sft)(y1) −
/// (log π − log π_sft)(y2): 1 when its sign names the golden winner, 0 when it names the loser, ½ on a tie
/// (h = 0, as for π_sft itself, which then scores exactly ½ rather than "y2 always wins").
pub fn classifier_score(h: f32, first_wins: bool) -> f32 {
    if h == 0.0 {
        0.5
    } else if (h > 0.0) == first_wins {
        1.0
    } else {
        0.0
    }
}

/// One checkpoint's measurements; `stream` is an online run's own stream so far (proxy labels), for its stream
/// classification.
#[allow(clippy::too_many_arguments)]
pub async fn evaluate(e: &Engine, policy: &Gpt, sft: &Gpt, task: &TaskConfig, set: &EvalSet<'_>, step: u32, train_loss: Option<f32>, stream: Option<&Pairs>) -> Result<Checkpoint> {
    let ys = sample_responses(e, policy, task, &set.win_prompts, set.seed, EVAL_WIN_SAMPLES).await?;
    let (golden_win_rate, ties) = golden_win_rate(task, &set.win_prompts, &ys, &set.baseline);
    let kl_ys = sample_responses(e, policy, task, &set.kl_prompts, set.seed, EVAL_KL_SAMPLES).await?;
    let kl = kl_to_reference(e, policy, sft, task, &set.kl_prompts, &kl_ys).await?;
    let logps = pair_logps(e, policy, task, &set.heldout).await?;
    let classifier_accuracy = accuracy_of(&logps.margins(), &set.heldout_sft_logps.margins(), &set.heldout.first_wins);
    let (winners, sft_winners) = (logps.winners(&set.heldout.first_wins), set.heldout_sft_logps.winners(&set.heldout.first_wins));
    let chosen_logratio = Some(winners.iter().zip(&sft_winners).map(|(a, b)| a - b).sum::<f32>() / winners.len().max(1) as f32);
    let (self_classifier_accuracy, self_classified_pairs) = match set.self_classification {
        true => self_classifier_accuracy(e, policy, sft, task, set, &ys).await.map(|(a, n)| (a, Some(n)))?,
        false => (None, None),
    };
    let on_stream = stream_measure(e, policy, sft, task, set, step, kl, stream).await?;
    let proxy_prefers = match set.proxy {
        Some(pm) => Some(prefers(e, pm, task, &set.win_prompts, &ys, &set.baseline).await?),
        None => None,
    };
    let proxy_win_rate = proxy_prefers.as_ref().map(|p| {
        let score: f32 = p.iter().zip(ys.iter().zip(&set.baseline)).map(|(&w, (y, z))| if y == z { 0.5 } else { w as u32 as f32 }).sum();
        score / ys.len().max(1) as f32
    });
    let text = |p: &[u32]| set.words.decode(p);
    let mut samples = vec![];
    for i in 0..SAMPLES_KEPT.min(ys.len()) {
        let (p, y, z) = (&set.win_prompts[i], &ys[i], &set.baseline[i]);
        samples.push(SampleText {
            prompt: text(p)?,
            response: text(y)?,
            baseline: text(z)?,
            key_words: p[..task.doc_len].iter().filter(|&&w| task.is_key(w)).map(|&w| text(&[w])).collect::<Result<_>>()?,
            golden_reward: task.golden_reward(p, y),
            baseline_golden_reward: task.golden_reward(p, z),
            proxy_prefers: proxy_prefers.as_ref().map(|v| v[i]),
        });
    }
    Ok(Checkpoint {
        step,
        kl,
        golden_win_rate,
        ties,
        classifier_accuracy,
        chosen_logratio,
        self_classifier_accuracy,
        self_classified_pairs,
        stream_step: on_stream.as_ref().map(|m| m.step),
        stream_policy_accuracy: on_stream.as_ref().map(|m| m.policy),
        stream_proxy_accuracy: on_stream.as_ref().and_then(|m| m.proxy),
        proxy_win_rate,
        train_loss,
        responses: response_stats(task, &set.win_prompts, &ys),
        samples,
    })
}

/// The pairs of online step `step`: `b` prompts, two samples each from `policy` (the step's own sample
/// streams), labelled by the proxy `pm`, or by the golden preference when there is none.
#[allow(clippy::too_many_arguments)]
async fn online_pairs(e: &Engine, task: &TaskConfig, policy: &Gpt, mixture: Option<(&Gpt, f32)>, pm: Option<&Gpt>, seed: u32, step: u32, b: usize) -> Result<Pairs> {
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

/// One alignment step looked into (the page's "Step"): the step's pairs as trained, who labelled them, both judges'
/// views, IPO's h against its target, each pair's loss, and how the log-probs of the preferred and rejected responses
/// moved with the update, token by token.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepInside {
    /// The step (1-based: the update this shows).
    pub step: u32,
    /// Where the pairs came from: "online" (the policy's samples, proxy labels), "online_golden", "offline" (D_golden),
    /// "semi_online", "mixture".
    pub source: &'static str,
    /// Who ordered each pair into preferred and rejected: "proxy" or "golden".
    pub labels: &'static str,
    pub loss_name: Loss,
    pub beta: f32,
    /// IPO's target for h, 1/(2β): its loss is (βh − ½)² = β²(h − 1/(2β))².
    pub target: f32,
    /// The step's loss (the mean over its pairs): the number the run trains on and averages into `train_loss`.
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: f32,
    pub pairs: Vec<PairInside>,
}

/// One pair of a looked-into step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PairInside {
    pub prompt: String,
    pub preferred: String,
    pub rejected: String,
    pub golden_reward_preferred: f32,
    pub golden_reward_rejected: f32,
    /// Whether the proxy prefers the preferred response (none without a proxy, or when it ranks neither first).
    pub proxy_agrees: Option<bool>,
    /// Whether the golden reward ranks the preferred response higher (none on a tie).
    pub golden_agrees: Option<bool>,
    /// h = [log π(y_w) − log π_sft(y_w)] − [log π(y_l) − log π_sft(y_l)] before the update, and this pair's loss.
    pub h: f32,
    pub loss: f32,
    /// log π(y|x) of each response before and after the update.
    pub logp_preferred: [f32; 2],
    pub logp_rejected: [f32; 2],
    /// Each response token's log-prob before and after the update.
    pub tokens_preferred: Vec<TokenChange>,
    pub tokens_rejected: Vec<TokenChange>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TokenChange {
    pub token: String,
    pub before: f32,
    pub after: f32,
}

/// What a step to be looked into has in hand when its update is done.
struct Trained<'b> {
    step: u32,
    pairs: &'b Pairs,
    batch: &'b SequenceBatch,
    logps: &'b [f32],
    reference: &'b [f32],
    token_logps: Vec<f32>,
    loss: f32,
    stats: super::optim::StepStats,
}

/// The [`StepInside`] of a step whose update `policy` has just taken (its log-probs are read again after it).
async fn look_inside(e: &Engine, task: &TaskConfig, policy: &Gpt, acts: &Activations, source: &Source<'_>, cfg: &AlignConfig, eval: &EvalSet<'_>, done: Trained<'_>) -> Result<StepInside> {
    let Trained { step, pairs, batch, logps, reference, token_logps, loss, stats } = done;
    let b = pairs.len();
    let (tokens, targets, weights) = (e.indices(&batch.tokens), e.indices(&batch.targets), e.tensor(&batch.weights));
    policy.forward(e, acts, &tokens)?;
    policy.sequence_logprobs(e, acts, &targets, &weights)?;
    let (after, token_after) = (e.read(&acts.sequence_logprobs).await?, e.read(&acts.token_logprobs).await?);
    let (source_name, labeller, proxy) = match source {
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
    let (preferred, rejected): (Vec<Vec<u32>>, Vec<Vec<u32>>) = (0..b).map(|i| (pairs.ordered(i).0.to_vec(), pairs.ordered(i).1.to_vec())).unzip();
    // Asked both ways: the proxy may rank neither first (equal scores, as for two identical responses).
    let proxy_agrees: Vec<Option<bool>> = match proxy {
        Some(pm) => {
            let (ahead, behind) = (prefers(e, pm, task, &pairs.prompts, &preferred, &rejected).await?, prefers(e, pm, task, &pairs.prompts, &rejected, &preferred).await?);
            ahead.iter().zip(&behind).map(|(&a, &r)| (a || r).then_some(a)).collect()
        }
        None => vec![None; b],
    };
    let text = |p: &[u32]| eval.words.decode(p);
    let t = batch.t;
    let tokens_of = |row: usize| -> Result<Vec<TokenChange>> {
        (row * t..(row + 1) * t).filter(|&j| batch.weights[j] > 0.0).map(|j| Ok(TokenChange { token: text(&[batch.targets[j]])?, before: token_logps[j], after: token_after[j] })).collect()
    };
    let mut out = vec![];
    for i in 0..b {
        let (w, l) = (task.golden_reward(&pairs.prompts[i], &preferred[i]), task.golden_reward(&pairs.prompts[i], &rejected[i]));
        let h = (logps[i] - reference[i]) - (logps[b + i] - reference[b + i]);
        out.push(PairInside {
            prompt: text(&pairs.prompts[i])?,
            preferred: text(&preferred[i])?,
            rejected: text(&rejected[i])?,
            golden_reward_preferred: w,
            golden_reward_rejected: l,
            proxy_agrees: proxy_agrees[i],
            golden_agrees: (w != l).then_some(w > l),
            h,
            loss: gpo(cfg.loss, cfg.beta, &logps[i..i + 1], &logps[b + i..b + i + 1], &reference[i..i + 1], &reference[b + i..b + i + 1]).0,
            logp_preferred: [logps[i], after[i]],
            logp_rejected: [logps[b + i], after[b + i]],
            tokens_preferred: tokens_of(i)?,
            tokens_rejected: tokens_of(b + i)?,
        });
    }
    Ok(StepInside { step, source: source_name, labels: labeller, loss_name: cfg.loss, beta: cfg.beta, target: 1.0 / (2.0 * cfg.beta), loss, lr: stats.lr, grad_norm: stats.grad_norm, pairs: out })
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
    if cfg.past_best.is_some() && !matches!(source, Source::Offline(..)) {
        bail!("align: only an offline run trains on past its length until past its best (an online run's steps each have their own random streams, counted in advance)");
    }
    let seed = cfg.seed;
    let t = task.context();
    let b = cfg.batch;
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
        let (tokens, targets, weights) = (e.indices(&batch.tokens), e.indices(&batch.targets), e.tensor(&batch.weights));
        let reference = match &source {
            Source::Offline(_, Some(known)) => match known.get(&offline_idx) {
                Some(r) => r,
                None => {
                    let r = response_logprobs(e, sft, &acts_ref, &batch).await?;
                    known.put(&offline_idx, &r);
                    r
                }
            },
            _ => response_logprobs(e, sft, &acts_ref, &batch).await?,
        };
        Gpt::clear_grads(e, &grads)?;
        policy.forward(e, &acts, &tokens)?;
        policy.sequence_logprobs(e, &acts, &targets, &weights)?;
        let lp = e.read(&acts.sequence_logprobs).await?;
        let (loss, dw, dl) = gpo(cfg.loss, cfg.beta, &lp[..b], &lp[b..], &reference[..b], &reference[b..]);
        if !loss.is_finite() {
            bail!("step {step}: the {:?} loss is not finite ({loss}); lower the learning rate", cfg.loss);
        }
        let token_logps = if look { e.read(&acts.token_logprobs).await? } else { vec![] };
        let dseq: Vec<f32> = dw.into_iter().chain(dl).collect();
        policy.backward(e, &acts, &grads, &TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &e.tensor(&dseq))?;
        let stats = opt.step(e, &policy.params, &grads).await?;
        phases::add(Phase::Training, now_ms() - t1);
        if look {
            let done = Trained { step: step + 1, pairs: &pairs, batch: &batch, logps: &lp, reference: &reference, token_logps, loss, stats };
            let inside = look_inside(e, task, &policy, &acts, &source, cfg, eval, done).await?;
            crate::control::report_step(serde_json::to_value(&inside).map_err(|e| crate::Error(e.to_string()))?);
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
    use super::classifier_score;

    #[test]
    fn a_classifier_tie_counts_half() {
        assert_eq!(classifier_score(0.0, true), 0.5);
        assert_eq!(classifier_score(0.0, false), 0.5);
        assert_eq!(classifier_score(0.3, true), 1.0);
        assert_eq!(classifier_score(0.3, false), 0.0);
        assert_eq!(classifier_score(-0.3, false), 1.0);
        assert_eq!(classifier_score(-0.3, true), 0.0);
    }

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

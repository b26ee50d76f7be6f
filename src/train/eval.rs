//! Measurements (docs/method.md §4): golden win rate against a baseline policy, exact KL(π‖π_sft), and what the
//! samples look like (golden reward, length, repeats, hallucinations); and every metric of an alignment run's
//! checkpoint, on the fixed evaluation set every run of an experiment shares ([`evaluate`]).

use super::batch::SequenceBatch;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::sample::SampleSpec;
use super::parallel::rows::{pass_rows, Read, Rows};
use crate::model::Gpt;
use crate::task::{TaskConfig, EOS, NEVER_SAMPLED, PAD};
use super::pm::{prefers, prefers_over_scored, response_scores, Pairs, Proxy};
use crate::model::Activations;
use crate::rng::uniform;
use crate::rng::streams::{EVAL_KL_SAMPLES, EVAL_SELF_COINS, EVAL_SELF_SAMPLES, EVAL_STREAM_COINS, EVAL_VALIDATION_SAMPLES, EVAL_WIN_SAMPLES};
use serde::{Deserialize, Serialize};

/// One response per prompt from `policy` at temperature 1, cut after <eos>.
pub async fn sample_responses(e: &Engine, policy: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], seed: u32, stream: u32) -> Result<Vec<Vec<u32>>> {
    sample_mixture_responses(e, policy, None, task, prompts, seed, stream).await
}

/// [`sample_responses`] from the geometric mixture of `policy` and a reference with the reference's weight m
/// (`Gpt::sample_mixture`); none: from `policy` alone.
pub async fn sample_mixture_responses(e: &Engine, policy: &Gpt, mixture: Option<(&Gpt, f32)>, task: &TaskConfig, prompts: &[Vec<u32>], seed: u32, stream: u32) -> Result<Vec<Vec<u32>>> {
    let spec = SampleSpec { temperature: 1.0, max_len: task.context(), seed, stream, row0: 0, eos: EOS, pad: PAD, banned: NEVER_SAMPLED };
    if mixture.is_none() {
        // Shared by the data-parallel pool's workers where it has several (the same responses, bit for bit).
        return super::parallel::sample_responses(e, policy, prompts, spec).await;
    }
    let s = policy.sample_mixture(e, prompts, &spec, mixture).await?;
    Ok((0..prompts.len()).map(|r| s.response(r, EOS).to_vec()).collect())
}

/// Win rate of `ys` over `baseline` by the golden reward, ties counted half; also the fraction of ties.
pub fn golden_win_rate(task: &TaskConfig, prompts: &[Vec<u32>], ys: &[Vec<u32>], baseline: &[Vec<u32>]) -> (f32, f32) {
    let (mut score, mut ties) = (0.0, 0);
    for ((p, y), z) in prompts.iter().zip(ys).zip(baseline) {
        let (a, b) = (task.golden_reward(p, y), task.golden_reward(p, z));
        if a > b {
            score += 1.0;
        } else if a == b {
            score += 0.5;
            ties += 1;
        }
    }
    let n = prompts.len() as f32;
    (score / n, ties as f32 / n)
}

/// Exact KL(π‖π_ref) (docs/method.md §4): responses y ~ π, then Σ over response positions of the full-vocabulary
/// KL of the next-token distributions, averaged over prompts.
pub async fn kl_to_reference(e: &Engine, policy: &Gpt, reference: &Gpt, task: &TaskConfig, prompts: &[Vec<u32>], responses: &[Vec<u32>]) -> Result<f32> {
    let batch = SequenceBatch::new(prompts, responses, task.context());
    let b = batch.b;
    let rows = Rows { t: batch.t, tokens: batch.tokens, read: Read::Kl { weights: batch.weights } };
    let kl = pass_rows(e, policy, Some(reference), rows).await?;
    Ok(kl.iter().sum::<f32>() / b as f32)
}

/// What a policy's responses look like, by the task's own counts.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ResponseStats {
    pub golden_reward: f32,
    pub length: f32,
    pub repeats: f32,
    pub hallucinations: f32,
    pub eos_rate: f32,
}

pub fn response_stats(task: &TaskConfig, prompts: &[Vec<u32>], ys: &[Vec<u32>]) -> ResponseStats {
    let n = prompts.len() as f32;
    let mut s = ResponseStats::default();
    for (p, y) in prompts.iter().zip(ys) {
        let doc = &p[..task.doc_len];
        let body: Vec<u32> = y.iter().copied().take_while(|&t| t != EOS).collect();
        s.golden_reward += task.golden_reward(p, y) / n;
        s.length += body.len() as f32 / n;
        let mut seen = Vec::new();
        for t in &body {
            if seen.contains(t) {
                s.repeats += 1.0 / n;
            } else {
                seen.push(*t);
                if !doc.contains(t) {
                    s.hallucinations += 1.0 / n;
                }
            }
        }
        s.eos_rate += (y.last() == Some(&EOS)) as u32 as f32 / n;
    }
    s
}

/// Fixed evaluation data shared by every run of an experiment.
#[derive(Clone)]
pub struct EvalSet<'a> {
    /// Prompts for the golden win rate, and the baseline policy's responses to them.
    pub win_prompts: Vec<Vec<u32>>,
    pub baseline: Vec<Vec<u32>>,
    /// A Bradley–Terry proxy's scores of the baseline responses (`pm::response_scores`), so that each checkpoint's
    /// judgements score only its own samples; none for a pairwise proxy or none.
    pub baseline_scores: Option<Vec<f32>>,
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
    pub proxy: Option<&'a Proxy>,
    /// Prompts disjoint from the evaluation's, and π_sft's responses to them: the golden win rate a stopping
    /// rule selects on, so that no run is selected on the prompts it is reported on (none: not measured).
    pub validation: Option<ValidationPrompts>,
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
    /// The pairs of the stretch these were measured on: its distinct, golden-untied pairs ([`stretch`]); none in
    /// runs measured before they were left out (all 512 pairs, ties and identical pairs included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_pairs: Option<u32>,
    /// How often the proxy PM prefers the policy's response to the baseline's (identical responses count
    /// half); beside the golden win rate it shows the proxy being exploited.
    pub proxy_win_rate: Option<f32>,
    /// The golden win rate on the validation prompts ([`EvalSet::validation`]), which a stopping rule reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_win_rate: Option<f32>,
    /// Mean training loss since the previous checkpoint (none at step 0).
    pub train_loss: Option<f32>,
    pub responses: ResponseStats,
    #[serde(default)]
    pub samples: Vec<SampleText>,
}

/// A stopping rule's own prompts and the baseline's responses to them.
#[derive(Clone, Debug, Default)]
pub struct ValidationPrompts {
    pub prompts: Vec<Vec<u32>>,
    pub baseline: Vec<Vec<u32>>,
}

/// The fixed prompts of an evaluation set, and the baseline policy's responses to the win-rate ones.
pub struct EvalPrompts {
    pub win_prompts: Vec<Vec<u32>>,
    pub baseline: Vec<Vec<u32>>,
    pub kl_prompts: Vec<Vec<u32>>,
}

impl<'a> EvalSet<'a> {
    pub async fn new(e: &Engine, sft: &Gpt, task: &TaskConfig, prompts: EvalPrompts, heldout: Pairs, proxy: Option<&'a Proxy>, seed: u32) -> Result<Self> {
        let EvalPrompts { win_prompts, baseline, kl_prompts } = prompts;
        let heldout_sft_logps = pair_logps(e, sft, task, &heldout).await?;
        let baseline_scores = match proxy {
            Some(pm) => response_scores(e, pm, task, &win_prompts, &baseline).await?,
            None => None,
        };
        Ok(EvalSet { win_prompts, baseline, baseline_scores, kl_prompts, heldout, heldout_sft_logps, self_classification: false, stream_classification: false, online_stream: None, proxy, validation: None, words: task.tokenizer()?, seed })
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

/// The stretch of `stream` that ends at pair `end` ([`STREAM_STRETCH`] pairs): of it, the pairs a classifier can
/// order (two different responses whose golden rewards differ; identical pairs and golden ties, whose labels are
/// coin flips no classifier can beat ½ on, grow to 12–34 % of a late stream and would dilute every accuracy
/// towards ½), golden-labelled (coins keyed by each pair's position in the stream, so every policy measured on a
/// stretch sees the same labels), and the stream's own (proxy) labels of them.
fn stretch(task: &TaskConfig, stream: &Pairs, end: usize, seed: u32) -> (Pairs, Vec<bool>) {
    let (end, start) = (end.min(stream.len()), end.min(stream.len()).saturating_sub(STREAM_STRETCH));
    let mut pairs = Pairs::default();
    let mut proxy_labels = vec![];
    for j in start..end {
        let (p, y1, y2) = (&stream.prompts[j], &stream.y1[j], &stream.y2[j]);
        if y1 == y2 || task.golden_reward(p, y1) == task.golden_reward(p, y2) {
            continue;
        }
        pairs.first_wins.push(task.golden_label(p, y1, y2, uniform(seed, EVAL_STREAM_COINS, 0, j as u32)));
        pairs.prompts.push(p.clone());
        pairs.y1.push(y1.clone());
        pairs.y2.push(y2.clone());
        proxy_labels.push(stream.first_wins[j]);
    }
    (pairs, proxy_labels)
}

/// What a checkpoint measures on a stream stretch: the online step whose stretch, the policy's accuracy as a
/// classifier of it, and (on its own stream) the proxy's labels' accuracy.
struct StreamMeasure {
    step: u32,
    policy: f32,
    proxy: Option<f32>,
    pairs: u32,
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
    Ok(Some(StreamMeasure { step: at, policy: accuracy, proxy, pairs: golden.len() as u32 }))
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
        let rows = Rows { t, tokens: batch.tokens, read: Read::Logps { targets: batch.targets, weights: batch.weights } };
        let lp = pass_rows(e, model, None, rows).await?;
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
    let validation_win_rate = match &set.validation {
        Some(v) => {
            let ys = sample_responses(e, policy, task, &v.prompts, set.seed, EVAL_VALIDATION_SAMPLES).await?;
            Some(self::golden_win_rate(task, &v.prompts, &ys, &v.baseline).0)
        }
        None => None,
    };
    let proxy_prefers = match (set.proxy, &set.baseline_scores) {
        (Some(pm), Some(known)) => Some(prefers_over_scored(e, pm, task, &set.win_prompts, &ys, known).await?),
        (Some(pm), None) => Some(prefers(e, pm, task, &set.win_prompts, &ys, &set.baseline).await?),
        (None, _) => None,
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
        stream_pairs: on_stream.as_ref().map(|m| m.pairs),
        proxy_win_rate,
        validation_win_rate,
        train_loss,
        responses: response_stats(task, &set.win_prompts, &ys),
        samples,
    })
}

/// Summed response log-probs of `ys` under `model` for `prompts` (batched in one pass).
pub async fn response_logprobs(e: &Engine, model: &Gpt, acts: &Activations, batch: &SequenceBatch) -> Result<Vec<f32>> {
    model.forward(e, acts, &e.indices(&batch.tokens))?;
    model.sequence_logprobs(e, acts, &e.indices(&batch.targets), &e.tensor(&batch.weights))?;
    e.read(&acts.sequence_logprobs).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classifier_tie_counts_half() {
        assert_eq!(classifier_score(0.0, true), 0.5);
        assert_eq!(classifier_score(0.0, false), 0.5);
        assert_eq!(classifier_score(0.3, true), 1.0);
        assert_eq!(classifier_score(0.3, false), 0.0);
        assert_eq!(classifier_score(-0.3, false), 1.0);
        assert_eq!(classifier_score(-0.3, true), 0.0);
    }

    #[test]
    fn a_stream_stretch_keeps_only_the_pairs_a_classifier_can_order() {
        let task = TaskConfig::default();
        let mut stream = Pairs::default();
        // Pairs of generated summaries; some made identical, some made golden ties by swapping in a response of the
        // same reward; proxy labels alternate so that each kept pair's own label can be followed.
        for j in 0..40u32 {
            let p = task.prompt(3, 0, j);
            let y1 = task.generate(&p, 3, 1, j);
            let y2 = match j % 4 {
                0 => y1.clone(),
                1 => {
                    // Another response of exactly y1's golden reward that differs from it: y1 reversed.
                    let mut y = y1.clone();
                    let body = y.iter().take_while(|&&t| t != crate::task::EOS).count();
                    y[..body].reverse();
                    y
                }
                _ => task.generate(&p, 3, 2, j),
            };
            stream.prompts.push(p);
            stream.y1.push(y1);
            stream.y2.push(y2);
            stream.first_wins.push(j % 2 == 0);
        }
        let (pairs, proxy) = stretch(&task, &stream, 40, 7);
        let orderable: Vec<usize> = (0..40).filter(|&j| stream.y1[j] != stream.y2[j] && task.golden_reward(&stream.prompts[j], &stream.y1[j]) != task.golden_reward(&stream.prompts[j], &stream.y2[j])).collect();
        assert!(orderable.len() >= 10 && orderable.len() < 30, "the constructed stream has ties and identical pairs to leave out: {} of 40 kept", orderable.len());
        assert_eq!(pairs.len(), orderable.len());
        assert_eq!(proxy, orderable.iter().map(|&j| stream.first_wins[j]).collect::<Vec<_>>());
        for (k, &j) in orderable.iter().enumerate() {
            assert_eq!((&pairs.y1[k], &pairs.y2[k]), (&stream.y1[j], &stream.y2[j]));
            // Untied, the golden label is the better response whatever the coin.
            let better = task.golden_reward(&stream.prompts[j], &stream.y1[j]) > task.golden_reward(&stream.prompts[j], &stream.y2[j]);
            assert_eq!(pairs.first_wins[k], better);
        }
        // A stretch is the last STREAM_STRETCH pairs up to its end, before leaving any out.
        let (first_ten, _) = stretch(&task, &stream, 10, 7);
        assert_eq!(first_ten.len(), orderable.iter().filter(|&&j| j < 10).count());
    }
}

//! What stages and runs report: a checkpoint row of results.json, the proxy's report, progress, and the models and
//! datasets a seed hands over to be saved.

use super::*;
use crate::bail;
use crate::error::Result;
use crate::experiments::Method;
use crate::model::Gpt;
use crate::train::eval::Checkpoint;
use crate::train::pm::{Pairs, PmEval};
use serde::{Deserialize, Serialize};

/// One checkpoint of one run, as results.json and metrics.csv hold it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub method: Method,
    pub seed: u32,
    pub beta: f32,
    pub lr: f32,
    /// Length of the run this checkpoint belongs to.
    pub run_steps: u32,
    /// Set on a repeat of a run over the same stages with its own alignment seed (see `RunSpec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align_seed: Option<u32>,
    /// Set on a run of another policy size than the config's (`RunSpec::policy`), as `LxDhH`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "size_text::option")]
    pub policy: Option<ModelSize>,
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
}

impl Row {
    /// True when this row is of the run `run`.
    pub fn is_of(&self, run: &RunSpec) -> bool {
        self.method == run.method && self.beta == run.beta && self.lr == run.lr && self.run_steps == run.steps && self.align_seed == run.align_seed && self.policy == run.policy
    }
}

/// What results.json records of a seed's proxy.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProxyReport {
    pub seed: u32,
    /// Accuracy on the held-out golden pairs of the model kept, measured once.
    pub heldout_accuracy: f32,
    /// The step of the lowest validation loss (the model kept), and the steps trained.
    #[serde(default)]
    pub best_step: u32,
    #[serde(default)]
    pub steps_run: u32,
    /// Held-out accuracy on the pairs whose golden rewards differ, and the share of golden ties (absent in
    /// reports from before they were measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_free_accuracy: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_rate: Option<f32>,
    /// The proxy map's weaker proxies: the same run's parameters at earlier steps, each with its held-out accuracy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ladder: Vec<Rung>,
}

/// A seed's headroom on its task: the golden win rate against π_sft's responses, on the evaluation prompts, of
/// the task's oracle summary ([`crate::task::TaskConfig::oracle`]: every key word, in the document's order, no
/// fault), the best any policy could reach. Measured by runs that ask for the precondition analysis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OracleReport {
    pub seed: u32,
    /// Ties counted half.
    pub win_rate: f32,
    pub ties: f32,
}

impl OracleReport {
    pub fn measure(seed: u32, task: &crate::task::TaskConfig, prompts: &[Vec<u32>], baseline: &[Vec<u32>]) -> Self {
        let oracle: Vec<Vec<u32>> = prompts.iter().map(|p| task.oracle(p)).collect();
        let (win_rate, ties) = crate::train::eval::golden_win_rate(task, prompts, &oracle, baseline);
        OracleReport { seed, win_rate, ties }
    }
}

/// One weaker proxy of the proxy map: the proxy's run at `step`, and its accuracy on the held-out pairs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    pub step: u32,
    pub heldout: crate::train::pm::PmAccuracy,
}

impl ProxyReport {
    /// The report of a freshly trained proxy.
    pub fn new(seed: u32, trained: &crate::train::pm::TrainedPm) -> Self {
        let h = trained.heldout;
        ProxyReport {
            seed,
            heldout_accuracy: h.with_ties,
            best_step: trained.best_step,
            steps_run: trained.steps_run,
            tie_free_accuracy: Some(h.tie_free),
            tie_rate: Some(h.tie_rate),
            ladder: vec![],
        }
    }

    /// The tie-free held-out accuracy of the proxy that labels `judge`'s pairs: the full proxy's or a rung's
    /// (none: golden labels, or not measured).
    pub fn tie_free_of(&self, judge: crate::experiments::method::Judge) -> Option<f32> {
        use crate::experiments::method::Judge;
        match judge {
            Judge::Proxy => self.tie_free_accuracy,
            Judge::ProxyAt(step) => self.ladder.iter().find(|r| r.step == step).map(|r| r.heldout.tie_free),
            Judge::Golden => None,
        }
    }

    /// The best accuracy with ties a proxy can expect (every untied pair right, ties at ½), where measured.
    pub fn ceiling(&self) -> Option<f32> {
        self.tie_rate.map(|t| 1.0 - t / 2.0)
    }
}

/// What the pipeline reports as it goes: (stage, step, total) and each finished checkpoint.
pub enum Progress<'a> {
    Stage { name: String, step: u64, total: u64 },
    SftLoss { seed: u32, step: u32, loss: f32 },
    /// A proxy evaluation on its validation split (a part of D_golden).
    ProxyEval { seed: u32, step: u32, eval: PmEval },
    Checkpoint(&'a Row),
    /// A seed's SFT and proxy are ready (trained or from the cache): what results.json records of them.
    StagesReady { seed: u32, sft_loss: &'a [f32], proxy: &'a ProxyReport },
}

/// Trained models of one seed, for saving.
pub struct SeedModels {
    pub seed: u32,
    pub sft: Gpt,
    pub proxy: crate::train::pm::Proxy,
    pub policies: Vec<(String, Gpt)>,
    /// The datasets the seed's runs trained on besides D_golden: online streams, pair datasets.
    pub datasets: Vec<NamedDataset>,
}

/// A dataset a run trained on, to save beside the results (`train::dataset_file`).
pub struct NamedDataset {
    pub seed: u32,
    /// The file's name without its extension, e.g. `online_stream_beta0.1_lr0.0005`.
    pub name: String,
    /// What the pairs are, in a sentence (the file's `source` metadata).
    pub source: String,
    pub pairs: Pairs,
}

/// An online run's stream D_online, in training order, as a dataset to save.
pub(super) fn stream_dataset(seed: u32, online: &RunSpec, stream: Pairs, batch: usize) -> NamedDataset {
    let source = format!(
        "D_online: the stream of online IPO ({}, β {}, lr {}): {} steps of {batch} pairs sampled from the current policy and labelled by the proxy, in training order",
        online.whose(seed), online.beta, online.lr, online.steps
    );
    NamedDataset { seed, name: online.data_name("online_stream"), source, pairs: stream }
}

impl SeedModels {
    /// Every model with the folder name it is saved under (`sft`, `proxy`, then each run's).
    pub fn named(&self) -> Vec<(&str, &Gpt)> {
        let mut all = vec![("sft", &self.sft), ("proxy", &self.proxy.model)];
        all.extend(self.policies.iter().map(|(n, m)| (n.as_str(), m)));
        all
    }
}

/// Everything one seed contributes to an experiment's results.
pub struct SeedResults {
    pub seed: u32,
    pub checkpoints: Vec<Row>,
    pub proxy: ProxyReport,
    pub sft_loss: Vec<f32>,
    /// The SFT losses of the scaling ladder's other sizes.
    pub sized_sft_loss: Vec<(ModelSize, Vec<f32>)>,
    /// The seed's headroom, where the config asks for it ([`StageSpec::oracle_headroom`](super::StageSpec)).
    pub oracle: Option<OracleReport>,
    pub timings: Vec<(String, f64)>,
}

/// Refuses a checkpoint with a non-finite metric, naming the run, the step and the metric: JSON would
/// write it as `null`, indistinguishable from "not measured".
pub fn check_finite(row: &Row) -> Result<()> {
    let c = &row.checkpoint;
    let r = &c.responses;
    let mut metrics = vec![
        ("kl", Some(c.kl)),
        ("golden_win_rate", Some(c.golden_win_rate)),
        ("ties", Some(c.ties)),
        ("classifier_accuracy", Some(c.classifier_accuracy)),
        ("chosen_logratio", c.chosen_logratio),
        ("self_classifier_accuracy", c.self_classifier_accuracy),
        ("proxy_win_rate", c.proxy_win_rate),
        ("train_loss", c.train_loss),
        ("responses.golden_reward", Some(r.golden_reward)),
        ("responses.length", Some(r.length)),
        ("responses.repeats", Some(r.repeats)),
        ("responses.hallucinations", Some(r.hallucinations)),
        ("responses.eos_rate", Some(r.eos_rate)),
    ];
    metrics.extend(c.samples.iter().flat_map(|s| [("samples.golden_reward", Some(s.golden_reward)), ("samples.baseline_golden_reward", Some(s.baseline_golden_reward))]));
    if let Some((name, v)) = metrics.into_iter().find_map(|(n, v)| v.filter(|v| !v.is_finite()).map(|v| (n, v))) {
        bail!("seed {} {} β={} lr={} step {}: {name} is not finite ({v}); the policy diverged (lower lrs)", row.seed, row.method, row.beta, row.lr, c.step);
    }
    Ok(())
}

/// Accumulates seconds per stage name.
pub fn add_time(timings: &mut Vec<(String, f64)>, name: &str, ms: f64) {
    match timings.iter_mut().find(|(n, _)| n == name) {
        Some((_, t)) => *t += ms / 1e3,
        None => timings.push((name.to_string(), ms / 1e3)),
    }
}

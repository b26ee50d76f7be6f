//! The stages every experiment is built from, and their cache (docs/method.md):
//!
//! per seed, once: SFT → D_golden and the held-out pairs → the proxy PM → the fixed evaluation set;
//! then any number of alignment runs, each a [`RunSpec`] (method, β, lr, steps) from those stages.
//!
//! An experiment (e.g. [`super::fig1`]) is data: a config with presets, the list of runs it needs per
//! seed, and the analysis that turns their checkpoints into its figure. Trained stages and finished runs
//! are cached by the hash of everything that determines them, so a rerun resumes and a sweep never
//! retrains what it shares.

use crate::bail;
use crate::bench::now_ms;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head};
use crate::task::TaskConfig;
use super::method::{early_steps, Data, Judge, Method, Offline, PairDataset, Sampler};
use crate::train::align::{align_from, AlignConfig, AlignState, Checkpoint, EvalPrompts, EvalSet, Online, OnlineStream, PastBest, ReferenceLogps, Source};
use crate::train::data::golden_pairs;
use crate::train::eval::sample_responses;
use crate::train::losses::Loss;
use crate::train::optim::AdamwConfig;
use crate::train::pm::{train_pm, Pairs, PmConfig, PmData, PmEval};
use crate::train::sft::{train_sft, SftConfig};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The policy's shape (its context and vocabulary come from the task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSize {
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
}

impl ModelSize {
    /// The GPT-2 of this shape for `task` (its context and vocabulary).
    pub fn model_config(self, task: &TaskConfig) -> GptConfig {
        GptConfig { n_layer: self.layers, n_embd: self.d_model, n_head: self.heads, n_positions: task.context(), vocab_size: task.vocab_size() }
    }

    /// Parameters of the policy (embeddings included; the LM head is tied).
    pub fn parameters(self, task: &TaskConfig) -> usize {
        crate::model::params::param_infos(&self.model_config(task), Head::Lm).iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }
}

/// `LxDhH`: L layers of width D with H heads (e.g. `2x64h4`, the fig1 preset's policy), as the scaling ladder and
/// the runs of its sizes are written in results.json, metrics.csv, model names and the page's links.
impl std::fmt::Display for ModelSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}h{}", self.layers, self.d_model, self.heads)
    }
}

impl std::str::FromStr for ModelSize {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s.trim().split_once('x').and_then(|(l, rest)| {
            let (d, h) = rest.split_once('h')?;
            Some(ModelSize { layers: l.parse().ok()?, d_model: d.parse().ok()?, heads: h.parse().ok()? })
        });
        match parsed {
            Some(size) => Ok(size),
            None => bail!("'{s}' is not a policy size LxDhH (L layers of width D with H heads, e.g. 2x64h4)"),
        }
    }
}

/// Serde for sizes written as text ([`ModelSize`]'s `LxDhH`): a list (the config's ladder) and an optional one (a row's).
pub mod size_text {
    use super::ModelSize;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sizes: &[ModelSize], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(sizes.iter().map(|m| m.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModelSize>, D::Error> {
        Vec::<String>::deserialize(d)?.iter().map(|t| t.parse().map_err(|e: crate::Error| D::Error::custom(e.0))).collect()
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(size: &Option<ModelSize>, s: S) -> Result<S::Ok, S::Error> {
            match size {
                Some(m) => s.serialize_str(&m.to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ModelSize>, D::Error> {
            Option::<String>::deserialize(d)?.map(|t| t.parse().map_err(|e: crate::Error| D::Error::custom(e.0))).transpose()
        }
    }
}

/// What a seed's shared stages and every alignment run of an experiment depend on, borrowed from the
/// experiment's config.
#[derive(Clone, Copy, Debug)]
pub struct StageSpec<'a> {
    pub task: &'a TaskConfig,
    pub policy: ModelSize,
    pub sft: &'a SftConfig,
    /// Pairs in D_golden, and held-out pairs (proxy early stopping, classifier accuracy).
    pub d_golden: usize,
    pub heldout: usize,
    pub proxy: &'a PmConfig,
    pub win_prompts: usize,
    pub kl_prompts: usize,
    /// Shared by every alignment run: the loss, pairs per step, steps between checkpoints, extra
    /// log-spaced checkpoints, and the steps of linear lr warm-up. The warm-up is the same for runs of
    /// every length, so a shorter run with the same setting is exactly the start of a longer one (an
    /// offline sweep over lengths needs only its longest run's checkpoints).
    pub loss: Loss,
    pub batch: usize,
    pub eval_every: u32,
    pub log_evals: u32,
    pub warmup_steps: u32,
    /// Offline runs train on past their length until past their best golden win rate (none: they stop at
    /// their length). Only offline: online runs keep the paper's fixed length.
    pub offline_past_best: Option<PastBest>,
    /// Steps of the online runs: the final policy of the pair datasets (Figs 5 and 12).
    pub online_steps: u32,
    /// The checkpoints must carry the held-out winners' log-ratio (`Checkpoint::chosen_logratio`), and
    /// self-classification accuracy: a cached run measured before a metric existed is trained again for it
    /// (the training is the same, so its key is too).
    pub chosen_logratio: bool,
    pub self_classification: bool,
    /// Online runs measure their own stream and offline runs their online run's (the paper's Fig. 6): online runs
    /// are trained even when cached, for their stream.
    pub stream_classification: bool,
    /// The backend the SFT and proxy stages were trained on, when not the engine's own: stages trained elsewhere
    /// (the CLI's, shipped with the page) keyed as there. The runs trained here carry the engine's backend in their
    /// keys besides.
    pub stage_backend: Option<&'a str>,
    /// Train each online run side by side with the offline run of its setting that follows it, taking turns step by
    /// step (the page: both curves start early instead of offline's after online's whole run). Each run's numbers are
    /// the same either way (its randomness is its own); only the order of its progress reports changes.
    pub interleave: bool,
    /// Keep each run's [`AlignState`] in the cache at every checkpoint (under [`resume_keys`]) and resume a run from
    /// the one kept there: a run interrupted (a reload of the page, a lost GPU) goes on from its last checkpoint and
    /// ends with the numbers of an uninterrupted run. Runs also keep their finished entries (the page drops them
    /// when its whole experiment is done).
    pub resumable: bool,
    /// The backend a run going on here was cut off on (a lost GPU's): its finished runs and saved states, keyed as
    /// trained there (from `stage_backend`'s stages), are taken over.
    pub runs_from: Option<&'a str>,
}

impl StageSpec<'_> {
    /// The backend the SFT and proxy stages are keyed by on an engine of `backend`.
    fn stages_on<'b>(&'b self, backend: &'b str) -> &'b str {
        self.stage_backend.unwrap_or(backend)
    }

    pub fn model_config(&self) -> GptConfig {
        self.policy.model_config(self.task)
    }
}

/// One alignment run an experiment asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunSpec {
    pub method: Method,
    pub beta: f32,
    pub lr: f32,
    pub steps: u32,
    /// The seed of the run's own randomness (prompts, samples, label coins) when it is not the stage
    /// seed's: a repeat of the run over the same SFT, D_golden and proxy.
    pub align_seed: Option<u32>,
    /// The policy's size when it is not the config's `policy` (the scaling experiment): the run starts from, and
    /// is regularised to, the SFT policy of this size; D_golden, the proxy and the evaluation prompts and
    /// baseline are the seed's own, shared by every size.
    pub policy: Option<ModelSize>,
}

impl RunSpec {
    pub fn new(method: Method, beta: f32, lr: f32, steps: u32) -> Self {
        RunSpec { method, beta, lr, steps, align_seed: None, policy: None }
    }

    /// `_align{a}` on a repeat, `_{size}` on a run of another policy size.
    fn suffix(&self) -> String {
        let repeat = self.align_seed.map(|a| format!("_align{a}")).unwrap_or_default();
        let size = self.policy.map(|p| format!("_{p}")).unwrap_or_default();
        format!("{repeat}{size}")
    }

    /// The folder name of its model under `models/seed*/`.
    pub fn model_name(&self) -> String {
        format!("{}_beta{}_lr{}_steps{}{}", self.method.name(), self.beta, self.lr, self.steps, self.suffix())
    }

    /// The name of a dataset of this run's setting (its file under `datasets/seed*/`, without the extension):
    /// `{kind}_beta{β}_lr{lr}`, `_align{a}` on a repeat and `_{size}` at another policy size.
    pub fn data_name(&self, kind: &str) -> String {
        format!("{kind}_beta{}_lr{}{}", self.beta, self.lr, self.suffix())
    }

    /// "seed S", ", alignment seed A" on a repeat, ", policy SIZE" at another size: whose randomness and policy a
    /// dataset of this run drew.
    fn whose(&self, seed: u32) -> String {
        let size = self.policy.map(|p| format!(", policy {p}")).unwrap_or_default();
        format!("seed {seed}{}{size}", self.align_seed.map(|a| format!(", alignment seed {a}")).unwrap_or_default())
    }
}

/// One checkpoint of one run, as results.json and metrics.csv hold it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub method: String,
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
        self.method == run.method.name() && self.beta == run.beta && self.lr == run.lr && self.run_steps == run.steps && self.align_seed == run.align_seed && self.policy == run.policy
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
    pub proxy: Gpt,
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
fn stream_dataset(seed: u32, online: &RunSpec, stream: Pairs, batch: usize) -> NamedDataset {
    let source = format!(
        "D_online: the stream of online IPO ({}, β {}, lr {}): {} steps of {batch} pairs sampled from the current policy and labelled by the proxy, in training order",
        online.whose(seed), online.beta, online.lr, online.steps
    );
    NamedDataset { seed, name: online.data_name("online_stream"), source, pairs: stream }
}

impl SeedModels {
    /// Every model with the folder name it is saved under (`sft`, `proxy`, then each run's).
    pub fn named(&self) -> Vec<(&str, &Gpt)> {
        let mut all = vec![("sft", &self.sft), ("proxy", &self.proxy)];
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
    pub timings: Vec<(String, f64)>,
}

/// Trained stages and finished runs stored by the hash of everything that determines them. `meta` carries
/// what the stage reported (its loss curve, its accuracy, a run's checkpoints).
pub trait StageCache {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)>;
    /// Whether `get` would find a usable entry (a cache may answer more cheaply than loading it).
    fn contains(&mut self, key: &str) -> bool {
        self.get(key).is_some()
    }
    fn put(&mut self, key: &str, model: &Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> Result<()>;
    /// Drops an entry (a resumed run's saved state once the run is done); a cache may keep it.
    fn remove(&mut self, _key: &str) {}
}

/// The cache keys of a run's saved [`AlignState`]: the state (its policy, with the rest as meta), then AdamW's first and
/// second moments (as models of the policy's shape).
pub fn resume_keys(run_key: &str) -> [String; 3] {
    [format!("{run_key}-state"), format!("{run_key}-adam-m"), format!("{run_key}-adam-v")]
}

/// No caching (the page, the tests).
pub struct NoCache;

impl StageCache for NoCache {
    fn get(&mut self, _: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        None
    }
    fn put(&mut self, _: &str, _: &Gpt, _: &[Vec<f32>], _: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// 64-bit FNV-1a of a JSON value's canonical text, as 16 hex digits: stable across runs and machines.
pub fn hash_json(v: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_string().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Cache keys of the SFT and proxy stages of one seed. The backend is part of the key: the CPU and GPU
/// backends agree to rounding, not bit for bit.
pub fn stage_keys(spec: &StageSpec, seed: u32, backend: &str) -> (String, String) {
    // How golden labels are drawn does not touch SFT, so a label-noise sweep reuses the SFT stage.
    let task = TaskConfig { labels: crate::task::LabelNoise::Hard, ..spec.task.clone() };
    let sft = serde_json::json!({"stage": "sft", "task": task, "policy": spec.policy, "sft": spec.sft, "seed": seed, "backend": backend, "version": 1});
    let sft_key = format!("sft-{}", hash_json(&sft));
    let proxy = serde_json::json!({"stage": "proxy", "sft": sft_key, "d_golden": spec.d_golden, "heldout": spec.heldout, "proxy": spec.proxy, "version": 1});
    (sft_key.clone(), format!("proxy-{}", hash_json(&proxy)))
}

/// Cache key of one alignment run: everything that determines its checkpoints and policy (the SFT and
/// proxy keys, the evaluation sets' sizes, the run's own setting).
pub fn run_key(spec: &StageSpec, seed: u32, backend: &str, run: &RunSpec) -> String {
    run_key_with(spec, seed, backend, run, past_best_of(spec, run))
}

/// The stopping rule a run trains under: the spec's [`PastBest`] for offline IPO on D_golden or on a pair
/// dataset of its size (compared with it, so trained by the same rule), none for the others.
pub fn past_best_of(spec: &StageSpec, run: &RunSpec) -> Option<PastBest> {
    spec.offline_past_best.filter(|_| run.method.stops_past_best())
}

/// [`run_key`] under a given stopping rule. Without one, the key is the one runs had before the rule
/// existed, so their cached entries stay valid.
fn run_key_with(spec: &StageSpec, seed: u32, backend: &str, run: &RunSpec, past_best: Option<PastBest>) -> String {
    let (sft, proxy) = stage_keys(spec, seed, spec.stages_on(backend));
    let mut key = serde_json::json!({
        "stage": "run", "sft": sft, "proxy": proxy, "task": spec.task, "d_golden": spec.d_golden, "heldout": spec.heldout,
        "loss": spec.loss, "batch": spec.batch, "eval_every": spec.eval_every, "win_prompts": spec.win_prompts,
        "kl_prompts": spec.kl_prompts, "method": run.method.name(), "beta": run.beta, "lr": run.lr, "steps": run.steps,
        "log_evals": spec.log_evals, "warmup_steps": spec.warmup_steps, "align_seed": run.align_seed, "version": 3,
    });
    if let Some(p) = past_best {
        key["past_best"] = serde_json::json!(p);
    }
    if spec.stages_on(backend) != backend {
        // Trained here from stages trained on another backend.
        key["backend"] = serde_json::json!(backend);
    }
    if let Some(size) = run.policy {
        // Its SFT policy is the seed's SFT config at this size (D_golden and the proxy are the seed's own, keyed above).
        key["policy"] = serde_json::json!(size);
    }
    if run.method.pair_dataset().is_some() {
        // Its data comes from the online run of its setting, early and at its end.
        key["online_steps"] = serde_json::json!(spec.online_steps);
        key["early_steps"] = serde_json::json!(early_steps(spec.online_steps));
    }
    format!("run-{}", hash_json(&key))
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

/// A seed's shared stages, trained or from the cache.
pub struct SeedStages {
    pub seed: u32,
    pub sft: Gpt,
    pub sft_loss: Vec<f32>,
    pub d_golden: Pairs,
    pub heldout: Pairs,
    pub proxy: Gpt,
    pub proxy_report: ProxyReport,
    /// The SFT policies of the scaling ladder's other sizes ([`SeedStages::add_size`]).
    pub sized: Vec<SizedSft>,
    pub timings: Vec<(String, f64)>,
    /// π_sft's log-probs of D_golden's pairs, shared by this seed's offline runs at the config's policy size.
    pub d_golden_reference: ReferenceLogps,
}

use crate::rng::streams;

/// SFT → D_golden and held-out pairs → proxy PM for one seed.
pub async fn seed_stages(e: &Engine, spec: &StageSpec<'_>, seed: u32, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<SeedStages> {
    let task = spec.task;
    let mut timings: Vec<(String, f64)> = vec![];
    let backend = e.describe();
    let (sft_key, proxy_key) = stage_keys(spec, seed, spec.stages_on(&backend));

    let t0 = now_ms();
    let (sft, sft_loss) = sft_stage(e, spec, seed, &sft_key, true, cache, progress).await?;
    add_time(&mut timings, "sft", now_ms() - t0);

    let t0 = now_ms();
    progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 0, total: 1 });
    let d_golden = golden_pairs(e, task, &sft, spec.d_golden, seed, streams::D_GOLDEN.0, streams::PAIR_CHUNK).await?;
    let heldout = golden_pairs(e, task, &sft, spec.heldout, seed, streams::HELDOUT.0, streams::PAIR_CHUNK).await?;
    progress(Progress::Stage { name: format!("seed {seed}: D_golden"), step: 1, total: 1 });
    add_time(&mut timings, "d_golden", now_ms() - t0);

    let t0 = now_ms();
    let (proxy, proxy_report) = match cache.get(&proxy_key) {
        Some((config, head, values, meta)) => {
            progress(Progress::Stage { name: format!("seed {seed}: proxy PM (cached)"), step: 1, total: 1 });
            let report = serde_json::from_value(meta).unwrap_or(ProxyReport { seed, heldout_accuracy: f32::NAN, ..ProxyReport::default() });
            (Gpt::new(e, config, head, &values)?, report)
        }
        None => {
            // The proxy selects on a validation split held back from D_golden; the held-out pairs are
            // only reported on.
            let (train, validation) = d_golden.split_tail(spec.proxy.validation_pairs(d_golden.len()));
            let trained = train_pm(e, task, &sft, PmData { train: &train, validation: &validation, heldout: &heldout }, spec.proxy, seed, |s, eval| {
                progress(Progress::Stage { name: format!("seed {seed}: proxy PM"), step: s as u64, total: spec.proxy.steps as u64 });
                if let Some(eval) = eval {
                    progress(Progress::ProxyEval { seed, step: s, eval });
                }
            })
            .await?;
            let report = ProxyReport { seed, heldout_accuracy: trained.heldout_accuracy, best_step: trained.best_step, steps_run: trained.steps_run };
            cache.put(&proxy_key, &trained.model, &trained.model.values(e).await?, serde_json::json!(report))?;
            (trained.model, report)
        }
    };
    add_time(&mut timings, "proxy", now_ms() - t0);
    if !proxy_report.heldout_accuracy.is_finite() {
        bail!("seed {seed}: the proxy's held-out accuracy is not finite ({})", proxy_report.heldout_accuracy);
    }
    progress(Progress::StagesReady { seed, sft_loss: &sft_loss, proxy: &proxy_report });
    Ok(SeedStages { seed, sft, sft_loss, d_golden, heldout, proxy, proxy_report, sized: vec![], timings, d_golden_reference: ReferenceLogps::default() })
}

/// The SFT policy of `spec`'s size for one seed, from the cache or trained (and cached), with its losses. The SFT
/// progress of a policy of another size than the seed's own names that size.
async fn sft_stage(e: &Engine, spec: &StageSpec<'_>, seed: u32, key: &str, own: bool, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<(Gpt, Vec<f32>)> {
    let label = format!("seed {seed}: SFT{}", if own { String::new() } else { format!(" {}", spec.policy) });
    if let Some((config, head, values, meta)) = cache.get(key) {
        progress(Progress::Stage { name: format!("{label} (cached)"), step: 1, total: 1 });
        return Ok((Gpt::new(e, config, head, &values)?, serde_json::from_value(meta).unwrap_or_default()));
    }
    let mut losses = vec![];
    let sft = train_sft(e, spec.task, spec.model_config(), spec.sft, seed, |s, l| {
        losses.push(l);
        progress(Progress::Stage { name: label.clone(), step: s as u64 + 1, total: spec.sft.steps as u64 });
        if own {
            progress(Progress::SftLoss { seed, step: s + 1, loss: l });
        }
    })
    .await?;
    cache.put(key, &sft, &sft.values(e).await?, serde_json::json!(losses))?;
    Ok((sft, losses))
}

/// The SFT policy of one size of the scaling ladder, trained with the seed's SFT config and data.
pub struct SizedSft {
    pub size: ModelSize,
    pub sft: Gpt,
    pub losses: Vec<f32>,
}

impl SeedStages {
    /// Trains (or reads from the cache) the SFT policy of `size`, with the seed's SFT config and data, for the runs
    /// of that size.
    pub async fn add_size(&mut self, e: &Engine, spec: &StageSpec<'_>, size: ModelSize, cache: &mut dyn StageCache, progress: &mut dyn FnMut(Progress)) -> Result<()> {
        if size == spec.policy || self.sized.iter().any(|s| s.size == size) {
            return Ok(());
        }
        let sized = StageSpec { policy: size, ..*spec };
        let backend = e.describe();
        let (key, _) = stage_keys(&sized, self.seed, sized.stages_on(&backend));
        let t0 = now_ms();
        let (sft, losses) = sft_stage(e, &sized, self.seed, &key, false, cache, progress).await?;
        add_time(&mut self.timings, "sft_scaling", now_ms() - t0);
        self.sized.push(SizedSft { size, sft, losses });
        Ok(())
    }

    /// The SFT policy a run of size `size` starts from (none: the seed's own policy size).
    pub fn sft_of(&self, size: Option<ModelSize>) -> Result<&Gpt> {
        match size {
            None => Ok(&self.sft),
            Some(size) => match self.sized.iter().find(|s| s.size == size) {
                Some(s) => Ok(&s.sft),
                None => bail!("seed {}: no SFT policy of size {size} (add_size first)", self.seed),
            },
        }
    }

    /// The evaluation data of the runs of another policy size: `base`'s prompts and baseline responses (the seed's
    /// own π_sft's, so win rates compare across sizes), with the held-out pairs' log-probs under that size's π_sft
    /// (its runs' reference).
    pub async fn sized_eval_set<'s>(&'s self, e: &Engine, spec: &StageSpec<'_>, base: &EvalSet<'s>, size: ModelSize) -> Result<EvalSet<'s>> {
        let prompts = EvalPrompts { win_prompts: base.win_prompts.clone(), baseline: base.baseline.clone(), kl_prompts: base.kl_prompts.clone() };
        self.eval_set_from(e, spec, prompts, self.sft_of(Some(size))?).await
    }

    /// The evaluation set of runs regularised to `sft`: the held-out pairs' log-probs under it, the proxy, and the
    /// metrics `spec` asks for.
    async fn eval_set_from<'s>(&'s self, e: &Engine, spec: &StageSpec<'_>, prompts: EvalPrompts, sft: &Gpt) -> Result<EvalSet<'s>> {
        let mut set = EvalSet::new(e, sft, spec.task, prompts, self.heldout.clone(), Some(&self.proxy), self.seed).await?;
        set.self_classification = spec.self_classification;
        set.stream_classification = spec.stream_classification;
        Ok(set)
    }

    /// The fixed evaluation data of this seed: the same prompts and π_sft baseline for every run.
    pub async fn eval_set(&self, e: &Engine, spec: &StageSpec<'_>) -> Result<EvalSet<'_>> {
        let (task, seed) = (spec.task, self.seed);
        let win: Vec<Vec<u32>> = (0..spec.win_prompts as u32).map(|i| task.prompt(seed, streams::EVAL_WIN_PROMPTS, i)).collect();
        let baseline = sample_responses(e, &self.sft, task, &win, seed, streams::EVAL_BASELINE).await?;
        let kl_prompts = (0..spec.kl_prompts as u32).map(|i| task.prompt(seed, streams::EVAL_KL_PROMPTS, i)).collect();
        self.eval_set_from(e, spec, EvalPrompts { win_prompts: win, baseline, kl_prompts }, &self.sft).await
    }

    /// The golden-labelled pair dataset of a `Pairs` run: on D_golden's prompts, each side sampled from π_sft or
    /// from the online run with the run's β, lr and alignment seed, after [`early_steps`] or at its end. Those
    /// online policies come from the cache, or are trained (and cached) unreported.
    #[allow(clippy::too_many_arguments)]
    pub async fn pair_dataset(
        &self,
        e: &Engine,
        spec: &StageSpec<'_>,
        eval: &EvalSet<'_>,
        run: &RunSpec,
        dataset: PairDataset,
        cache: &mut dyn StageCache,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Pairs> {
        let seed = run.align_seed.unwrap_or(self.seed);
        let late = RunSpec { method: Method::ONLINE, steps: spec.online_steps, ..*run };
        let early = RunSpec { steps: early_steps(spec.online_steps), ..late };
        let (a, b) = dataset.samplers();
        let mut online = |r: RunSpec| {
            progress(Progress::Stage { name: format!("seed {}: online β={} lr={} ({} steps), for {}", self.seed, r.beta, r.lr, r.steps, run.method.name()), step: 0, total: 1 });
            r
        };
        let early = match [a, b].contains(&Sampler::Early) {
            true => Some(self.align_run(e, spec, eval, &online(early), cache, &mut |_| {}, None, false).await?.0),
            false => None,
        };
        let late = match [a, b].contains(&Sampler::Late) {
            true => Some(self.align_run(e, spec, eval, &online(late), cache, &mut |_| {}, None, false).await?.0),
            false => None,
        };
        let sft = self.sft_of(run.policy)?;
        let policy = |s: Sampler| match s {
            Sampler::Sft => sft,
            Sampler::Early => early.as_ref().expect("trained above"),
            Sampler::Late => late.as_ref().expect("trained above"),
        };
        progress(Progress::Stage { name: format!("seed {}: {} ({} pairs)", self.seed, run.method.name(), self.d_golden.len()), step: 0, total: 1 });
        crate::train::data::pairs_from(e, spec.task, (policy(a), policy(b)), &self.d_golden.prompts, seed, streams::PAIR_DATASETS.0, streams::PAIR_CHUNK).await
    }

    /// One alignment run from these stages: from the cache when it finished before, else trained (and
    /// cached). Its checkpoints are reported as they arrive and returned with the policy. A `Stream` run
    /// trains on `online_stream` (its online run's D_online, already reordered), a `Pairs` run on its dataset
    /// passed the same way. With `want_stream` an
    /// online run is trained even when cached, for its stream of labelled pairs (returned; empty otherwise).
    #[allow(clippy::too_many_arguments)]
    pub async fn align_run(
        &self,
        e: &Engine,
        spec: &StageSpec<'_>,
        eval: &EvalSet<'_>,
        run: &RunSpec,
        cache: &mut dyn StageCache,
        progress: &mut dyn FnMut(Progress),
        online_stream: Option<&Pairs>,
        want_stream: bool,
    ) -> Result<(Gpt, Vec<Row>, Pairs)> {
        let seed = self.seed;
        let (method, beta, lr, steps) = (run.method.name(), run.beta, run.lr, run.steps);
        let repeat = run.align_seed.map(|a| format!(", alignment seed {a}")).unwrap_or_default();
        let size = run.policy.map(|p| format!(", policy {p}")).unwrap_or_default();
        let name = format!("seed {seed}: {method} β={beta} lr={lr} ({steps} steps{repeat}{size})");
        let sft = self.sft_of(run.policy)?;
        let key = run_key(spec, seed, &e.describe(), run);
        let past_best = past_best_of(spec, run);
        // An offline run measured on its online run's stream needs that measure at every checkpoint past the start.
        let on_stream = eval.online_stream.is_some() && run.method == Method::OFFLINE;
        let measured_at = |c: &Checkpoint| {
            (!spec.chosen_logratio || c.chosen_logratio.is_some())
                && (!spec.self_classification || c.self_classified_pairs.is_some())
                && (!on_stream || c.step == 0 || c.stream_policy_accuracy.is_some())
        };
        let measured = |rows: &Vec<Row>| rows.iter().all(|r| measured_at(&r.checkpoint));
        let read_any = |cache: &mut dyn StageCache, key: &str| {
            let (config, head, values, meta) = cache.get(key)?;
            Some((config, head, values, serde_json::from_value::<Vec<Row>>(meta).ok()?))
        };
        let read = |cache: &mut dyn StageCache, key: &str| read_any(cache, key).filter(|(.., rows)| measured(rows));
        // This run's entry, read once: reused when it measured what is needed (and no stream is wanted); otherwise
        // its checkpoints say what a retrained run keeps measuring (below).
        // Going on here after its backend was lost (`runs_from`): a run that finished there, or its saved state, is
        // taken over from there.
        let there = spec.runs_from.filter(|b| *b != e.describe()).map(|b| run_key(spec, seed, b, run));
        let entry = read_any(cache, &key).or_else(|| there.as_ref().and_then(|k| read_any(cache, k)));
        let before: Vec<Row> = entry.as_ref().map(|(.., rows)| rows.clone()).unwrap_or_default();
        let mut cached = entry.filter(|(.., rows)| !want_stream && measured(rows));
        if let (None, Some(rule), false) = (&cached, past_best, want_stream) {
            // The same run cached without the rule is this run exactly when the rule stops it at its length
            // (the steps before are the same): reused, and cached under this run's key too.
            let plain = read(cache, &run_key_with(spec, seed, &e.describe(), run, None));
            if let Some((config, head, values, rows)) = plain.filter(|(.., rows)| !rule.still_improving(&rows.iter().map(|r| r.checkpoint.clone()).collect::<Vec<_>>())) {
                let meta = serde_json::to_value(&rows).map_err(|e| crate::Error(e.to_string()))?;
                cache.put(&key, &Gpt::new(e, config, head, &values)?, &values, meta)?;
                cached = Some((config, head, values, rows));
            }
        }
        if let Some((config, head, values, rows)) = cached {
            progress(Progress::Stage { name: format!("{name} (cached)"), step: steps as u64, total: steps as u64 });
            for row in &rows {
                check_finite(row)?;
                progress(Progress::Checkpoint(row));
            }
            return Ok((Gpt::new(e, config, head, &values)?, rows, Pairs::default()));
        }
        let source = match (run.method.data, online_stream) {
            (Data::Online { judge, refresh, mixture }, _) => {
                Source::Online(Online { proxy: (judge == Judge::Proxy).then_some(&self.proxy), refresh, mixture: mixture as f32 / 100.0 })
            }
            (Data::Offline(Offline::Golden), _) => Source::Offline(&self.d_golden, run.policy.is_none().then_some(&self.d_golden_reference)),
            (Data::Offline(_), Some(pairs)) => Source::Offline(pairs, None),
            (Data::Offline(Offline::Stream { .. }), None) => bail!("{name}: a stream run needs its online run's stream"),
            (Data::Offline(Offline::Pairs(_)), None) => bail!("{name}: a pair-dataset run needs its dataset"),
        };
        let run_cfg = AlignConfig {
            loss: run.method.loss(spec.loss),
            beta,
            adamw: AdamwConfig { lr, ..AdamwConfig::default() },
            steps,
            batch: spec.batch,
            eval_every: spec.eval_every,
            seed: run.align_seed.unwrap_or(seed),
            // The same warm-up for every run; a run shorter than it ends still warming up (so it stays the
            // start of a longer one).
            warmup_steps: spec.warmup_steps,
            log_evals: spec.log_evals,
            past_best,
        };
        let mut rows = vec![];
        let mut bad = Ok(());
        // A run interrupted before: from its last saved checkpoint, when that measured what this run needs.
        let state_keys = resume_keys(&key);
        let saved = match spec.resumable {
            true => read_state(cache, &state_keys).or_else(|| there.as_ref().and_then(|k| read_state(cache, &resume_keys(k)))).filter(|s| s.checkpoints.iter().all(measured_at)),
            false => None,
        };
        let name = match &saved {
            Some(s) => format!("{name} (resumed at step {})", s.step),
            None => name,
        };
        // Trained again for a metric its cached entry lacks: it keeps measuring what that entry (or its saved state)
        // had, so that two analyses sharing a run do not retrain it in turn.
        let had = |f: fn(&Checkpoint) -> bool| before.iter().map(|r| &r.checkpoint).chain(saved.iter().flat_map(|s| &s.checkpoints)).any(f);
        let (self_classification, stream_classification) =
            (eval.self_classification || had(|c| c.self_classified_pairs.is_some()), eval.stream_classification || had(|c| c.stream_proxy_accuracy.is_some()));
        let wider;
        let eval = if (self_classification, stream_classification) == (eval.self_classification, eval.stream_classification) {
            eval
        } else {
            wider = EvalSet { self_classification, stream_classification, ..eval.clone() };
            &wider
        };
        let mut keep_state = |state: AlignState| write_state(&mut *cache, &state_keys, sft, state);
        let on_state: Option<&mut dyn FnMut(AlignState) -> Result<()>> = if spec.resumable { Some(&mut keep_state) } else { None };
        let (policy, _, stream) = align_from(e, spec.task, sft, source, &run_cfg, eval, saved, |c| {
            let row = Row { method: method.clone(), seed, beta, lr, run_steps: steps, align_seed: run.align_seed, policy: run.policy, checkpoint: c.clone() };
            if bad.is_ok() {
                bad = check_finite(&row);
            }
            if bad.is_ok() {
                // Past its length a run's end is not known in advance: its cap is the total shown.
                progress(Progress::Stage { name: name.clone(), step: c.step as u64, total: past_best.map_or(steps, |p| p.max_steps.max(steps)) as u64 });
                progress(Progress::Checkpoint(&row));
            }
            rows.push(row);
        }, on_state)
        .await?;
        bad?;
        let meta = serde_json::to_value(&rows).map_err(|e| crate::Error(e.to_string()))?;
        cache.put(&key, &policy, &policy.values(e).await?, meta)?;
        if spec.resumable {
            for k in &state_keys {
                cache.remove(k);
            }
        }
        Ok((policy, rows, if want_stream { stream } else { Pairs::default() }))
    }
}

/// A run's [`AlignState`] from the cache ([`resume_keys`]), when all three entries are there and from one checkpoint.
fn read_state(cache: &mut dyn StageCache, keys: &[String; 3]) -> Option<AlignState> {
    let (_, _, params, meta) = cache.get(&keys[0])?;
    let mut state: AlignState = serde_json::from_value(meta).ok()?;
    let (_, _, adam_m, m_step) = cache.get(&keys[1])?;
    let (_, _, adam_v, v_step) = cache.get(&keys[2])?;
    // Written one after another: an interruption between them leaves moments of another step, not used.
    if m_step != serde_json::json!(state.step) || v_step != serde_json::json!(state.step) {
        return None;
    }
    (state.params, state.adam_m, state.adam_v) = (params, adam_m, adam_v);
    Some(state)
}

/// Keeps `state` in the cache under [`resume_keys`]: the moments (each as a model of the policy's shape, `like`'s),
/// then the state itself, whose step the moments' entries must name to be read back.
fn write_state(cache: &mut dyn StageCache, keys: &[String; 3], like: &Gpt, state: AlignState) -> Result<()> {
    let step = serde_json::json!(state.step);
    cache.put(&keys[1], like, &state.adam_m, step.clone())?;
    cache.put(&keys[2], like, &state.adam_v, step)?;
    let meta = serde_json::to_value(&state).map_err(|e| crate::Error(e.to_string()))?;
    cache.put(&keys[0], like, &state.params, meta)
}

/// A stage cache two runs trained side by side share (each borrows it only inside a call).
struct SharedCache<'c, 'd, 'o>(&'c std::cell::RefCell<&'d mut (dyn StageCache + 'o)>);

impl StageCache for SharedCache<'_, '_, '_> {
    fn get(&mut self, key: &str) -> Option<(GptConfig, Head, Vec<Vec<f32>>, serde_json::Value)> {
        self.0.borrow_mut().get(key)
    }
    fn contains(&mut self, key: &str) -> bool {
        self.0.borrow_mut().contains(key)
    }
    fn put(&mut self, key: &str, model: &Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> Result<()> {
        self.0.borrow_mut().put(key, model, values, meta)
    }
    fn remove(&mut self, key: &str) {
        self.0.borrow_mut().remove(key)
    }
}

/// Both futures to completion, polled in turn: each runs until it yields (every step, `control::yield_point`), then
/// the other.
pub async fn join2<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut out_a, mut out_b) = (None, None);
    std::future::poll_fn(|cx| {
        if out_a.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                out_a = Some(v);
            }
        }
        if out_b.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                out_b = Some(v);
            }
        }
        if out_a.is_some() && out_b.is_some() {
            Poll::Ready((out_a.take().expect("ready"), out_b.take().expect("ready")))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// One seed of an experiment: its shared stages, then each of `runs` in order. Seeds are independent, so
/// callers may run them in parallel and merge the results.
pub async fn run_seed(
    e: &Engine,
    spec: &StageSpec<'_>,
    seed: u32,
    runs: &[RunSpec],
    cache: &mut dyn StageCache,
    progress: &mut dyn FnMut(Progress),
    keep: &mut dyn FnMut(SeedModels) -> Result<()>,
) -> Result<SeedResults> {
    let mut stages = seed_stages(e, spec, seed, cache, progress).await?;
    // The scaling ladder's other sizes: each its own SFT policy, before any run.
    let mut sizes: Vec<ModelSize> = vec![];
    for size in runs.iter().filter_map(|r| r.policy) {
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    for &size in &sizes {
        stages.add_size(e, spec, size, cache, progress).await?;
    }
    let stages = stages;
    let eval = stages.eval_set(e, spec).await?;
    let mut sized_evals: Vec<(ModelSize, EvalSet)> = vec![];
    for &size in &sizes {
        sized_evals.push((size, stages.sized_eval_set(e, spec, &eval, size).await?));
    }
    let (mut checkpoints, mut policies, mut timings) = (vec![], vec![], stages.timings.clone());
    let online_of = |r: &RunSpec| RunSpec { method: Method::ONLINE, ..*r };
    // Every stream run needs its online run's stream, and every pair run its dataset, even when the run itself
    // comes from the cache: the datasets are saved beside the results (the cache keeps a run's policy and
    // checkpoints, not its data). They are kept here once, by name, and read from here by the runs.
    let stream_runs: Vec<RunSpec> = runs.iter().filter(|r| r.method.stream_window().is_some()).copied().collect();
    let mut datasets: Vec<NamedDataset> = vec![];
    let position = |datasets: &[NamedDataset], name: &str| datasets.iter().position(|d| d.name == name);
    let mut next = 0;
    while next < runs.len() {
        let run = &runs[next];
        next += 1;
        let t0 = now_ms();
        let eval_of = |policy: Option<ModelSize>| match policy {
            None => &eval,
            Some(size) => &sized_evals.iter().find(|(s, _)| *s == size).expect("built above").1,
        };
        // An online run and the offline run of its setting after it, side by side: neither reads the other's data
        // (a Fig. 6 probe would read online's checkpoints, so not then).
        let partner = runs.get(next).filter(|o| {
            spec.interleave && !spec.stream_classification && run.method == Method::ONLINE && o.method == Method::OFFLINE && RunSpec { method: Method::ONLINE, steps: run.steps, ..**o } == *run
        });
        if let Some(offline) = partner {
            next += 1;
            let feeds_a_stream = stream_runs.iter().any(|r| online_of(r) == *run);
            let (shared_cache, shared_progress) = (std::cell::RefCell::new(&mut *cache), std::cell::RefCell::new(&mut *progress));
            let (mut cache_a, mut cache_b) = (SharedCache(&shared_cache), SharedCache(&shared_cache));
            let (mut report_a, mut report_b) = (|p: Progress| (shared_progress.borrow_mut())(p), |p: Progress| (shared_progress.borrow_mut())(p));
            let (a, b) = join2(
                stages.align_run(e, spec, eval_of(run.policy), run, &mut cache_a, &mut report_a, None, feeds_a_stream),
                stages.align_run(e, spec, eval_of(offline.policy), offline, &mut cache_b, &mut report_b, None, false),
            )
            .await;
            let ((policy_a, rows_a, stream), (policy_b, rows_b, _)) = (a?, b?);
            if feeds_a_stream {
                datasets.push(stream_dataset(seed, run, stream, spec.batch));
            }
            checkpoints.extend(rows_a.into_iter().chain(rows_b));
            policies.push((run.model_name(), policy_a));
            policies.push((offline.model_name(), policy_b));
            // Their time together, split evenly.
            let half = (now_ms() - t0) / 2.0;
            add_time(&mut timings, &run.method.name(), half);
            add_time(&mut timings, &offline.method.name(), half);
            continue;
        }
        let eval = eval_of(run.policy);
        let data: Option<Cow<Pairs>> = match run.method.data {
            Data::Offline(Offline::Stream { window }) => {
                let online = online_of(run);
                let name = online.data_name("online_stream");
                if position(&datasets, &name).is_none() {
                    // Its online run is not among this process's runs (a shard): trained again, unreported, for
                    // its stream alone (its time counted as online's).
                    progress(Progress::Stage { name: format!("seed {seed}: online β={} lr={} again, for its stream", run.beta, run.lr), step: 0, total: run.steps as u64 });
                    let (_, _, s) = stages.align_run(e, spec, eval, &online, cache, &mut |_| {}, None, true).await?;
                    datasets.push(stream_dataset(seed, &online, s, spec.batch));
                    add_time(&mut timings, &Method::ONLINE.name(), now_ms() - t0);
                }
                let stream = &datasets[position(&datasets, &name).expect("kept above")].pairs;
                Some(Cow::Owned(crate::train::data::shuffle_in_windows(stream, spec.batch, window, run.align_seed.unwrap_or(seed))))
            }
            Data::Offline(Offline::Pairs(dataset)) => {
                let name = run.data_name(&run.method.name());
                if position(&datasets, &name).is_none() {
                    let pairs = stages.pair_dataset(e, spec, eval, run, dataset, cache, progress).await?;
                    let (a, b) = dataset.samplers();
                    let source = format!(
                        "D_{}: golden-labelled pairs on D_golden's prompts, the first response from {}, the second from {} ({}, online IPO at β {}, lr {}, {} steps; early = step {})",
                        run.method.name().replace("_vs_", "-vs-"), a.describe(), b.describe(), run.whose(seed), run.beta, run.lr, spec.online_steps, early_steps(spec.online_steps)
                    );
                    datasets.push(NamedDataset { seed, name: name.clone(), source, pairs });
                }
                Some(Cow::Borrowed(&datasets[position(&datasets, &name).expect("kept above")].pairs))
            }
            _ => None,
        };
        // An online run that a stream run of this seed follows is trained (not read from the cache), for its
        // stream: the cache keeps a run's policy and checkpoints, not its stream. So is every online run whose
        // stream its checkpoints and its offline runs are measured on (Fig. 6).
        let feeds_a_stream = run.method == Method::ONLINE && (spec.stream_classification || stream_runs.iter().any(|r| online_of(r) == *run));
        // An offline run measured on the stream of its setting's online run: that run's stream and checkpoints.
        let probe = match (spec.stream_classification, run.method) {
            (true, Method::OFFLINE) => position(&datasets, &online_of(run).data_name("online_stream")).map(|i| {
                let online = online_of(run);
                let own = |r: &&Row| r.method == Method::ONLINE.name() && r.beta == online.beta && r.lr == online.lr && r.align_seed == online.align_seed && r.policy == online.policy;
                let checkpoints = checkpoints.iter().filter(own).map(|r: &Row| (r.checkpoint.step, r.checkpoint.kl)).collect();
                EvalSet { online_stream: Some(OnlineStream { pairs: datasets[i].pairs.clone(), checkpoints, batch: spec.batch }), ..eval.clone() }
            }),
            _ => None,
        };
        let (policy, rows, stream) = stages.align_run(e, spec, probe.as_ref().unwrap_or(eval), run, cache, progress, data.as_deref(), feeds_a_stream).await?;
        if feeds_a_stream {
            datasets.push(stream_dataset(seed, run, stream, spec.batch));
        }
        checkpoints.extend(rows);
        policies.push((run.model_name(), policy));
        add_time(&mut timings, &run.method.name(), now_ms() - t0);
    }
    drop(sized_evals);
    drop(eval);
    let report = stages.proxy_report.clone();
    let sft_loss = stages.sft_loss.clone();
    let sized_sft_loss: Vec<(ModelSize, Vec<f32>)> = stages.sized.iter().map(|s| (s.size, s.losses.clone())).collect();
    // Each other size's SFT policy is saved beside the runs, as `sft_{size}`.
    policies.extend(stages.sized.into_iter().map(|s| (format!("sft_{}", s.size), s.sft)));
    keep(SeedModels { seed, sft: stages.sft, proxy: stages.proxy, policies, datasets })?;
    Ok(SeedResults { seed, checkpoints, proxy: report, sft_loss, sized_sft_loss, timings })
}

//! An experiment as data (docs/method.md §6): one config per figure, every checkpoint of every setting. Per seed:
//! SFT → D_golden → proxy PM → for each (β, lr): online IPO with proxy labels, offline IPO on D_golden, and the
//! optional arms ([`super::arms`]). Online and offline share the loss, β, lr, batch and steps.
//!
//! Around the config, each in its room: its presets ([`super::presets`]), arms, run plan ([`super::plan`]), time
//! estimate ([`super::estimate`]), page knobs ([`super::knobs`]) and results ([`super::results`]).

use super::pipeline::{self, ModelSize, StageSpec};
use super::method::PairDataset;
use crate::bail;
use crate::error::Result;
use crate::model::GptConfig;
use crate::task::TaskConfig;
use crate::train::losses::Loss;
use crate::train::pm::PmConfig;
use crate::train::sft::SftConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    pub task: TaskConfig,
    pub policy: ModelSize,
    pub sft: SftConfig,
    /// Pairs in D_golden, and held-out pairs (proxy early stopping, classifier accuracy).
    pub d_golden: usize,
    pub heldout: usize,
    pub proxy: PmConfig,
    pub loss: Loss,
    pub betas: Vec<f32>,
    pub lrs: Vec<f32>,
    /// Steps of each online run.
    pub steps: u32,
    /// Steps of the offline runs, one run per value (the paper sweeps offline over steps too; offline moves
    /// less in KL per step, so it needs longer runs to cover the same KL range).
    pub offline_steps: Vec<u32>,
    pub batch: usize,
    pub eval_every: u32,
    pub win_prompts: usize,
    pub kl_prompts: usize,
    pub seeds: Vec<u32>,
    /// Also run online IPO with golden labels (the paper's "golden policy").
    pub golden_reference: bool,
    /// Checkpoints at this many log-spaced steps of every run besides every `eval_every` (dense early, so
    /// every method has points at low KL).
    #[serde(default)]
    pub log_evals: u32,
    /// Linear lr warm-up from 0 over this fraction of the online run's `steps`, the same number of steps
    /// for every run (offline runs of every length too), then the constant lr.
    #[serde(default)]
    pub warmup: f32,
    /// Learning rates of the offline sweep (empty: offline uses `lrs`, run beside online at each lr).
    #[serde(default)]
    pub offline_lrs: Vec<f32>,
    /// Alignment seeds that repeat the first seed's online and offline runs over its same SFT, D_golden and
    /// proxy, each with its own prompts, samples and label coins: the spread that is the alignment's alone
    /// (the paper had one proxy), beside the seeds' spread, which includes the proxy's.
    #[serde(default)]
    pub align_seeds: Vec<u32>,
    /// The data experiments (issue 13; the paper's App. F, Figs 4 and 13): after each online run, offline IPO
    /// on that run's stream D_online (its prompts, samples and proxy labels, batch by batch) shuffled within
    /// windows of this many batches, one run per value from [`method::STREAM_WINDOWS`]: 1 is the stream in
    /// its order (the exact replay), 0 the whole stream shuffled. Same β, lr, batch and steps as online.
    #[serde(default)]
    pub stream_windows: Vec<u32>,
    /// Semi-online IPO beside each online run (beyond the paper): one run per refresh interval from
    /// [`method::SEMI_ONLINE_REFRESH`] (0: never refreshed), same proxy, β, lr, batch and steps as online.
    #[serde(default)]
    pub semi_online: Vec<u32>,
    /// Offline runs train on past their length until their best golden win rate is this many steps behind
    /// (0: they stop at their length), checkpointing every `eval_every` steps, up to `offline_max_steps`: the
    /// paper's offline runs were long enough to peak, and a run cut off while still improving would
    /// understate offline IPO.
    #[serde(default)]
    pub offline_patience: u32,
    #[serde(default)]
    pub offline_max_steps: u32,
    /// The same stopping rule (`offline_patience`, `offline_max_steps`) for online IPO, with proxy or golden
    /// labels, as for offline: no method is cut off while still improving and none trains longer by rule.
    #[serde(default)]
    pub past_best_every_method: bool,
    /// Prompts (with π_sft's responses to them) of the golden win rate the stopping rule selects on, disjoint
    /// from the `win_prompts` every result is reported on (0: the rule reads the reported win rate).
    #[serde(default)]
    pub validation_prompts: usize,
    /// How the verdicts match checkpoints at equal KL: the KL floor below which no checkpoint is compared, and
    /// where the grid's points lie. Fixed with the experiment, before it runs.
    #[serde(default)]
    pub matching: MatchingConfig,
    /// The quality and dataset experiments (the paper's Figs 5 and 12): beside each offline run on D_golden,
    /// offline IPO on a golden-labelled dataset of D_golden's prompts whose two sides come from π_sft or from the
    /// online run with the same setting (early, or at its end), one run per dataset. Needs offline at online's
    /// learning rates (`offline_lrs` empty), so that each run's policies are its own setting's online run.
    #[serde(default)]
    pub pair_datasets: Vec<PairDataset>,
    /// The classifier analyses of the paper's §5 (Figs 7, 8, self-classification), each a section of
    /// summary.md and a figure computed from the runs' checkpoints.
    #[serde(default)]
    pub analyses: Vec<Analysis>,
    /// The loss family: beside each online and offline run with `loss`, the same pair of runs (same proxy, β,
    /// lr, batch, steps and stopping rule) with each of these losses. Needs offline at online's lrs
    /// (`offline_lrs` empty).
    #[serde(default)]
    pub loss_family: Vec<Loss>,
    /// IPO-MD beside each online run (beyond the paper; Calandriello et al. 2024): one online run per value m,
    /// its samples drawn from the geometric mixture π^(1−m)·π_sft^m (m from [`method::MIXTURES`] / 100); same
    /// proxy, β, lr, batch and steps as online.
    #[serde(default)]
    pub mixtures: Vec<f32>,
    /// The scaling experiment (the paper's Figs 10 and 11): every run again at each of these policy sizes
    /// (`LxDhH`, e.g. `1x32h2`), each size from its own SFT policy (the seed's SFT config and data), over the seed's
    /// own D_golden, proxy and evaluation prompts, win rates against the seed's own π_sft (`policy`'s) so that
    /// sizes compare. `policy` is one more size of the ladder.
    #[serde(default, with = "pipeline::size_text")]
    pub scaling: Vec<ModelSize>,
    /// The proxy map (beyond the paper): online IPO again at each (β, lr), labelled by a weaker proxy, the proxy's
    /// own run stopped at each of these steps (its parameters kept there; the run itself unchanged), so that
    /// online − offline can be read against the labelling proxy's accuracy. Offline runs do not depend on the
    /// proxy and are shared.
    #[serde(default)]
    pub proxy_map: Vec<u32>,
    /// Offline IPO alone, no online run of any kind (issue 29's task search): the paper's precondition is measured
    /// with offline IPO and the proxy only, so that a rule choosing a task cannot see the online − offline gap.
    #[serde(default)]
    pub offline_only: bool,
    /// Data-parallel alignment steps (issue 30): each step's pairs split into this many chunks, each chunk's gradient
    /// computed alone by whichever worker takes it (the CLI's `--threads`, the page's Web Workers), the gradients
    /// summed in chunk order. The numbers depend on the count, not on the workers; they differ in the last bits from
    /// one pass over the batch (0: one pass, every committed result). The page's default on its CPU backend is
    /// [`PAGE_ALIGN_CHUNKS`]. CPU backend only.
    #[serde(default)]
    pub align_chunks: u32,
}

/// The page's `align_chunks` on its CPU backend: enough chunks for up to four workers, each chunk (16 of a 64-pair
/// batch) still large enough that its GEMMs stay efficient.
pub const PAGE_ALIGN_CHUNKS: u32 = 4;

/// How the verdicts match two methods' checkpoints at equal KL ([`crate::report::verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchingConfig {
    /// Checkpoints with a KL below this are compared by no matching: near π_sft every method scores about the
    /// same, and a grid that spends most of its points there dilutes every difference. 0: every checkpoint past
    /// the untrained start (KL > 0.001).
    pub kl_floor: f32,
    /// Where the frontier's and the smoothed curves' grid points lie in the shared KL range.
    pub grid: MatchingGrid,
}

impl Default for MatchingConfig {
    /// What every verdict computed before the floor existed used: no floor, a grid uniform in ln KL.
    fn default() -> Self {
        MatchingConfig { kl_floor: 0.0, grid: MatchingGrid::LnKl }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchingGrid {
    /// Uniform in ln KL: most points at small KL.
    LnKl,
    /// Uniform in √KL (Gao et al.'s d): the points spread over the range where the methods part.
    SqrtKl,
}

/// An analysis of the runs' checkpoints that the paper draws beside Figure 1 (its §5: are online policies better
/// classifiers or better generators?).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Analysis {
    /// Fig. 7: every checkpoint's golden win rate against its classifier accuracy on held-out D_golden.
    GenerationVsClassification,
    /// Fig. 8: classifier accuracy and the held-out winners' log-ratio to π_sft over training.
    OverTraining,
    /// Each checkpoint's policy as a classifier of golden-labelled pairs of its own samples (an extra sampling
    /// pass per checkpoint).
    SelfClassification,
    /// Fig. 6: on the stretch of the online stream before each online checkpoint, the proxy's labels, the online
    /// policy and the offline policy at the nearest KL as classifiers, against golden labels.
    StreamClassification,
    /// The paper's precondition for its explanation (issue 29), from offline IPO and the proxy alone: offline's
    /// classifier accuracy on held-out D_golden, its correlation with the golden win rate over offline's
    /// checkpoints, the proxy's tie-free accuracy, and the task's headroom (the oracle summary's golden win rate
    /// against π_sft, measured per seed only by runs that ask for it).
    Precondition,
}

impl Analysis {
    pub const ALL: [Analysis; 5] = [Analysis::GenerationVsClassification, Analysis::OverTraining, Analysis::SelfClassification, Analysis::StreamClassification, Analysis::Precondition];

    /// Its name in configs, URLs and the page (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            Analysis::GenerationVsClassification => "generation_vs_classification",
            Analysis::OverTraining => "over_training",
            Analysis::SelfClassification => "self_classification",
            Analysis::StreamClassification => "stream_classification",
            Analysis::Precondition => "precondition",
        }
    }

    /// What the page's box for it says.
    pub fn label(self) -> &'static str {
        match self {
            Analysis::GenerationVsClassification => "Fig. 7: win rate against classifier accuracy",
            Analysis::OverTraining => "Fig. 8: classification over training",
            Analysis::SelfClassification => "Self-classification (measured only by runs that ask for it)",
            Analysis::StreamClassification => "Fig. 6: who classifies the online stream (measured only by runs that ask for it)",
            Analysis::Precondition => "The precondition: offline IPO a good classifier but not a better generator (the task's headroom measured only by runs that ask for it)",
        }
    }

    /// The file its figure is written to.
    pub fn figure_file(self) -> &'static str {
        match self {
            Analysis::GenerationVsClassification => "fig7.svg",
            Analysis::OverTraining => "fig8.svg",
            Analysis::SelfClassification => "selfclass.svg",
            Analysis::StreamClassification => "fig6.svg",
            Analysis::Precondition => "precondition.svg",
        }
    }
}

impl ExperimentConfig {
    /// Every setting but the optional arms' against its range (each with its reason), then the settings that
    /// constrain each other; the error names the key at fault. Part of [`ExperimentConfig::validate`].
    pub(super) fn check_settings(&self) -> Result<()> {
        use crate::limits::{int, list, real};
        use range::*;
        self.task.validate()?;
        check_size("policy", &self.policy)?;
        int("sft.steps", self.sft.steps as u64, 1, MAX_STEPS, "SFT needs at least one step; every alignment run starts from its policy")?;
        int("sft.batch", self.sft.batch as u64, BATCH.0, BATCH.1, "sequences per step; memory grows with it")?;
        int("sft.warmup_steps", self.sft.warmup_steps as u64, 0, self.sft.steps as u64, "a warm-up longer than sft.steps never reaches the learning rate")?;
        self.sft.adamw.validate("sft.adamw")?;
        int("proxy.steps", self.proxy.steps as u64, 1, MAX_STEPS, "the proxy needs at least one step to be more than its initialisation")?;
        int("proxy.batch", self.proxy.batch as u64, BATCH.0, BATCH.1, "pairs per step, each scored in both orders; memory grows with it")?;
        int("proxy.eval_every", self.proxy.eval_every as u64, 1, self.proxy.steps as u64, "the validation loss is measured every this many steps and the best model kept; at most proxy.steps")?;
        real("proxy.validation", self.proxy.validation, crate::limits::Interval::closed(0.01, 0.5), "the fraction of D_golden held back for early stopping: enough pairs to select on, most left to train on")?;
        int("proxy.patience", self.proxy.patience as u64, 0, 1000, "evaluations without a lower validation loss before stopping (0: train every step)")?;
        self.proxy.adamw.validate("proxy.adamw")?;
        if let Some(trunk) = &self.proxy.trunk {
            check_size("proxy.trunk", trunk)?;
        }
        if self.proxy.separator && self.proxy.kind != crate::train::pm::ProxyKind::Pairwise {
            bail!("proxy.separator = true applies to proxy.kind = pairwise only (a bradley_terry proxy reads one response at a time)");
        }
        int("batch", self.batch as u64, BATCH.0, BATCH.1, "pairs per alignment step; memory grows with it")?;
        int("steps", self.steps as u64, 1, ONLINE_STEPS, "steps of each online run; each step's samples have their own random stream, and this many fit")?;
        int("eval_every", self.eval_every as u64, 1, MAX_STEPS, "a checkpoint every this many alignment steps (and at the first and last)")?;
        int("log_evals", self.log_evals as u64, 0, 64, "extra checkpoints at log-spaced steps; each costs an evaluation")?;
        real("warmup", self.warmup, crate::limits::Interval::closed(0.0, 0.5), "the fraction of the online run's steps with a linearly rising lr (every run warms up for that many steps); more than half leaves little at full lr")?;
        int("heldout", self.heldout as u64, HELDOUT.0, HELDOUT.1, "held-out golden pairs the proxy's accuracy and the policies' classifier accuracy are measured on; fewer make them noise")?;
        int("win_prompts", self.win_prompts as u64, WIN_PROMPTS.0, WIN_PROMPTS.1, "prompts per golden win-rate estimate; fewer make it noise")?;
        int("kl_prompts", self.kl_prompts as u64, KL_PROMPTS.0, KL_PROMPTS.1, "prompts per KL estimate; fewer make it noise")?;
        let need = self.proxy.batch.max(self.batch);
        int("d_golden", self.d_golden as u64, need as u64, PAIRS, "at least one batch of distinct pairs for the proxy (proxy.batch) and offline IPO (batch); at most what its random streams hold")?;
        let train = self.d_golden - self.proxy.validation_pairs(self.d_golden);
        if train < self.proxy.batch {
            bail!("proxy.validation = {} leaves {train} of D_golden's {} pairs to train the proxy on, fewer than one batch (proxy.batch = {}); lower it or raise d_golden", self.proxy.validation, self.d_golden, self.proxy.batch);
        }
        list("seeds", &self.seeds, SEEDS, "independent replicates", |_, _| Ok(()))?;
        for (i, s) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(s) {
                bail!("seeds: {s} appears twice (each seed is one independent replicate; a repeat would duplicate its rows)");
            }
        }
        list("betas", &self.betas, LIST, "one run per value", |k, b| real(k, b, BETA, "IPO's target margin is 1/(2β); β = 0 has none"))?;
        list("lrs", &self.lrs, LIST, "one run per value", |k, l| real(k, l, LR, "a step as large as the weights themselves diverges at once"))?;
        if !self.align_seeds.is_empty() {
            list("align_seeds", &self.align_seeds, SEEDS, "one repeat of the first seed's runs per value", |_, _| Ok(()))?;
            for (i, a) in self.align_seeds.iter().enumerate() {
                if self.align_seeds[..i].contains(a) || self.seeds.first() == Some(a) {
                    bail!("align_seeds: {a} appears twice, or is the first seed itself (whose runs it would repeat exactly)");
                }
            }
        }
        if !self.offline_lrs.is_empty() {
            list("offline_lrs", &self.offline_lrs, LIST, "one offline run per value and length", |k, l| real(k, l, LR, "a step as large as the weights themselves diverges at once"))?;
        }
        list("offline_steps", &self.offline_steps, LIST, "one offline run per value", |k, s| int(k, s as u64, 1, MAX_STEPS, "steps of an offline run"))?;
        int("offline_patience", self.offline_patience as u64, 0, MAX_STEPS, "steps an offline run goes on past its best checkpoint before it stops (0: it stops at its length)")?;
        if self.offline_patience > 0 {
            let longest = self.offline_steps.iter().copied().max().unwrap_or(0) as u64;
            int("offline_max_steps", self.offline_max_steps as u64, longest, MAX_STEPS, "the cap on an offline run that is still improving: at least the longest of offline_steps")?;
        }
        if self.past_best_every_method {
            if self.offline_patience == 0 {
                bail!("past_best_every_method = true needs a stopping rule: offline_patience is 0 (set it ≥ 1)");
            }
            let cap = crate::rng::streams::MAX_ONLINE_STEPS as u64;
            int("offline_max_steps", self.offline_max_steps as u64, self.steps as u64, cap, "with past_best_every_method online runs stop by this cap too: at least steps, at most the online step streams")?;
            if !self.stream_windows.is_empty() {
                bail!("past_best_every_method = true with stream_windows: a replay retraces its online run's fixed length; set stream_windows = [] or past_best_every_method = false");
            }
        }
        int("validation_prompts", self.validation_prompts as u64, 0, WIN_PROMPTS.1 as u64, "prompts of the stopping rule's own win rate, disjoint from win_prompts (0: the rule reads win_prompts')")?;
        int("align_chunks", self.align_chunks as u64, 0, self.batch as u64, "data-parallel chunks per alignment step (0: one pass); at most one per pair of the batch")?;
        real("matching.kl_floor", self.matching.kl_floor, crate::limits::Interval::closed(0.0, 100.0), "the KL below which no checkpoint is compared")?;
        Ok(())
    }

    /// Steps of lr warm-up of every alignment run: `warmup` of the online run's steps.
    pub fn warmup_steps(&self) -> u32 {
        (self.warmup as f64 * self.steps as f64).round() as u32
    }

    pub fn model_config(&self) -> GptConfig {
        self.stage_spec().model_config()
    }

    /// What the shared stages and every run depend on.
    pub fn stage_spec(&self) -> StageSpec<'_> {
        StageSpec {
            task: &self.task,
            policy: self.policy,
            sft: &self.sft,
            d_golden: self.d_golden,
            heldout: self.heldout,
            proxy: &self.proxy,
            proxy_ladder: &self.proxy_map,
            win_prompts: self.win_prompts,
            kl_prompts: self.kl_prompts,
            loss: self.loss,
            batch: self.batch,
            eval_every: self.eval_every,
            log_evals: self.log_evals,
            warmup_steps: self.warmup_steps(),
            online_steps: self.steps,
            chosen_logratio: self.analyses.contains(&Analysis::OverTraining),
            self_classification: self.analyses.contains(&Analysis::SelfClassification),
            stream_classification: self.analyses.contains(&Analysis::StreamClassification),
            oracle_headroom: self.analyses.contains(&Analysis::Precondition),
            stage_backend: None,
            interleave: false,
            resumable: false,
            runs_from: None,
            offline_past_best: (self.offline_patience > 0).then_some(crate::train::align::PastBest { patience: self.offline_patience, max_steps: self.offline_max_steps }),
            past_best_every_method: self.past_best_every_method,
            validation_prompts: self.validation_prompts,
            align_chunks: self.align_chunks,
        }
    }
}

/// A policy size against the ranges (its layers, width and heads), each error naming `key`.
pub(crate) fn check_size(key: &str, p: &ModelSize) -> Result<()> {
    use crate::limits::int;
    use range::*;
    int(&format!("{key}.layers"), p.layers as u64, LAYERS.0, LAYERS.1, "GPT-2 small's depth; deeper models do not fit a browser tab's memory")?;
    int(&format!("{key}.d_model"), p.d_model as u64, D_MODEL.0, D_MODEL.1, "a width of at least 8, at most GPT-2 medium's")?;
    int(&format!("{key}.heads"), p.heads as u64, HEADS.0, HEADS.1, "attention heads; each needs d_model / heads ≥ 1 dimensions")?;
    if !p.d_model.is_multiple_of(p.heads) {
        bail!("{key}.d_model = {} must be divisible by {key}.heads = {} (each head gets d_model / heads dimensions)", p.d_model, p.heads);
    }
    Ok(())
}

/// Bytes of memory an alignment step of a policy of `size` needs, roughly: the policy's weights, gradients and
/// AdamW moments, its SFT reference and the proxy (6 copies of its parameters), and the activations of `batch`
/// pairs (two sequences each) over the task's context: per token and layer about 16·d values and the attention's
/// scores and probabilities, plus the logits.
pub fn training_bytes(size: ModelSize, task: &TaskConfig, batch: usize) -> u64 {
    let (t, d, v) = (task.context() as u64, size.d_model as u64, task.vocab_size() as u64);
    let tokens = 2 * batch as u64 * t;
    let per_token = size.layers as u64 * (16 * d + 2 * size.heads as u64 * t) + 2 * v;
    4 * (6 * size.parameters(task) as u64 + tokens * per_token)
}

/// The ranges `validate` enforces that do not depend on other settings, shared with the page's knobs.
pub mod range {
    use crate::limits::Interval;
    /// Steps of SFT, the proxy, an offline run, and between checkpoints.
    pub const MAX_STEPS: u64 = 1 << 20;
    /// Steps of an online run: each step's samples have their own random stream (`rng::streams`).
    pub const ONLINE_STEPS: u64 = crate::rng::streams::MAX_ONLINE_STEPS as u64;
    /// Pairs in D_golden: as many as its random streams hold.
    pub const PAIRS: u64 = crate::rng::streams::MAX_PAIRS as u64;
    pub const BATCH: (u64, u64) = (1, 1024);
    pub const HELDOUT: (u64, u64) = (16, 1 << 16);
    pub const WIN_PROMPTS: (u64, u64) = (16, 1 << 16);
    pub const KL_PROMPTS: (u64, u64) = (8, 1 << 16);
    pub const LAYERS: (u64, u64) = (1, 12);
    pub const D_MODEL: (u64, u64) = (8, 1024);
    pub const HEADS: (u64, u64) = (1, 16);
    /// Values in `seeds`, and in each other list (`betas`, `lrs`, `offline_steps`).
    pub const SEEDS: usize = 64;
    pub const LIST: usize = 32;
    pub const BETA: Interval = Interval::above(0.0, 100.0);
    pub const LR: Interval = Interval::above(0.0, 1.0);
    /// The memory a scaling ladder's largest policy may take to train: half of the 4 GiB a browser tab's
    /// WebAssembly can address, the rest left to the other models, the data and the page.
    pub const TRAINING_BYTES: u64 = 2 << 30;
}

/// A setting the page offers as a knob: its `--set` key, label, input kind and the help a visitor sees,
/// with the range `validate` enforces.
#[derive(Clone, Debug, Serialize)]
pub struct Knob {
    pub key: &'static str,
    pub label: &'static str,
    /// "int", "list", "bool" or "text".
    pub kind: &'static str,
    pub help: String,
}

impl Knob {
    pub fn new(key: &'static str, label: &'static str, kind: &'static str, help: String) -> Knob {
        Knob { key, label, kind, help }
    }
}

//! Figure 1 (docs/method.md §6): golden win rate against KL for online and offline IPO, every checkpoint of every
//! setting, from one config. Per seed: SFT → D_golden → proxy PM → for each (β, lr): online IPO with proxy
//! labels, offline IPO on D_golden, and (optionally) online IPO with golden labels as the reference.
//! Online and offline share the loss, β, lr, batch and steps.

use super::method::{self, Method, PairDataset};
use super::pipeline::{self, ModelSize, NoCache, Progress, ProxyReport, Row, RunSpec, SeedModels, SeedResults, StageCache, StageSpec};
use crate::bail;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::GptConfig;
use crate::task::TaskConfig;
use crate::train::losses::Loss;
use crate::train::pm::PmConfig;
use crate::train::sft::SftConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fig1Config {
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
}

impl Analysis {
    pub const ALL: [Analysis; 4] = [Analysis::GenerationVsClassification, Analysis::OverTraining, Analysis::SelfClassification, Analysis::StreamClassification];

    /// The file its figure is written to.
    pub fn figure_file(self) -> &'static str {
        match self {
            Analysis::GenerationVsClassification => "fig7.svg",
            Analysis::OverTraining => "fig8.svg",
            Analysis::SelfClassification => "selfclass.svg",
            Analysis::StreamClassification => "fig6.svg",
        }
    }
}

pub const PRESETS: [&str; 17] = ["fig1", "fig1-quick", "fig1-tiny", "replay", "fig4", "fig13", "fig5", "fig12", "semi-online", "fig7", "fig8", "selfclass", "fig9", "losses", "fig6", "ipo-md", "fig10"];

/// What each preset is for, in a line (the CLI's help and the page's preset picker).
pub fn preset_description(name: &str) -> &'static str {
    match name {
        "fig1" => "The full figure, the paper's protocol scaled down: 5 seeds, two values of β, online and golden-labelled IPO, offline swept over lr and length; about an hour on 2 CPU cores.",
        "fig1-quick" => "One seed, two values of β, a smaller D_golden and proxy: the weaker proxy (≈ 0.79) is over-optimised by online IPO — the figure's other regime, in a fraction of the time.",
        "fig1-tiny" => "A smoke test: a tiny model and a few steps of every stage, to see the pipeline work end to end.",
        "replay" => "The paper's App. F control: offline IPO on the online run's own stream, in its order, retraces the online run exactly (every checkpoint identical). What to look for: the replay curve lies on the online one.",
        "fig4" => "Fig. 4, coverage: offline IPO on the online stream shuffled over the whole run. The paper: shuffling loses most of online's advantage. What to look for: where the shuffled curve lies between online and offline.",
        "semi-online" => "Beyond the paper: semi-online IPO, its data refreshed from the current policy every 4, 16 or 64 steps, or never (offline on π_sft's samples with proxy labels). What to look for: how often the data must be refreshed to stay at online.",
        "fig5" => "Fig. 5, quality: offline IPO on pairs whose both responses come from the final online policy, golden-labelled, against offline IPO on D_golden. The paper: high-quality responses alone barely beat SFT. What to look for: whether that curve rises above D_golden's.",
        "fig12" => "Fig. 12, which pairs teach: golden-labelled pairs of π_sft vs the early online policy, early vs final, final vs final, beside D_golden (π_sft vs π_sft). The paper: sft-vs-early ≳ D_golden > early-vs-late, late-vs-late. What to look for: the order of the curves.",
        "fig13" => "Fig. 13, shuffle windows: the online stream shuffled within 1, 2, 8, 32 batches or all of it. What to look for: the window at which the curve leaves online's.",
        "fig7" => "Fig. 7, generation vs classification: every Figure-1 checkpoint's golden win rate against its accuracy as a classifier of held-out D_golden pairs. The paper: no positive correlation. What to look for: whether the better generators are the better classifiers, per seed and per method.",
        "fig8" => "Fig. 8, over training: classifier accuracy on held-out D_golden and the winners' log-likelihood change log π(y_w) − log π_sft(y_w), online vs offline. The paper: offline's accuracy rises to 60–70 % while online's stays ≤ 50 %; the winners' likelihood falls for every method, most for offline.",
        "selfclass" => "Self-classification: each checkpoint's policy as a classifier of golden-labelled pairs of its own samples. The paper: every policy is at chance. What to look for: whether any curve leaves 0.5.",
        "fig9" => "Fig. 9, a non-contrastive loss: Best-of-2 (SFT on the preferred of two responses) online, offline on D_golden, and offline on the shuffled online stream. The paper: the gap persists; Bo2 on the shuffled stream ≈ online.",
        "fig6" => "Fig. 6, who classifies the online stream: near each online checkpoint, the proxy's labels, the online policy and the offline policy at similar KL as classifiers of that stretch of the online stream (golden labels). The paper: the proxy beats the policies, and its accuracy decays as the policy drifts.",
        "ipo-md" => "Beyond the paper: IPO-MD (Calandriello et al. 2024), online IPO whose two samples come from the geometric mixture π^(1−m)·π_sft^m, m = 0.25 and 0.5 (m leans the data toward π_sft). What to look for: whether mixing in π_sft moves the curve off online's, and which way.",
        "fig10" => "Figs 10 and 11, scaling: online, offline and offline on the shuffled online stream at three policy sizes (1x16h1, 1x32h2 and the figure's 2x64h4, 24× apart in parameters), each from its own SFT, over one proxy. The paper: larger policies peak higher; the gap to offline closes slowly, the gap to the shuffled stream faster. What to look for: Fig. 11's offline line moving toward 1 as size grows.",
        "losses" => "The loss family: online and offline DPO and SLiC beside IPO, on Figure 1's axes. The paper: the online > offline ordering is not specific to IPO. What to look for: for each loss, whether online's curve lies above offline's.",
        _ => "",
    }
}

impl Fig1Config {
    pub fn preset(name: &str) -> Result<Self> {
        // The full figure: the paper's protocol scaled down (issue 12), fixed before any confirmation seed
        // was run (results/fig1/SEARCH.md says what was searched, on seeds ≥ 100, and what was not).
        // One line per value, with why it is what it is.
        let full = Fig1Config {
            // 40 words, 16 key, 8 per document, summaries ≤ 12 tokens: the setting the PyTorch
            // prototype explored; the search varied it (p3, p5) and kept it.
            task: TaskConfig::default(),
            // Bench size S: the largest policy whose 5-seed figure runs in about an hour on 2 CPU cores.
            policy: ModelSize { layers: 2, d_model: 64, heads: 4 },
            // The search's SFT length (SEARCH.md, shared by every probe).
            sft: SftConfig { steps: 1500, batch: 64, ..SftConfig::default() },
            // The proxy's accuracy decides online's behaviour (SEARCH.md), so it gets much data.
            d_golden: 65_536,
            // Held-out pairs the proxy is reported on once, and the policies' classifier accuracy: in steps
            // of 1/1024.
            heldout: 1024,
            // ≈ 3 passes over D_golden's training split, early stopping on the validation loss of its last
            // 5 % (checked every 250 steps, stopping after 4 checks without a new best). The search's long
            // probes (SEARCH.md) gained +0.01–0.03 held-out accuracy from 4× the steps: not in this budget.
            proxy: PmConfig { steps: 3000, batch: 64, eval_every: 250, patience: 4, ..PmConfig::default() },
            // The paper's loss for Figure 1.
            loss: Loss::Ipo,
            // The search's choice: offline IPO needs β 0.01 to reach online's KL range (its target margin
            // 1/(2β) bounds how far it moves); 0.1 is the paper's online β.
            betas: vec![0.01, 0.1],
            // Online's one learning rate (the search's), also the middle of offline's sweep.
            lrs: vec![5e-4],
            // Online run length: online's KL passed 4 within 300 steps in the search, 200 reach its
            // over-optimisation range on weak proxies at two thirds of the cost.
            steps: 200,
            // The paper's offline sweep, scaled: lr × β × length, every checkpoint pooled. Lengths up to 5×
            // online's: every run warms up for the same steps, then holds its lr, so the 200-step run is
            // exactly the first 200 steps of the 1000-step one and one run per (lr, β) carries both.
            offline_lrs: vec![5e-4, 1e-3],
            offline_steps: vec![1000],
            // And each goes on past 1000 steps until its best checkpoint is 300 steps (3 checkpoints) behind, up
            // to 3000 (15× online's): in the first rerun of this preset without it, 6 of 20 offline runs had their
            // best checkpoint at their last.
            offline_patience: 300,
            offline_max_steps: 3000,
            // Pairs per step, the same for both methods.
            batch: 64,
            // Checkpoints every 100 steps and at 12 log-spaced steps (dense early, where KL moves fastest),
            // the same rule for both methods, so both have points at low KL.
            eval_every: 100,
            log_evals: 12,
            // 10 % of online's steps (20) of linear warm-up for every run: without it offline at β 0.01
            // jumped to KL ≈ 3.4 within 30 steps and fell back.
            warmup: 0.1,
            // Win rate in steps of 1/512 (ties ½); KL over 256 prompts, as in the paper.
            win_prompts: 512,
            kl_prompts: 256,
            // Five confirmation seeds, each its own SFT, D_golden and proxy; disjoint from the search seeds
            // (≥ 100).
            seeds: vec![0, 1, 2, 3, 4],
            // Online IPO with golden labels: the reference curve the paper draws, and how much the proxy costs.
            golden_reference: true,
            // One repeat of seed 0's online and offline runs over its same proxy with other alignment
            // randomness (an id outside every seed range): the spread that is the alignment's alone.
            align_seeds: vec![1000],
            // Figure 1 alone; the data experiments are the replay, fig4, fig13, fig5, fig12 and semi-online presets.
            stream_windows: vec![],
            semi_online: vec![],
            pair_datasets: vec![],
            analyses: vec![],
            loss_family: vec![],
            mixtures: vec![],
            scaling: vec![],
        };
        match name {
            "fig1" => Ok(full),
            // One seed and a smaller proxy, for a page visitor: its weaker proxy (≈ 0.79) is over-optimised.
            "fig1-quick" => Ok(Fig1Config {
                // Every stage shorter than the full figure's, to fit a browser tab.
                sft: SftConfig { steps: 1000, batch: 64, ..SftConfig::default() },
                d_golden: 8192,
                heldout: 512,
                proxy: PmConfig { steps: 800, batch: 64, eval_every: 200, ..PmConfig::default() },
                steps: 200,
                offline_steps: vec![200],
                eval_every: 25,
                seeds: vec![0],
                // The reference run would add half again to the time.
                golden_reference: false,
                // Online and offline at the same lr and length: the comparison a visitor reads at a glance.
                offline_lrs: vec![],
                align_seeds: vec![],
                log_evals: 0,
                warmup: 0.0,
                stream_windows: vec![],
                semi_online: vec![],
                offline_patience: 0,
                offline_max_steps: 0,
                ..full.clone()
            }),
            // Seconds: every stage runs a few steps of a tiny model; for tests and smoke checks, not results.
            "fig1-tiny" => Ok(Fig1Config {
                policy: ModelSize { layers: 1, d_model: 32, heads: 2 },
                sft: SftConfig { steps: 60, batch: 32, ..SftConfig::default() },
                d_golden: 256,
                heldout: 64,
                proxy: PmConfig { steps: 30, batch: 32, eval_every: 15, ..PmConfig::default() },
                betas: vec![0.1],
                steps: 12,
                offline_steps: vec![12],
                batch: 16,
                eval_every: 6,
                win_prompts: 64,
                kl_prompts: 32,
                seeds: vec![0],
                offline_lrs: vec![],
                align_seeds: vec![],
                stream_windows: vec![],
                semi_online: vec![],
                log_evals: 0,
                warmup: 0.0,
                offline_patience: 0,
                offline_max_steps: 0,
                ..full.clone()
            }),
            // The data experiments: the fig1 preset's stages and runs (so its stage cache serves them: pass
            // `--cache results/fig1/cache`), seeds 0–2 without the alignment repeat, and offline IPO on each online
            // run's stream. Exact replay: the stream in order.
            "replay" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], stream_windows: vec![1], ..full }),
            // Fig. 4: the stream shuffled over the whole run, beside online and the offline sweep.
            "fig4" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], stream_windows: vec![0], ..full }),
            // Fig. 13: every window from in order to the whole stream.
            "fig13" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], stream_windows: method::STREAM_WINDOWS.to_vec(), ..full }),
            // Figs 5 and 12: the fig1 preset's stages, online runs and offline runs at online's lr (5e-4, which the
            // sweep's cache holds), seeds 0–2, and one offline run per pair dataset at the same β, lr and
            // stopping rule, so both arms differ in their data alone. One lr, not the sweep: at ~6 min per run
            // on this machine, the sweep would double a 3-seed preset's hour.
            "fig5" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], offline_lrs: vec![], pair_datasets: vec![PairDataset::LateVsLate], ..full }),
            "fig12" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], offline_lrs: vec![], pair_datasets: PairDataset::ALL.to_vec(), ..full }),
            // Semi-online: the fig1 preset's stages and runs on seeds 0–2, plus one run per refresh interval.
            "semi-online" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], semi_online: method::SEMI_ONLINE_REFRESH.to_vec(), ..full }),
            // The classifier analyses (the paper's §5). Fig. 7 reads every checkpoint of the fig1 preset (all from its
            // cache); Fig. 8 and self-classification need metrics measured at each checkpoint, so they run online and
            // offline at online's lr on seeds 0–2 (a cached run without the metric is trained again, identically).
            "fig7" => Ok(Fig1Config { analyses: vec![Analysis::GenerationVsClassification], ..full }),
            // IPO-MD at the paper's online β (0.1) only: each run samples with two models, about twice online's cost.
            "ipo-md" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], betas: vec![0.1], offline_lrs: vec![], golden_reference: false, mixtures: vec![0.25, 0.5], ..full }),
            "fig6" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], offline_lrs: vec![], golden_reference: false, analyses: vec![Analysis::StreamClassification], ..full }),
            "fig8" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], offline_lrs: vec![], golden_reference: false, analyses: vec![Analysis::OverTraining], ..full }),
            "selfclass" => Ok(Fig1Config { seeds: vec![0, 1, 2], align_seeds: vec![], offline_lrs: vec![], golden_reference: false, analyses: vec![Analysis::SelfClassification], ..full }),
            // Fig. 9: the Best-of-2 loss for every run: online, offline on D_golden (at online's lr, trained past its
            // best), offline on the whole-shuffled online stream. Bo2 has no β (one value, 0.1, names the runs).
            "fig9" => Ok(Fig1Config {
                seeds: vec![0, 1, 2],
                align_seeds: vec![],
                loss: Loss::BestOf2,
                betas: vec![0.1],
                offline_lrs: vec![],
                golden_reference: false,
                stream_windows: vec![0],
                ..full
            }),
            // The loss family: the fig1 preset's stages, online and offline IPO at online's lr (cached by fig5 and
            // fig12), and the same pair of runs with DPO and with SLiC, seeds 0–2.
            "losses" => Ok(Fig1Config {
                seeds: vec![0, 1, 2],
                align_seeds: vec![],
                offline_lrs: vec![],
                golden_reference: false,
                loss_family: vec![Loss::Dpo, Loss::Slic],
                ..full
            }),
            // Figs 10 and 11: the fig1 preset's stages and runs at online's lr (cached by fig4, fig5 and fig12), seeds
            // 0–2, with the shuffled online stream, and the same runs at two smaller sizes: the ladder 1x16h1, 1x32h2,
            // 2x64h4 spans 24× in parameters at 16 dimensions per head. Below the figure's size, not above it: a larger
            // policy costs ~4× per doubling of width on this CPU (a GPU run would add the bench's M and L, 4x128h4 and
            // 6x256h8), and each size here shares the seed's proxy, so the sizes differ in their policy alone.
            "fig10" => Ok(Fig1Config {
                seeds: vec![0, 1, 2],
                align_seeds: vec![],
                offline_lrs: vec![],
                golden_reference: false,
                stream_windows: vec![0],
                scaling: vec![ModelSize { layers: 1, d_model: 16, heads: 1 }, ModelSize { layers: 1, d_model: 32, heads: 2 }],
                ..full
            }),
            other => bail!("preset '{other}' is not one of {}", PRESETS.join(", ")),
        }
    }

    /// Every setting against its range (each with its reason), then the settings that constrain each
    /// other; the error names the key at fault. Runs before anything is trained.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{adamw, int, list, real};
        use range::*;
        self.task.validate()?;
        check_size("policy", &self.policy)?;
        for (i, size) in self.scaling.iter().enumerate() {
            let key = format!("scaling[{i}]");
            check_size(&key, size)?;
            if *size == self.policy || self.scaling[..i].contains(size) {
                bail!("{key} = {size}: each size of the scaling ladder must differ from policy = {} and from the others, once", self.policy);
            }
            // Training holds the policy (weights, gradients, AdamW's two moments), its SFT reference and the proxy, and
            // the activations of a batch of pairs over the task's whole context.
            let bytes = training_bytes(*size, &self.task, self.batch);
            if bytes > range::TRAINING_BYTES {
                bail!(
                    "{key} = {size}: training it on batches of {} pairs over the task's context of {} tokens needs about {:.1} GiB, more than the {} GiB a browser tab's WebAssembly memory can give (a smaller size, or a smaller batch)",
                    self.batch, self.task.context(), bytes as f64 / (1u64 << 30) as f64, range::TRAINING_BYTES >> 30
                );
            }
        }
        int("sft.steps", self.sft.steps as u64, 1, MAX_STEPS, "SFT needs at least one step; every alignment run starts from its policy")?;
        int("sft.batch", self.sft.batch as u64, BATCH.0, BATCH.1, "sequences per step; memory grows with it")?;
        int("sft.warmup_steps", self.sft.warmup_steps as u64, 0, self.sft.steps as u64, "a warm-up longer than sft.steps never reaches the learning rate")?;
        adamw("sft.adamw", &self.sft.adamw)?;
        int("proxy.steps", self.proxy.steps as u64, 1, MAX_STEPS, "the proxy needs at least one step to be more than its initialisation")?;
        int("proxy.batch", self.proxy.batch as u64, BATCH.0, BATCH.1, "pairs per step, each scored in both orders; memory grows with it")?;
        int("proxy.eval_every", self.proxy.eval_every as u64, 1, self.proxy.steps as u64, "the validation loss is measured every this many steps and the best model kept; at most proxy.steps")?;
        real("proxy.validation", self.proxy.validation, crate::limits::Interval::closed(0.01, 0.5), "the fraction of D_golden held back for early stopping: enough pairs to select on, most left to train on")?;
        int("proxy.patience", self.proxy.patience as u64, 0, 1000, "evaluations without a lower validation loss before stopping (0: train every step)")?;
        adamw("proxy.adamw", &self.proxy.adamw)?;
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
        for (i, w) in self.stream_windows.iter().enumerate() {
            if !method::STREAM_WINDOWS.contains(w) || self.stream_windows[..i].contains(w) {
                bail!("stream_windows[{i}] = {w}: each must be one of {:?} (batches per shuffle window; 1 keeps the online order, 0 shuffles the whole stream), once", method::STREAM_WINDOWS);
            }
            if *w > self.steps {
                bail!("stream_windows[{i}] = {w} batches is larger than the stream: an online run has steps = {} batches (0 shuffles the whole stream)", self.steps);
            }
        }
        for (i, d) in self.pair_datasets.iter().enumerate() {
            if self.pair_datasets[..i].contains(d) {
                bail!("pair_datasets[{i}]: {d:?} appears twice (one run per dataset)");
            }
        }
        for (i, &m) in self.mixtures.iter().enumerate() {
            let key = format!("mixtures[{i}]");
            real(&key, m, crate::limits::Interval::below(0.0, 1.0), "π_sft's weight in IPO-MD's sampling mixture π^(1−m)·π_sft^m; 1 would sample from π_sft alone")?;
            let percent = (m * 100.0).round() as u32;
            if !method::MIXTURES.contains(&percent) || (m * 100.0 - percent as f32).abs() > 1e-4 || self.mixtures[..i].contains(&m) {
                bail!("{key} = {m}: each must be one of 0.25, 0.5, 0.75 (0 is online IPO itself), once");
            }
        }
        for (i, l) in self.loss_family.iter().enumerate() {
            if *l == self.loss || self.loss_family[..i].contains(l) {
                bail!("loss_family[{i}] = {:?}: each must be a loss of the family other than loss = {:?} (ipo, dpo, slic, best_of2), once", l, self.loss);
            }
        }
        if !self.loss_family.is_empty() && !self.offline_lrs.is_empty() {
            bail!("loss_family needs offline_lrs = [] (offline at online's lrs): each loss's offline run is compared with its online run at the same lr");
        }
        if !self.pair_datasets.is_empty() && !self.offline_lrs.is_empty() {
            bail!("pair_datasets needs offline_lrs = [] (offline at online's lrs): each pair dataset is sampled from the online run with its run's own β and lr");
        }
        for (i, r) in self.semi_online.iter().enumerate() {
            if !method::SEMI_ONLINE_REFRESH.contains(r) || self.semi_online[..i].contains(r) {
                bail!("semi_online[{i}] = {r}: each must be one of {:?} (steps between refreshes of the data; 0 never refreshes; online IPO is 1), once", method::SEMI_ONLINE_REFRESH);
            }
        }
        Ok(())
    }

    /// Seconds this config should take on a device whose S-size bench (`crate::bench`) measured
    /// `train_step_ms` per training step and `sample_tokens_per_s`: a count of the work in each stage,
    /// scaled from the bench's shape. An estimate (attention and the vocabulary are not in the scaling).
    pub fn estimate_seconds(&self, train_step_ms: f64, sample_tokens_per_s: f64) -> f64 {
        self.estimate_seconds_from(train_step_ms, sample_tokens_per_s, false)
    }

    /// [`Fig1Config::estimate_seconds`], without the SFT and proxy stages when `stages_given` (they come from a cache or
    /// are shipped with the site; D_golden is still sampled).
    pub fn estimate_seconds_from(&self, train_step_ms: f64, sample_tokens_per_s: f64, stages_given: bool) -> f64 {
        use crate::bench::{BATCH, CONTEXT};
        let (t, y) = (self.task.context() as f64, self.task.max_summary as f64);
        let pm_t = crate::train::pm::pm_context(&self.task) as f64;
        let flops = |p: ModelSize| (p.layers * p.d_model * p.d_model) as f64;
        let scale = flops(self.policy) / (2.0 * 64.0 * 64.0);
        // A run or SFT at another size of the scaling ladder, relative to `policy`'s (the proxy's share of an
        // online step scaled with it too: an over-estimate for smaller sizes).
        let relative = |p: Option<ModelSize>| p.map_or(1.0, |p| flops(p) / flops(self.policy));
        // ms per token of forward + backward + update; a forward alone is about a third of it.
        let fb = train_step_ms / (BATCH * CONTEXT) as f64 * scale;
        let fwd = fb / 3.0;
        let sample = 1e3 / sample_tokens_per_s.max(1e-9) * scale;
        let b = self.batch as f64;
        let sft = self.sft.steps as f64 * self.sft.batch as f64 * t * fb;
        let d_golden = 2.0 * (self.d_golden + self.heldout) as f64 * y * sample;
        let validation = 2.0 * self.proxy.validation_pairs(self.d_golden) as f64 * pm_t * fwd;
        let proxy = self.proxy.steps as f64 * 2.0 * self.proxy.batch as f64 * pm_t * fb + (self.proxy.steps / self.proxy.eval_every.max(1)) as f64 * validation + 2.0 * self.heldout as f64 * pm_t * fwd;
        let mut eval = (self.win_prompts + self.kl_prompts) as f64 * y * sample + self.kl_prompts as f64 * t * 2.0 * fwd + 2.0 * self.heldout as f64 * t * fwd + 4.0 * self.win_prompts as f64 * pm_t * fwd;
        if self.analyses.contains(&Analysis::SelfClassification) {
            // A second sample per win-rate prompt, and both policies' log-probs of the pairs.
            eval += self.win_prompts as f64 * (y * sample + 4.0 * t * fwd);
        }
        if self.analyses.contains(&Analysis::StreamClassification) {
            eval += 4.0 * crate::train::align::STREAM_STRETCH as f64 * t * fwd;
        }
        let evals = |steps: u32| (steps / self.eval_every + 2 + self.log_evals) as f64 * eval;
        let offline_step = 2.0 * b * t * (fb + fwd);
        let golden_step = 2.0 * b * y * sample + offline_step;
        let proxy_step = 4.0 * b * pm_t * fwd;
        // Every run the config asks for, each at its cost (the first seed's repeats included).
        let runs: f64 = self
            .seeds
            .iter()
            .flat_map(|&s| self.runs_for(s))
            .map(|r| {
                let cost = r.method.step_cost();
                let mut per_step = if cost.samples { golden_step } else { offline_step };
                if cost.proxy {
                    per_step += proxy_step;
                }
                if cost.mixture {
                    // Every sampled token runs π_sft's forward too.
                    per_step += 2.0 * b * y * sample;
                }
                (r.steps as f64 * per_step + evals(r.steps)) * relative(r.policy)
            })
            .sum::<f64>()
            / self.seeds.len().max(1) as f64;
        let sft = sft * (1.0 + self.scaling.iter().map(|&p| relative(Some(p))).sum::<f64>());
        let (sft, proxy) = if stages_given { (0.0, 0.0) } else { (sft, proxy) };
        let per_seed = sft + d_golden + proxy + runs;
        per_seed * self.seeds.len() as f64 / 1e3
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
            stage_backend: None,
            interleave: false,
            resumable: false,
            runs_from: None,
            offline_past_best: (self.offline_patience > 0).then_some(crate::train::align::PastBest { patience: self.offline_patience, max_steps: self.offline_max_steps }),
        }
    }

    /// The runs the figure needs from each seed, in results order: for each (β, lr), online IPO with
    /// proxy labels, offline IPO for each length in `offline_steps`, and the golden-labelled reference.
    /// Online and offline share the loss, β, lr, batch and (for the first offline length) steps. With
    /// `offline_lrs`, offline is instead swept over offline_lrs × offline_steps at each β (the paper's
    /// offline sweep), after that β's online runs.
    pub fn runs(&self) -> Vec<RunSpec> {
        // Offline swept over its own lrs (the paper's protocol) runs after the β's online runs; otherwise beside
        // each online run at its lr, with the arms compared with offline at that lr.
        let swept = !self.offline_lrs.is_empty();
        let offline_at = |beta: f32, lr: f32| self.offline_steps.iter().map(move |&steps| RunSpec::new(Method::OFFLINE, beta, lr, steps));
        let mut runs = vec![];
        for &beta in &self.betas {
            for &lr in &self.lrs {
                let online = |method: Method| RunSpec::new(method, beta, lr, self.steps);
                runs.push(online(Method::ONLINE));
                runs.extend(self.stream_windows.iter().map(|&w| online(Method::stream(w))));
                runs.extend(self.semi_online.iter().map(|&r| online(Method::semi_online(r))));
                runs.extend(self.mixtures.iter().map(|&m| online(Method::mixture((m * 100.0).round() as u32))));
                if !swept {
                    runs.extend(offline_at(beta, lr));
                    for &d in &self.pair_datasets {
                        runs.extend(self.offline_steps.iter().map(|&steps| RunSpec::new(Method::pairs(d), beta, lr, steps)));
                    }
                    for &l in &self.loss_family {
                        runs.push(online(Method::ONLINE.with_loss(l)));
                        runs.extend(self.offline_steps.iter().map(|&steps| RunSpec::new(Method::OFFLINE.with_loss(l), beta, lr, steps)));
                    }
                }
                if self.golden_reference {
                    runs.push(online(Method::ONLINE_GOLDEN));
                }
            }
            if swept {
                runs.extend(self.offline_lrs.iter().flat_map(|&lr| offline_at(beta, lr)));
            }
        }
        runs
    }

    /// The runs of one seed, in results order: [`Fig1Config::runs`], and for the first seed also each of
    /// `align_seeds` repeating its online and offline runs.
    pub fn runs_for(&self, seed: u32) -> Vec<RunSpec> {
        let mut runs = self.runs();
        let own = runs.clone();
        if self.seeds.first() == Some(&seed) {
            let base: Vec<RunSpec> = runs.iter().filter(|r| r.method != Method::ONLINE_GOLDEN).copied().collect();
            for &a in &self.align_seeds {
                runs.extend(base.iter().map(|r| RunSpec { align_seed: Some(a), ..*r }));
            }
        }
        // And every run at each other size of the scaling ladder, after the seed's own.
        for &size in &self.scaling {
            runs.extend(own.iter().map(|r| RunSpec { policy: Some(size), ..*r }));
        }
        runs
    }

    /// The scaling ladder: `policy` and each of `scaling`, by parameter count.
    pub fn ladder(&self) -> Vec<ModelSize> {
        let mut sizes: Vec<ModelSize> = std::iter::once(self.policy).chain(self.scaling.iter().copied()).collect();
        sizes.sort_by_key(|s| s.parameters(&self.task));
        sizes
    }

    /// Every run of every seed.
    pub fn run_count(&self) -> usize {
        self.seeds.iter().map(|&s| self.runs_for(s).len()).sum()
    }

    /// The runs of `shard` (all when none), by seed, in results order; seeds with no run are left out.
    pub fn runs_by_seed(&self, shard: Option<Shard>) -> Vec<(u32, Vec<RunSpec>)> {
        let mut k = 0;
        let mut out = vec![];
        for &seed in &self.seeds {
            let mine: Vec<RunSpec> = self
                .runs_for(seed)
                .iter()
                .filter(|_| {
                    k += 1;
                    shard.is_none_or(|s| s.takes(k - 1))
                })
                .copied()
                .collect();
            if !mine.is_empty() {
                out.push((seed, mine));
            }
        }
        out
    }
}

/// A policy size against the ranges (its layers, width and heads), each error naming `key`.
fn check_size(key: &str, p: &ModelSize) -> Result<()> {
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

/// The page's knobs, in the order it shows them (any other key can still be set in the URL).
pub fn knobs() -> Vec<Knob> {
    use range::*;
    let k = |key, label, kind, help: String| Knob { key, label, kind, help };
    vec![
        k("seeds", "Seeds", "list", format!("one run per seed, up to {SEEDS}; intervals need ≥ 2")),
        k("betas", "β values", "list", format!("IPO regularisation, each in {BETA}; larger stays closer to SFT")),
        k("lrs", "Learning rates", "list", format!("each in {LR}; the same for online and offline")),
        k("steps", "Online steps", "int", format!("1 – {ONLINE_STEPS} per online run")),
        k("offline_steps", "Offline steps", "list", format!("one offline run per value, each 1 – {MAX_STEPS}")),
        k("offline_patience", "Offline patience", "int", format!("0 – {MAX_STEPS}: offline runs go on past their length until their best checkpoint is this many steps behind (0: off)")),
        k("offline_max_steps", "Offline cap", "int", format!("the longest an offline run may go on, from the longest offline length to {MAX_STEPS}")),
        k("align_seeds", "Alignment seeds", "list", "repeats of the first seed's online and offline runs over its same proxy".into()),
        k("offline_lrs", "Offline sweep lrs", "list", format!("empty: offline uses the online lrs; else an offline run per value × length, each in {LR}")),
        k("batch", "Batch (pairs)", "int", format!("{} – {} pairs per step, online and offline", BATCH.0, BATCH.1)),
        k("eval_every", "Evaluate every", "int", format!("1 – {MAX_STEPS} steps between checkpoints")),
        k("log_evals", "Log-spaced checkpoints", "int", "0 – 64 extra checkpoints per run, dense early".into()),
        k("warmup", "Warm-up (fraction)", "real", "0 – 0.5 of the online steps with a rising lr, the same steps for every run".into()),
        k("golden_reference", "Golden-labelled online run", "bool", "also run online IPO with golden labels".into()),
        k("semi_online", "Semi-online refresh", "list", format!("semi-online IPO beside online, refreshing its data every this many steps; each of {:?} (0: never)", method::SEMI_ONLINE_REFRESH)),
        k("mixtures", "IPO-MD mixture", "list", "IPO-MD beside online: π_sft's weight m in the sampling mixture π^(1−m)·π_sft^m, each of 0.25, 0.5, 0.75 (0 is online IPO); m leans the samples toward π_sft".into()),
        k("loss_family", "Loss family", "list", "online and offline beside the config's loss with each of ipo, dpo, slic, best_of2 (not the config's own)".into()),
        k("analyses", "Analyses", "list", "any of generation_vs_classification (Fig. 7), over_training (Fig. 8), self_classification, stream_classification (Fig. 6)".into()),
        k("scaling", "Scaling ladder", "list", "every run again at each of these policy sizes LxDhH (L layers of width D, H heads; e.g. 1x32h2), each from its own SFT, over the same proxy; Figs 10 and 11".into()),
        k("pair_datasets", "Pair datasets", "list", format!("offline IPO on golden-labelled pairs from π_sft and the online run, one run per dataset; any of {}", PairDataset::ALL.map(|d| Method::pairs(d).name()).join(", "))),
        k("stream_windows", "Online-stream windows", "list", format!("offline IPO on each online run's own stream, shuffled within this many batches; each of {:?} (1: in order, 0: all)", method::STREAM_WINDOWS)),
        k("loss", "Loss", "text", "the loss of every run: ipo, dpo, slic or best_of2 (Best-of-2: SFT on the preferred response)".into()),
        k("sft.steps", "SFT steps", "int", format!("1 – {MAX_STEPS} steps of supervised fine-tuning")),
        k("d_golden", "D_golden pairs", "int", format!("from one batch to {PAIRS} labelled pairs")),
        k("heldout", "Held-out pairs", "int", format!("{} – {} (proxy accuracy, classifier accuracy)", HELDOUT.0, HELDOUT.1)),
        k("proxy.steps", "Proxy PM steps", "int", format!("1 – {MAX_STEPS} training steps of the proxy preference model")),
        k("win_prompts", "Win-rate prompts", "int", format!("{} – {} prompts per checkpoint", WIN_PROMPTS.0, WIN_PROMPTS.1)),
        k("kl_prompts", "KL prompts", "int", format!("{} – {} prompts per checkpoint", KL_PROMPTS.0, KL_PROMPTS.1)),
        k("policy.layers", "Layers", "int", format!("{} – {} transformer blocks", LAYERS.0, LAYERS.1)),
        k("policy.d_model", "Width (d_model)", "int", format!("{} – {}, divisible by the heads", D_MODEL.0, D_MODEL.1)),
        k("policy.heads", "Heads", "int", format!("{} – {} attention heads", HEADS.0, HEADS.1)),
    ]
}

/// The i-th (1-based) of n disjoint slices of an experiment's runs: run k of the list "each seed × each
/// run" belongs to shard k mod n + 1, so shards get a balanced mix of seeds and methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn takes(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
        match parsed {
            Some((index, count)) if (1..=1024).contains(&count) && (1..=count).contains(&index) => Ok(Shard { index, count }),
            _ => bail!("shard: '{s}' is not i/n with 1 ≤ i ≤ n ≤ 1024 (e.g. 2/3: the second of three slices)"),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fig1Results {
    pub config: Fig1Config,
    pub backend: String,
    pub checkpoints: Vec<Row>,
    pub proxy: Vec<ProxyReport>,
    pub sft_loss: Vec<(u32, Vec<f32>)>,
    /// Seconds per stage, summed over seeds.
    pub timings: Vec<(String, f64)>,
    /// False in a results.json written while the run is under way (or after it failed): it then holds the
    /// checkpoints finished so far. Absent (true) in a finished one.
    #[serde(default = "finished", skip_serializing_if = "is_finished")]
    pub complete: bool,
    /// Set when these are the results of one shard (`reproduce --shard i/n`); `merge` combines them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The dataset files written beside the results: the data the runs trained on besides D_golden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetRecord>,
    /// What TRL calls each metric the two have in common (metrics.csv keeps this project's names).
    #[serde(default = "trl_names")]
    pub trl_names: Vec<TrlName>,
    /// The SFT losses of the scaling ladder's other sizes, per seed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling_sft_loss: Vec<SizedSftLoss>,
    /// Seconds from start to finish of the `reproduce` that wrote these results (with whatever its stage cache
    /// held); absent in results written before it was recorded, and in merged shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

/// One seed's SFT losses at one size of the scaling ladder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SizedSftLoss {
    pub seed: u32,
    #[serde(with = "pipeline::size_text::option")]
    pub policy: Option<ModelSize>,
    pub losses: Vec<f32>,
}

/// One metric's name here and in TRL's trainers' logs, and how the two differ.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrlName {
    pub ours: String,
    pub trl: String,
    pub note: String,
}

/// The metrics this project shares with TRL (`OnlineDPOTrainer`, `DPOTrainer`, `WinRateCallback`).
pub fn trl_names() -> Vec<TrlName> {
    [
        ("kl", "objective/kl", "the same estimator: mean over sampled responses of Σ_t log π − log π_sft; ours on fixed evaluation prompts"),
        ("classifier_accuracy", "rewards/accuracies", "TRL's on the batch it trains or evaluates on; ours on held-out D_golden with golden labels, ties ½"),
        ("chosen_logratio", "rewards/chosen", "TRL's is β times ours: β · (log π(y_w) − log π_ref(y_w)), ours on held-out D_golden's golden winners"),
        ("train_loss", "loss", "the mean training loss since the previous checkpoint"),
        ("golden_win_rate", "eval_win_rate", "WinRateCallback's judge is here the golden reward, the baseline π_sft's samples, ties ½"),
        ("eos_rate", "val/contain_eos_token", "the fraction of sampled responses that end with EOS"),
    ]
    .into_iter()
    .map(|(o, t, n)| TrlName { ours: o.into(), trl: t.into(), note: n.into() })
    .collect()
}

/// A dataset file `reproduce` wrote beside the results (format: `train::dataset_file`), for a user to download
/// and load back (`alignment-gap train-offline`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DatasetRecord {
    pub seed: u32,
    pub name: String,
    /// Its path inside the results folder.
    pub file: String,
    /// What the pairs are (also in the file's metadata).
    pub source: String,
    pub pairs: usize,
    pub bytes: u64,
    pub sha256: String,
}

impl Fig1Results {
    /// No checkpoints yet (a run under way).
    pub fn empty(cfg: &Fig1Config, backend: String) -> Self {
        Fig1Results { config: cfg.clone(), backend, checkpoints: vec![], proxy: vec![], sft_loss: vec![], timings: vec![], complete: false, shard: None, datasets: vec![], trl_names: trl_names(), scaling_sft_loss: vec![], wall_seconds: None }
    }

    /// Results order, whatever order the parts arrived in: seeds as in the config, each seed's runs as in
    /// [`Fig1Config::runs`], each run's checkpoints by step.
    pub fn sort(&mut self) {
        let runs: Vec<(u32, Vec<RunSpec>)> = self.config.seeds.iter().map(|&s| (s, self.config.runs_for(s))).collect();
        let seeds = &self.config.seeds;
        let seed_pos = |seed: u32| seeds.iter().position(|&s| s == seed).unwrap_or(usize::MAX);
        let run_pos = |row: &Row| runs.iter().find(|(s, _)| *s == row.seed).and_then(|(_, rs)| rs.iter().position(|r| row.is_of(r))).unwrap_or(usize::MAX);
        self.checkpoints.sort_by_key(|row| (seed_pos(row.seed), run_pos(row), row.checkpoint.step));
        self.proxy.sort_by_key(|p| seed_pos(p.seed));
        self.sft_loss.sort_by_key(|(s, _)| seed_pos(*s));
        let ladder = self.config.ladder();
        self.scaling_sft_loss.sort_by_key(|l| (seed_pos(l.seed), l.policy.and_then(|p| ladder.iter().position(|&q| q == p))));
        self.datasets.sort_by(|a, b| (seed_pos(a.seed), &a.name).cmp(&(seed_pos(b.seed), &b.name)));
    }

    /// Adds a checkpoint, replacing the same checkpoint of the same run if it is there (a resumed run
    /// reports again what an earlier attempt wrote).
    pub fn upsert_row(&mut self, row: Row) {
        let same = |r: &Row| {
            r.seed == row.seed && r.method == row.method && r.beta == row.beta && r.lr == row.lr && r.run_steps == row.run_steps && r.align_seed == row.align_seed && r.policy == row.policy && r.checkpoint.step == row.checkpoint.step
        };
        match self.checkpoints.iter_mut().find(|r| same(r)) {
            Some(r) => *r = row,
            None => self.checkpoints.push(row),
        }
    }

    /// Records a seed's shared stages, replacing an earlier record of the same seed.
    pub fn upsert_stages(&mut self, seed: u32, sft_loss: Vec<f32>, proxy: ProxyReport) {
        self.proxy.retain(|p| p.seed != seed);
        self.sft_loss.retain(|(s, _)| *s != seed);
        self.proxy.push(proxy);
        self.sft_loss.push((seed, sft_loss));
    }
}

fn finished() -> bool {
    true
}

fn is_finished(complete: &bool) -> bool {
    *complete
}

/// One seed of the figure: its shared stages, then `runs` (all of [`Fig1Config::runs`], or a shard's), placed as
/// `placement` says.
#[allow(clippy::too_many_arguments)]
pub async fn run_seed(
    e: &Engine,
    cfg: &Fig1Config,
    seed: u32,
    runs: &[RunSpec],
    cache: &mut dyn StageCache,
    placement: Placement<'_>,
    mut progress: impl FnMut(Progress),
    mut keep: impl FnMut(SeedModels) -> Result<()>,
) -> Result<SeedResults> {
    cfg.validate()?;
    let spec = StageSpec { stage_backend: placement.stage_backend, interleave: placement.interleave, resumable: placement.resumable, runs_from: placement.runs_from, ..cfg.stage_spec() };
    pipeline::run_seed(e, &spec, seed, runs, cache, &mut progress, &mut keep).await
}

/// Where a seed's stages come from and how its runs are scheduled, beside what its config says (the page sets both;
/// the CLI none): see `StageSpec::stage_backend`, `StageSpec::interleave`, `StageSpec::resumable` and `StageSpec::runs_from`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Placement<'a> {
    pub stage_backend: Option<&'a str>,
    pub interleave: bool,
    pub resumable: bool,
    pub runs_from: Option<&'a str>,
}

impl Fig1Config {
    /// The cache keys of every SFT and proxy stage the config trains (each seed's, and the SFT of each size of its
    /// scaling ladder), keyed as on `backend`: what a page run asks its browser cache for before it starts.
    pub fn stage_cache_keys(&self, backend: &str) -> Vec<String> {
        let spec = self.stage_spec();
        let mut keys = vec![];
        for &seed in &self.seeds {
            let (sft, proxy) = pipeline::stage_keys(&spec, seed, backend);
            keys.extend([sft, proxy]);
            keys.extend(self.scaling.iter().map(|&policy| pipeline::stage_keys(&StageSpec { policy, ..spec }, seed, backend).0));
        }
        keys
    }
}

impl Fig1Config {
    /// The cache keys of every run the config trains (each seed's) and of their saved states, keyed as on `backend`
    /// from stages trained on `stage_backend` (none: `backend`'s), and as on `runs_from` (runs taken over:
    /// `StageSpec::runs_from`): what a page run resuming an interrupted one asks its browser cache for.
    pub fn run_cache_keys(&self, backend: &str, stage_backend: Option<&str>, runs_from: Option<&str>) -> Vec<String> {
        let spec = StageSpec { stage_backend, ..self.stage_spec() };
        let mut keys = vec![];
        for &seed in &self.seeds {
            for run in self.runs_for(seed) {
                for on in std::iter::once(backend).chain(runs_from.filter(|b| *b != backend)) {
                    let key = pipeline::run_key(&spec, seed, on, &run);
                    keys.extend(pipeline::resume_keys(&key));
                    keys.push(key);
                }
            }
        }
        keys
    }
}

/// The figure's results from per-seed results, in the config's seed order; timings summed over seeds.
pub fn merge(cfg: &Fig1Config, backend: String, mut seeds: Vec<SeedResults>) -> Fig1Results {
    seeds.sort_by_key(|s| cfg.seeds.iter().position(|&x| x == s.seed));
    let mut results = Fig1Results { config: cfg.clone(), backend, checkpoints: vec![], proxy: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None, datasets: vec![], trl_names: trl_names(), scaling_sft_loss: vec![], wall_seconds: None };
    for s in seeds {
        results.checkpoints.extend(s.checkpoints);
        results.proxy.push(s.proxy);
        results.sft_loss.push((s.seed, s.sft_loss));
        results.scaling_sft_loss.extend(s.sized_sft_loss.into_iter().map(|(p, losses)| SizedSftLoss { seed: s.seed, policy: Some(p), losses }));
        for (name, secs) in s.timings {
            pipeline::add_time(&mut results.timings, &name, secs * 1e3);
        }
    }
    results
}

/// Every seed in turn on one engine, no cache.
pub async fn run(e: &Engine, cfg: &Fig1Config, mut progress: impl FnMut(Progress), mut keep: impl FnMut(SeedModels) -> Result<()>) -> Result<Fig1Results> {
    let mut seeds = vec![];
    for &seed in &cfg.seeds {
        seeds.push(run_seed(e, cfg, seed, &cfg.runs_for(seed), &mut NoCache, Placement::default(), &mut progress, &mut keep).await?);
    }
    Ok(merge(cfg, e.describe(), seeds))
}

/// The figure's results from runs of the same config over disjoint groups of its seeds (the page runs
/// each group in its own Web Worker): each part's config must equal `cfg` but for its seeds, and the parts'
/// seeds together must be exactly `cfg`'s.
pub fn merge_seed_groups(cfg: &Fig1Config, parts: Vec<Fig1Results>) -> Result<Fig1Results> {
    let Some(first) = parts.first() else { bail!("merge: no results given") };
    let mut merged = Fig1Results::empty(cfg, first.backend.clone());
    merged.complete = true;
    let mut seen = vec![];
    for p in parts {
        let mut same = p.config.clone();
        same.seeds = cfg.seeds.clone();
        if same != *cfg {
            bail!("merge: a part has another config (differs in: {})", super::differing_keys(cfg, &p.config)?.join(", "));
        }
        if let Some(s) = p.config.seeds.iter().find(|s| seen.contains(*s) || !cfg.seeds.contains(s)) {
            bail!("merge: seed {s} is in two parts, or not in the config's seeds {:?}", cfg.seeds);
        }
        seen.extend(p.config.seeds.iter().copied());
        merged.complete &= p.complete;
        merged.checkpoints.extend(p.checkpoints);
        merged.proxy.extend(p.proxy);
        merged.sft_loss.extend(p.sft_loss);
        merged.scaling_sft_loss.extend(p.scaling_sft_loss);
        merged.datasets.extend(p.datasets);
        for (name, secs) in p.timings {
            pipeline::add_time(&mut merged.timings, &name, secs * 1e3);
        }
    }
    if seen.len() != cfg.seeds.len() {
        bail!("merge: the parts hold seeds {seen:?}; the config needs {:?}", cfg.seeds);
    }
    merged.sort();
    Ok(merged)
}

/// Combines the results of every shard of one experiment (`reproduce --shard i/n`, i = 1..n) into the
/// results an unsharded run writes: the same checkpoints in the same order. Refuses parts of different
/// configs or backends, a missing, repeated or unfinished shard, and shards that disagree on a seed's
/// shared stages.
pub fn merge_shards(parts: Vec<Fig1Results>) -> Result<Fig1Results> {
    let Some(first) = parts.first() else { bail!("merge: no results given") };
    let (cfg, backend) = (first.config.clone(), first.backend.clone());
    let count = match first.shard {
        Some(s) => s.count,
        None => bail!("merge: the first results are not a shard (reproduce --shard i/n writes shards)"),
    };
    let mut seen = vec![false; count];
    for p in &parts {
        if p.config != cfg {
            bail!("merge: shard {} has another config (differs in: {})", show(p.shard), super::differing_keys(&cfg, &p.config)?.join(", "));
        }
        if p.backend != backend {
            bail!("merge: shard {} ran on '{}', shard {} on '{backend}'; the backends agree to rounding, not bit for bit", show(p.shard), p.backend, show(first.shard));
        }
        let Some(s) = p.shard.filter(|s| s.count == count) else { bail!("merge: results {} are not one of {count} shards", show(p.shard)) };
        if !p.complete {
            bail!("merge: shard {s} has not finished (its results.json is partial); rerun it first");
        }
        if std::mem::replace(&mut seen[s.index - 1], true) {
            bail!("merge: shard {s} is given twice");
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        bail!("merge: shard {}/{count} is missing", i + 1);
    }
    let runs: Vec<(u32, Vec<RunSpec>)> = cfg.seeds.iter().map(|&s| (s, cfg.runs_for(s))).collect();
    let run_pos = |row: &Row| runs.iter().find(|(s, _)| *s == row.seed).and_then(|(_, rs)| rs.iter().position(|r| row.is_of(r))).unwrap_or(usize::MAX);
    let mut merged = Fig1Results::empty(&cfg, backend);
    merged.complete = true;
    for p in parts {
        merged.checkpoints.extend(p.checkpoints);
        // A dataset two shards both built (an online stream each trained for its stream runs) is one file.
        for d in p.datasets {
            match merged.datasets.iter().find(|x| x.seed == d.seed && x.name == d.name) {
                Some(x) if x.sha256 != d.sha256 => bail!("merge: shards disagree on seed {}'s dataset {} (sha256 {} vs {})", d.seed, d.name, x.sha256, d.sha256),
                Some(_) => {}
                None => merged.datasets.push(d),
            }
        }
        for r in p.proxy {
            match merged.proxy.iter().find(|q| q.seed == r.seed) {
                Some(q) if q != &r => bail!("merge: shards disagree on seed {}'s proxy accuracy ({} vs {})", r.seed, q.heldout_accuracy, r.heldout_accuracy),
                Some(_) => {}
                None => merged.proxy.push(r),
            }
        }
        for l in p.scaling_sft_loss {
            match merged.scaling_sft_loss.iter().find(|x| x.seed == l.seed && x.policy == l.policy) {
                Some(x) if x != &l => bail!("merge: shards disagree on seed {}'s SFT losses at size {:?}", l.seed, l.policy.map(|p| p.to_string())),
                Some(_) => {}
                None => merged.scaling_sft_loss.push(l),
            }
        }
        for (seed, loss) in p.sft_loss {
            match merged.sft_loss.iter().find(|(s, _)| *s == seed) {
                Some((_, l)) if l != &loss => bail!("merge: shards disagree on seed {seed}'s SFT losses"),
                Some(_) => {}
                None => merged.sft_loss.push((seed, loss)),
            }
        }
        for (name, secs) in p.timings {
            pipeline::add_time(&mut merged.timings, &name, secs * 1e3);
        }
    }
    merged.sort();
    let mut finished: Vec<(u32, usize)> = merged.checkpoints.iter().filter(|r| r.checkpoint.step == r.run_steps).map(|r| (r.seed, run_pos(r))).collect();
    finished.dedup();
    if finished.len() != cfg.run_count() {
        bail!("merge: the shards hold {} finished runs; the config needs {}", finished.len(), cfg.run_count());
    }
    Ok(merged)
}

fn show(shard: Option<Shard>) -> String {
    shard.map(|s| s.to_string()).unwrap_or_else(|| "(unsharded)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::pipeline::check_finite;
    use crate::train::align::Checkpoint;
    use crate::train::eval::ResponseStats;

    fn row(kl: f32, proxy_win_rate: Option<f32>) -> Row {
        let checkpoint = Checkpoint {
            step: 6,
            kl,
            golden_win_rate: 0.5,
            ties: 0.0,
            classifier_accuracy: 0.6,
            proxy_win_rate,
            train_loss: None,
            responses: ResponseStats::default(),
            samples: vec![],
            ..Default::default()
        };
        Row { method: "online".into(), seed: 3, beta: 0.1, lr: 5e-4, run_steps: 12, align_seed: None, policy: None, checkpoint }
    }

    #[test]
    fn non_finite_metrics_are_refused_by_name_not_written_as_null() {
        assert!(check_finite(&row(0.5, Some(0.7))).is_ok());
        assert!(check_finite(&row(0.5, None)).is_ok(), "an unmeasured metric is not an error");
        let e = check_finite(&row(f32::NAN, None)).unwrap_err().0;
        assert!(e.contains("seed 3 online β=0.1 lr=0.0005 step 6: kl is not finite (NaN)"), "{e}");
        let e = check_finite(&row(0.5, Some(f32::INFINITY))).unwrap_err().0;
        assert!(e.contains("proxy_win_rate is not finite (inf)"), "{e}");
    }

    #[test]
    fn every_knob_is_a_setting_and_shows_its_range() {
        let mut leaves = vec![];
        crate::experiments::setting_leaves("", &crate::experiments::json_value(&Fig1Config::preset("fig1").unwrap()).unwrap(), &mut leaves);
        for k in knobs() {
            assert!(leaves.iter().any(|(key, _)| key == k.key), "knob {} is not a setting", k.key);
        }
        let steps = knobs().into_iter().find(|k| k.key == "steps").unwrap();
        assert!(steps.help.contains(&range::ONLINE_STEPS.to_string()), "{}", steps.help);
    }

    #[test]
    fn every_preset_passes_its_own_checks_and_duplicate_seeds_do_not() {
        for name in PRESETS {
            Fig1Config::preset(name).unwrap().validate().unwrap();
        }
        let cfg = Fig1Config { seeds: vec![1, 2, 1], ..Fig1Config::preset("fig1-tiny").unwrap() };
        assert!(cfg.validate().unwrap_err().0.contains("seeds: 1 appears twice"));
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_every_run() {
        let cfg = Fig1Config { seeds: vec![4, 5], betas: vec![0.1, 0.2], ..Fig1Config::preset("fig1-tiny").unwrap() };
        let all: Vec<(u32, RunSpec)> = cfg.runs_by_seed(None).into_iter().flat_map(|(s, r)| r.into_iter().map(move |r| (s, r))).collect();
        assert_eq!(all.len(), 2 * 2 * 3);
        let mut union = vec![];
        for i in 1..=5 {
            let shard: Shard = format!("{i}/5").parse().unwrap();
            union.extend(cfg.runs_by_seed(Some(shard)).into_iter().flat_map(|(s, r)| r.into_iter().map(move |r| (s, r))));
        }
        assert_eq!(union.len(), all.len());
        assert!(all.iter().all(|x| union.contains(x)));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/2"] {
            assert!(bad.parse::<Shard>().unwrap_err().0.contains("is not i/n"), "{bad}");
        }
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn the_offline_sweep_runs_every_lr_and_length_at_each_beta() {
        let cfg = Fig1Config { betas: vec![0.1, 0.5], lrs: vec![1e-3], offline_lrs: vec![1e-4, 3e-4, 1e-3], offline_steps: vec![12, 60], ..Fig1Config::preset("fig1-tiny").unwrap() };
        cfg.validate().unwrap();
        let runs = cfg.runs();
        let offline: Vec<&RunSpec> = runs.iter().filter(|r| r.method == Method::OFFLINE).collect();
        assert_eq!(offline.len(), 2 * 3 * 2);
        assert_eq!(runs.iter().filter(|r| r.method == Method::ONLINE).count(), 2, "online at its one lr over the β grid");
        for beta in [0.1, 0.5] {
            for lr in [1e-4, 3e-4, 1e-3] {
                for steps in [12, 60] {
                    assert!(offline.iter().any(|r| r.beta == beta && r.lr == lr && r.steps == steps));
                }
            }
        }
        // Without a sweep, the runs are online, offline, golden per (β, lr).
        let plain = Fig1Config { offline_lrs: vec![], ..Fig1Config::preset("fig1").unwrap() }.runs();
        assert_eq!(plain.iter().map(|r| r.method).collect::<Vec<_>>(), [Method::ONLINE, Method::OFFLINE, Method::ONLINE_GOLDEN].repeat(2));
    }

    /// An arm beside online runs adds its runs at every (β, lr) whether offline is swept over its own lrs or not:
    /// the fig1 preset (swept) with IPO-MD once validated and then trained no IPO-MD run.
    #[test]
    fn online_arms_add_their_runs_with_and_without_the_offline_sweep() {
        for offline_lrs in [vec![5e-4, 1e-3], vec![]] {
            let cfg = Fig1Config { mixtures: vec![0.25], semi_online: vec![4], stream_windows: vec![0], offline_lrs: offline_lrs.clone(), ..Fig1Config::preset("fig1").unwrap() };
            cfg.validate().unwrap();
            let runs = cfg.runs();
            for method in [Method::mixture(25), Method::semi_online(4), Method::stream(0), Method::ONLINE_GOLDEN] {
                for &beta in &cfg.betas {
                    for &lr in &cfg.lrs {
                        let n = runs.iter().filter(|r| r.method == method && r.beta == beta && r.lr == lr && r.steps == cfg.steps).count();
                        assert_eq!(n, 1, "{method:?} at β {beta}, lr {lr} (offline_lrs {offline_lrs:?})");
                    }
                }
            }
        }
    }

    /// The protocol in the fig1 preset: ≥ 5 confirmation seeds apart from the search seeds (≥ 100),
    /// warm-up and log-spaced checkpoints for every run, an offline sweep over lr (the online lr among
    /// them) × β with ≥ 5× online's steps at its longest, the golden-labelled reference and alignment
    /// repeats of one proxy.
    #[test]
    fn the_fig1_preset_is_the_papers_protocol() {
        let cfg = Fig1Config::preset("fig1").unwrap();
        assert!(cfg.seeds.len() >= 5 && cfg.seeds.iter().all(|&s| s < 100), "{:?}", cfg.seeds);
        assert!(cfg.align_seeds.iter().all(|a| !cfg.seeds.contains(a)) && !cfg.align_seeds.is_empty());
        assert!(cfg.warmup_steps() > 0 && cfg.log_evals > 0);
        assert!(cfg.offline_lrs.len() >= 2 && cfg.lrs.iter().all(|l| cfg.offline_lrs.contains(l)));
        assert!(*cfg.offline_steps.iter().max().unwrap() >= 5 * cfg.steps);
        assert!(cfg.golden_reference && cfg.proxy.patience > 0);
        let runs = cfg.runs();
        assert_eq!(runs.iter().filter(|r| r.method == Method::OFFLINE).count(), cfg.betas.len() * cfg.offline_lrs.len() * cfg.offline_steps.len());
        // Offline runs go on until past their best; online runs keep their length.
        let spec = cfg.stage_spec();
        assert!(cfg.offline_patience >= cfg.eval_every && cfg.offline_max_steps > *cfg.offline_steps.iter().max().unwrap());
        for r in &runs {
            assert_eq!(pipeline::past_best_of(&spec, r).is_some(), r.method == Method::OFFLINE, "{r:?}");
        }
    }

    /// The stopping rule is part of an offline run's cache key and of no other run's, so turning it on keeps
    /// every other cached run valid; an offline_max_steps below the longest length is refused by name.
    #[test]
    fn the_offline_stopping_rule_keys_offline_runs_only() {
        let plain = Fig1Config::preset("fig1-tiny").unwrap();
        let ruled = Fig1Config { offline_patience: 6, offline_max_steps: 48, ..plain.clone() };
        ruled.validate().unwrap();
        let key = |cfg: &Fig1Config, r: &RunSpec| pipeline::run_key(&cfg.stage_spec(), 0, "cpu", r);
        for r in plain.runs() {
            assert_eq!(key(&plain, &r) != key(&ruled, &r), r.method == Method::OFFLINE, "{r:?}");
        }
        let err = Fig1Config { offline_max_steps: 6, ..ruled }.validate().unwrap_err().0;
        assert!(err.contains("offline_max_steps") && err.contains("12"), "{err}");
    }

    /// The data experiments' runs follow each online run, one per window, at its setting; a window outside
    /// the paper's set is refused by name.
    #[test]
    fn stream_runs_follow_their_online_run() {
        let cfg = Fig1Config { betas: vec![0.1, 0.5], stream_windows: vec![1, 0], ..Fig1Config::preset("fig1-tiny").unwrap() };
        cfg.validate().unwrap();
        let runs = cfg.runs();
        for (i, r) in runs.iter().enumerate().filter(|(_, r)| r.method == Method::ONLINE) {
            assert_eq!(runs[i + 1], RunSpec { method: Method::stream(1), ..*r });
            assert_eq!(runs[i + 2], RunSpec { method: Method::stream(0), ..*r });
        }
        assert_eq!(runs.len(), 2 * 5);
        for name in ["replay", "fig4", "fig13", "semi-online"] {
            let p = Fig1Config::preset(name).unwrap();
            assert!(p.seeds.len() >= 3 && !(p.stream_windows.is_empty() && p.semi_online.is_empty()));
            let full = Fig1Config::preset("fig1").unwrap();
            assert_eq!(p.stage_spec().model_config(), full.stage_spec().model_config());
            assert_eq!(crate::experiments::differing_keys(&p, &full).unwrap().iter().filter(|k| !["seeds", "align_seeds", "stream_windows", "semi_online"].contains(&k.as_str())).count(), 0, "{name} shares fig1's stages and runs");
        }
        let bad = Fig1Config { stream_windows: vec![4], ..cfg.clone() };
        assert!(bad.validate().unwrap_err().0.contains("stream_windows[0] = 4"));
        let twice = Fig1Config { stream_windows: vec![2, 2], ..cfg };
        assert!(twice.validate().unwrap_err().0.contains("stream_windows[1] = 2"));
    }

    #[test]
    fn alignment_seeds_repeat_the_first_seeds_online_and_offline_runs() {
        let cfg = Fig1Config { seeds: vec![4, 5], align_seeds: vec![7, 8], ..Fig1Config::preset("fig1-tiny").unwrap() };
        cfg.validate().unwrap();
        let (first, second) = (cfg.runs_for(4), cfg.runs_for(5));
        assert_eq!(second, cfg.runs(), "only the first seed is repeated");
        assert_eq!(first.len(), 3 + 2 * 2, "online, offline, golden + (online, offline) × 2 alignment seeds");
        assert!(first[3..].iter().all(|r| r.method != Method::ONLINE_GOLDEN && r.align_seed.is_some()));
        assert_eq!(cfg.run_count(), 7 + 3);
        // Shards still split every run exactly once.
        let mut union: Vec<(u32, RunSpec)> = vec![];
        for i in 1..=3 {
            let shard: Shard = format!("{i}/3").parse().unwrap();
            union.extend(cfg.runs_by_seed(Some(shard)).into_iter().flat_map(|(s, r)| r.into_iter().map(move |r| (s, r))));
        }
        assert_eq!(union.len(), cfg.run_count());
        let bad = Fig1Config { align_seeds: vec![4], ..cfg.clone() };
        assert!(bad.validate().unwrap_err().0.contains("align_seeds: 4"));
        let bad = Fig1Config { align_seeds: vec![7, 7], ..cfg };
        assert!(bad.validate().unwrap_err().0.contains("align_seeds: 7"));
    }

    fn part(cfg: &Fig1Config, seeds: Vec<u32>) -> Fig1Results {
        let mut r = Fig1Results::empty(&Fig1Config { seeds: seeds.clone(), ..cfg.clone() }, "cpu".into());
        r.complete = true;
        for s in seeds {
            r.proxy.push(ProxyReport { seed: s, heldout_accuracy: 0.9, ..ProxyReport::default() });
        }
        r
    }

    #[test]
    fn seed_groups_merge_only_when_they_cover_the_seeds_once() {
        let cfg = Fig1Config { seeds: vec![3, 4, 5], ..Fig1Config::preset("fig1-tiny").unwrap() };
        let merged = merge_seed_groups(&cfg, vec![part(&cfg, vec![3, 5]), part(&cfg, vec![4])]).unwrap();
        assert_eq!(merged.proxy.iter().map(|p| p.seed).collect::<Vec<_>>(), vec![3, 4, 5], "in the config's seed order");
        assert_eq!(merged.config, cfg);
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3, 4]), part(&cfg, vec![4, 5])]).unwrap_err().0.contains("seed 4 is in two parts"));
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3])]).unwrap_err().0.contains("the config needs"));
        let mut other = part(&cfg, vec![4, 5]);
        other.config.steps += 1;
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3]), other]).unwrap_err().0.contains("another config"));
    }
}

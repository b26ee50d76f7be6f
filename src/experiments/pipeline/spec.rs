//! What a seed's stages and its alignment runs depend on: the policy's size, the [`StageSpec`] borrowed from an
//! experiment's config, and one run's [`RunSpec`].

use crate::model::GptConfig;
use crate::task::TaskConfig;
use crate::experiments::method::Method;
use crate::train::align::{AlignConfig, PastBest};
use crate::train::losses::Loss;
use crate::train::optim::AdamwConfig;
use crate::train::pm::PmConfig;
use crate::train::sft::SftConfig;

pub use crate::model::{size_text, ModelSize};

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
    /// Steps of the proxy's run whose parameters are kept as the proxy map's weaker proxies (empty: none).
    pub proxy_ladder: &'a [u32],
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
    /// their length); online ones too where `past_best_every_method`.
    pub offline_past_best: Option<PastBest>,
    pub past_best_every_method: bool,
    /// Prompts of the stopping rule's own golden win rate, disjoint from the evaluation's (0: the rule reads the
    /// evaluation prompts' win rate, as experiments did before).
    pub validation_prompts: usize,
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
    /// Measure the seed's headroom: the task's oracle summary's golden win rate against π_sft on the evaluation
    /// prompts ([`OracleReport`](super::OracleReport)).
    pub oracle_headroom: bool,
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
    /// Data-parallel alignment steps in this many chunks (0: one pass; `AlignConfig::chunks`).
    pub align_chunks: u32,
}

impl StageSpec<'_> {
    /// The backend the SFT and proxy stages are keyed by on an engine of `backend`.
    pub(super) fn stages_on<'b>(&'b self, backend: &'b str) -> &'b str {
        self.stage_backend.unwrap_or(backend)
    }

    pub fn model_config(&self) -> GptConfig {
        self.policy.model_config(self.task)
    }

    /// The alignment config of a run with `loss` at (β, lr) for `steps`, drawing `seed`'s randomness, under the
    /// stopping rule `past_best`: the batch, checkpoints and warm-up are the experiment's, the same for every run.
    pub fn align_config(&self, loss: Loss, beta: f32, lr: f32, steps: u32, seed: u32, past_best: Option<PastBest>) -> AlignConfig {
        AlignConfig {
            loss,
            beta,
            adamw: AdamwConfig { lr, ..AdamwConfig::default() },
            steps,
            batch: self.batch,
            eval_every: self.eval_every,
            seed,
            // The same warm-up for every run; a run shorter than it ends still warming up (so it stays the
            // start of a longer one).
            warmup_steps: self.warmup_steps,
            log_evals: self.log_evals,
            past_best,
            chunks: self.align_chunks,
        }
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
    pub(super) fn suffix(&self) -> String {
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
    pub(super) fn whose(&self, seed: u32) -> String {
        let size = self.policy.map(|p| format!(", policy {p}")).unwrap_or_default();
        format!("seed {seed}{}{size}", self.align_seed.map(|a| format!(", alignment seed {a}")).unwrap_or_default())
    }
}

//! The run plan: which alignment runs an experiment trains for each seed, in results order (one loop over the
//! config's (β, lr) grid and the arms' table), how they split into shards, and one seed run from its stages.

use super::arms::{Adds, Place, ARMS};
use super::experiment::ExperimentConfig;
use super::method::Method;
use super::pipeline::{self, ModelSize, Progress, RunSpec, SeedModels, SeedResults, StageCache, StageSpec};
use crate::bail;
use crate::engine::Engine;
use crate::error::Result;
use serde::{Deserialize, Serialize};

impl ExperimentConfig {
    /// The runs the figure needs from each seed, in results order: for each (β, lr), online IPO with
    /// proxy labels, offline IPO for each length in `offline_steps`, and the golden-labelled reference.
    /// Online and offline share the loss, β, lr, batch and (for the first offline length) steps. With
    /// `offline_lrs`, offline is instead swept over offline_lrs × offline_steps at each β (the paper's
    /// offline sweep), after that β's online runs.
    pub fn runs(&self) -> Vec<RunSpec> {
        // Offline swept over its own lrs (the paper's protocol) runs after the β's online runs; otherwise beside
        // each online run at its lr, with the arms compared with offline at that lr (`arms::validate` refuses them
        // with a sweep).
        let swept = !self.offline_lrs.is_empty();
        let offline_at = |beta: f32, lr: f32| self.offline_steps.iter().map(move |&steps| RunSpec::new(Method::OFFLINE, beta, lr, steps));
        let arm_runs = |place: Place, beta: f32, lr: f32| ARMS.iter().flat_map(move |a| a.adds.runs_at(place, self, beta, lr));
        let mut runs = vec![];
        for &beta in &self.betas {
            for &lr in &self.lrs {
                if !self.offline_only {
                    runs.push(RunSpec::new(Method::ONLINE, beta, lr, self.steps));
                }
                runs.extend(arm_runs(Place::BesideOnline, beta, lr));
                if !swept {
                    runs.extend(offline_at(beta, lr));
                    runs.extend(arm_runs(Place::BesideOffline, beta, lr));
                }
                runs.extend(arm_runs(Place::Last, beta, lr));
            }
            if swept {
                runs.extend(self.offline_lrs.iter().flat_map(|&lr| offline_at(beta, lr)));
            }
        }
        runs
    }

    /// The runs of one seed, in results order: [`ExperimentConfig::runs`], and for the first seed also each of
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
        // And the arms that run the seed's own list again (the scaling ladder's other sizes), after it.
        for a in &ARMS {
            if let Adds::Again(again) = a.adds {
                runs.extend(again(self, &own));
            }
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
    }}

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

/// One seed of the figure: its shared stages, then `runs` (all of [`ExperimentConfig::runs`], or a shard's), placed as
/// `placement` says.
#[allow(clippy::too_many_arguments)]
pub async fn run_seed(
    e: &Engine,
    cfg: &ExperimentConfig,
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

impl ExperimentConfig {
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

impl ExperimentConfig {
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

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_every_run() {
        let cfg = ExperimentConfig { seeds: vec![4, 5], betas: vec![0.1, 0.2], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
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
            assert!(bad.parse::<Shard>().unwrap_err().message.contains("is not i/n"), "{bad}");
        }
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[test]
    fn the_offline_sweep_runs_every_lr_and_length_at_each_beta() {
        let cfg = ExperimentConfig { betas: vec![0.1, 0.5], lrs: vec![1e-3], offline_lrs: vec![1e-4, 3e-4, 1e-3], offline_steps: vec![12, 60], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
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
        let plain = ExperimentConfig { offline_lrs: vec![], ..ExperimentConfig::preset("fig1").unwrap() }.runs();
        assert_eq!(plain.iter().map(|r| r.method).collect::<Vec<_>>(), [Method::ONLINE, Method::OFFLINE, Method::ONLINE_GOLDEN].repeat(2));
    }

    /// An arm beside online runs adds its runs at every (β, lr) whether offline is swept over its own lrs or not:
    /// the fig1 preset (swept) with IPO-MD once validated and then trained no IPO-MD run.
    #[test]
    fn online_arms_add_their_runs_with_and_without_the_offline_sweep() {
        for offline_lrs in [vec![5e-4, 1e-3], vec![]] {
            let cfg = ExperimentConfig { mixtures: vec![0.25], semi_online: vec![4], stream_windows: vec![0], offline_lrs: offline_lrs.clone(), ..ExperimentConfig::preset("fig1").unwrap() };
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
        let cfg = ExperimentConfig::preset("fig1").unwrap();
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
        let plain = ExperimentConfig::preset("fig1-tiny").unwrap();
        let ruled = ExperimentConfig { offline_patience: 6, offline_max_steps: 48, ..plain.clone() };
        ruled.validate().unwrap();
        let key = |cfg: &ExperimentConfig, r: &RunSpec| pipeline::run_key(&cfg.stage_spec(), 0, "cpu", r);
        for r in plain.runs() {
            assert_eq!(key(&plain, &r) != key(&ruled, &r), r.method == Method::OFFLINE, "{r:?}");
        }
        let err = ExperimentConfig { offline_max_steps: 6, ..ruled }.validate().unwrap_err().message;
        assert!(err.contains("offline_max_steps") && err.contains("12"), "{err}");
    }

    /// `past_best_every_method` puts online IPO (proxy and golden labels) under the same rule as offline, and
    /// nothing else; validation prompts enter every run's key; an online cap past the step streams is refused.
    #[test]
    fn one_stopping_rule_for_every_method_covers_online_and_golden_online() {
        let plain = ExperimentConfig { golden_reference: true, offline_patience: 6, offline_max_steps: 48, semi_online: vec![2], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let every = ExperimentConfig { past_best_every_method: true, validation_prompts: 32, ..plain.clone() };
        every.validate().unwrap();
        let spec = every.stage_spec();
        let runs = every.runs();
        assert!(runs.iter().any(|r| r.method == Method::ONLINE_GOLDEN) && runs.iter().any(|r| r.method == Method::semi_online(2)));
        for r in &runs {
            let ruled = [Method::ONLINE, Method::ONLINE_GOLDEN, Method::OFFLINE].contains(&r.method);
            assert_eq!(pipeline::past_best_of(&spec, r).is_some(), ruled, "{r:?}");
            assert_ne!(pipeline::run_key(&plain.stage_spec(), 0, "cpu", r), pipeline::run_key(&spec, 0, "cpu", r), "{r:?}");
        }
        let err = ExperimentConfig { offline_max_steps: crate::rng::streams::MAX_ONLINE_STEPS + 1, ..every.clone() }.validate().unwrap_err().message;
        assert!(err.contains("offline_max_steps"), "{err}");
        let err = ExperimentConfig { offline_patience: 0, ..every }.validate().unwrap_err().message;
        assert!(err.contains("past_best_every_method") && err.contains("offline_patience"), "{err}");
    }

    /// The data experiments' runs follow each online run, one per window, at its setting; a window outside
    /// the paper's set is refused by name.
    #[test]
    fn stream_runs_follow_their_online_run() {
        let cfg = ExperimentConfig { betas: vec![0.1, 0.5], stream_windows: vec![1, 0], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        cfg.validate().unwrap();
        let runs = cfg.runs();
        for (i, r) in runs.iter().enumerate().filter(|(_, r)| r.method == Method::ONLINE) {
            assert_eq!(runs[i + 1], RunSpec { method: Method::stream(1), ..*r });
            assert_eq!(runs[i + 2], RunSpec { method: Method::stream(0), ..*r });
        }
        assert_eq!(runs.len(), 2 * 5);
        for name in ["replay", "fig4", "fig13", "semi-online"] {
            let p = ExperimentConfig::preset(name).unwrap();
            assert!(p.seeds.len() >= 3 && !(p.stream_windows.is_empty() && p.semi_online.is_empty()));
            let full = ExperimentConfig::preset("fig1").unwrap();
            assert_eq!(p.stage_spec().model_config(), full.stage_spec().model_config());
            assert_eq!(crate::settings::differing_keys(&p, &full).unwrap().iter().filter(|k| !["seeds", "align_seeds", "stream_windows", "semi_online"].contains(&k.as_str())).count(), 0, "{name} shares fig1's stages and runs");
        }
        // Any window up to the stream's length is a run (the paper's are 1, 2, 8, 32 and 0); a wider one is refused.
        let other = ExperimentConfig { stream_windows: vec![4], ..cfg.clone() };
        other.validate().unwrap();
        assert!(other.runs().iter().any(|r| r.method.name() == "stream_window4"));
        let bad = ExperimentConfig { stream_windows: vec![13], ..cfg.clone() };
        assert!(bad.validate().unwrap_err().message.contains("stream_windows[0] = 13"));
        let twice = ExperimentConfig { stream_windows: vec![2, 2], ..cfg };
        assert!(twice.validate().unwrap_err().message.contains("stream_windows[1] = 2"));
    }

    #[test]
    fn alignment_seeds_repeat_the_first_seeds_online_and_offline_runs() {
        let cfg = ExperimentConfig { seeds: vec![4, 5], align_seeds: vec![7, 8], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
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
        let bad = ExperimentConfig { align_seeds: vec![4], ..cfg.clone() };
        assert!(bad.validate().unwrap_err().message.contains("align_seeds: 4"));
        let bad = ExperimentConfig { align_seeds: vec![7, 7], ..cfg };
        assert!(bad.validate().unwrap_err().message.contains("align_seeds: 7"));
    }
}

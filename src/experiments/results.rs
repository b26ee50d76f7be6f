//! An experiment's results (results.json): every checkpoint of every run, each seed's stages, the datasets written
//! beside them; and the one merge that combines per-seed results, seed groups (the page's workers) and shards.

use super::experiment::ExperimentConfig;
use super::pipeline::{self, ModelSize, NoCache, OracleReport, Progress, ProxyReport, Row, RunSpec, SeedModels, SeedResults};
use super::plan::{run_seed, Placement, Shard};
use crate::bail;
use crate::engine::Engine;
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentResults {
    pub config: ExperimentConfig,
    pub backend: String,
    pub checkpoints: Vec<Row>,
    pub proxy: Vec<ProxyReport>,
    /// Each seed's headroom on its task, where the config measured it (the precondition analysis).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oracle: Vec<OracleReport>,
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

impl ExperimentResults {
    /// No checkpoints yet (a run under way).
    pub fn empty(cfg: &ExperimentConfig, backend: String) -> Self {
        ExperimentResults { config: cfg.clone(), backend, checkpoints: vec![], proxy: vec![], oracle: vec![], sft_loss: vec![], timings: vec![], complete: false, shard: None, datasets: vec![], trl_names: trl_names(), scaling_sft_loss: vec![], wall_seconds: None }
    }

    /// Results order, whatever order the parts arrived in: seeds as in the config, each seed's runs as in
    /// [`ExperimentConfig::runs`], each run's checkpoints by step.
    pub fn sort(&mut self) {
        let runs: Vec<(u32, Vec<RunSpec>)> = self.config.seeds.iter().map(|&s| (s, self.config.runs_for(s))).collect();
        let seeds = &self.config.seeds;
        let seed_pos = |seed: u32| seeds.iter().position(|&s| s == seed).unwrap_or(usize::MAX);
        let run_pos = |row: &Row| runs.iter().find(|(s, _)| *s == row.seed).and_then(|(_, rs)| rs.iter().position(|r| row.is_of(r))).unwrap_or(usize::MAX);
        self.checkpoints.sort_by_key(|row| (seed_pos(row.seed), run_pos(row), row.checkpoint.step));
        self.proxy.sort_by_key(|p| seed_pos(p.seed));
        self.oracle.sort_by_key(|o| seed_pos(o.seed));
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

/// The results from per-seed results, in the config's seed order; timings summed over seeds.
pub fn merge(cfg: &ExperimentConfig, backend: String, mut seeds: Vec<SeedResults>) -> Result<ExperimentResults> {
    seeds.sort_by_key(|s| cfg.seeds.iter().position(|&x| x == s.seed));
    let mut results = ExperimentResults { complete: true, ..ExperimentResults::empty(cfg, backend) };
    for s in seeds {
        let part = ExperimentResults {
            checkpoints: s.checkpoints,
            proxy: vec![s.proxy],
            oracle: s.oracle.into_iter().collect(),
            sft_loss: vec![(s.seed, s.sft_loss)],
            scaling_sft_loss: s.sized_sft_loss.into_iter().map(|(p, losses)| SizedSftLoss { seed: s.seed, policy: Some(p), losses }).collect(),
            timings: s.timings,
            complete: true,
            ..ExperimentResults::empty(cfg, String::new())
        };
        results.absorb(part)?;
    }
    Ok(results)
}

impl ExperimentResults {
    /// The merge core: adds `part`'s checkpoints, timings and finished-ness to these results, and its seeds' stages and
    /// datasets where these do not have them yet, refusing a part that disagrees on one they share (two shards of a
    /// seed both report its stages; seed groups and per-seed results never share one).
    fn absorb(&mut self, part: ExperimentResults) -> Result<()> {
        self.complete &= part.complete;
        self.checkpoints.extend(part.checkpoints);
        // A dataset two shards both built (an online stream each trained for its stream runs) is one file.
        for d in part.datasets {
            match self.datasets.iter().find(|x| x.seed == d.seed && x.name == d.name) {
                Some(x) if x.sha256 != d.sha256 => bail!("merge: shards disagree on seed {}'s dataset {} (sha256 {} vs {})", d.seed, d.name, x.sha256, d.sha256),
                Some(_) => {}
                None => self.datasets.push(d),
            }
        }
        for r in part.proxy {
            match self.proxy.iter().find(|q| q.seed == r.seed) {
                Some(q) if q != &r => bail!("merge: shards disagree on seed {}'s proxy accuracy ({} vs {})", r.seed, q.heldout_accuracy, r.heldout_accuracy),
                Some(_) => {}
                None => self.proxy.push(r),
            }
        }
        for o in part.oracle {
            match self.oracle.iter().find(|q| q.seed == o.seed) {
                Some(q) if q != &o => bail!("merge: shards disagree on seed {}'s oracle win rate ({} vs {})", o.seed, q.win_rate, o.win_rate),
                Some(_) => {}
                None => self.oracle.push(o),
            }
        }
        for l in part.scaling_sft_loss {
            match self.scaling_sft_loss.iter().find(|x| x.seed == l.seed && x.policy == l.policy) {
                Some(x) if x != &l => bail!("merge: shards disagree on seed {}'s SFT losses at size {:?}", l.seed, l.policy.map(|p| p.to_string())),
                Some(_) => {}
                None => self.scaling_sft_loss.push(l),
            }
        }
        for (seed, loss) in part.sft_loss {
            match self.sft_loss.iter().find(|(s, _)| *s == seed) {
                Some((_, l)) if l != &loss => bail!("merge: shards disagree on seed {seed}'s SFT losses"),
                Some(_) => {}
                None => self.sft_loss.push((seed, loss)),
            }
        }
        for (name, secs) in part.timings {
            pipeline::add_time(&mut self.timings, &name, secs * 1e3);
        }
        Ok(())
    }
}

/// Every seed in turn on one engine, no cache.
pub async fn run(e: &Engine, cfg: &ExperimentConfig, mut progress: impl FnMut(Progress), mut keep: impl FnMut(SeedModels) -> Result<()>) -> Result<ExperimentResults> {
    let mut seeds = vec![];
    for &seed in &cfg.seeds {
        seeds.push(run_seed(e, cfg, seed, &cfg.runs_for(seed), &mut NoCache, Placement::default(), &mut progress, &mut keep).await?);
    }
    merge(cfg, e.identity(), seeds)
}

/// The figure's results from runs of the same config over disjoint groups of its seeds (the page runs
/// each group in its own Web Worker): each part's config must equal `cfg` but for its seeds, and the parts'
/// seeds together must be exactly `cfg`'s.
pub fn merge_seed_groups(cfg: &ExperimentConfig, parts: Vec<ExperimentResults>) -> Result<ExperimentResults> {
    let Some(first) = parts.first() else { bail!("merge: no results given") };
    let mut merged = ExperimentResults::empty(cfg, first.backend.clone());
    merged.complete = true;
    let mut seen = vec![];
    for p in parts {
        let mut same = p.config.clone();
        same.seeds = cfg.seeds.clone();
        if same != *cfg {
            bail!("merge: a part has another config (differs in: {})", crate::settings::differing_keys(cfg, &p.config)?.join(", "));
        }
        if let Some(s) = p.config.seeds.iter().find(|s| seen.contains(*s) || !cfg.seeds.contains(s)) {
            bail!("merge: seed {s} is in two parts, or not in the config's seeds {:?}", cfg.seeds);
        }
        seen.extend(p.config.seeds.iter().copied());
        merged.absorb(p)?;
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
pub fn merge_shards(parts: Vec<ExperimentResults>) -> Result<ExperimentResults> {
    let Some(first) = parts.first() else { bail!("merge: no results given") };
    let (cfg, backend) = (first.config.clone(), first.backend.clone());
    let count = match first.shard {
        Some(s) => s.count,
        None => bail!("merge: the first results are not a shard (reproduce --shard i/n writes shards)"),
    };
    let mut seen = vec![false; count];
    for p in &parts {
        if p.config != cfg {
            bail!("merge: shard {} has another config (differs in: {})", show(p.shard), crate::settings::differing_keys(&cfg, &p.config)?.join(", "));
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
    let mut merged = ExperimentResults::empty(&cfg, backend);
    merged.complete = true;
    for p in parts {
        merged.absorb(p)?;
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

    fn part(cfg: &ExperimentConfig, seeds: Vec<u32>) -> ExperimentResults {
        let mut r = ExperimentResults::empty(&ExperimentConfig { seeds: seeds.clone(), ..cfg.clone() }, "cpu".into());
        r.complete = true;
        for s in seeds {
            r.proxy.push(ProxyReport { seed: s, heldout_accuracy: 0.9, ..ProxyReport::default() });
        }
        r
    }

    #[test]
    fn seed_groups_merge_only_when_they_cover_the_seeds_once() {
        let cfg = ExperimentConfig { seeds: vec![3, 4, 5], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let merged = merge_seed_groups(&cfg, vec![part(&cfg, vec![3, 5]), part(&cfg, vec![4])]).unwrap();
        assert_eq!(merged.proxy.iter().map(|p| p.seed).collect::<Vec<_>>(), vec![3, 4, 5], "in the config's seed order");
        assert_eq!(merged.config, cfg);
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3, 4]), part(&cfg, vec![4, 5])]).unwrap_err().message.contains("seed 4 is in two parts"));
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3])]).unwrap_err().message.contains("the config needs"));
        let mut other = part(&cfg, vec![4, 5]);
        other.config.steps += 1;
        assert!(merge_seed_groups(&cfg, vec![part(&cfg, vec![3]), other]).unwrap_err().message.contains("another config"));
    }
}

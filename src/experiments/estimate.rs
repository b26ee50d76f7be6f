//! How long an experiment should take on a device: a count of the work in each stage, scaled from the bench's
//! measured step and sampling speed.

use super::experiment::{Analysis, ExperimentConfig};
use super::pipeline::ModelSize;

impl ExperimentConfig {
    /// Seconds this config should take on a device whose S-size bench (`crate::bench`) measured
    /// `train_step_ms` per training step and `sample_tokens_per_s`: a count of the work in each stage,
    /// scaled from the bench's shape. An estimate (attention and the vocabulary are not in the scaling).
    pub fn estimate_seconds(&self, train_step_ms: f64, sample_tokens_per_s: f64) -> f64 {
        self.estimate_seconds_from(train_step_ms, sample_tokens_per_s, false)
    }

    /// [`ExperimentConfig::estimate_seconds`], without the SFT and proxy stages when `stages_given` (they come from a cache or
    /// are shipped with the site; D_golden is still sampled, only as far as the offline runs read it:
    /// [`super::pipeline::d_golden_read`]).
    pub fn estimate_seconds_from(&self, train_step_ms: f64, sample_tokens_per_s: f64, stages_given: bool) -> f64 {
        self.estimate_seconds_on(train_step_ms, sample_tokens_per_s, stages_given, Workers::ONE)
    }

    /// [`ExperimentConfig::estimate_seconds_from`] on `workers` (the page's CPU workers): the seeds split over its
    /// seed groups, and, with data-parallel steps (`align_chunks`: the page then starts helper workers), each alignment
    /// step's forward and backward passes over its chunk workers (never past one per chunk), and the sampling and the
    /// forward passes of labels and evaluation over all of them (`train::parallel`; sampling from a mixture with π_sft
    /// stays on the run's own worker). Assumes perfect sharing: an estimate's lower side.
    pub fn estimate_seconds_on(&self, train_step_ms: f64, sample_tokens_per_s: f64, stages_given: bool, workers: Workers) -> f64 {
        use crate::bench::{BATCH, CONTEXT};
        let (t, y) = (self.task.context() as f64, self.task.max_summary as f64);
        let pm_t = self.proxy.form().context(&self.task) as f64;
        let flops = |p: ModelSize| (p.layers * p.d_model * p.d_model) as f64;
        let scale = flops(self.policy) / (2.0 * 64.0 * 64.0);
        // A run or SFT at another size of the scaling ladder, relative to `policy`'s (the proxy's share of an
        // online step scaled with it too: an over-estimate for smaller sizes).
        let relative = |p: Option<ModelSize>| p.map_or(1.0, |p| flops(p) / flops(self.policy));
        // The proxy's trunk, when it has its own size: its training, scoring and (when no size of the scaling
        // ladder is it) its own SFT scale with it.
        let trunk = self.proxy.trunk_apart_from(self.policy);
        let pm_scale = relative(trunk);
        let trunk_sft = trunk.filter(|p| !self.scaling.contains(p)).map_or(0.0, |p| relative(Some(p)));
        // ms per token of forward + backward + update; a forward alone is about a third of it.
        let fb = train_step_ms / (BATCH * CONTEXT) as f64 * scale;
        let fwd = fb / 3.0;
        let sample = 1e3 / sample_tokens_per_s.max(1e-9) * scale;
        let b = self.batch as f64;
        let sft = self.sft.steps as f64 * self.sft.batch as f64 * t * fb;
        let spec = self.stage_spec();
        let drawn = match (stages_given, self.seeds.first()) {
            (true, Some(&s)) => super::pipeline::d_golden_read(&spec, &self.runs_for(s)).map_or(self.d_golden, |r| r.min(self.d_golden)),
            _ => self.d_golden,
        };
        let d_golden = 2.0 * (drawn + self.heldout) as f64 * y * sample;
        let validation = 2.0 * self.proxy.validation_pairs(self.d_golden) as f64 * pm_t * fwd;
        let proxy = pm_scale * (self.proxy.steps as f64 * 2.0 * self.proxy.batch as f64 * pm_t * fb + (self.proxy.steps / self.proxy.eval_every.max(1)) as f64 * validation + 2.0 * self.heldout as f64 * pm_t * fwd);
        let mut eval = (self.win_prompts + self.kl_prompts + self.validation_prompts) as f64 * y * sample + self.kl_prompts as f64 * t * 2.0 * fwd + 2.0 * self.heldout as f64 * t * fwd + pm_scale * 4.0 * self.win_prompts as f64 * pm_t * fwd;
        if self.analyses.contains(&Analysis::SelfClassification) {
            // A second sample per win-rate prompt, and both policies' log-probs of the pairs.
            eval += self.win_prompts as f64 * (y * sample + 4.0 * t * fwd);
        }
        if self.analyses.contains(&Analysis::StreamClassification) {
            eval += 4.0 * crate::train::eval::STREAM_STRETCH as f64 * t * fwd;
        }
        // The workers sharing a run: its own and its helpers, which the page starts only for data-parallel steps.
        let (sharing, chunk_workers) = match self.align_chunks {
            0 => (1.0, 1.0),
            c => (workers.chunk_workers.max(1) as f64, workers.chunk_workers.clamp(1, c as usize) as f64),
        };
        let evals = |steps: u32| (steps / self.eval_every + 2 + self.log_evals) as f64 * eval / sharing;
        let d_golden = d_golden / sharing;
        let offline_step = 2.0 * b * t * (fb + fwd) / chunk_workers;
        let golden_step = 2.0 * b * y * sample / sharing + offline_step;
        let proxy_step = pm_scale * 4.0 * b * pm_t * fwd / sharing;
        // A run under the stopping rule is counted at its length plus three patiences (fig1-fair's pilot on search
        // seed 100: 500–1700 steps, median 1000–1200, for 200 steps and a patience of 300), at most the cap.
        let length = |r: &super::pipeline::RunSpec| match super::pipeline::past_best_of(&spec, r) {
            Some(p) => (r.steps + 3 * p.patience).min(p.max_steps.max(r.steps)),
            None => r.steps,
        };
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
                (length(&r) as f64 * per_step + evals(length(&r))) * relative(r.policy)
            })
            .sum::<f64>()
            / self.seeds.len().max(1) as f64;
        let sft = sft * (1.0 + trunk_sft + self.scaling.iter().map(|&p| relative(Some(p))).sum::<f64>());
        let (sft, proxy) = if stages_given { (0.0, 0.0) } else { (sft, proxy) };
        let per_seed = sft + d_golden + proxy + runs;
        // Seeds in groups, one group per worker at once: the largest group's seeds one after another.
        let groups = workers.seed_groups.clamp(1, self.seeds.len().max(1));
        per_seed * self.seeds.len().div_ceil(groups) as f64 / 1e3
    }
}

/// The CPU workers a run is spread over (the page's `run.js` decides them): seeds in `seed_groups` workers at once,
/// and, for one group, each data-parallel step's chunks over `chunk_workers` (the run's worker and its helpers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Workers {
    pub seed_groups: usize,
    pub chunk_workers: usize,
}

impl Workers {
    pub const ONE: Workers = Workers { seed_groups: 1, chunk_workers: 1 };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers shorten the estimate where they share work: seed groups the seeds; chunk workers (only with data-parallel
    /// steps) the training steps, never past one worker per chunk, and the sampling and evaluation.
    #[test]
    fn the_estimate_counts_the_workers() {
        let mut cfg = ExperimentConfig::preset("fig1-quick").unwrap();
        let one = cfg.estimate_seconds_on(100.0, 20_000.0, true, Workers::ONE);
        assert_eq!(one, cfg.estimate_seconds_from(100.0, 20_000.0, true));
        let two = Workers { seed_groups: 1, chunk_workers: 2 };
        assert_eq!(cfg.estimate_seconds_on(100.0, 20_000.0, true, two), one, "one pass: the chunk workers have nothing to share");
        cfg.align_chunks = 4;
        let shared = cfg.estimate_seconds_on(100.0, 20_000.0, true, two);
        assert!((shared - one / 2.0).abs() < 1e-9 * one, "{shared} against {one}: training steps, sampling and evaluation all shared");
        // Four chunks over eight workers: the steps' passes shared four ways, sampling and evaluation eight.
        let eight = cfg.estimate_seconds_on(100.0, 20_000.0, true, Workers { seed_groups: 1, chunk_workers: 8 });
        assert!(eight < cfg.estimate_seconds_on(100.0, 20_000.0, true, Workers { seed_groups: 1, chunk_workers: 4 }) && eight > one / 8.0);
        cfg.seeds = vec![0, 1, 2];
        let alone = cfg.estimate_seconds_on(100.0, 20_000.0, true, Workers::ONE);
        let grouped = cfg.estimate_seconds_on(100.0, 20_000.0, true, Workers { seed_groups: 2, chunk_workers: 1 });
        assert!((grouped - alone * 2.0 / 3.0).abs() < 1e-9 * alone, "three seeds in two groups take two seeds' time");
    }
}

//! The stages every experiment is built from, and their cache (docs/method.md):
//!
//! per seed, once: SFT → D_golden and the held-out pairs → the proxy PM → the fixed evaluation set;
//! then any number of alignment runs, each a [`RunSpec`] (method, β, lr, steps) from those stages.
//!
//! An experiment (e.g. [`super::super::experiment`]) is data: a config with presets, the list of runs it needs per
//! seed, and the analysis that turns their checkpoints into its figure. Trained stages and finished runs
//! are cached by the hash of everything that determines them, so a rerun resumes and a sweep never
//! retrains what it shares.
//!
//! The rooms: `spec` (what stages and runs depend on: sizes, [`StageSpec`], [`RunSpec`]), `stages` (a seed's SFT,
//! D_golden, proxy and evaluation sets), `run` (one alignment run, and a seed's runs in order), `cache` (the cache
//! interface, its keys, and the directory cache of the CLI), `records` (what runs report: checkpoint rows, the
//! proxy's report, models and datasets to save).

mod cache;
mod records;
mod run;
mod spec;
mod stages;

pub use cache::{hash_json, past_best_of, resume_keys, run_key, stage_keys, NoCache, StageCache};
#[cfg(not(target_arch = "wasm32"))]
pub use cache::DirCache;
pub use records::{add_time, check_finite, NamedDataset, OracleReport, Progress, ProxyReport, Row, Rung, SeedModels, SeedResults};
pub use run::{join2, run_seed};
pub use spec::{size_text, ModelSize, RunSpec, StageSpec};
pub use stages::{d_golden_read, seed_stages, seed_stages_reading, SeedStages, SizedSft};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::Method;
    use crate::train::eval::Checkpoint;
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
        Row { method: Method::ONLINE, seed: 3, beta: 0.1, lr: 5e-4, run_steps: 12, align_seed: None, policy: None, checkpoint }
    }

    #[test]
    fn non_finite_metrics_are_refused_by_name_not_written_as_null() {
        assert!(check_finite(&row(0.5, Some(0.7))).is_ok());
        assert!(check_finite(&row(0.5, None)).is_ok(), "an unmeasured metric is not an error");
        let e = check_finite(&row(f32::NAN, None)).unwrap_err().message;
        assert!(e.contains("seed 3 online β=0.1 lr=0.0005 step 6: kl is not finite (NaN)"), "{e}");
        let e = check_finite(&row(0.5, Some(f32::INFINITY))).unwrap_err().message;
        assert!(e.contains("proxy_win_rate is not finite (inf)"), "{e}");
    }

}
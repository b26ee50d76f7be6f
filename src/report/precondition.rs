//! The paper's precondition for its explanation (issue 29), measured with offline IPO and the proxy alone, so that a
//! rule choosing a task on it cannot see the online − offline gap. Per seed:
//!
//! - offline IPO becomes a good classifier of held-out D_golden: its best checkpoint's classifier accuracy
//!   ≥ [`MIN_CLASSIFIER_ACCURACY`];
//! - without becoming a better generator as it does: the Pearson correlation of classifier accuracy and golden win
//!   rate over offline's checkpoints past step 0 (every β pooled) ≤ [`MAX_CORRELATION`];
//! - the proxy is good enough to label an online run: tie-free held-out accuracy ≥ [`MIN_PROXY_TIE_FREE`];
//! - the task leaves room to improve: the oracle summary's golden win rate against π_sft − ½ ≥ [`MIN_HEADROOM`].
//!
//! A task meets the precondition when every seed meets every criterion (results/task2/SEARCH.md).

use super::classifiers::{correlations, trained};
use super::stats::main_rows;
use crate::experiments::pipeline::{OracleReport, Row};
use crate::experiments::{ExperimentResults, Method};

pub const MIN_CLASSIFIER_ACCURACY: f32 = 0.65;
pub const MAX_CORRELATION: f32 = 0.3;
pub const MIN_PROXY_TIE_FREE: f32 = 0.9;
pub const MIN_HEADROOM: f32 = 0.3;

/// One seed's four numbers (none where not measured: no offline checkpoint past step 0, fewer than 3 of them or
/// no spread, a proxy report without a tie-free accuracy, no oracle report).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedPrecondition {
    pub seed: u32,
    /// The best offline checkpoint's classifier accuracy on held-out D_golden, and its (β, step).
    pub best_accuracy: Option<(f32, f32, u32)>,
    /// Pearson's r of classifier accuracy and golden win rate over offline's checkpoints past step 0, and how many.
    pub correlation: Option<(f32, usize)>,
    pub proxy_tie_free: Option<f32>,
    /// The oracle's golden win rate against π_sft, less ½.
    pub headroom: Option<f32>,
}

impl SeedPrecondition {
    /// Each criterion's verdict, in the module's order: met, missed, or not measured (none).
    pub fn criteria(&self) -> [Option<bool>; 4] {
        [
            self.best_accuracy.map(|a| a.0 >= MIN_CLASSIFIER_ACCURACY),
            self.correlation.map(|c| c.0 <= MAX_CORRELATION),
            self.proxy_tie_free.map(|p| p >= MIN_PROXY_TIE_FREE),
            self.headroom.map(|h| h >= MIN_HEADROOM),
        ]
    }

    /// Every criterion measured and met.
    pub fn met(&self) -> bool {
        self.criteria().iter().all(|c| *c == Some(true))
    }
}

/// Per seed of the config, its four numbers: Fig. 7's per-seed correlation over offline IPO's checkpoints past
/// step 0 (the alignment repeats and other policy sizes left out, as every analysis does).
pub fn per_seed(results: &ExperimentResults) -> Vec<SeedPrecondition> {
    let rows = main_rows(&results.checkpoints);
    let offline = |r: &Row| r.method == Method::OFFLINE;
    let correlations = correlations(&rows, offline);
    results
        .config
        .seeds
        .iter()
        .map(|&seed| {
            let best_accuracy = trained(&rows)
                .filter(|r| r.seed == seed && offline(r))
                .max_by(|a, b| a.checkpoint.classifier_accuracy.total_cmp(&b.checkpoint.classifier_accuracy))
                .map(|r| (r.checkpoint.classifier_accuracy, r.beta, r.checkpoint.step));
            let correlation = correlations.iter().find(|c| c.0 == seed).map(|&(_, r, n)| (r, n));
            let proxy_tie_free = results.proxy.iter().find(|p| p.seed == seed).and_then(|p| p.tie_free_accuracy);
            let headroom = results.oracle.iter().find(|o: &&OracleReport| o.seed == seed).map(|o| o.win_rate - 0.5);
            SeedPrecondition { seed, best_accuracy, correlation, proxy_tie_free, headroom }
        })
        .collect()
}

/// The section of summary.md: the table, the rule, and whether this task meets it.
pub fn precondition_md(results: &ExperimentResults) -> String {
    let seeds = per_seed(results);
    let mark = |c: Option<bool>| match c {
        Some(true) => " ✓",
        Some(false) => " ✗",
        None => "",
    };
    let mut s = format!("\n## The precondition (issue 29): task `{}`\n\n", results.config.task.kind.name());
    s += &format!(
        "Measured with offline IPO and the proxy alone (no online run): a task meets it when, on every seed, offline IPO's best checkpoint classifies held-out D_golden at ≥ {MIN_CLASSIFIER_ACCURACY}, the correlation of classifier accuracy and golden win rate over its checkpoints past step 0 (every β pooled) is ≤ {MAX_CORRELATION}, the proxy's tie-free held-out accuracy is ≥ {MIN_PROXY_TIE_FREE}, and the oracle summary's golden win rate against π_sft exceeds ½ by ≥ {MIN_HEADROOM}.\n\n"
    );
    s += "| seed | offline's best classifier accuracy (β, step) | r(accuracy, win rate) over offline's checkpoints (n) | proxy tie-free | headroom (oracle win rate − ½) | met |\n|---|---|---|---|---|---|\n";
    for p in &seeds {
        let [a, r, q, h] = p.criteria();
        let cell = |v: Option<String>, c: Option<bool>| v.map(|v| format!("{v}{}", mark(c))).unwrap_or_else(|| "not measured".into());
        s += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            p.seed,
            cell(p.best_accuracy.map(|(acc, beta, step)| format!("{acc:.3} (β {beta}, step {step})")), a),
            cell(p.correlation.map(|(r, n)| format!("{r:+.2} ({n})")), r),
            cell(p.proxy_tie_free.map(|v| format!("{v:.3}")), q),
            cell(p.headroom.map(|v| format!("{v:+.3}")), h),
            if p.met() { "yes" } else { "no" }
        );
    }
    let all = !seeds.is_empty() && seeds.iter().all(SeedPrecondition::met);
    s += &format!("\n**Computed: the task {} the precondition** ({} of {} seeds meet every criterion).\n", if all { "meets" } else { "does not meet" }, seeds.iter().filter(|p| p.met()).count(), seeds.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::pipeline::ProxyReport;
    use crate::experiments::ExperimentConfig;
    use crate::train::eval::Checkpoint;

    fn row(method: Method, seed: u32, beta: f32, step: u32, acc: f32, win: f32) -> Row {
        Row { method, seed, beta, lr: 5e-4, run_steps: 200, align_seed: None, policy: None, checkpoint: Checkpoint { step, classifier_accuracy: acc, golden_win_rate: win, ..Checkpoint::default() } }
    }

    fn results(rows: Vec<Row>, tie_free: f32, oracle: f32) -> ExperimentResults {
        let config = ExperimentConfig { seeds: vec![100], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let mut r = ExperimentResults::empty(&config, "test".into());
        r.checkpoints = rows;
        r.proxy = vec![ProxyReport { seed: 100, tie_free_accuracy: Some(tie_free), ..ProxyReport::default() }];
        r.oracle = vec![OracleReport { seed: 100, win_rate: oracle, ties: 0.0 }];
        r
    }

    /// Accuracy rising while the win rate falls and rises again: r computed by hand, every criterion met; the same
    /// points with the win rate following the accuracy miss the correlation criterion alone.
    #[test]
    fn the_criteria_follow_hand_computed_numbers() {
        // acc 0.6, 0.7, 0.8 against win 0.6, 0.5, 0.6: mean-centred (−0.1, 0, 0.1)·(1/30, −2/30, 1/30) sums to 0: r = 0.
        let mut rows = vec![row(Method::OFFLINE, 100, 0.1, 0, 0.5, 0.5), row(Method::OFFLINE, 100, 0.1, 10, 0.6, 0.6), row(Method::OFFLINE, 100, 0.1, 20, 0.7, 0.5), row(Method::OFFLINE, 100, 0.01, 10, 0.8, 0.6)];
        // Online's checkpoints and step 0 are not offline's training: they must not count.
        rows.push(row(Method::ONLINE, 100, 0.1, 10, 0.99, 0.99));
        let p = per_seed(&results(rows.clone(), 0.95, 0.9))[0];
        assert_eq!(p.best_accuracy, Some((0.8, 0.01, 10)));
        let (r, n) = p.correlation.unwrap();
        assert!(r.abs() < 1e-6 && n == 3, "r {r}, n {n}");
        assert!((p.headroom.unwrap() - 0.4).abs() < 1e-6);
        assert_eq!(p.criteria(), [Some(true); 4]);
        assert!(precondition_md(&results(rows.clone(), 0.95, 0.9)).contains("the task meets the precondition"));
        // Win rate rising with accuracy: r = 1.
        let rising: Vec<Row> = rows.iter().map(|r| Row { checkpoint: Checkpoint { golden_win_rate: r.checkpoint.classifier_accuracy, ..r.checkpoint.clone() }, ..r.clone() }).collect();
        let q = per_seed(&results(rising.clone(), 0.95, 0.9))[0];
        assert_eq!(q.criteria(), [Some(true), Some(false), Some(true), Some(true)]);
        assert!(precondition_md(&results(rising, 0.95, 0.9)).contains("does not meet"));
        // A weak proxy, no headroom, a poor classifier: each criterion alone.
        assert_eq!(per_seed(&results(rows.clone(), 0.89, 0.9))[0].criteria()[2], Some(false));
        assert_eq!(per_seed(&results(rows.clone(), 0.95, 0.79))[0].criteria()[3], Some(false));
        let poor: Vec<Row> = rows.iter().map(|r| Row { checkpoint: Checkpoint { classifier_accuracy: r.checkpoint.classifier_accuracy * 0.8, ..r.checkpoint.clone() }, ..r.clone() }).collect();
        assert_eq!(per_seed(&results(poor, 0.95, 0.9))[0].criteria()[0], Some(false));
    }

    /// A seed without offline checkpoints or an oracle report is not measured, and does not meet the precondition.
    #[test]
    fn an_unmeasured_seed_does_not_meet_it() {
        let mut r = results(vec![], 0.95, 0.9);
        r.oracle.clear();
        let p = per_seed(&r)[0];
        assert_eq!(p.criteria(), [None, None, Some(true), None]);
        assert!(!p.met());
        assert!(precondition_md(&r).contains("not measured"));
    }
}

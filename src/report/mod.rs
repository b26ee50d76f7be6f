//! Results as files: metrics.csv, the figure (SVG, one plotting path for the CLI and the page) and
//! summary.md, whose verdicts are computed from the data.

pub mod artifacts;
pub mod classifiers;
pub mod figure;
pub mod gao;
pub mod index;
pub mod precondition;
pub mod proxy_map;
pub mod scaling;
pub mod stats;
pub mod summary;
pub mod verdict;

use crate::experiments::pipeline::Row;

/// metrics.csv: one line per checkpoint.
pub fn metrics_csv(rows: &[Row]) -> String {
    let mut s = String::from("method,seed,beta,lr,run_steps,step,kl,golden_win_rate,ties,classifier_accuracy,proxy_win_rate,train_loss,golden_reward,length,repeats,hallucinations,eos_rate,align_seed,chosen_logratio,self_classifier_accuracy,policy\n");
    for r in rows {
        let c = &r.checkpoint;
        let loss = c.train_loss.map(|l| l.to_string()).unwrap_or_default();
        s += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.method, r.seed, r.beta, r.lr, r.run_steps, c.step, c.kl, c.golden_win_rate, c.ties, c.classifier_accuracy, c.proxy_win_rate.map(|p| p.to_string()).unwrap_or_default(), loss,
            c.responses.golden_reward, c.responses.length, c.responses.repeats, c.responses.hallucinations, c.responses.eos_rate,
            r.align_seed.map(|a| a.to_string()).unwrap_or_default(),
            c.chosen_logratio.map(|v| v.to_string()).unwrap_or_default(),
            c.self_classifier_accuracy.map(|v| v.to_string()).unwrap_or_default(),
            r.policy.map(|p| p.to_string()).unwrap_or_default()
        );
    }
    s
}

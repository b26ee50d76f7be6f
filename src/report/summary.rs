//! The comparison the figure makes, as numbers: golden win rate binned by log KL, per method, mean over
//! seeds with a 95 % t-interval, and each method's peak. The verdict in summary.md is computed here.

use crate::experiments::fig1::Fig1Results;
use crate::experiments::pipeline::Row;

/// Checkpoints with KL below this (the untrained start) have no log KL and are left out of bins and plots.
pub const MIN_KL: f32 = 1e-3;

#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub mean: f32,
    /// Half-width of the 95 % interval across seeds (None with one seed).
    pub ci: Option<f32>,
    pub seeds: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    /// Bounds in ln KL.
    pub lo: f32,
    pub hi: f32,
    pub methods: Vec<(String, Estimate)>,
}

impl Bin {
    pub fn get(&self, method: &str) -> Option<&Estimate> {
        self.methods.iter().find(|(m, _)| m == method).map(|(_, e)| e)
    }
}

/// Two-sided 95 % Student-t quantile for `df` degrees of freedom.
fn t95(df: usize) -> f32 {
    const T: [f32; 10] = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];
    if df == 0 { f32::NAN } else if df <= 10 { T[df - 1] } else if df < 30 { 2.1 } else { 1.96 }
}

/// Mean across per-seed values, with a t-interval.
pub fn estimate(per_seed: &[f32]) -> Estimate {
    let n = per_seed.len();
    let mean = per_seed.iter().sum::<f32>() / n as f32;
    let ci = (n > 1).then(|| {
        let var = per_seed.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / (n - 1) as f32;
        t95(n - 1) * (var / n as f32).sqrt()
    });
    Estimate { mean, ci, seeds: n }
}

pub fn methods(rows: &[Row]) -> Vec<String> {
    let mut m: Vec<String> = vec![];
    for r in rows {
        if !m.contains(&r.method) {
            m.push(r.method.clone());
        }
    }
    m
}

/// `n` equal-width bins of ln KL over all checkpoints; within a bin, each seed's mean win rate, then the
/// mean and interval over seeds.
pub fn binned(rows: &[Row], n: usize) -> Vec<Bin> {
    let pts: Vec<&Row> = rows.iter().filter(|r| r.checkpoint.kl > MIN_KL).collect();
    if pts.is_empty() {
        return vec![];
    }
    let xs: Vec<f32> = pts.iter().map(|r| r.checkpoint.kl.ln()).collect();
    let (lo, hi) = xs.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let width = ((hi - lo) / n as f32).max(1e-6);
    (0..n)
        .map(|i| {
            let (a, b) = (lo + i as f32 * width, lo + (i + 1) as f32 * width);
            let inside = |x: f32| x >= a && (x < b || (i == n - 1 && x <= b));
            let methods = methods(rows)
                .into_iter()
                .filter_map(|m| {
                    let mut seeds: Vec<u32> = vec![];
                    let mut per_seed = vec![];
                    for (r, &x) in pts.iter().zip(&xs) {
                        if r.method == m && inside(x) && !seeds.contains(&r.seed) {
                            seeds.push(r.seed);
                        }
                    }
                    for s in &seeds {
                        let v: Vec<f32> = pts.iter().zip(&xs).filter(|(r, &x)| r.method == m && r.seed == *s && inside(x)).map(|(r, _)| r.checkpoint.golden_win_rate).collect();
                        per_seed.push(v.iter().sum::<f32>() / v.len() as f32);
                    }
                    (!per_seed.is_empty()).then(|| (m, estimate(&per_seed)))
                })
                .collect();
            Bin { lo: a, hi: b, methods }
        })
        .collect()
}

/// Each seed's best checkpoint per method, then mean and interval over seeds.
pub fn peak(rows: &[Row], method: &str) -> Option<Estimate> {
    let mut best: Vec<(u32, f32)> = vec![];
    for r in rows.iter().filter(|r| r.method == method && r.checkpoint.kl > MIN_KL) {
        match best.iter_mut().find(|(s, _)| *s == r.seed) {
            Some((_, b)) => *b = b.max(r.checkpoint.golden_win_rate),
            None => best.push((r.seed, r.checkpoint.golden_win_rate)),
        }
    }
    (!best.is_empty()).then(|| estimate(&best.iter().map(|(_, b)| *b).collect::<Vec<_>>()))
}

fn show(e: Option<&Estimate>) -> String {
    match e {
        None => "—".into(),
        Some(Estimate { mean, ci: Some(ci), seeds }) => format!("{mean:.3} ± {ci:.3} ({seeds} seeds)"),
        Some(Estimate { mean, ci: None, seeds }) => format!("{mean:.3} ({seeds} seed{})", if *seeds == 1 { "" } else { "s" }),
    }
}

/// summary.md: the setting, the proxy, the binned table, the peaks and the verdict, all from the data.
pub fn summary_md(results: &Fig1Results, bins: &[Bin]) -> String {
    let rows = &results.checkpoints;
    let c = &results.config;
    let mut s = String::from("# Figure 1 — online vs offline IPO: golden win rate against KL\n\n");
    if !results.complete {
        s += "**Partial results**: the run has not finished (or stopped on an error); these are the checkpoints written so far. Rerun the same command to complete them.\n\n";
    }
    s += &format!(
        "Seeds {:?}; loss {:?}; β {:?}; lr {:?}; online {} steps, offline {:?} steps, of {} pairs; policy {} layers × d {}; D_golden {} pairs. Every checkpoint of every setting is pooled, as in the paper. Backend: {}.\n\n",
        c.seeds, c.loss, c.betas, c.lrs, c.steps, c.offline_steps, c.batch, c.policy.layers, c.policy.d_model, c.d_golden, results.backend
    );
    s += "Proxy preference model, held-out accuracy on golden labels: ";
    s += &results.proxy.iter().map(|p| format!("seed {} {:.3}", p.seed, p.heldout_accuracy)).collect::<Vec<_>>().join(", ");
    s += "\n\nWin rate is against π_sft's samples on fixed prompts, judged by the golden reward (ties count ½). Bins are equal-width in ln KL; each cell is the mean over seeds of each seed's mean in the bin, with a 95 % t-interval across seeds.\n\n";
    let ms = methods(rows);
    s += &format!("| ln KL | {} |\n|---|{}\n", ms.join(" | "), "---|".repeat(ms.len()));
    for b in bins {
        s += &format!("| {:.2} … {:.2} | {} |\n", b.lo, b.hi, ms.iter().map(|m| show(b.get(m))).collect::<Vec<_>>().join(" | "));
    }
    let shared: Vec<&Bin> = bins.iter().filter(|b| b.get("online").is_some() && b.get("offline").is_some()).collect();
    let above = shared.iter().filter(|b| b.get("online").unwrap().mean > b.get("offline").unwrap().mean).count();
    let separated = shared
        .iter()
        .filter(|b| {
            let (on, off) = (b.get("online").unwrap(), b.get("offline").unwrap());
            matches!((on.ci, off.ci), (Some(a), Some(c)) if on.mean - a > off.mean + c)
        })
        .count();
    let (p_on, p_off) = (peak(rows, "online"), peak(rows, "offline"));
    s += &format!("\nPeak (each seed's best checkpoint): online {}, offline {}", show(p_on.as_ref()), show(p_off.as_ref()));
    if let Some(g) = peak(rows, "online_golden") {
        s += &format!(", online with golden labels {}", show(Some(&g)));
    }
    s += ".\n\n## Verdict (computed)\n\n";
    if shared.is_empty() {
        s += "Online and offline runs reached no common KL range, so they cannot be compared at matched KL.\n";
    } else {
        s += &format!(
            "Online IPO is above offline IPO at matched KL in {above} of {} shared bins; in {separated} of them the 95 % intervals do not overlap.\n",
            shared.len()
        );
        let peak_higher = matches!((&p_on, &p_off), (Some(a), Some(b)) if a.mean > b.mean);
        let n = shared.len();
        let verdict = if above == n && peak_higher && separated == n {
            "The paper's finding (online higher at equal KL, with the higher peak) **holds** in this run, in every shared bin beyond the seed-to-seed spread.".to_string()
        } else if above == n && peak_higher {
            format!(
                "The paper's finding **holds in direction only**: online is above offline in every shared bin and its peak is higher, but {separated} of {n} bins are separated beyond the seed-to-seed spread, so with these seeds it is not significant."
            )
        } else if above == 0 && !peak_higher {
            "The paper's finding **does not hold** in this run: offline is at or above online at matched KL, and its peak is at least as high.".to_string()
        } else {
            format!("The comparison is **mixed** in this run (online above offline in {above} of {n} shared bins; online's peak {} offline's).", if peak_higher { "above" } else { "not above" })
        };
        s += &verdict;
        s += "\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::fig1::{Fig1Config, Fig1Results};
    use crate::experiments::pipeline::Row;
    use crate::train::align::Checkpoint;

    fn row(method: &str, seed: u32, kl: f32, win: f32) -> Row {
        let checkpoint = Checkpoint { step: 1, kl, golden_win_rate: win, ties: 0.0, classifier_accuracy: 0.5, proxy_win_rate: None, train_loss: None, responses: Default::default(), samples: vec![] };
        Row { method: method.into(), seed, beta: 0.1, lr: 1e-3, run_steps: 1, checkpoint }
    }

    /// Online and offline at the same KLs (1, e, e²), three seeds, win rates `on + jitter` and `off + jitter`.
    fn verdict(on: f32, off: f32, jitter: f32) -> String {
        let mut rows = vec![];
        for seed in 0..3u32 {
            let j = jitter * (seed as f32 - 1.0);
            for k in 0..3 {
                let kl = (k as f32).exp();
                rows.push(row("online", seed, kl, on + j));
                rows.push(row("offline", seed, kl, off - j));
            }
        }
        let results = Fig1Results { config: Fig1Config::preset("fig1-tiny").unwrap(), backend: "test".into(), checkpoints: rows.clone(), proxy: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None };
        let md = summary_md(&results, &binned(&rows, 3));
        md[md.find("## Verdict").unwrap()..].to_string()
    }

    #[test]
    fn verdict_follows_the_data() {
        assert!(verdict(0.8, 0.6, 0.01).contains("**holds** in this run"), "{}", verdict(0.8, 0.6, 0.01));
        let direction = verdict(0.62, 0.6, 0.1);
        assert!(direction.contains("**holds in direction only**") && direction.contains("0 of 3 bins"), "{direction}");
        assert!(verdict(0.5, 0.7, 0.01).contains("**does not hold**"));
    }

    #[test]
    fn no_common_kl_range_means_no_verdict() {
        let rows = vec![row("online", 0, 5.0, 0.9), row("online", 0, 6.0, 0.9), row("offline", 0, 0.1, 0.6), row("offline", 0, 0.12, 0.6)];
        let results = Fig1Results { config: Fig1Config::preset("fig1-tiny").unwrap(), backend: "test".into(), checkpoints: rows.clone(), proxy: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None };
        assert!(summary_md(&results, &binned(&rows, 4)).contains("reached no common KL range"));
    }

    #[test]
    fn bins_average_each_seed_then_across_seeds_with_a_t_interval() {
        // Seed 0 has two checkpoints in the bin (mean 0.6), seed 1 one (0.8): mean 0.7, t(1) = 12.706.
        let rows = vec![row("online", 0, 1.0, 0.5), row("online", 0, 1.1, 0.7), row("online", 1, 1.05, 0.8), row("online", 0, 0.0005, 0.1)];
        let bins = binned(&rows, 1);
        let e = bins[0].get("online").unwrap();
        assert_eq!(e.seeds, 2);
        assert!((e.mean - 0.7).abs() < 1e-6, "{e:?}");
        let sd = (0.02f32).sqrt(); // sample sd of {0.6, 0.8}
        assert!((e.ci.unwrap() - 12.706 * sd / 2f32.sqrt()).abs() < 1e-4, "{e:?}");
        assert_eq!(peak(&rows, "online").unwrap().mean, (0.7 + 0.8) / 2.0, "the KL ≈ 0 start is left out of the peak");
    }
}

//! The statistics every report shares: per-seed estimates with a 95 % t-interval, golden win rate binned by log KL,
//! each method's peak, the rows of the figure's own runs, and when each run peaked.

use crate::experiments::pipeline::Row;
use crate::experiments::Method;

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
    pub methods: Vec<(Method, Estimate)>,
}

impl Bin {
    pub fn get(&self, method: Method) -> Option<&Estimate> {
        self.methods.iter().find(|(m, _)| *m == method).map(|(_, e)| e)
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

/// The methods `rows` holds, in the order they first appear.
pub fn methods(rows: &[Row]) -> Vec<Method> {
    let mut m: Vec<Method> = vec![];
    for r in rows {
        if !m.contains(&r.method) {
            m.push(r.method);
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
pub fn peak(rows: &[Row], method: Method) -> Option<Estimate> {
    let mut best: Vec<(u32, f32)> = vec![];
    for r in rows.iter().filter(|r| r.method == method && r.checkpoint.kl > MIN_KL) {
        match best.iter_mut().find(|(s, _)| *s == r.seed) {
            Some((_, b)) => *b = b.max(r.checkpoint.golden_win_rate),
            None => best.push((r.seed, r.checkpoint.golden_win_rate)),
        }
    }
    (!best.is_empty()).then(|| estimate(&best.iter().map(|(_, b)| *b).collect::<Vec<_>>()))
}

/// The checkpoints of the figure's own runs: without the repeats over one proxy (`Row::align_seed`), which
/// would count the first seed again, and without the runs of the scaling ladder's other sizes (`Row::policy`),
/// which have their own figures.
pub fn main_rows(rows: &[Row]) -> Vec<Row> {
    rows.iter().filter(|r| r.align_seed.is_none() && r.policy.is_none()).cloned().collect()
}


/// The rows of one loss of the loss family's runs, named `online` and `offline` as Figure 1's: its own figure.
pub fn family_rows(rows: &[Row], loss: crate::train::losses::Loss) -> Vec<Row> {
    let (on, off) = (Method::ONLINE.with_loss(loss), Method::OFFLINE.with_loss(loss));
    rows.iter()
        .filter(|r| r.method == on || r.method == off)
        .map(|r| Row { method: if r.method == on { Method::ONLINE } else { Method::OFFLINE }, ..r.clone() })
        .collect()
}

/// Figure 1's own rows: without the loss family's runs, which have their own figures ([`family_rows`]).
pub fn without_family(rows: &[Row]) -> Vec<Row> {
    rows.iter().filter(|r| !(r.method.loss.is_some() && Method::ALL.contains(&r.method))).cloned().collect()
}


/// Of `method`'s runs (seed, β, lr, length), how many reach their best golden win rate at their last
/// checkpoint, and how many runs there are: a run still improving when it stopped was cut short.
pub fn best_at_last_checkpoint(rows: &[Row], method: Method) -> (usize, usize) {
    let runs = best_and_last_steps(rows, method);
    (runs.iter().filter(|&&(best, last)| best == last && last > 0).count(), runs.len())
}

/// [`best_at_last_checkpoint`] by the golden win rate on the validation prompts, the one a stopping rule reads;
/// none when the runs did not measure it.
pub fn best_at_last_on_validation(rows: &[Row], method: Method) -> Option<(usize, usize)> {
    let runs = best_and_last_steps_by(rows, method, |c| c.validation_win_rate)?;
    Some((runs.iter().filter(|&&(best, last)| best == last && last > 0).count(), runs.len()))
}

/// Each run of `method`: the step of its best golden win rate (the earliest, on a tie) and its last step.
pub fn best_and_last_steps(rows: &[Row], method: Method) -> Vec<(u32, u32)> {
    best_and_last_steps_by(rows, method, |c| Some(c.golden_win_rate)).unwrap_or_default()
}

/// [`best_and_last_steps`] by another reading of each checkpoint; none when a checkpoint lacks it.
fn best_and_last_steps_by(rows: &[Row], method: Method, read: impl Fn(&crate::train::eval::Checkpoint) -> Option<f32>) -> Option<Vec<(u32, u32)>> {
    let mut runs: Vec<((u32, u32, u32, u32), u32, f32, u32)> = vec![]; // (run, best step, best win, last step)
    for r in rows.iter().filter(|r| r.method == method) {
        let key = (r.seed, r.beta.to_bits(), r.lr.to_bits(), r.run_steps);
        let c = &r.checkpoint;
        let win = read(c)?;
        match runs.iter_mut().find(|x| x.0 == key) {
            Some(x) => {
                if win > x.2 {
                    (x.1, x.2) = (c.step, win);
                }
                x.3 = x.3.max(c.step);
            }
            None => runs.push((key, c.step, win, c.step)),
        }
    }
    Some(runs.iter().map(|x| (x.1, x.3)).collect())
}

/// An estimate as "mean ± ci" (the mean alone from one seed).
pub(crate) fn show_plain(e: &Estimate) -> String {
    match e.ci {
        Some(ci) => format!("{:.3} ± {ci:.3}", e.mean),
        None => format!("{:.3}", e.mean),
    }
}


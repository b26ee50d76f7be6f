//! The paper's classifier analyses (§5: are online policies better classifiers or better generators?), each
//! computed from the runs' checkpoints: its numbers, a verdict beside the paper's finding, and its figure.
//!
//! - Fig. 7: a checkpoint's golden win rate against its classifier accuracy on held-out D_golden.
//! - Fig. 8: classifier accuracy and the held-out winners' log-ratio to π_sft over training.
//! - Self-classification: a policy as a classifier of golden-labelled pairs of its own samples.
//!
//! A policy's classifier accuracy: y1 ≻ y2 iff its implicit reward margin h = [log π − log π_sft](y1) −
//! [log π − log π_sft](y2) > 0, scored against the golden label (`train::align::classifier_score`).

use super::figure::{self, err};
use crate::experiments::Method;
use super::stats::{estimate, main_rows, Estimate};
use crate::error::Result;
use crate::experiments::{Analysis, ExperimentResults};
use crate::experiments::pipeline::Row;
use plotters::prelude::*;

/// How a computed result stands against the paper's finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The data show it, with an interval that excludes the alternative.
    Shown,
    /// The averages lean the paper's way, but an interval does not exclude the alternative.
    DirectionOnly,
    /// The averages lean the other way (or show the effect the paper says is absent).
    NotShown,
    /// Too little data to judge (no runs of a method, or no checkpoints past the start).
    NoData,
}

impl Finding {
    pub fn words(self) -> &'static str {
        match self {
            Finding::Shown => "shown",
            Finding::DirectionOnly => "direction only",
            Finding::NotShown => "not shown",
            Finding::NoData => "cannot be judged (no data)",
        }
    }

    /// "The value is below `bound`": shown when the interval lies below, direction only when the mean does.
    fn below(e: &Estimate, bound: f32) -> Finding {
        match e.ci {
            Some(ci) if e.mean + ci < bound => Finding::Shown,
            _ if e.mean < bound => Finding::DirectionOnly,
            _ => Finding::NotShown,
        }
    }

    /// "The value is above `bound`": shown when the interval lies above, direction only when the mean does.
    pub(crate) fn above(e: &Estimate, bound: f32) -> Finding {
        match e.ci {
            Some(ci) if e.mean - ci > bound => Finding::Shown,
            _ if e.mean > bound => Finding::DirectionOnly,
            _ => Finding::NotShown,
        }
    }

    /// The weakest of several findings (all must hold for the whole to hold).
    pub(crate) fn all(findings: impl IntoIterator<Item = Finding>) -> Finding {
        let order = [Finding::NoData, Finding::NotShown, Finding::DirectionOnly, Finding::Shown];
        findings.into_iter().min_by_key(|f| order.iter().position(|o| o == f)).unwrap_or(Finding::NoData)
    }
}

/// Pearson's correlation of the points; none with fewer than 3 points or without spread in x or y.
pub fn pearson(p: &[(f32, f32)]) -> Option<f32> {
    let n = p.len() as f64;
    if p.len() < 3 {
        return None;
    }
    let (mx, my) = (p.iter().map(|q| q.0 as f64).sum::<f64>() / n, p.iter().map(|q| q.1 as f64).sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for &(x, y) in p {
        let (dx, dy) = (x as f64 - mx, y as f64 - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()) as f32)
}

/// The 95 % interval of a correlation `r` of `n` points by Fisher's z (needs n > 3).
pub fn fisher_interval(r: f32, n: usize) -> Option<(f32, f32)> {
    if n <= 3 {
        return None;
    }
    let z = (r.clamp(-0.999_999, 0.999_999) as f64).atanh();
    let half = 1.96 / ((n - 3) as f64).sqrt();
    Some(((z - half).tanh() as f32, (z + half).tanh() as f32))
}

fn seeds_of(rows: &[Row]) -> Vec<u32> {
    let mut s: Vec<u32> = rows.iter().map(|r| r.seed).collect();
    s.sort_unstable();
    s.dedup();
    s
}

pub(crate) fn show(e: &Estimate, digits: usize) -> String {
    match e.ci {
        Some(ci) => format!("{:+.*} ± {:.*}", digits, e.mean, digits, ci),
        None => format!("{:+.*} (one seed)", digits, e.mean),
    }
}

fn show_unsigned(e: &Estimate) -> String {
    match e.ci {
        Some(ci) => format!("{:.3} ± {ci:.3}", e.mean),
        None => format!("{:.3} (one seed)", e.mean),
    }
}

/// The sections of summary.md for the analyses the config asks for.
pub fn analyses_md(results: &ExperimentResults) -> String {
    let rows = main_rows(&results.checkpoints);
    let mut s = String::new();
    for a in &results.config.analyses {
        s += &match a {
            Analysis::GenerationVsClassification => generation_vs_classification_md(&rows),
            Analysis::OverTraining => over_training_md(&rows, results.config.steps),
            Analysis::SelfClassification => self_classification_md(&rows),
            Analysis::StreamClassification => stream_classification_md(&rows),
            Analysis::Precondition => super::precondition::precondition_md(results),
        };
    }
    s
}

/// The figure of one analysis.
pub fn analysis_svg(analysis: Analysis, results: &ExperimentResults) -> Result<String> {
    let rows = main_rows(&results.checkpoints);
    match analysis {
        Analysis::GenerationVsClassification => {
            generation_vs_classification_svg(by_method(&rows, accuracy_and_win_rate), "Generation vs classification: every checkpoint past step 0 (the paper's Fig. 7)")
        }
        Analysis::OverTraining => over_training_svg(&rows),
        Analysis::SelfClassification => self_classification_svg(&rows),
        Analysis::StreamClassification => stream_classification_svg(&rows),
        // Fig. 7's cloud, offline IPO's checkpoints alone: the correlation the precondition reads. A series per β,
        // because the βs can part ways (one rising in both, another classifying while its summaries get worse).
        Analysis::Precondition => generation_vs_classification_svg(
            by_beta(&rows.into_iter().filter(|r| r.method == Method::OFFLINE).collect::<Vec<_>>(), accuracy_and_win_rate),
            "The precondition: offline IPO's checkpoints past step 0, win rate against classifier accuracy",
        ),
    }
}

/// The checkpoints past the start (step 0 is π_sft itself for every run: accuracy ½ by definition).
pub(super) fn trained(rows: &[Row]) -> impl Iterator<Item = &Row> {
    rows.iter().filter(|r| r.checkpoint.step > 0)
}

/// Per seed, the correlation of golden win rate and classifier accuracy over the checkpoints `keep` selects.
pub(super) fn correlations(rows: &[Row], keep: impl Fn(&Row) -> bool) -> Vec<(u32, f32, usize)> {
    seeds_of(rows)
        .into_iter()
        .filter_map(|seed| {
            let p: Vec<(f32, f32)> = trained(rows).filter(|r| r.seed == seed && keep(r)).map(|r| (r.checkpoint.classifier_accuracy, r.checkpoint.golden_win_rate)).collect();
            Some((seed, pearson(&p)?, p.len()))
        })
        .collect()
}

/// The residuals of `v` after a least-squares fit of a + b·t + c·t² (t = ln KL): what KL does not explain.
fn residuals_on_kl(p: &[(f32, f32)], v: &[f32]) -> Option<Vec<f32>> {
    // Normal equations of the 3-parameter fit, solved by Cramer's rule.
    let t: Vec<f64> = p.iter().map(|q| (q.0 as f64).ln()).collect();
    let s = |k: i32| t.iter().map(|x| x.powi(k)).sum::<f64>();
    let sy = |k: i32| t.iter().zip(v).map(|(x, &y)| x.powi(k) * y as f64).sum::<f64>();
    let m = [[s(0), s(1), s(2)], [s(1), s(2), s(3)], [s(2), s(3), s(4)]];
    let r = [sy(0), sy(1), sy(2)];
    let det = |m: [[f64; 3]; 3]| m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let d = det(m);
    if p.len() < 5 || d.abs() < 1e-9 {
        return None;
    }
    let coef: Vec<f64> = (0..3).map(|j| det(std::array::from_fn(|i| std::array::from_fn(|k| if k == j { r[i] } else { m[i][k] }))) / d).collect();
    Some(t.iter().zip(v).map(|(x, &y)| (y as f64 - coef[0] - coef[1] * x - coef[2] * x * x) as f32).collect())
}

/// Per seed, the partial correlation of golden win rate and classifier accuracy given KL (each residualised on a
/// quadratic in ln KL): at the same distance from π_sft, are the better classifiers the better generators?
fn partial_correlations(rows: &[Row]) -> Vec<(u32, f32, usize)> {
    seeds_of(rows)
        .into_iter()
        .filter_map(|seed| {
            let mine: Vec<&Row> = trained(rows).filter(|r| r.seed == seed && r.checkpoint.kl > super::stats::MIN_KL).collect();
            let kl: Vec<(f32, f32)> = mine.iter().map(|r| (r.checkpoint.kl, 0.0)).collect();
            let acc = residuals_on_kl(&kl, &mine.iter().map(|r| r.checkpoint.classifier_accuracy).collect::<Vec<_>>())?;
            let win = residuals_on_kl(&kl, &mine.iter().map(|r| r.checkpoint.golden_win_rate).collect::<Vec<_>>())?;
            let p: Vec<(f32, f32)> = acc.into_iter().zip(win).collect();
            Some((seed, pearson(&p)?, p.len()))
        })
        .collect()
}

/// Fig. 7's verdict on per-seed correlations: the paper found no positive correlation. Shown when the
/// correlations average ≤ 0; direction only when they average above 0 but the interval (across seeds, or
/// Fisher's for one seed) includes 0; not shown when the interval lies above 0.
pub fn no_positive_correlation(per_seed: &[(u32, f32, usize)]) -> (Finding, Option<Estimate>) {
    if per_seed.is_empty() {
        return (Finding::NoData, None);
    }
    let e = estimate(&per_seed.iter().map(|p| p.1).collect::<Vec<_>>());
    let low = match (e.ci, per_seed) {
        (Some(ci), _) => Some(e.mean - ci),
        (None, [(_, r, n)]) => fisher_interval(*r, *n).map(|i| i.0),
        _ => None,
    };
    let f = if e.mean <= 0.0 {
        Finding::Shown
    } else if low.is_some_and(|l| l > 0.0) {
        Finding::NotShown
    } else {
        Finding::DirectionOnly
    };
    (f, Some(e))
}

fn generation_vs_classification_md(rows: &[Row]) -> String {
    let mut s = String::from("\n## Generation vs classification (the paper's Fig. 7)\n\n");
    s += "The paper: across checkpoints, a policy's golden win rate (how well it generates) shows no positive correlation with its accuracy as a classifier of held-out D_golden pairs. Below, per seed: Pearson's r over that seed's checkpoints past step 0, with Fisher's 95 % interval and the number of checkpoints; all methods pooled (as the paper's figure), then each method alone.\n\n";
    let methods = super::stats::methods(rows);
    let all = correlations(rows, |_| true);
    let per_method: Vec<Vec<(u32, f32, usize)>> = methods.iter().map(|&m| correlations(rows, |r| r.method == m)).collect();
    s += &format!("| seed | all methods | {} |\n|---|---|{}\n", methods.iter().map(|m| m.name()).collect::<Vec<_>>().join(" | "), "---|".repeat(methods.len()));
    let cell = |c: Option<&(u32, f32, usize)>| match c {
        Some(&(_, r, n)) => match fisher_interval(r, n) {
            Some((lo, hi)) => format!("{r:+.2} [{lo:+.2}, {hi:+.2}] ({n})"),
            None => format!("{r:+.2} ({n})"),
        },
        None => "—".into(),
    };
    for seed in seeds_of(rows) {
        let find = |v: &[(u32, f32, usize)]| v.iter().find(|c| c.0 == seed).copied();
        s += &format!("| {seed} | {} | {} |\n", cell(find(&all).as_ref()), per_method.iter().map(|v| cell(find(v).as_ref())).collect::<Vec<_>>().join(" | "));
    }
    let across = |v: &[(u32, f32, usize)]| if v.is_empty() { "—".to_string() } else { show(&estimate(&v.iter().map(|c| c.1).collect::<Vec<_>>()), 2) };
    s += &format!("| across seeds | {} | {} |\n", across(&all), per_method.iter().map(|v| across(v)).collect::<Vec<_>>().join(" | "));
    let partial = partial_correlations(rows);
    if !partial.is_empty() {
        s += &format!(
            "\nBoth quantities move with KL (training moves both away from π_sft's). At the same KL (each residualised on a quadratic in ln KL, per seed, all methods): r = {} (per seed {}).\n",
            across(&partial),
            partial.iter().map(|(seed, r, _)| format!("{seed}: {r:+.2}")).collect::<Vec<_>>().join(", ")
        );
    }
    let pooled: Vec<(f32, f32)> = trained(rows).map(|r| (r.checkpoint.classifier_accuracy, r.checkpoint.golden_win_rate)).collect();
    if let Some(r) = pearson(&pooled) {
        s += &format!(
            "\nEvery seed's checkpoints pooled into one cloud: r = {r:+.2} over {} checkpoints. A pooled r mixes seeds and methods: a method whose checkpoints are both better classifiers and better generators than another's makes it positive even when neither method's own checkpoints are correlated; the per-seed, per-method columns say which.\n",
            pooled.len()
        );
    }
    let (f, e) = no_positive_correlation(&all);
    s += &format!(
        "\n**Verdict (computed): no positive correlation — {}.** Rule: shown when the per-seed correlations (all methods) average ≤ 0; direction only when they average above 0 with an interval that includes 0; not shown when the interval lies above 0.{}\n",
        f.words(),
        e.map(|e| format!(" Here: r = {}.", show(&e, 2))).unwrap_or_default()
    );
    s
}

/// A run's checkpoint at `step`, if it has one.
fn at_step<'a>(rows: &'a [Row], method: Method, seed: u32, beta: f32, step: u32) -> Option<&'a Row> {
    rows.iter().find(|r| r.method == method && r.seed == seed && r.beta == beta && r.checkpoint.step == step)
}

/// A run's last checkpoint (the longest run of its method, seed and β).
fn last<'a>(rows: &'a [Row], method: Method, seed: u32, beta: f32) -> Option<&'a Row> {
    rows.iter().filter(|r| r.method == method && r.seed == seed && r.beta == beta).max_by_key(|r| (r.run_steps, r.checkpoint.step))
}

fn betas_of(rows: &[Row]) -> Vec<f32> {
    let mut b: Vec<f32> = rows.iter().map(|r| r.beta).collect();
    b.sort_by(f32::total_cmp);
    b.dedup();
    b
}

/// Per seed, the mean over β of `value` (none for a seed where any β lacks it).
fn per_seed_over_betas(rows: &[Row], value: impl Fn(u32, f32) -> Option<f32>) -> Vec<f32> {
    let betas = betas_of(rows);
    seeds_of(rows).into_iter().filter_map(|s| betas.iter().map(|&b| value(s, b)).collect::<Option<Vec<f32>>>().map(|v| v.iter().sum::<f32>() / v.len() as f32)).collect()
}

fn over_training_md(rows: &[Row], online_steps: u32) -> String {
    let mut s = String::from("\n## Classification over training (the paper's Fig. 8)\n\n");
    s += &format!(
        "The paper: offline IPO's classifier accuracy on held-out D_golden rises to 60–70 % while online's stays ≤ 50 %; the likelihood of the winners y_w of D_golden falls for every method, most for offline. Below, per method and β, the mean over seeds (95 % t-interval) at step {online_steps} (online's last: both methods after the same number of updates) and at each run's end; Δ log π(y_w) is the mean over held-out pairs of log π(y_w) − log π_sft(y_w) (TRL's `rewards/chosen` is β times it).\n\n"
    );
    let methods: Vec<Method> = [Method::ONLINE, Method::OFFLINE, Method::ONLINE_GOLDEN].into_iter().filter(|m| rows.iter().any(|r| r.method == *m && r.checkpoint.chosen_logratio.is_some())).collect();
    if !(methods.contains(&Method::ONLINE) && methods.contains(&Method::OFFLINE)) {
        return s + "No online and offline runs with the winners' log-ratio measured (runs from before it existed): rerun the preset.\n";
    }
    let seeds = seeds_of(rows);
    let over = |f: &dyn Fn(u32) -> Option<f32>| {
        let v: Vec<f32> = seeds.iter().filter_map(|&s| f(s)).collect();
        (!v.is_empty()).then(|| estimate(&v))
    };
    let cell = |e: Option<Estimate>, signed: bool| e.map(|e| if signed { show(&e, 3) } else { show_unsigned(&e) }).unwrap_or_else(|| "—".into());
    s += &format!("| method | β | accuracy at step {online_steps} | accuracy at end | best accuracy | Δ log π(y_w) at step {online_steps} | Δ log π(y_w) at end | end step |\n|---|---|---|---|---|---|---|---|\n");
    for &m in &methods {
        for b in betas_of(rows) {
            let acc_at = over(&|s| at_step(rows, m, s, b, online_steps).map(|r| r.checkpoint.classifier_accuracy));
            let acc_end = over(&|s| last(rows, m, s, b).map(|r| r.checkpoint.classifier_accuracy));
            let best = over(&|s| rows.iter().filter(|r| r.method == m && r.seed == s && r.beta == b).map(|r| r.checkpoint.classifier_accuracy).reduce(f32::max));
            let ll_at = over(&|s| at_step(rows, m, s, b, online_steps).and_then(|r| r.checkpoint.chosen_logratio));
            let ll_end = over(&|s| last(rows, m, s, b).and_then(|r| r.checkpoint.chosen_logratio));
            let end = over(&|s| last(rows, m, s, b).map(|r| r.checkpoint.step as f32)).map(|e| format!("{:.0}", e.mean)).unwrap_or_default();
            s += &format!("| {m} | {b} | {} | {} | {} | {} | {} | {end} |\n", cell(acc_at, false), cell(acc_end, false), cell(best, false), cell(ll_at, true), cell(ll_end, true));
        }
    }
    // (a) offline classifies better than online after the same updates; per seed, the mean over β.
    let acc = |m: Method, s: u32, b: f32| at_step(rows, m, s, b, online_steps).map(|r| r.checkpoint.classifier_accuracy);
    let gap = per_seed_over_betas(rows, |s, b| Some(acc(Method::OFFLINE, s, b)? - acc(Method::ONLINE, s, b)?));
    // (b) every method's winners lose likelihood by its end; (c) offline's more than online's at the same step.
    let ll = |m: Method, s: u32, b: f32| at_step(rows, m, s, b, online_steps).and_then(|r| r.checkpoint.chosen_logratio);
    let fall: Vec<(Method, Vec<f32>)> = methods.iter().map(|&m| (m, per_seed_over_betas(rows, |s, b| last(rows, m, s, b).and_then(|r| r.checkpoint.chosen_logratio)))).collect();
    let deeper = per_seed_over_betas(rows, |s, b| Some(ll(Method::OFFLINE, s, b)? - ll(Method::ONLINE, s, b)?));
    let judge = |v: &[f32], below: bool| {
        if v.is_empty() {
            return (Finding::NoData, String::new());
        }
        let e = estimate(v);
        let neg = Estimate { mean: -e.mean, ..e.clone() };
        (if below { Finding::below(&e, 0.0) } else { Finding::below(&neg, 0.0) }, show(&e, 3))
    };
    let (fa, ea) = judge(&gap, false);
    s += &format!("\nVerdicts (computed; per seed the mean over β, then mean ± 95 % t-interval across seeds; shown when the interval excludes 0 the paper's way, direction only when the mean alone does):\n\n- **Offline's classifier accuracy above online's at step {online_steps}: {}** (offline − online = {ea}).\n", fa.words());
    let falls: Vec<(Finding, String)> = fall.iter().map(|(m, v)| {
        let (f, e) = judge(v, true);
        (f, format!("{m} {e}"))
    }).collect();
    s += &format!(
        "- **The winners' likelihood falls for every method, by each run's end: {}** (Δ log π(y_w): {}).\n",
        Finding::all(falls.iter().map(|f| f.0)).words(),
        falls.iter().map(|f| f.1.clone()).collect::<Vec<_>>().join("; ")
    );
    let (fc, ec) = judge(&deeper, true);
    s += &format!("- **Most for offline (at step {online_steps}): {}** (offline − online = {ec}).\n", fc.words());
    let online_best = per_seed_over_betas(rows, |s, b| rows.iter().filter(|r| r.method == Method::ONLINE && r.seed == s && r.beta == b).map(|r| r.checkpoint.classifier_accuracy).reduce(f32::max));
    if !online_best.is_empty() {
        let e = estimate(&online_best);
        s += &format!("- Online's best classifier accuracy (per seed the mean over β of each run's best): {} — the paper's \"≤ 50 %\" is {}.\n", show_unsigned(&e), if e.mean <= 0.5 { "met" } else { "not met" });
    }
    s
}

fn self_classification_md(rows: &[Row]) -> String {
    let mut s = String::from("\n## Self-classification (the paper's §5)\n\n");
    s += "The paper: every policy, used as a classifier of pairs of its own samples (golden labels), is at chance. Each checkpoint past step 0 samples two responses per win-rate prompt from its policy; pairs of two identical responses are left out. Per method: per seed the mean over its checkpoints, then mean ± 95 % t-interval across seeds; and the last checkpoint alone.\n\n";
    let measured: Vec<Row> = rows.iter().filter(|r| r.checkpoint.self_classifier_accuracy.is_some()).cloned().collect();
    let methods = super::stats::methods(&measured);
    if methods.is_empty() {
        return s + "No checkpoint has it measured: rerun with `analyses` including `self_classification`.\n";
    }
    let seeds = seeds_of(rows);
    s += "| method | all checkpoints | last checkpoint | distinct pairs per checkpoint | held-out D_golden accuracy (for contrast) |\n|---|---|---|---|---|\n";
    let (mut findings, mut last_findings) = (vec![], vec![]);
    for &m in &methods {
        let mine = |seed: u32| trained(rows).filter(move |r| r.method == m && r.seed == seed);
        let mean = |v: Vec<f32>| (!v.is_empty()).then(|| v.iter().sum::<f32>() / v.len() as f32);
        let all: Vec<f32> = seeds.iter().filter_map(|&s| mean(mine(s).filter_map(|r| r.checkpoint.self_classifier_accuracy).collect())).collect();
        let lasts: Vec<f32> = seeds.iter().filter_map(|&s| mine(s).max_by_key(|r| (r.run_steps, r.checkpoint.step)).and_then(|r| r.checkpoint.self_classifier_accuracy)).collect();
        let pairs: Vec<f32> = seeds.iter().filter_map(|&s| mean(mine(s).filter_map(|r| r.checkpoint.self_classified_pairs.map(|n| n as f32)).collect())).collect();
        let heldout: Vec<f32> = seeds.iter().filter_map(|&s| mean(mine(s).map(|r| r.checkpoint.classifier_accuracy).collect())).collect();
        let e = |v: &[f32]| if v.is_empty() { "—".to_string() } else { show_unsigned(&estimate(v)) };
        s += &format!("| {m} | {} | {} | {:.0} | {} |\n", e(&all), e(&lasts), pairs.iter().sum::<f32>() / pairs.len().max(1) as f32, e(&heldout));
        let at_chance = |v: &[f32]| {
            let est = estimate(v);
            let finding = equivalent_to_chance(&est);
            (m, est, finding)
        };
        if !all.is_empty() {
            findings.push(at_chance(&all));
        }
        if !lasts.is_empty() {
            last_findings.push(at_chance(&lasts));
        }
    }
    let f = if findings.is_empty() { Finding::NoData } else { Finding::all(findings.iter().map(|f| f.2)) };
    let off: Vec<String> = findings.iter().filter(|f| f.2 == Finding::NotShown).map(|(m, e, _)| format!("{m} {}", show_unsigned(e))).collect();
    let wide: Vec<String> = findings.iter().filter(|f| f.2 == Finding::DirectionOnly).map(|(m, e, _)| format!("{m} {}", show_unsigned(e))).collect();
    s += &format!(
        "\n**Verdict (computed): every policy at chance on its own samples — {}.** Rule (equivalence, margin ±{CHANCE_MARGIN}): shown when every method's 95 % interval across seeds (all checkpoints) lies within 0.5 ± {CHANCE_MARGIN}; direction only when every mean does but some interval reaches past the margin (too wide to tell chance from a real skill); not shown when a mean lies outside it. With one seed there is no interval and it is not judged shown.{}{}\n",
        f.words(),
        if off.is_empty() { String::new() } else { format!(" Away from 0.5: {}.", off.join("; ")) },
        if wide.is_empty() { String::new() } else { format!(" Too wide to tell: {}.", wide.join("; ")) }
    );
    if !last_findings.is_empty() {
        let last = Finding::all(last_findings.iter().map(|f| f.2));
        s += &format!("\nThe same rule on each run's last checkpoint alone (the trained policies the paper tested): **{}**.\n", last.words());
    }
    s
}

/// How far from ½ a classifier's accuracy may be and still count as chance (the equivalence margin).
const CHANCE_MARGIN: f32 = 0.05;

/// "At chance" as an equivalence: shown when the interval lies within ½ ± [`CHANCE_MARGIN`], direction only when
/// the mean does (the interval is too wide to tell), not shown when the mean lies outside it.
fn equivalent_to_chance(e: &Estimate) -> Finding {
    let off = (e.mean - 0.5).abs();
    match e.ci {
        _ if off > CHANCE_MARGIN => Finding::NotShown,
        Some(ci) if off + ci <= CHANCE_MARGIN => Finding::Shown,
        _ => Finding::DirectionOnly,
    }
}

/// Fig. 6's points of one seed and β: per online checkpoint past the start, (step, KL, the proxy's labels'
/// accuracy, the online policy's, the offline policy's at the nearest KL with that offline checkpoint's KL, and the
/// pairs measured on).
type StreamPoint = (u32, f32, f32, f32, Option<(f32, f32)>, Option<u32>);

fn stream_points(rows: &[Row], seed: u32, beta: f32) -> Vec<StreamPoint> {
    let gap = |a: f32, b: f32| (a.max(1e-6).ln() - b.max(1e-6).ln()).abs();
    rows.iter()
        .filter(|r| r.method == Method::ONLINE && r.seed == seed && r.beta == beta)
        .filter_map(|r| {
            let c = &r.checkpoint;
            let (proxy, policy) = (c.stream_proxy_accuracy?, c.stream_policy_accuracy?);
            // Of the offline checkpoints measured on this stretch, the one nearest in KL.
            let offline = rows
                .iter()
                .filter(|o| o.method == Method::OFFLINE && o.seed == seed && o.beta == beta && o.checkpoint.stream_step == Some(c.step))
                .min_by(|a, b| gap(a.checkpoint.kl, c.kl).total_cmp(&gap(b.checkpoint.kl, c.kl)))
                .and_then(|o| Some((o.checkpoint.stream_policy_accuracy?, o.checkpoint.kl)));
            Some((c.step, c.kl, proxy, policy, offline, c.stream_pairs))
        })
        .collect()
}

fn stream_classification_md(rows: &[Row]) -> String {
    let mut s = String::from("\n## Who classifies the online stream (the paper's Fig. 6)\n\n");
    s += &format!(
        "The paper: on the pairs the online policy samples near each checkpoint, the proxy preference model classifies better (against golden labels) than the online policy or the offline policy at similar KL, and the proxy's accuracy decays as the policy drifts. Below, per online checkpoint, of the {} pairs of the online stream sampled just before it those a classifier can order (two different responses whose golden rewards differ: identical pairs and golden ties are left out, their labels being coin flips), golden-labelled: how many there were, the accuracy of the proxy's labels, of the online policy as a classifier, and of the offline policy at its checkpoint of the nearest KL (that KL in brackets). Mean over seeds.{}\n\n",
        crate::train::eval::STREAM_STRETCH,
        if rows.iter().any(|r| r.checkpoint.stream_policy_accuracy.is_some() && r.checkpoint.stream_pairs.is_none()) {
            " Some checkpoints were measured before ties and identical pairs were left out: they read every pair of the stretch (their pair count shows as —)."
        } else {
            ""
        }
    );
    let seeds = seeds_of(rows);
    let betas = betas_of(rows);
    let any = seeds.iter().any(|&seed| betas.iter().any(|&b| !stream_points(rows, seed, b).is_empty()));
    if !any {
        return s + "No online checkpoint has it measured: rerun with `analyses` including `stream_classification`.\n";
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    for &b in &betas {
        let per_seed: Vec<Vec<StreamPoint>> = seeds.iter().map(|&seed| stream_points(rows, seed, b)).collect();
        let mut steps: Vec<u32> = per_seed.iter().flatten().map(|p| p.0).collect();
        steps.sort_unstable();
        steps.dedup();
        s += &format!("**β = {b}**\n\n| online step | KL | pairs | proxy | online policy | offline policy (its KL) |\n|---|---|---|---|---|---|\n");
        for st in steps {
            let at: Vec<&StreamPoint> = per_seed.iter().flatten().filter(|p| p.0 == st).collect();
            let offline: Vec<(f32, f32)> = at.iter().filter_map(|p| p.4).collect();
            let off = if offline.is_empty() { "—".into() } else { format!("{:.3} ({:.2})", mean(&offline.iter().map(|o| o.0).collect::<Vec<_>>()), mean(&offline.iter().map(|o| o.1).collect::<Vec<_>>())) };
            let pairs: Vec<f32> = at.iter().filter_map(|p| p.5.map(|n| n as f32)).collect();
            let pairs = if pairs.len() < at.len() { "—".into() } else { format!("{:.0}", mean(&pairs)) };
            s += &format!(
                "| {st} | {:.2} | {pairs} | {:.3} | {:.3} | {off} |\n",
                mean(&at.iter().map(|p| p.1).collect::<Vec<_>>()),
                mean(&at.iter().map(|p| p.2).collect::<Vec<_>>()),
                mean(&at.iter().map(|p| p.3).collect::<Vec<_>>())
            );
        }
        s += "\n";
    }
    // Per seed the mean over β of each quantity's mean over checkpoints, then across seeds.
    let over = |f: &dyn Fn(&[StreamPoint]) -> Option<f32>| per_seed_over_betas(rows, |seed, b| f(&stream_points(rows, seed, b)));
    let proxy_minus_online = over(&|p| (!p.is_empty()).then(|| mean(&p.iter().map(|q| q.2 - q.3).collect::<Vec<_>>())));
    let proxy_minus_offline = over(&|p| {
        let d: Vec<f32> = p.iter().filter_map(|q| Some(q.2 - q.4?.0)).collect();
        (!d.is_empty()).then(|| mean(&d))
    });
    let decay = over(&|p| pearson(&p.iter().map(|q| (q.1.max(1e-6).ln(), q.2)).collect::<Vec<_>>()));
    let judge = |v: &[f32], negate: bool| -> (Finding, String) {
        if v.is_empty() {
            return (Finding::NoData, "—".into());
        }
        let e = estimate(v);
        let f = if negate { Finding::below(&e, 0.0) } else { Finding::below(&Estimate { mean: -e.mean, ..e.clone() }, 0.0) };
        (f, show(&e, 3))
    };
    let (fa, ea) = judge(&proxy_minus_online, false);
    let (fb, eb) = judge(&proxy_minus_offline, false);
    let (fc, ec) = judge(&decay, true);
    s += "Verdicts (computed; per seed the mean over β, then mean ± 95 % t-interval across seeds; shown when the interval excludes 0 the paper's way, direction only when the mean alone does):\n\n";
    s += &format!("- **The proxy classifies the online stream better than the online policy: {}** (proxy − online policy = {ea}).\n", fa.words());
    s += &format!("- **… and better than the offline policy at similar KL: {}** (proxy − offline policy = {eb}).\n", fb.words());
    s += &format!("- **The proxy's accuracy decays as the policy drifts: {}** (Pearson r of its accuracy with ln KL over the online checkpoints = {ec}).\n", fc.words());
    s
}

fn stream_classification_svg(rows: &[Row]) -> Result<String> {
    let seeds = seeds_of(rows);
    let mut series: Vec<(String, RGBColor, Vec<(f32, f32)>)> = vec![];
    let colours = [("the proxy's labels", RGBColor(44, 160, 44)), ("online policy", RGBColor(31, 119, 180)), ("offline policy at similar KL", RGBColor(230, 120, 20))];
    for (bi, &b) in betas_of(rows).iter().enumerate() {
        let all: Vec<StreamPoint> = seeds.iter().flat_map(|&seed| stream_points(rows, seed, b)).collect();
        for (k, (label, colour)) in colours.iter().enumerate() {
            let value = |p: &StreamPoint| match k {
                0 => Some(p.2),
                1 => Some(p.3),
                _ => p.4.map(|o| o.0),
            };
            let pts = mean_by_step(all.iter().filter_map(|p| Some((p.0, value(p)?))));
            if !pts.is_empty() {
                let shade = if bi == 0 { *colour } else { colour.mix(0.5).into_rgb() };
                series.push((format!("{label}, β = {b}"), shade, pts));
            }
        }
    }
    let ((x0, x1), (y0, y1)) = bounds(&series);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Who classifies the online stream, near each online checkpoint (the paper's Fig. 6)", ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x0.max(0.0)..x1, y0.min(0.48)..y1.max(0.52))
            .map_err(err)?;
        chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("online step").y_desc("accuracy on the stream stretch (golden labels)").x_label_formatter(&|x| format!("{x:.0}")).draw().map_err(err)?;
        draw_lines(&mut chart, series, 3, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

type LinearChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf32, plotters::coord::types::RangedCoordf32>>;

/// Each series as a line with a marker at each point, and their legend at `legend`.
fn draw_lines<'a, 'b: 'a>(chart: &mut LinearChart<'a, 'b>, series: Vec<(String, RGBColor, Vec<(f32, f32)>)>, radius: u32, legend: SeriesLabelPosition) -> Result<()> {
    for (label, colour, pts) in series {
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, radius, colour.filled()))).map_err(err)?;
    }
    chart.configure_series_labels().position(legend).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 11)).draw().map_err(err)?;
    Ok(())
}

/// (method, colour, points) for every method with a point.
fn by_method(rows: &[Row], point: impl Fn(&Row) -> Option<(f32, f32)>) -> Vec<(String, RGBColor, Vec<(f32, f32)>)> {
    figure::styles_for(rows.iter().map(|r| r.method))
        .into_iter()
        .map(|(method, label, colour)| (label.to_string(), colour, trained(rows).filter(|r| r.method == method).filter_map(&point).collect::<Vec<_>>()))
        .filter(|s| !s.2.is_empty())
        .collect()
}

/// A checkpoint's point in Fig. 7's plane: (classifier accuracy, golden win rate).
fn accuracy_and_win_rate(r: &Row) -> Option<(f32, f32)> {
    Some((r.checkpoint.classifier_accuracy, r.checkpoint.golden_win_rate))
}

/// The trained checkpoints as one series per (method, β), each further β a lighter shade of its method's colour.
fn by_beta(rows: &[Row], point: impl Fn(&Row) -> Option<(f32, f32)>) -> Vec<(String, RGBColor, Vec<(f32, f32)>)> {
    let betas = betas_of(rows);
    let mut out = vec![];
    for (method, label, colour) in figure::styles_for(rows.iter().map(|r| r.method)) {
        for (bi, &b) in betas.iter().enumerate() {
            let pts: Vec<(f32, f32)> = trained(rows).filter(|r| r.method == method && r.beta == b).filter_map(&point).collect();
            if !pts.is_empty() {
                let shade = colour.mix(1.0 - 0.5 * bi as f64 / (betas.len() - 1).max(1) as f64).into_rgb();
                out.push((format!("{label}, β = {b}"), shade, pts));
            }
        }
    }
    out
}

fn bounds(series: &[(String, RGBColor, Vec<(f32, f32)>)]) -> ((f32, f32), (f32, f32)) {
    let pts = series.iter().flat_map(|s| s.2.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (x0, x1, y0, y1) = pts.fold((f32::MAX, f32::MIN, f32::MAX, f32::MIN), |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)));
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let (px, py) = (((x1 - x0) * 0.05).max(1e-3), ((y1 - y0) * 0.05).max(1e-3));
    ((x0 - px, x1 + px), (y0 - py, y1 + py))
}

/// Fig. 7's scatter of the given series (label, colour, points), each point a checkpoint.
fn generation_vs_classification_svg(series: Vec<(String, RGBColor, Vec<(f32, f32)>)>, caption: &str) -> Result<String> {
    let ((x0, x1), (y0, y1)) = bounds(&series);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("classifier accuracy on held-out D_golden").y_desc("golden win rate vs π_sft (ties ½)").draw().map_err(err)?;
        // A marker shape per series as well as a colour, so series of one method's shades stay apart.
        for (i, (label, colour, pts)) in series.iter().enumerate() {
            let c = *colour;
            let drawn = match i % 3 {
                0 => chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.mix(0.7).filled()))),
                1 => chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 4, c.mix(0.7).filled()))),
                _ => chart.draw_series(pts.iter().map(|&p| Cross::new(p, 3, c.stroke_width(2)))),
            };
            drawn.map_err(err)?.label(label.clone()).legend(move |(x, y)| -> DynElement<'static, SVGBackend, (i32, i32)> {
                match i % 3 {
                    0 => Circle::new((x + 8, y), 4, c.filled()).into_dyn(),
                    1 => TriangleMarker::new((x + 8, y), 5, c.filled()).into_dyn(),
                    _ => Cross::new((x + 8, y), 4, c.stroke_width(2)).into_dyn(),
                }
            });
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The mean of the values at each step, in step order.
fn mean_by_step(values: impl Iterator<Item = (u32, f32)>) -> Vec<(f32, f32)> {
    let mut by_step: std::collections::BTreeMap<u32, (f32, u32)> = Default::default();
    for (step, v) in values {
        let e = by_step.entry(step).or_default();
        *e = (e.0 + v, e.1 + 1);
    }
    by_step.into_iter().map(|(step, (sum, n))| (step as f32, sum / n as f32)).collect()
}

/// Mean over seeds at each step of `value`, per (method, β): the lines of Fig. 8's panels.
fn mean_lines(rows: &[Row], value: impl Fn(&Row) -> Option<f32>) -> Vec<(String, RGBColor, Vec<(f32, f32)>)> {
    let betas = betas_of(rows);
    let mut out = vec![];
    for (method, label, colour) in figure::styles_for(rows.iter().map(|r| r.method)) {
        for (bi, &b) in betas.iter().enumerate() {
            let pts = mean_by_step(rows.iter().filter(|r| r.method == method && r.beta == b).filter_map(|r| Some((r.checkpoint.step, value(r)?))));
            if !pts.is_empty() {
                // A lighter shade for each further β.
                let shade = if bi == 0 { colour } else { colour.mix(0.5).into_rgb() };
                out.push((format!("{label}, β = {b}"), shade, pts));
            }
        }
    }
    out
}

trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    /// Blends the colour with white by its alpha (plotters' `mix` makes it translucent).
    fn into_rgb(self) -> RGBColor {
        let blend = |c: u8| (c as f64 * self.3 + 255.0 * (1.0 - self.3)).round() as u8;
        RGBColor(blend(self.0), blend(self.1), blend(self.2))
    }
}

fn over_training_svg(rows: &[Row]) -> Result<String> {
    let panels = [
        ("classifier accuracy on held-out D_golden", mean_lines(rows, |r| Some(r.checkpoint.classifier_accuracy))),
        ("Δ log π(y_w) = log π(y_w) − log π_sft(y_w), held-out winners", mean_lines(rows, |r| r.checkpoint.chosen_logratio)),
    ];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1200, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled("Classification over training, mean over seeds (the paper's Fig. 8)", ("sans-serif", 18)).map_err(err)?;
        let (left, right) = root.split_horizontally(600);
        for (area, (y_desc, series)) in [left, right].iter().zip(panels) {
            let ((x0, x1), (y0, y1)) = bounds(&series);
            let mut chart = ChartBuilder::on(area).margin(14).x_label_area_size(44).y_label_area_size(60).build_cartesian_2d(x0.max(0.0)..x1, y0..y1).map_err(err)?;
            chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("training step").y_desc(y_desc).x_label_formatter(&|x| format!("{x:.0}")).draw().map_err(err)?;
            draw_lines(&mut chart, series, 2, SeriesLabelPosition::LowerLeft)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn self_classification_svg(rows: &[Row]) -> Result<String> {
    let series = by_method(rows, |r| Some((r.checkpoint.kl, r.checkpoint.self_classifier_accuracy?)).filter(|p| p.0 > super::stats::MIN_KL));
    let ((x0, x1), (y0, y1)) = bounds(&series);
    let (x0, x1) = (x0.max(super::stats::MIN_KL), x1.max(x0.max(super::stats::MIN_KL) * 10.0));
    let (y0, y1) = (y0.min(0.45), y1.max(0.55));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Self-classification: each policy on golden-labelled pairs of its own samples", ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
            .map_err(err)?;
        chart.configure_mesh().light_line_style(TRANSPARENT).x_desc("KL(π ‖ π_sft), log scale").y_desc("accuracy on its own sample pairs").x_label_formatter(&|x| format!("{x}")).draw().map_err(err)?;
        chart.draw_series(DashedLineSeries::new(vec![(x0, 0.5), (x1, 0.5)], 6, 4, BLACK.stroke_width(1))).map_err(err)?.label("chance").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        for (label, colour, pts) in &series {
            let c = *colour;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.mix(0.6).filled()))).map_err(err)?.label(label.clone()).legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::eval::Checkpoint;

    fn row(method: Method, seed: u32, step: u32, acc: f32, win: f32) -> Row {
        let checkpoint = Checkpoint { step, kl: 0.1 * step as f32, golden_win_rate: win, classifier_accuracy: acc, ..Default::default() };
        Row { method, seed, beta: 0.1, lr: 5e-4, run_steps: 100, align_seed: None, policy: None, checkpoint }
    }

    /// With both quantities a function of KL plus independent noise, the plain correlation is high and the
    /// partial one (given KL) near zero.
    #[test]
    fn the_partial_correlation_removes_what_kl_explains() {
        let rows: Vec<Row> = (1..=40)
            .map(|i| {
                let kl = 0.05 * i as f32;
                let noise = |k: u32| crate::rng::uniform(1, k, i, 0) - 0.5;
                let mut r = row(Method::ONLINE, 0, i, 0.6 + 0.1 * kl.ln() + 0.02 * noise(1), 0.5 + 0.1 * kl.ln() - 0.02 * kl.ln().powi(2) + 0.02 * noise(2));
                r.checkpoint.kl = kl;
                r
            })
            .collect();
        assert!(correlations(&rows, |_| true)[0].1 > 0.8);
        let partial = partial_correlations(&rows)[0].1;
        assert!(partial.abs() < 0.35, "{partial}");
    }

    #[test]
    fn pearson_and_fisher_match_hand_computed_values() {
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]), Some(1.0));
        assert_eq!(pearson(&[(1.0, 1.0), (2.0, 1.0), (3.0, 1.0)]), None, "no spread in y");
        let r = pearson(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)]).unwrap();
        assert!((r - 0.8).abs() < 1e-6, "{r}");
        let (lo, hi) = fisher_interval(0.5, 28).unwrap();
        // atanh(0.5) = 0.5493, ± 1.96 / 5 → tanh(0.1573) = 0.156, tanh(0.9413) = 0.736
        assert!((lo - 0.156).abs() < 1e-3 && (hi - 0.736).abs() < 1e-3, "{lo} {hi}");
    }

    /// Within each seed the better classifiers generate worse: the verdict says so, and a positive correlation
    /// on every seed is "not shown".
    #[test]
    fn the_fig7_verdict_follows_the_sign_of_the_per_seed_correlations() {
        let cloud = |sign: f32| -> Vec<Row> {
            (0..3).flat_map(|seed| (1..=8).map(move |i| row(Method::ONLINE, seed, i * 10, 0.5 + 0.02 * i as f32, 0.5 + sign * 0.03 * i as f32 + 0.01 * seed as f32))).collect()
        };
        let (f, _) = no_positive_correlation(&correlations(&cloud(-1.0), |_| true));
        assert_eq!(f, Finding::Shown);
        let (f, e) = no_positive_correlation(&correlations(&cloud(1.0), |_| true));
        assert_eq!(f, Finding::NotShown, "{e:?}");
        assert_eq!(no_positive_correlation(&[]).0, Finding::NoData);
    }

    #[test]
    fn the_fig8_verdicts_read_matched_steps_and_each_runs_end() {
        let mut rows = vec![];
        for seed in 0..3 {
            let jitter = 0.005 * seed as f32;
            for (method, steps, acc, ll) in [(Method::ONLINE, 200, 0.49, -1.0), (Method::OFFLINE, 1000, 0.66, -3.0)] {
                for step in [0, 200, steps] {
                    let mut r = row(method, seed, step, if step == 0 { 0.5 } else { acc + jitter }, 0.5);
                    r.run_steps = steps;
                    r.checkpoint.chosen_logratio = Some(if step == 0 { 0.0 } else { ll - jitter * step as f32 / 200.0 });
                    rows.push(r);
                }
            }
        }
        let md = over_training_md(&rows, 200);
        assert!(md.contains("Offline's classifier accuracy above online's at step 200: shown"), "{md}");
        assert!(md.contains("falls for every method, by each run's end: shown"), "{md}");
        assert!(md.contains("Most for offline (at step 200): shown"), "{md}");
        assert!(md.contains("the paper's \"≤ 50 %\" is met"), "{md}");
        // Online's winners gaining likelihood breaks "falls for every method".
        for r in rows.iter_mut().filter(|r| r.method == Method::ONLINE && r.checkpoint.step > 0) {
            r.checkpoint.chosen_logratio = Some(0.5 + r.seed as f32 * 0.01);
        }
        assert!(over_training_md(&rows, 200).contains("falls for every method, by each run's end: not shown"));
    }

    #[test]
    fn self_classification_is_at_chance_only_when_every_interval_lies_within_the_margin() {
        let rows = |online: f32, spread: f32| -> Vec<Row> {
            (0..3)
                .flat_map(|seed| {
                    [(Method::ONLINE, online), (Method::OFFLINE, 0.5)].into_iter().map(move |(m, a)| {
                        let mut r = row(m, seed, 10, 0.6, 0.5);
                        r.checkpoint.self_classifier_accuracy = Some(a + spread * [-1.0, 0.0, 1.0][seed as usize]);
                        r.checkpoint.self_classified_pairs = Some(500);
                        r
                    })
                })
                .collect()
        };
        // ±0.01 across 3 seeds: the interval is ±0.025, inside ±0.05.
        assert!(self_classification_md(&rows(0.5, 0.01)).contains("— shown."));
        let md = self_classification_md(&rows(0.6, 0.01));
        assert!(md.contains("— not shown.") && md.contains("Away from 0.5: online"), "{md}");
        // ±0.1: the interval (±0.25) contains ½ but reaches far past the margin: too wide to call chance.
        let md = self_classification_md(&rows(0.5, 0.1));
        assert!(md.contains("— direction only.") && md.contains("Too wide to tell: online"), "{md}");
    }
}

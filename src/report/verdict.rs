//! Is method A above method B at matched KL? Three ways of matching checkpoints at equal KL, each computed
//! per seed and then across seeds (mean, 95 % t-interval, seeds with the same sign), and one rule for
//! when they agree. A verdict that holds by one matching and not another is not reported as holding.
//!
//! Every matching works in ln KL on checkpoints past the start (KL > `MIN_KL`) and compares the methods
//! only at KL values inside the range both reached for that seed, so neither is credited for a region the
//! other never visited (the frontier at a budget inside that range counts every checkpoint within it).

use super::stats::{estimate, Estimate, MIN_KL};
use crate::experiments::{MatchingConfig, MatchingGrid, Method};
use crate::experiments::pipeline::Row;

/// Points of the ln-KL grid the frontier and smoothed matchings are evaluated on.
const GRID: usize = 16;
/// Bandwidth of the smoothed curves' Gaussian kernel, in ln KL.
pub const BANDWIDTH: f32 = 0.3;
/// A grid point counts for the smoothed matching only where each method's kernel weight is at least
/// this (some checkpoint within about 1.2 bandwidths): no curve is read across an empty region.
const MIN_WEIGHT: f32 = 0.5;
/// The nearest matching pairs checkpoints at most this far apart in ln KL.
pub const NEAREST: f32 = 0.1;

/// A checkpoint as the matchings see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub ln_kl: f32,
    pub win: f32,
}

/// The checkpoints of one method and seed past the start (every run of that method pooled, as the
/// paper pools every setting).
pub fn points(rows: &[Row], method: Method, seed: u32) -> Vec<Point> {
    points_above(rows, method, seed, 0.0)
}

/// [`points`] at or above the KL floor `kl_floor`: the checkpoints a matching compares.
pub fn points_above(rows: &[Row], method: Method, seed: u32, kl_floor: f32) -> Vec<Point> {
    rows.iter()
        .filter(|r| r.method == method && r.seed == seed && r.checkpoint.kl > MIN_KL && r.checkpoint.kl >= kl_floor)
        .map(|r| Point { ln_kl: r.checkpoint.kl.ln(), win: r.checkpoint.golden_win_rate })
        .collect()
}

/// `GRID` points from ln KL `lo` to `hi`, spaced evenly in ln KL or in √KL, as ln KL.
pub fn grid_points(lo: f32, hi: f32, grid: MatchingGrid) -> Vec<f32> {
    (0..GRID)
        .map(|i| match grid {
            _ if GRID == 1 || hi == lo => lo,
            MatchingGrid::LnKl => lo + (hi - lo) * i as f32 / (GRID - 1) as f32,
            MatchingGrid::SqrtKl => {
                let (d_lo, d_hi) = ((0.5 * lo).exp(), (0.5 * hi).exp());
                (2.0 * (d_lo + (d_hi - d_lo) * i as f32 / (GRID - 1) as f32).ln()).clamp(lo, hi)
            }
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matching {
    /// The best win rate reached within each KL budget (the over-optimisation frontier), averaged over
    /// budgets in the shared range.
    Frontier,
    /// Kernel-smoothed mean win rate against ln KL, averaged where both methods have checkpoints.
    Smoothed,
    /// Each checkpoint of B against the nearest checkpoint of A within `NEAREST` in ln KL.
    Nearest,
}

impl Matching {
    pub const ALL: [Matching; 3] = [Matching::Frontier, Matching::Smoothed, Matching::Nearest];

    pub fn describe(self) -> &'static str {
        match self {
            Matching::Frontier => "best win rate within each KL budget",
            Matching::Smoothed => "smoothed mean curves where both have checkpoints",
            Matching::Nearest => "nearest checkpoints (≤ 0.1 apart in ln KL)",
        }
    }

    /// A's win rate minus B's for one seed, by this matching; None when they share no KL range.
    pub fn difference(self, a: &[Point], b: &[Point], spacing: MatchingGrid) -> Option<f32> {
        let (lo, hi) = shared_ln_range(a, b)?;
        let points = grid_points(lo, hi, spacing);
        let grid = || points.iter().copied();
        match self {
            Matching::Frontier => {
                // A budget's frontier counts every checkpoint within it; budgets start at the larger of the two
                // methods' smallest KL, so both have one.
                let best = |p: &[Point], x: f32| p.iter().filter(|q| q.ln_kl <= x + 1e-6).map(|q| q.win).fold(f32::NEG_INFINITY, f32::max);
                mean(grid().map(|x| best(a, x) - best(b, x)))
            }
            Matching::Smoothed => mean(grid().filter_map(|x| Some(smoothed(a, x)? - smoothed(b, x)?))),
            Matching::Nearest => mean(b.iter().filter(|q| q.ln_kl >= lo - NEAREST && q.ln_kl <= hi + NEAREST).filter_map(|q| {
                let near = a.iter().min_by(|x, y| (x.ln_kl - q.ln_kl).abs().total_cmp(&(y.ln_kl - q.ln_kl).abs()))?;
                ((near.ln_kl - q.ln_kl).abs() <= NEAREST).then_some(near.win - q.win)
            })),
        }
    }
}

/// The kernel-weighted mean win rate at `x`, or None where the checkpoints are too far away.
pub fn smoothed(p: &[Point], x: f32) -> Option<f32> {
    let (mut w, mut s) = (0.0, 0.0);
    for q in p {
        let k = (-0.5 * ((q.ln_kl - x) / BANDWIDTH).powi(2)).exp();
        w += k;
        s += k * q.win;
    }
    (w >= MIN_WEIGHT).then(|| s / w)
}

fn mean(v: impl Iterator<Item = f32>) -> Option<f32> {
    let (n, s) = v.fold((0, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f32)
}

/// One matching's result: per seed, then across seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    pub matching: Matching,
    pub per_seed: Vec<(u32, f32)>,
    /// None when no seed had a shared KL range.
    pub across: Option<Estimate>,
    /// Seeds whose difference is above zero.
    pub positive: usize,
}

impl Matched {
    fn excludes_zero_above(&self) -> bool {
        matches!(&self.across, Some(Estimate { mean, ci: Some(ci), .. }) if mean - ci > 0.0)
    }
    fn excludes_zero_below(&self) -> bool {
        matches!(&self.across, Some(Estimate { mean, ci: Some(ci), .. }) if mean + ci < 0.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every matching puts A above B with an interval that excludes zero.
    Holds,
    /// Every matching puts A above B on average, but not every interval excludes zero.
    DirectionOnly,
    /// The matchings disagree in sign (or a mean is exactly zero).
    DoesNotHold,
    /// Every matching puts A below B on average, but not every interval excludes zero.
    ReversedInDirection,
    /// Every matching puts A below B with an interval that excludes zero.
    Reversed,
    /// A matching found no shared KL range on any seed.
    NoOverlap,
}

impl Outcome {
    pub fn words(self) -> &'static str {
        match self {
            Outcome::Holds => "holds",
            Outcome::DirectionOnly => "holds in direction only",
            Outcome::DoesNotHold => "does not hold",
            Outcome::ReversedInDirection => "is reversed in direction only",
            Outcome::Reversed => "is reversed",
            Outcome::NoOverlap => "cannot be judged (no shared KL range)",
        }
    }
}

/// A against B by every matching, and the outcome of the agreement rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: Method,
    pub b: Method,
    pub matchings: Vec<Matched>,
    pub outcome: Outcome,
    /// Per seed, the KL range both methods reached (from the larger of their smallest KLs to the smaller of their
    /// largest): the only range the matchings compare them in. None for a seed where they do not overlap.
    pub shared_kl: Vec<(u32, Option<(f32, f32)>)>,
    /// The KL floor and grid it was matched with.
    pub how: MatchingConfig,
}

/// The ln-KL range both point sets reach (from the larger of their smallest to the smaller of their largest), if
/// they overlap: the only range any comparison of the two reads.
pub fn shared_ln_range(a: &[Point], b: &[Point]) -> Option<(f32, f32)> {
    let range = |p: &[Point]| p.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), q| (lo.min(q.ln_kl), hi.max(q.ln_kl)));
    let ((a_lo, a_hi), (b_lo, b_hi)) = (range(a), range(b));
    let (lo, hi) = (a_lo.max(b_lo), a_hi.min(b_hi));
    (lo <= hi).then_some((lo, hi))
}

/// Each one's best win rate among its checkpoints inside the ln-KL range both reached, with that range (ln KL);
/// none when they share no range or one has no checkpoint inside it (its points straddle it).
pub fn shared_peaks(a: &[Point], b: &[Point]) -> Option<(f32, f32, (f32, f32))> {
    let (lo, hi) = shared_ln_range(a, b)?;
    let best = |p: &[Point]| p.iter().filter(|q| q.ln_kl >= lo && q.ln_kl <= hi).map(|q| q.win).reduce(f32::max);
    Some((best(a)?, best(b)?, (lo, hi)))
}

pub fn compare(rows: &[Row], seeds: &[u32], a: Method, b: Method, how: &MatchingConfig) -> Comparison {
    let pts = |m: Method, s: u32| points_above(rows, m, s, how.kl_floor);
    let matchings: Vec<Matched> = Matching::ALL
        .iter()
        .map(|&m| {
            let per_seed: Vec<(u32, f32)> = seeds.iter().filter_map(|&s| Some((s, m.difference(&pts(a, s), &pts(b, s), how.grid)?))).collect();
            let values: Vec<f32> = per_seed.iter().map(|p| p.1).collect();
            let across = (!values.is_empty()).then(|| estimate(&values));
            Matched { matching: m, positive: values.iter().filter(|&&v| v > 0.0).count(), per_seed, across }
        })
        .collect();
    let outcome = if matchings.iter().any(|m| m.across.is_none()) {
        Outcome::NoOverlap
    } else if matchings.iter().all(Matched::excludes_zero_above) {
        Outcome::Holds
    } else if matchings.iter().all(Matched::excludes_zero_below) {
        Outcome::Reversed
    } else if matchings.iter().all(|m| m.across.as_ref().is_some_and(|e| e.mean > 0.0)) {
        Outcome::DirectionOnly
    } else if matchings.iter().all(|m| m.across.as_ref().is_some_and(|e| e.mean < 0.0)) {
        Outcome::ReversedInDirection
    } else {
        Outcome::DoesNotHold
    };
    let shared_kl = seeds.iter().map(|&s| (s, shared_ln_range(&pts(a, s), &pts(b, s)).map(|(lo, hi)| (lo.exp(), hi.exp())))).collect();
    Comparison { a, b, matchings, outcome, shared_kl, how: *how }
}

/// The comparison as a markdown table: one line per matching, per-seed differences, mean ± interval.
pub fn comparison_md(c: &Comparison) -> String {
    let mut s = format!("**{} − {}**, golden win rate at matched KL:\n\n| matching | per seed | mean ± 95 % | seeds > 0 |\n|---|---|---|---|\n", c.a, c.b);
    for m in &c.matchings {
        let per: Vec<String> = m.per_seed.iter().map(|(seed, d)| format!("{seed}: {d:+.3}")).collect();
        let across = match &m.across {
            Some(Estimate { mean, ci: Some(ci), .. }) => format!("{mean:+.3} ± {ci:.3}"),
            Some(Estimate { mean, ci: None, .. }) => format!("{mean:+.3} (one seed)"),
            None => "—".into(),
        };
        s += &format!("| {} | {} | {} | {} of {} |\n", m.matching.describe(), per.join(", "), across, m.positive, m.per_seed.len());
    }
    let ranges: Vec<String> = c.shared_kl.iter().map(|(seed, r)| r.map_or(format!("{seed}: none"), |(lo, hi)| format!("{seed}: {} – {}", kl_text(lo), kl_text(hi)))).collect();
    s += &format!("\nThe KL range both reached, where they are compared, per seed: {}.\n", ranges.join(", "));
    if c.how != MatchingConfig::default() {
        let grid = match c.how.grid {
            MatchingGrid::LnKl => "ln KL",
            MatchingGrid::SqrtKl => "√KL",
        };
        s += &format!("Only checkpoints at KL ≥ {} are compared (fixed before the runs); the grid's points are evenly spaced in {grid}.\n", c.how.kl_floor);
    }
    s += &format!("\nBy the agreement rule (all three matchings above zero with intervals that exclude it), {} > {} **{}**.\n", c.a, c.b, c.outcome.words());
    s
}

/// A KL value with two significant digits (0.0031, 0.27, 4.6, 87).
fn kl_text(kl: f32) -> String {
    let digits = (1 - kl.abs().log10().floor() as i32).max(0) as usize;
    format!("{kl:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::eval::Checkpoint;

    /// The two methods compared: A above B or not.
    const A: Method = Method::ONLINE;
    const B: Method = Method::OFFLINE;

    fn row(method: Method, seed: u32, kl: f32, win: f32) -> Row {
        let checkpoint = Checkpoint { step: 1, kl, golden_win_rate: win, ties: 0.0, classifier_accuracy: 0.5, proxy_win_rate: None, train_loss: None, responses: Default::default(), samples: vec![], ..Default::default() };
        Row { method, seed, beta: 0.1, lr: 1e-3, run_steps: 1, align_seed: None, policy: None, checkpoint }
    }

    /// Both methods trace a rise-and-fall curve in ln KL over the same checkpoints; A is `gap` above B,
    /// and each seed is shifted by `spread · (seed − 2)` (five seeds), so the spread sets the interval.
    fn rows(gap: f32, spread: f32) -> Vec<Row> {
        let mut rows = vec![];
        for seed in 0..5u32 {
            let shift = spread * (seed as f32 - 2.0);
            for i in 0..20 {
                let x = -1.0 + 0.15 * i as f32;
                let curve = 0.6 + 0.2 * x - 0.08 * x * x;
                rows.push(row(A, seed, x.exp(), curve + gap + shift));
                // B's checkpoints sit slightly off A's, as real runs' do.
                rows.push(row(B, seed, (x + 0.03).exp(), curve + 0.2 * 0.03));
            }
            rows.push(row(A, seed, 0.0, 0.5)); // the start: left out
        }
        rows
    }

    const SEEDS: [u32; 5] = [0, 1, 2, 3, 4];

    #[test]
    fn a_clear_gap_holds_by_every_matching() {
        let c = compare(&rows(0.1, 0.005), &SEEDS, A, B, &MatchingConfig::default());
        assert_eq!(c.outcome, Outcome::Holds, "{}", comparison_md(&c));
        for m in &c.matchings {
            let e = m.across.as_ref().unwrap();
            assert!((e.mean - 0.1).abs() < 0.02, "{:?}: {e:?}", m.matching);
            assert_eq!(m.positive, 5);
        }
    }

    #[test]
    fn a_small_gap_in_noise_is_direction_only() {
        // Seeds spread ±0.2 around a gap of 0.02: every mean is 0.02 > 0, no interval excludes zero.
        let c = compare(&rows(0.02, 0.1), &SEEDS, A, B, &MatchingConfig::default());
        assert_eq!(c.outcome, Outcome::DirectionOnly, "{}", comparison_md(&c));
        assert!(comparison_md(&c).contains("**holds in direction only**"));
    }

    #[test]
    fn a_small_negative_gap_in_noise_is_reversed_in_direction_only() {
        let c = compare(&rows(-0.02, 0.1), &SEEDS, A, B, &MatchingConfig::default());
        assert_eq!(c.outcome, Outcome::ReversedInDirection, "{}", comparison_md(&c));
        assert!(comparison_md(&c).contains("**is reversed in direction only**"));
    }

    #[test]
    fn a_negative_gap_is_reversed() {
        let c = compare(&rows(-0.1, 0.005), &SEEDS, A, B, &MatchingConfig::default());
        assert_eq!(c.outcome, Outcome::Reversed, "{}", comparison_md(&c));
    }

    #[test]
    fn matchings_that_disagree_do_not_hold() {
        // A has one lucky checkpoint at the top of the shared range (the frontier sees it) and is below B
        // everywhere else (the smoothed and nearest matchings see that).
        let mut r = vec![];
        for seed in 0..5u32 {
            for i in 0..10 {
                let x = 0.1 * i as f32;
                r.push(row(A, seed, x.exp(), 0.55 + 0.01 * seed as f32));
                r.push(row(B, seed, x.exp(), 0.6 + 0.01 * seed as f32));
            }
            r.push(row(A, seed, 0.45f32.exp(), 0.95));
        }
        let c = compare(&r, &SEEDS, A, B, &MatchingConfig::default());
        assert!(c.matchings[0].across.as_ref().unwrap().mean > 0.0, "frontier credits the lucky checkpoint");
        assert!(c.matchings[2].across.as_ref().unwrap().mean < 0.0);
        assert_eq!(c.outcome, Outcome::DoesNotHold, "{}", comparison_md(&c));
    }

    #[test]
    fn no_shared_kl_range_means_no_verdict() {
        let r = vec![row(A, 0, 5.0, 0.9), row(A, 0, 6.0, 0.9), row(B, 0, 0.1, 0.6), row(B, 0, 0.12, 0.6)];
        let c = compare(&r, &[0], A, B, &MatchingConfig::default());
        assert_eq!(c.outcome, Outcome::NoOverlap);
        assert!(comparison_md(&c).contains("per seed: 0: none."), "{}", comparison_md(&c));
    }

    #[test]
    fn the_shared_kl_range_is_stated() {
        let r = vec![row(A, 0, 0.01, 0.5), row(A, 0, 0.27, 0.6), row(B, 0, 0.05, 0.6), row(B, 0, 4.6, 0.6)];
        let c = compare(&r, &[0], A, B, &MatchingConfig::default());
        assert!(comparison_md(&c).contains("per seed: 0: 0.050 – 0.27."), "{}", comparison_md(&c));
    }

    #[test]
    fn smoothing_does_not_read_across_an_empty_region() {
        let p = [Point { ln_kl: 0.0, win: 0.6 }, Point { ln_kl: 3.0, win: 0.8 }];
        assert!(smoothed(&p, 1.5).is_none());
        assert!((smoothed(&p, 0.0).unwrap() - 0.6).abs() < 1e-3);
    }

    #[test]
    fn the_kl_floor_leaves_out_the_checkpoints_below_it() {
        // A is far above B below KL 0.1 and equal above it: with the floor, no difference is left.
        let mut r = vec![];
        for seed in 0..5u32 {
            for i in 0..20 {
                let kl = 0.01 * 1.3f32.powi(i);
                let gap = if kl < 0.1 { 0.2 } else { 0.0 };
                r.push(row(A, seed, kl, 0.6 + gap + 0.001 * seed as f32));
                r.push(row(B, seed, kl, 0.6 + 0.001 * seed as f32));
            }
        }
        let floor = MatchingConfig { kl_floor: 0.1, grid: MatchingGrid::SqrtKl };
        let without = compare(&r, &SEEDS, A, B, &MatchingConfig::default());
        assert_eq!(without.outcome, Outcome::Holds, "{}", comparison_md(&without));
        let with = compare(&r, &SEEDS, A, B, &floor);
        for m in &with.matchings {
            assert!(m.across.as_ref().unwrap().mean.abs() < 1e-6, "{:?}", m);
        }
        assert!(with.shared_kl.iter().all(|(_, r)| r.unwrap().0 >= 0.1));
        assert!(comparison_md(&with).contains("Only checkpoints at KL ≥ 0.1 are compared"));
        assert!(!comparison_md(&without).contains("Only checkpoints"));
    }

    #[test]
    fn a_sqrt_kl_grid_spreads_its_points_evenly_in_sqrt_kl() {
        let (lo, hi) = (0.1f32.ln(), 4.0f32.ln());
        let g = grid_points(lo, hi, MatchingGrid::SqrtKl);
        assert_eq!(g.len(), GRID);
        assert!((g[0] - lo).abs() < 1e-5 && (g[GRID - 1] - hi).abs() < 1e-5);
        let d: Vec<f32> = g.iter().map(|x| (0.5 * x).exp()).collect();
        let step = d[1] - d[0];
        assert!(d.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-4), "{d:?}");
        // Fewer points below KL 0.37 than the ln-KL grid puts there.
        let below = |g: &[f32]| g.iter().filter(|&&x| x < 0.37f32.ln()).count();
        assert!(below(&g) < below(&grid_points(lo, hi, MatchingGrid::LnKl)));
    }
}

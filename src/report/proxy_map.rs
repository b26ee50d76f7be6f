//! The proxy map (beyond the paper; issue 27): how good must the proxy be for on-policy sampling to pay? Online IPO
//! is run again labelled by weaker proxies (the proxy's own run stopped earlier, `proxy_map`), and each online run's
//! advantage over offline IPO (which no proxy touches) is read against the tie-free held-out accuracy of the proxy
//! that labelled it; golden labels are the top point (accuracy 1 on every untied pair).
//!
//! Per seed and labeller: online − offline by the experiment's matching (above its KL floor, on its grid), and the
//! difference of their best checkpoints inside the KL range both reached. Across seeds: a straight line fitted by
//! least squares to every (accuracy, frontier difference) point, its zero crossing a* ("online > offline above
//! accuracy a*"), and a 95 % interval for a* from a bootstrap over seeds (each resample draws whole seeds, so a
//! seed's points stay together).

use super::stats::{estimate, Estimate};
use super::verdict::{self, Matching};
use crate::error::Result;
use crate::experiments::method::{Judge, Method};
use crate::experiments::ExperimentResults;
use plotters::prelude::*;

/// One online run family (all its (β, lr) settings pooled, as Figure 1 pools them) on one seed, against offline.
#[derive(Clone, Debug, PartialEq)]
pub struct MapPoint {
    pub seed: u32,
    /// The online method: labelled by a rung, the full proxy or golden labels.
    pub method: Method,
    /// Tie-free held-out accuracy of its labeller (1 for golden labels).
    pub accuracy: f32,
    /// online − offline by each of [`Matching::ALL`] (none: no shared KL range above the floor).
    pub matched: [Option<f32>; 3],
    /// Best checkpoint of online minus offline's, inside the KL range both reached above the floor.
    pub peak: Option<f32>,
}

/// Where online starts to beat offline along the proxy's accuracy, by the fitted line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// The fitted difference crosses zero at this accuracy, inside the measured range.
    At(f32),
    /// Positive at every accuracy measured, the weakest being this one.
    Everywhere(f32),
    /// Not positive at any accuracy up to the best measured (golden labels' 1 where they ran).
    NotReached,
    /// The fitted difference does not rise with accuracy (slope ≤ 0): no threshold.
    NotRising,
}

impl Threshold {
    /// a* as a number for the bootstrap's order: below the range sorts first, never reached last.
    fn key(self) -> f32 {
        match self {
            Threshold::At(a) | Threshold::Everywhere(a) => a,
            Threshold::NotReached | Threshold::NotRising => f32::INFINITY,
        }
    }

    pub fn words(self) -> String {
        match self {
            Threshold::At(a) => format!("online > offline above a tie-free proxy accuracy of **{a:.3}**"),
            Threshold::Everywhere(a) => format!("online > offline at every proxy accuracy measured (from **{a:.3}**)"),
            Threshold::NotReached => "online > offline is **not reached** at any proxy accuracy measured, golden labels included".into(),
            Threshold::NotRising => "**no threshold**: the fitted difference does not rise with the proxy's accuracy".into(),
        }
    }
}

/// The labellers of a result, weakest first: the rungs of `proxy_map`, the full proxy, golden labels (those that ran).
pub fn labellers(results: &ExperimentResults) -> Vec<Method> {
    let ran = |m: &Method| results.checkpoints.iter().any(|r| r.method == *m);
    results.config.proxy_map.iter().map(|&s| Method::online_proxy_at(s)).chain([Method::ONLINE, Method::ONLINE_GOLDEN]).filter(ran).collect()
}

/// Every (seed, labeller) point of a result whose labeller's accuracy is known.
pub fn map_points(results: &ExperimentResults) -> Vec<MapPoint> {
    let how = &results.config.matching;
    let mut out = vec![];
    for &seed in &results.config.seeds {
        let Some(report) = results.proxy.iter().find(|p| p.seed == seed) else { continue };
        let offline = verdict::points_above(&results.checkpoints, Method::OFFLINE, seed, how.kl_floor);
        for method in labellers(results) {
            let crate::experiments::method::Data::Online { judge, .. } = method.data else { continue };
            let accuracy = match judge {
                Judge::Golden => 1.0,
                judge => match report.tie_free_of(judge) {
                    Some(a) => a,
                    None => continue,
                },
            };
            let online = verdict::points_above(&results.checkpoints, method, seed, how.kl_floor);
            let matched = Matching::ALL.map(|m| m.difference(&online, &offline, how.grid));
            out.push(MapPoint { seed, method, accuracy, matched, peak: verdict::shared_peaks(&online, &offline).map(|(a, b, _)| a - b) });
        }
    }
    out
}

/// Least-squares line y = c + m·x: (c, m); none with fewer than two distinct x.
pub fn fit_line(p: &[(f32, f32)]) -> Option<(f32, f32)> {
    let n = p.len() as f64;
    let (mx, my) = (p.iter().map(|q| q.0 as f64).sum::<f64>() / n, p.iter().map(|q| q.1 as f64).sum::<f64>() / n);
    let sxx: f64 = p.iter().map(|q| (q.0 as f64 - mx).powi(2)).sum();
    let sxy: f64 = p.iter().map(|q| (q.0 as f64 - mx) * (q.1 as f64 - my)).sum();
    (p.len() >= 2 && sxx > 1e-12).then(|| {
        let m = sxy / sxx;
        ((my - m * mx) as f32, m as f32)
    })
}

/// The threshold of the line (c, m) over the accuracies measured, `lo` to `hi`.
pub fn threshold((c, m): (f32, f32), lo: f32, hi: f32) -> Threshold {
    if m <= 0.0 {
        return Threshold::NotRising;
    }
    let a = -c / m;
    if a <= lo {
        Threshold::Everywhere(lo)
    } else if a > hi {
        Threshold::NotReached
    } else {
        Threshold::At(a)
    }
}

/// Resamples of the bootstrap over seeds.
pub const BOOTSTRAP: u32 = 2000;

/// The fitted line over `points` (accuracy, frontier difference), its threshold, and the 2.5 % and 97.5 % points
/// of the threshold over [`BOOTSTRAP`] resamples of whole seeds (as [`Threshold`]s: the interval's ends may lie
/// outside the range or never be reached).
pub struct MapFit {
    pub line: (f32, f32),
    pub threshold: Threshold,
    pub interval: Option<(Threshold, Threshold)>,
    /// The accuracies measured, lowest to highest.
    pub range: (f32, f32),
}

pub fn fit_map(points: &[MapPoint]) -> Option<MapFit> {
    let xy = |p: &[&MapPoint]| -> Vec<(f32, f32)> { p.iter().filter_map(|q| Some((q.accuracy, q.matched[0]?))).collect() };
    let all: Vec<&MapPoint> = points.iter().collect();
    let pts = xy(&all);
    let line = fit_line(&pts)?;
    let range = pts.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), q| (lo.min(q.0), hi.max(q.0)));
    let mut seeds: Vec<u32> = points.iter().map(|p| p.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let interval = (seeds.len() >= 2).then(|| {
        let mut draws: Vec<Threshold> = (0..BOOTSTRAP)
            .filter_map(|b| {
                let chosen: Vec<u32> = (0..seeds.len()).map(|i| seeds[((crate::rng::uniform(0, crate::rng::streams::REPORT_BOOTSTRAP, b, i as u32) * seeds.len() as f32) as usize).min(seeds.len() - 1)]).collect();
                let resample: Vec<&MapPoint> = chosen.iter().flat_map(|&s| points.iter().filter(move |p| p.seed == s)).collect();
                let p = xy(&resample);
                let lo = p.iter().map(|q| q.0).fold(f32::INFINITY, f32::min);
                let hi = p.iter().map(|q| q.0).fold(f32::NEG_INFINITY, f32::max);
                Some(threshold(fit_line(&p)?, lo, hi))
            })
            .collect();
        draws.sort_by(|a, b| a.key().total_cmp(&b.key()));
        let at = |q: f32| draws[((q * draws.len() as f32) as usize).min(draws.len() - 1)];
        (at(0.025), at(0.975))
    });
    Some(MapFit { line, threshold: threshold(line, range.0, range.1), interval, range })
}

fn end_words(t: Threshold) -> String {
    match t {
        Threshold::At(a) => format!("{a:.3}"),
        Threshold::Everywhere(a) => format!("below {a:.3} (the weakest measured)"),
        Threshold::NotReached | Threshold::NotRising => "not reached".into(),
    }
}

/// summary.md's section: the map's table per labeller, the fit and its threshold.
pub fn proxy_map_md(results: &ExperimentResults) -> String {
    if results.config.proxy_map.is_empty() {
        return String::new();
    }
    let points = map_points(results);
    let mut s = String::from("\n## The proxy map: online − offline against the proxy's accuracy (beyond the paper)\n\n");
    s += &format!(
        "Online IPO labelled by weaker proxies (the proxy's own run stopped at steps {:?}), by the full proxy, and by golden labels (accuracy 1); offline IPO is the same runs for all (no proxy touches it). Per seed, each labeller's online runs (every β and lr pooled) against offline's, matched as Figure 1 is (above KL {}); the x-axis is the labeller's tie-free accuracy on the held-out pairs. Mean ± 95 % t-interval across seeds.\n\n",
        results.config.proxy_map, results.config.matching.kl_floor
    );
    if points.is_empty() {
        return s + "No labeller has both its runs and its accuracy measured yet.\n";
    }
    s += "| labeller | tie-free accuracy | frontier | smoothed | nearest | peaks in the shared range | seeds with frontier > 0 |\n|---|---|---|---|---|---|---|\n";
    let cell = |v: Vec<f32>| if v.is_empty() { "—".to_string() } else { super::classifiers::show(&estimate(&v), 3) };
    for m in labellers(results) {
        let mine: Vec<&MapPoint> = points.iter().filter(|p| p.method == m).collect();
        if mine.is_empty() {
            continue;
        }
        let acc: Estimate = estimate(&mine.iter().map(|p| p.accuracy).collect::<Vec<_>>());
        let acc = match acc.ci {
            Some(ci) => format!("{:.3} ± {ci:.3}", acc.mean),
            None => format!("{:.3}", acc.mean),
        };
        let by = |k: usize| cell(mine.iter().filter_map(|p| p.matched[k]).collect());
        let positive = mine.iter().filter(|p| p.matched[0].is_some_and(|v| v > 0.0)).count();
        let judged = mine.iter().filter(|p| p.matched[0].is_some()).count();
        s += &format!("| {} | {acc} | {} | {} | {} | {} | {positive} of {judged} |\n", label(m), by(0), by(1), by(2), cell(mine.iter().filter_map(|p| p.peak).collect()));
    }
    match fit_map(&points) {
        Some(fit) => {
            let (c, m) = fit.line;
            s += &format!(
                "\nFitted over every (seed, labeller) point by least squares: online − offline (frontier) = {c:+.3} {} {:.3} × accuracy.\n\n**Computed threshold**: {}",
                if m >= 0.0 { "+" } else { "−" },
                m.abs(),
                fit.threshold.words()
            );
            match fit.interval {
                Some((lo, hi)) => s += &format!(" (95 % interval from a bootstrap over seeds, {BOOTSTRAP} resamples: {} to {}).\n", end_words(lo), end_words(hi)),
                None => s += " (one seed: no interval).\n",
            }
        }
        None => s += "\nToo few points with distinct accuracies to fit a line.\n",
    }
    s
}

/// A labeller as the map's table and legend name it.
fn label(m: Method) -> String {
    match m.data {
        crate::experiments::method::Data::Online { judge: Judge::ProxyAt(step), .. } => format!("proxy at step {step}"),
        crate::experiments::method::Data::Online { judge: Judge::Golden, .. } => "golden labels".into(),
        _ => "the full proxy".into(),
    }
}

fn err<E: std::fmt::Debug>(e: E) -> crate::Error {
    crate::Error::new(format!("drawing the proxy map: {e:?}"))
}

/// proxy-map.svg: each (seed, labeller) point, the fitted line, zero, and the threshold.
pub fn proxy_map_svg(results: &ExperimentResults) -> Result<String> {
    let points = map_points(results);
    let pts: Vec<(Method, f32, f32)> = points.iter().filter_map(|p| Some((p.method, p.accuracy, p.matched[0]?))).collect();
    let (x0, x1) = pts.iter().fold((0.75f32, 1.0f32), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (y0, y1) = pts.iter().fold((-0.05f32, 0.05f32), |(lo, hi), p| (lo.min(p.2), hi.max(p.2)));
    let (pad_x, pad_y) = ((x1 - x0) * 0.04, (y1 - y0) * 0.08);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("The proxy map: online − offline (frontier, matched KL) against the proxy's tie-free accuracy", ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x0 - pad_x)..(x1 + pad_x), (y0 - pad_y)..(y1 + pad_y))
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("tie-free held-out accuracy of the labelling proxy (golden labels: 1)")
            .y_desc("online − offline, golden win rate")
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| if y.abs() < 5e-3 { "0".into() } else { format!("{y:+.2}") })
            .draw()
            .map_err(err)?;
        chart.draw_series(LineSeries::new([(x0 - pad_x, 0.0), (x1 + pad_x, 0.0)], BLACK.mix(0.5).stroke_width(1))).map_err(err)?;
        // One colour per labeller, weakest first, told apart by hue rather than by shades of one (Okabe–Ito): the
        // rungs, then the full proxy, golden labels in black.
        const PALETTE: [(u8, u8, u8); 4] = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (0, 114, 178)];
        for (i, m) in labellers(results).into_iter().enumerate() {
            let (r, g, b) = match m {
                _ if m == Method::ONLINE_GOLDEN => (0, 0, 0),
                _ if m == Method::ONLINE => PALETTE[3],
                _ => PALETTE[i.min(2)],
            };
            let colour = RGBColor(r, g, b);
            let mine: Vec<(f32, f32)> = pts.iter().filter(|p| p.0 == m).map(|p| (p.1, p.2)).collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|&p| Circle::new(p, 5, colour.filled())))
                .map_err(err)?
                .label(label(m))
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        }
        if let Some(fit) = fit_map(&points) {
            let (c, m) = fit.line;
            let line = [(x0 - pad_x, c + m * (x0 - pad_x)), (x1 + pad_x, c + m * (x1 + pad_x))];
            chart.draw_series(LineSeries::new(line, RGBColor(200, 30, 30).stroke_width(2))).map_err(err)?.label("least-squares fit").legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(200, 30, 30).stroke_width(2)));
            if let Threshold::At(a) = fit.threshold {
                chart
                    .draw_series(LineSeries::new([(a, y0 - pad_y), (a, y1 + pad_y)], RGBColor(200, 30, 30).mix(0.6).stroke_width(1)))
                    .map_err(err)?
                    .label(format!("a* = {a:.3}"))
                    .legend(|(x, y)| PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], RGBColor(200, 30, 30).stroke_width(1)));
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_fits_exact_points_and_crosses_zero_where_it_should() {
        let (c, m) = fit_line(&[(0.8, -0.02), (0.9, 0.0), (1.0, 0.02)]).unwrap();
        assert!((m - 0.2).abs() < 1e-5 && (c + 0.18).abs() < 1e-5, "{c} {m}");
        assert!(matches!(threshold((c, m), 0.8, 1.0), Threshold::At(a) if (a - 0.9).abs() < 1e-5));
        assert_eq!(threshold((c, m), 0.95, 1.0), Threshold::Everywhere(0.95));
        assert_eq!(threshold((c, m), 0.8, 0.85), Threshold::NotReached);
        assert_eq!(threshold((0.1, -0.1), 0.8, 1.0), Threshold::NotRising);
        assert_eq!(fit_line(&[(0.9, 0.1), (0.9, 0.2)]), None, "one accuracy: no slope");
    }

    fn point(seed: u32, accuracy: f32, gap: f32) -> MapPoint {
        MapPoint { seed, method: Method::ONLINE, accuracy, matched: [Some(gap), Some(gap), Some(gap)], peak: Some(gap) }
    }

    #[test]
    fn the_bootstrap_interval_brackets_a_clear_threshold_and_is_open_when_seeds_disagree() {
        // Five seeds on the same line through 0.9, each shifted a little: a* near 0.9, the interval around it.
        let clear: Vec<MapPoint> = (0..5).flat_map(|s| [0.8, 0.85, 0.9, 0.95, 1.0].map(move |a| point(s, a, 0.4 * (a - 0.9) + 0.002 * (s as f32 - 2.0)))).collect();
        let fit = fit_map(&clear).unwrap();
        let Threshold::At(a) = fit.threshold else { panic!("{:?}", fit.threshold) };
        assert!((a - 0.9).abs() < 0.01, "{a}");
        let (Threshold::At(lo), Threshold::At(hi)) = fit.interval.unwrap() else { panic!("{:?}", fit.interval.map(|i| (i.0.key(), i.1.key()))) };
        assert!(lo <= a && a <= hi && hi - lo < 0.05, "{lo} {a} {hi}");
        // Half the seeds never cross: the interval's upper end is not reached.
        let split: Vec<MapPoint> = (0..6).flat_map(|s| [0.8, 0.9, 1.0].map(move |a| point(s, a, if s % 2 == 0 { a - 0.9 } else { -0.05 }))).collect();
        let (_, hi) = fit_map(&split).unwrap().interval.unwrap();
        assert_eq!(hi.key(), f32::INFINITY);
        // The same points give the same interval every time (a fixed bootstrap stream).
        assert_eq!(fit_map(&split).unwrap().interval, fit_map(&split).unwrap().interval);
    }
}

//! The scaling experiment (the paper's §6, Figs 10 and 11): the same runs at several policy sizes, each from its
//! own SFT policy, over one seed's D_golden, proxy and evaluation prompts.
//!
//! - Fig. 10: golden win rate against KL, a panel per size (Figure 1's curves, on shared axes).
//! - Fig. 11: each method's best performance — the 90th percentile of its checkpoints' golden win rates — divided
//!   by online's at the same size and seed (online = 1), against log2 of the size's parameters relative to the
//!   smallest size's.
//!
//! Win rates are against the seed's own π_sft (the config's `policy`) at every size, so that sizes compare; KL is
//! against each size's own π_sft, its runs' reference.

use super::classifiers::Finding;
use super::figure;
use super::stats::{estimate, show_plain, Estimate, MIN_KL};
use crate::error::Result;
use crate::experiments::ExperimentResults;
use crate::experiments::method::Method;
use crate::experiments::pipeline::{ModelSize, Row};

/// The percentile of a method's checkpoints' golden win rates that stands for its best performance (the paper's).
pub const BEST: f32 = 0.9;

/// The methods Fig. 11 normalises to online, in its order, as far as the runs have them.
const COMPARED: [Method; 3] = [Method::OFFLINE, Method::stream(0), Method::ONLINE_GOLDEN];

/// The `q`-quantile of `values`, linearly interpolated between order statistics (none when empty).
pub fn quantile(values: &[f32], q: f32) -> Option<f32> {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f32;
    let (i, frac) = (pos.floor() as usize, pos.fract());
    Some(v[i] + (v[(i + 1).min(v.len() - 1)] - v[i]) * frac)
}

/// The rows of one size of the ladder (the config's own `policy` is the rows without a size), as the config's own.
fn rows_of(rows: &[Row], size: ModelSize, own: ModelSize) -> Vec<Row> {
    let want = (size != own).then_some(size);
    rows.iter().filter(|r| r.align_seed.is_none() && r.policy == want).map(|r| Row { policy: None, ..r.clone() }).collect()
}

/// Best performance of `method` on `seed`: the [`BEST`] quantile of its checkpoints' golden win rates past the start
/// (every run of the method pooled, as the figure pools them).
fn best(rows: &[Row], method: Method, seed: u32) -> Option<f32> {
    let wins: Vec<f32> = rows.iter().filter(|r| r.method == method && r.seed == seed && r.checkpoint.kl > MIN_KL).map(|r| r.checkpoint.golden_win_rate).collect();
    quantile(&wins, BEST)
}

/// One size of the ladder, measured.
pub struct SizeResult {
    pub size: ModelSize,
    pub parameters: usize,
    /// log2 of its parameters over the smallest size's.
    pub log2_relative: f32,
    /// Per method (online first): per seed, best performance.
    pub best: Vec<(Method, Vec<(u32, f32)>)>,
    /// Per compared method: per seed, its best performance over online's.
    pub normalised: Vec<(Method, Vec<(u32, f32)>)>,
}

impl SizeResult {
    fn best_of(&self, method: Method) -> Option<Estimate> {
        self.best.iter().find(|(m, _)| *m == method).filter(|(_, v)| !v.is_empty()).map(|(_, v)| estimate(&v.iter().map(|p| p.1).collect::<Vec<_>>()))
    }

    fn normalised_of(&self, method: Method) -> Option<Estimate> {
        self.normalised.iter().find(|(m, _)| *m == method).filter(|(_, v)| !v.is_empty()).map(|(_, v)| estimate(&v.iter().map(|p| p.1).collect::<Vec<_>>()))
    }
}

/// Every size of the ladder (smallest first), measured from the results' checkpoints.
pub fn measure(results: &ExperimentResults) -> Vec<SizeResult> {
    let c = &results.config;
    let ladder = c.ladder();
    let smallest = ladder.first().map_or(1, |s| s.parameters(&c.task)) as f32;
    let methods: Vec<Method> = std::iter::once(Method::ONLINE).chain(COMPARED).collect();
    ladder
        .iter()
        .map(|&size| {
            let rows = rows_of(&results.checkpoints, size, c.policy);
            let per_seed = |m: Method| -> Vec<(u32, f32)> { c.seeds.iter().filter_map(|&s| Some((s, best(&rows, m, s)?))).collect() };
            let best: Vec<(Method, Vec<(u32, f32)>)> = methods.iter().map(|&m| (m, per_seed(m))).filter(|(_, v)| !v.is_empty()).collect();
            let online = per_seed(Method::ONLINE);
            let normalised = methods[1..]
                .iter()
                .map(|&m| {
                    let ratios = per_seed(m).into_iter().filter_map(|(s, b)| online.iter().find(|o| o.0 == s).filter(|o| o.1 > 0.0).map(|o| (s, b / o.1))).collect();
                    (m, ratios)
                })
                .filter(|(_, v): &(Method, Vec<(u32, f32)>)| !v.is_empty())
                .collect();
            let parameters = size.parameters(&c.task);
            SizeResult { size, parameters, log2_relative: (parameters as f32 / smallest).log2(), best, normalised }
        })
        .collect()
}

/// Least-squares slope of y on x (none with fewer than two distinct x).
fn slope(points: &[(f32, f32)]) -> Option<f32> {
    let n = points.len() as f32;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f32>() / n, points.iter().map(|p| p.1).sum::<f32>() / n);
    let sxx: f32 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f32>() / sxx)
}

/// Per seed, the slope of `value(size, seed)` against log2 relative size over the sizes where it was measured.
fn slopes(sizes: &[SizeResult], seeds: &[u32], value: impl Fn(&SizeResult, u32) -> Option<f32>) -> Vec<(u32, f32)> {
    seeds.iter().filter_map(|&s| Some((s, slope(&sizes.iter().filter_map(|z| Some((z.log2_relative, value(z, s)?))).collect::<Vec<_>>())?))).collect()
}

fn per_seed_value(v: &[(Method, Vec<(u32, f32)>)], method: Method, seed: u32) -> Option<f32> {
    v.iter().find(|(m, _)| *m == method)?.1.iter().find(|p| p.0 == seed).map(|p| p.1)
}

/// "Above zero" of per-seed values, by [`Finding::above`], with their estimate across seeds.
fn positive(values: &[(u32, f32)]) -> (Finding, Option<Estimate>) {
    if values.is_empty() {
        return (Finding::NoData, None);
    }
    let e = estimate(&values.iter().map(|p| p.1).collect::<Vec<_>>());
    (Finding::above(&e, 0.0), Some(e))
}

fn show(e: Option<&Estimate>) -> String {
    e.map_or("—".into(), show_plain)
}

fn show_signed(e: Option<&Estimate>) -> String {
    e.map_or("—".into(), |e| super::classifiers::show(e, 3))
}

/// summary.md's scaling section (empty without a ladder): the sizes, each method's best performance, Fig. 11's
/// normalised values, the matched-KL comparison at each size, and the verdicts beside the paper's findings.
pub fn scaling_md(results: &ExperimentResults) -> String {
    let c = &results.config;
    if c.scaling.is_empty() {
        return String::new();
    }
    let sizes = measure(results);
    let mut s = String::from("\n## Scaling (the paper's Figs 10 and 11)\n\n");
    s += &format!(
        "The same runs at {} policy sizes, each from its own SFT policy (this config's SFT steps and data), all over each seed's own D_golden, proxy (trained from the {} policy's SFT) and evaluation prompts. Win rates are against that seed's {} π_sft at every size, so that sizes compare; KL is against each size's own π_sft. Best performance is the {:.0}th percentile of a method's golden win rates over every checkpoint past the start (all its runs pooled), per seed; Fig. 11 divides it by online's at the same size and seed.\n\n",
        sizes.len(), c.policy, c.policy, BEST * 100.0
    );
    let span = sizes.last().map_or(1.0, |z| z.log2_relative.exp2());
    s += &format!("The ladder spans {span:.1}× in parameters.\n\n");
    let methods: Vec<Method> = sizes.iter().flat_map(|z| z.best.iter().map(|(m, _)| *m)).fold(vec![], |mut acc, m| {
        if !acc.contains(&m) {
            acc.push(m);
        }
        acc
    });
    // Per seed, the mean SFT loss over the last tenth of its steps (one batch's loss is noise).
    let tail = |l: &[f32]| (!l.is_empty()).then(|| l[l.len() - l.len().div_ceil(10)..].iter().sum::<f32>() / l.len().div_ceil(10) as f32);
    let final_loss = |size: ModelSize| -> Option<Estimate> {
        let losses: Vec<f32> = if size == c.policy {
            results.sft_loss.iter().filter_map(|(_, l)| tail(l)).collect()
        } else {
            results.scaling_sft_loss.iter().filter(|l| l.policy == Some(size)).filter_map(|l| tail(&l.losses)).collect()
        };
        (!losses.is_empty()).then(|| estimate(&losses))
    };
    s += &format!("| size | parameters | log2 relative | SFT loss, last tenth of its steps | {} |\n|---|---|---|---|{}\n", methods.iter().map(|m| format!("best: {m}")).collect::<Vec<_>>().join(" | "), "---|".repeat(methods.len()));
    for z in &sizes {
        let own = if z.size == c.policy { " (the seeds' own)" } else { "" };
        s += &format!("| {}{own} | {} | {:.2} | {} | {} |\n", z.size, z.parameters, z.log2_relative, show(final_loss(z.size).as_ref()), methods.iter().map(|&m| show(z.best_of(m).as_ref())).collect::<Vec<_>>().join(" | "));
    }
    let compared: Vec<Method> = methods.iter().copied().filter(|&m| m != Method::ONLINE).collect();
    s += &format!("\nFig. 11, best performance over online's (online = 1), mean ± 95 % across seeds:\n\n| size | log2 relative | {} |\n|---|---|{}\n", compared.iter().map(|m| m.name()).collect::<Vec<_>>().join(" | "), "---|".repeat(compared.len()));
    for z in &sizes {
        s += &format!("| {} | {:.2} | {} |\n", z.size, z.log2_relative, compared.iter().map(|&m| show(z.normalised_of(m).as_ref())).collect::<Vec<_>>().join(" | "));
    }
    s += "\nFigure 1's comparison at each size (online − offline at matched KL, the agreement rule of the verdict above):\n\n| size | frontier | smoothed | nearest | outcome |\n|---|---|---|---|---|\n";
    for z in &sizes {
        let rows = rows_of(&results.checkpoints, z.size, c.policy);
        let cmp = super::verdict::compare(&rows, &c.seeds, Method::ONLINE, Method::OFFLINE, &c.matching);
        s += &format!("| {} | {} | {} |\n", z.size, cmp.matchings.iter().map(|m| show_signed(m.across.as_ref())).collect::<Vec<_>>().join(" | "), cmp.outcome.words());
    }
    // The verdicts: per seed, the change from the smallest size to the largest, and slopes against log2 size.
    let (small, large) = (sizes.first().expect("a ladder"), sizes.last().expect("a ladder"));
    let rise: Vec<(u32, f32)> = c.seeds.iter().filter_map(|&seed| Some((seed, per_seed_value(&large.best, Method::ONLINE, seed)? - per_seed_value(&small.best, Method::ONLINE, seed)?))).collect();
    let (f_rise, e_rise) = positive(&rise);
    let offline_slope = slopes(&sizes, &c.seeds, |z, seed| per_seed_value(&z.normalised, Method::OFFLINE, seed));
    let (f_close, e_close) = positive(&offline_slope);
    let gap_left: Vec<(u32, f32)> = c.seeds.iter().filter_map(|&seed| Some((seed, 1.0 - per_seed_value(&large.normalised, Method::OFFLINE, seed)?))).collect();
    let (f_left, e_left) = positive(&gap_left);
    // "Slowly": the gap narrows and is still there at the largest size.
    let f_slowly = Finding::all([f_close, f_left]);
    s += &format!("\n## Verdict (computed): scaling\n\n- **Larger policies peak higher: {}** (online's best performance at {} minus at {}, per seed: {}).\n", f_rise.words(), large.size, small.size, show_signed(e_rise.as_ref()));
    s += &format!(
        "- **The gap to offline closes slowly: {}** (slope of offline's normalised best performance per doubling of parameters: {}; the gap left at {}, 1 − offline/online: {}).\n",
        f_slowly.words(),
        show_signed(e_close.as_ref()),
        large.size,
        show_signed(e_left.as_ref())
    );
    let above: Vec<&SizeResult> = sizes.iter().filter(|z| z.normalised_of(Method::OFFLINE).is_some_and(|e| e.mean > 1.0)).collect();
    if !above.is_empty() {
        s += &format!(
            "- Offline's best performance is above online's at {} of {} sizes ({}): there online has no lead for scale to close, and the slope above says whether offline's lead grows or shrinks with size.\n",
            above.len(),
            sizes.len(),
            above.iter().map(|z| z.size.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let shuffled = Method::stream(0);
    if sizes.iter().any(|z| z.normalised_of(shuffled).is_some()) {
        let shuffled_slope = slopes(&sizes, &c.seeds, |z, seed| per_seed_value(&z.normalised, shuffled, seed));
        let faster: Vec<(u32, f32)> = shuffled_slope.iter().filter_map(|&(seed, a)| Some((seed, a - offline_slope.iter().find(|p| p.0 == seed)?.1))).collect();
        let (f_faster, e_faster) = positive(&faster);
        s += &format!(
            "- **The gap to the shuffled online stream closes faster than the gap to offline: {}** (slope of {shuffled}'s normalised best performance: {}; minus offline's: {}).\n",
            f_faster.words(),
            show_signed(positive(&shuffled_slope).1.as_ref()),
            show_signed(e_faster.as_ref())
        );
    }
    s += &format!("\nRules: a finding is shown when its per-seed values' 95 % t-interval lies above zero, direction only when their mean does; with one seed nothing is shown. Slopes are per seed, by least squares over the {} sizes.\n", sizes.len());
    s
}

/// Fig. 10: the curves at each size, a panel per size (smallest first), on shared axes.
pub fn fig10_svg(results: &ExperimentResults) -> Result<String> {
    let c = &results.config;
    let panels: Vec<(String, Vec<Row>)> = c
        .ladder()
        .into_iter()
        .map(|size| {
            let parameters = size.parameters(&c.task);
            (format!("policy {size}: {} layer(s) × d {}, {parameters} parameters", size.layers, size.d_model), rows_of(&results.checkpoints, size, c.policy))
        })
        .collect();
    figure::panels_svg(&format!("Fig. 10 — golden win rate vs KL at each policy size ({})", c.loss.display()), &panels, c.loss)
}

/// Fig. 11: each compared method's best performance over online's (online = 1) against log2 relative size: the mean
/// across seeds with its 95 % interval, in the methods' colours of Fig. 10, each size named on the axis.
pub fn fig11_svg(results: &ExperimentResults) -> Result<String> {
    use plotters::prelude::*;
    let sizes = measure(results);
    let loss = results.config.loss;
    let lines: Vec<(Method, Vec<(f32, Estimate)>)> = COMPARED
        .iter()
        .map(|&m| (m, sizes.iter().filter_map(|z| Some((z.log2_relative, z.normalised_of(m)?))).collect::<Vec<_>>()))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let ends = |e: &Estimate| (e.mean - e.ci.unwrap_or(0.0), e.mean + e.ci.unwrap_or(0.0));
    let (y0, y1) = lines.iter().flat_map(|(_, p)| p.iter().map(|(_, e)| ends(e))).fold((1f32, 1f32), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
    let pad = ((y1 - y0) * 0.08).max(0.02);
    let x1 = sizes.last().map_or(1.0, |z| z.log2_relative).max(1.0);
    let names: Vec<(f32, String)> = sizes.iter().map(|z| (z.log2_relative, z.size.to_string())).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (820, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(figure::err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Fig. 11 — best performance ({:.0}th percentile of golden win rate) over online's", BEST * 100.0), ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(52)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.3f32..x1 + 0.3, (y0 - pad)..(y1 + pad))
            .map_err(figure::err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("log2 (parameters / smallest size's)")
            .y_desc("best performance over online's (online = 1)")
            .draw()
            .map_err(figure::err)?;
        // Each size named at its place on the axis.
        chart
            .draw_series(names.iter().map(|(x, n)| Text::new(n.clone(), (*x, y0 - pad * 0.6), ("sans-serif", 12).into_font().color(&BLACK.mix(0.7)))))
            .map_err(figure::err)?;
        let online = figure::colour_of(Method::ONLINE);
        chart
            .draw_series(LineSeries::new([(-0.3, 1.0), (x1 + 0.3, 1.0)], online.stroke_width(2)))
            .map_err(figure::err)?
            .label(Method::ONLINE.label().replace("IPO", loss.display()) + " (= 1)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], online.stroke_width(2)));
        for (i, (m, points)) in lines.iter().enumerate() {
            let colour = figure::colour_of(*m);
            // Methods side by side at each size, so their intervals do not hide each other.
            let dx = (i as f32 - (lines.len() as f32 - 1.0) / 2.0) * 0.06;
            let at: Vec<(f32, f32)> = points.iter().map(|(x, e)| (x + dx, e.mean)).collect();
            chart
                .draw_series(LineSeries::new(at.clone(), colour.stroke_width(2)))
                .map_err(figure::err)?
                .label(m.label().replace("IPO", loss.display()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart.draw_series(at.iter().map(|&p| Circle::new(p, 4, colour.filled()))).map_err(figure::err)?;
            chart
                .draw_series(points.iter().filter(|(_, e)| e.ci.is_some()).map(|(x, e)| {
                    let (lo, hi) = ends(e);
                    PathElement::new(vec![(x + dx, lo), (x + dx, hi)], colour.stroke_width(1))
                }))
                .map_err(figure::err)?;
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(figure::err)?;
        root.present().map_err(figure::err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::ExperimentConfig;
    use crate::train::eval::Checkpoint;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        assert_eq!(quantile(&[], 0.9), None);
        assert_eq!(quantile(&[0.3], 0.9), Some(0.3));
        assert_eq!(quantile(&[0.0, 1.0], 0.9), Some(0.9));
        let v: Vec<f32> = (0..=10).map(|i| i as f32 / 10.0).rev().collect();
        assert!((quantile(&v, 0.9).unwrap() - 0.9).abs() < 1e-6);
    }

    fn row(method: Method, seed: u32, policy: Option<ModelSize>, kl: f32, win: f32) -> Row {
        let checkpoint = Checkpoint { step: 1, kl, golden_win_rate: win, ..Default::default() };
        Row { method: method.into(), seed, beta: 0.1, lr: 1e-3, run_steps: 1, align_seed: None, policy, checkpoint }
    }

    /// A ladder where online's best rises with size and offline's closes on it: the verdicts and Fig. 11's values
    /// come out of the rows, per seed.
    #[test]
    fn best_performance_is_normalised_to_online_per_size_and_seed() {
        let small = ModelSize { layers: 1, d_model: 16, heads: 1 };
        let cfg = ExperimentConfig { seeds: vec![0, 1, 2], scaling: vec![small], ..ExperimentConfig::preset("fig1-tiny").unwrap() };
        let mut rows = vec![];
        for seed in 0..3 {
            let jitter = seed as f32 * 0.01;
            for (policy, online, offline) in [(Some(small), 0.5, 0.3), (None, 0.8, 0.7)] {
                for i in 0..10 {
                    let kl = 0.1 * (i + 1) as f32;
                    rows.push(row(Method::ONLINE, seed, policy, kl, online * (i + 1) as f32 / 10.0 + jitter));
                    rows.push(row(Method::OFFLINE, seed, policy, kl, offline * (i + 1) as f32 / 10.0 + jitter));
                }
            }
        }
        let results = ExperimentResults { checkpoints: rows, ..ExperimentResults::empty(&cfg, "test".into()) };
        let sizes = measure(&results);
        assert_eq!(sizes.iter().map(|z| z.size).collect::<Vec<_>>(), vec![small, cfg.policy], "smallest first");
        assert_eq!(sizes[0].log2_relative, 0.0);
        assert!(sizes[1].log2_relative > 1.0);
        // Seed 0: online's 90th percentile of 0.05..0.5 is 0.455, offline's 0.273.
        let on = per_seed_value(&sizes[0].best, Method::ONLINE, 0).unwrap();
        assert!((on - 0.455).abs() < 1e-5, "{on}");
        let ratio = per_seed_value(&sizes[0].normalised, Method::OFFLINE, 0).unwrap();
        assert!((ratio - 0.273 / 0.455).abs() < 1e-4, "{ratio}");
        let md = scaling_md(&results);
        assert!(md.contains("- **Larger policies peak higher: shown**"), "{md}");
        assert!(md.contains("- **The gap to offline closes slowly: shown**"), "{md}");
        assert!(fig10_svg(&results).unwrap().contains("policy 1x16h1"));
        assert!(fig11_svg(&results).unwrap().contains("<svg"));
        // Without a ladder there is no section.
        let plain = ExperimentResults { config: ExperimentConfig::preset("fig1-tiny").unwrap(), ..results };
        assert_eq!(scaling_md(&plain), "");
    }
}

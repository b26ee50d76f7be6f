//! Figure 1 as SVG (plotters), the same code for the CLI's fig1.svg and the page. Left: golden win rate
//! against KL on a log axis; every checkpoint a marker (colour: method, shape: β); each seed's
//! kernel-smoothed curve as a thin line; the mean of the seeds' curves with a 95 % band; Gao et al.'s
//! fitted form dashed. Right: the frontier, the best win rate reached within each KL budget. No curve
//! is drawn across a KL region without checkpoints.

use super::stats::{estimate, MIN_KL};
use super::{gao, verdict};
use crate::error::{Error, Result};
use crate::experiments::method::Method;
use crate::experiments::pipeline::Row;
use plotters::coord::types::RangedCoordf32;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The colour of a method in every figure ([`Method::colour`]).
pub(crate) fn colour_of(method: Method) -> RGBColor {
    let (r, g, b) = method.colour();
    RGBColor(r, g, b)
}

/// (name, legend label, colour) of every method in the figure's order ([`Method::ALL`]), then of each other method
/// `names` holds (a value no preset listed: a window, refresh interval or mixture weight of a user's), in order.
pub(crate) fn styles_for(present: impl IntoIterator<Item = Method>) -> Vec<(Method, String, RGBColor)> {
    let mut methods: Vec<Method> = Method::ALL.to_vec();
    for m in present {
        if !methods.contains(&m) {
            methods.push(m);
        }
    }
    methods
        .iter()
        .map(|m| {
            let (r, g, b) = m.colour();
            (*m, m.label(), RGBColor(r, g, b))
        })
        .collect()
}

/// Points of the curves' grid, log-spaced over the KL range.
const GRID: usize = 80;

pub(crate) fn err(e: impl std::fmt::Display) -> Error {
    Error::new(format!("figure: {e}"))
}

/// The checkpoints that can be drawn: past the start, with finite values.
fn drawable(rows: &[Row]) -> Vec<&Row> {
    rows.iter().filter(|r| r.checkpoint.kl > MIN_KL && r.checkpoint.kl.is_finite() && r.checkpoint.golden_win_rate.is_finite()).collect()
}

fn seeds_of(rows: &[&Row], method: Method) -> Vec<u32> {
    let mut s: Vec<u32> = rows.iter().filter(|r| r.method == method).map(|r| r.seed).collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// Splits a curve with gaps (None) into the runs of defined points.
fn segments(points: impl Iterator<Item = (f32, Option<f32>)>) -> Vec<Vec<(f32, f32)>> {
    let mut out: Vec<Vec<(f32, f32)>> = vec![vec![]];
    for (x, y) in points {
        match y {
            Some(y) => out.last_mut().unwrap().push((x, y)),
            None if !out.last().unwrap().is_empty() => out.push(vec![]),
            None => {}
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// The mean across seeds of each seed's smoothed curve at `x` (where at least half the seeds, and at
/// least one, have checkpoints near x), with the 95 % half-width where all of two or more seeds do.
fn mean_curve(per_seed: &[Vec<verdict::Point>], x: f32) -> Option<(f32, Option<f32>)> {
    let values: Vec<f32> = per_seed.iter().filter_map(|p| verdict::smoothed(p, x)).collect();
    if values.is_empty() || 2 * values.len() < per_seed.len() {
        return None;
    }
    let e = estimate(&values);
    // The band only where every seed has a curve: an interval from a subset of seeds would mislead.
    Some((e.mean, e.ci.filter(|_| values.len() == per_seed.len())))
}

/// The KL range, its log-spaced grid, the win-rate range and the β values of the drawable checkpoints.
#[allow(clippy::type_complexity)]
fn axes(pts: &[&Row]) -> ((f32, f32), Vec<f32>, (f32, f32), Vec<f32>) {
    let (lo, hi) = pts.iter().fold((f32::MAX, f32::MIN), |(a, b), r| (a.min(r.checkpoint.kl), b.max(r.checkpoint.kl)));
    let (lo, hi) = if pts.is_empty() { (0.1, 10.0) } else { (lo / 1.2, (hi * 1.2).max(lo * 1.5)) };
    let grid: Vec<f32> = (0..GRID).map(|i| (lo.ln() + (hi.ln() - lo.ln()) * i as f32 / (GRID - 1) as f32).exp()).collect();
    let (y_lo, y_hi) = pts.iter().fold((1f32, 0f32), |(a, b), r| (a.min(r.checkpoint.golden_win_rate), b.max(r.checkpoint.golden_win_rate)));
    let (y_lo, y_hi) = if pts.is_empty() { (0.0, 1.0) } else { ((y_lo - 0.04).max(0.0), (y_hi + 0.04).min(1.0)) };
    let mut betas: Vec<f32> = pts.iter().map(|r| r.beta).collect();
    betas.sort_by(f32::total_cmp);
    betas.dedup();
    ((lo, hi), grid, (y_lo, y_hi), betas)
}

/// Figure 1's curves panel once per group of rows (`(caption, rows)`, side by side), on shared axes so that the
/// panels compare: the scaling experiment's Fig. 10, a panel per policy size.
pub fn panels_svg(title: &str, panels: &[(String, Vec<Row>)], loss: crate::train::losses::Loss) -> Result<String> {
    let all: Vec<Row> = panels.iter().flat_map(|(_, rows)| rows.iter().cloned()).collect();
    let (kl, grid, win, betas) = axes(&drawable(&all));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (480 * panels.len().max(1) as u32, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
        for (area, (caption, rows)) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            // Upper left: a smaller policy's curves start low, under a lower-left legend.
            curves_panel(area, caption, &drawable(rows), &grid, kl, win, &betas, loss, Some(SeriesLabelPosition::UpperLeft), Layout::Wide)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Several runs' curves on one Figure-1 panel, to compare them (the page's *Compare runs*): per run (`(label, rows)`)
/// and method, the mean across seeds of each seed's smoothed curve, in the method's colour and the run's line style
/// (solid, dashed, dotted, long-dashed, in the order given).
pub fn overlay_svg(runs: &[(String, Vec<Row>)]) -> Result<String> {
    overlay_svg_in(runs, Layout::Wide)
}

/// [`overlay_svg`] in either [`Layout`]; the compact one names each run by its label's first part (`A` of `A: …`).
pub fn overlay_svg_in(runs: &[(String, Vec<Row>)], layout: Layout) -> Result<String> {
    let own: Vec<Vec<Row>> = runs.iter().map(|(_, rows)| super::stats::main_rows(rows)).collect();
    let all: Vec<Row> = own.iter().flatten().cloned().collect();
    let ((lo, hi), grid, (y_lo, y_hi), _) = axes(&drawable(&all));
    // (dash, gap) in pixels per run; (0, 0) is a solid line.
    const DASHES: [(u32, u32); 4] = [(0, 0), (10, 5), (2, 4), (18, 6)];
    let mut svg = String::new();
    let mut entries = vec![];
    {
        let compact = layout == Layout::Compact;
        let lines: usize = own.iter().map(|rows| styles_for(rows.iter().map(|r| r.method)).iter().filter(|(m, ..)| !seeds_of(&drawable(rows), *m).is_empty()).count()).sum();
        let size = if compact { (340, 36 + 380 + 16 + 18 * lines as u32) } else { (1000, 620) };
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = match compact {
            true => root.margin(6, 0, 0, 0).titled("Compare runs: win rate vs KL", ("sans-serif", 15)).map_err(err)?,
            false => root.titled("Compare runs: golden win rate against KL (mean of the seeds' smoothed curves)", ("sans-serif", 20)).map_err(err)?,
        };
        let (plot, below) = match compact {
            true => {
                let (plot, below) = root.split_vertically(380);
                (plot, Some(below))
            }
            false => (root.clone(), None),
        };
        let mut chart = log_kl_chart(&plot, "colour: method; line style: run", (lo, hi), (y_lo, y_hi), ("KL(π ‖ π_sft), log scale", "golden win rate vs π_sft (ties ½)"), layout)?;
        for (i, ((label, _), rows)) in runs.iter().zip(&own).enumerate() {
            let (dash, gap) = DASHES[i % DASHES.len()];
            let pts = drawable(rows);
            for (method, method_label, color) in styles_for(rows.iter().map(|r| r.method)) {
                let seeds = seeds_of(&pts, method);
                if seeds.is_empty() {
                    continue;
                }
                let per_seed: Vec<Vec<verdict::Point>> = seeds.iter().map(|&s| verdict::points(rows, method, s)).collect();
                let mean = grid.iter().map(|&x| (x, mean_curve(&per_seed, x.ln()).map(|(y, _)| y)));
                let style = color.stroke_width(3);
                let mut first = true;
                for seg in segments(mean) {
                    let drawn = if dash == 0 {
                        chart.draw_series(LineSeries::new(seg, style)).map_err(err)?
                    } else {
                        chart.draw_series(DashedLineSeries::new(seg, dash, gap, style)).map_err(err)?
                    };
                    if std::mem::take(&mut first) {
                        let run = if compact { label.split(':').next().unwrap_or(label) } else { label };
                        entries.push(LegendEntry::Line(format!("{run}: {method_label}"), color, (dash, gap)));
                        drawn.label(format!("{label}: {method_label}")).legend(move |(x, y)| -> DynElement<'static, SVGBackend, (i32, i32)> {
                            // A short sample of the run's line style.
                            match dash {
                                0 => PathElement::new(vec![(x, y), (x + 24, y)], style).into_dyn(),
                                _ => plotters::element::DashedPathElement::new(vec![(x, y), (x + 24, y)], dash, gap, style).into_dyn(),
                            }
                        });
                    }
                }
            }
        }
        if let Some(below) = below {
            legend_strip(&below, &entries)?;
        } else {
            chart.configure_series_labels().position(SeriesLabelPosition::LowerLeft).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Figure 1 of runs trained with `loss` (the figure and legend name it).
pub fn fig1_svg(rows: &[Row], loss: crate::train::losses::Loss) -> Result<String> {
    fig1_svg_in(rows, loss, Layout::Wide)
}

/// How Figure 1 is laid out: the CLI's file and a wide page side by side, or for a phone's width (390 px) one panel
/// above the other at about the size it is shown, with the legend under them, so no text shrinks and no legend
/// covers a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Wide,
    Compact,
}

/// [`fig1_svg`] in either [`Layout`].
pub fn fig1_svg_in(rows: &[Row], loss: crate::train::losses::Loss, layout: Layout) -> Result<String> {
    // The figure's own runs; the repeats over one proxy are summary.md's business.
    let rows = &super::stats::main_rows(rows);
    let pts = drawable(rows);
    let ((lo, hi), grid, (y_lo, y_hi), betas) = axes(&pts);
    let curves = "checkpoints, per-seed curves, mean ± 95 %, Gao fit (dashed)";
    let mut svg = String::new();
    match layout {
        Layout::Wide => {
            let root = SVGBackend::with_string(&mut svg, (1200, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let root = root.titled(&format!("Golden win rate against π_sft vs KL(π ‖ π_sft) — online vs offline {}", loss.display()), ("sans-serif", 20)).map_err(err)?;
            let (left, right) = root.split_horizontally(740);
            curves_panel(&left, curves, &pts, &grid, (lo, hi), (y_lo, y_hi), &betas, loss, Some(SeriesLabelPosition::LowerLeft), layout)?;
            frontier_panel(&right, &pts, &grid, (lo, hi), (y_lo, y_hi), layout)?;
            root.present().map_err(err)?;
        }
        Layout::Compact => {
            let entries = legend_entries(&pts, &betas, loss);
            let legend_height = 16 + 18 * entries.len() as u32;
            let root = SVGBackend::with_string(&mut svg, (340, 36 + 360 + 320 + legend_height)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let root = root.margin(6, 0, 0, 0).titled(&format!("Win rate vs KL — online vs offline {}", loss.display()), ("sans-serif", 15)).map_err(err)?;
            let (top, rest) = root.split_vertically(360);
            let (middle, bottom) = rest.split_vertically(320);
            curves_panel(&top, "checkpoints, seed curves, mean ± 95 %, Gao fit", &pts, &grid, (lo, hi), (y_lo, y_hi), &betas, loss, None, layout)?;
            frontier_panel(&middle, &pts, &grid, (lo, hi), (y_lo, y_hi), layout)?;
            legend_strip(&bottom, &entries)?;
            root.present().map_err(err)?;
        }
    }
    Ok(svg)
}

/// What a legend lists: each line drawn (its label, colour and (dash, gap) in pixels, (0, 0) solid) and, with several
/// β, each β's marker.
enum LegendEntry {
    Line(String, RGBColor, (u32, u32)),
    Beta(f32, usize),
}

fn legend_entries(pts: &[&Row], betas: &[f32], loss: crate::train::losses::Loss) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = styles_for(pts.iter().map(|r| r.method)).into_iter().filter(|(m, ..)| !seeds_of(pts, *m).is_empty()).map(|(_, label, c)| LegendEntry::Line(label.replace("IPO", loss.display()), c, (0, 0))).collect();
    if betas.len() > 1 {
        entries.extend(betas.iter().enumerate().map(|(i, &b)| LegendEntry::Beta(b, i)));
    }
    entries
}

/// A legend in its own area, one entry per line, beside no data.
fn legend_strip(area: &DrawingArea<SVGBackend, Shift>, entries: &[LegendEntry]) -> Result<()> {
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (i, entry) in entries.iter().enumerate() {
        let y = 12 + 18 * i as i32;
        match entry {
            LegendEntry::Line(label, colour, (dash, gap)) => {
                let line = vec![(16, y), (40, y)];
                match dash {
                    0 => area.draw(&PathElement::new(line, colour.stroke_width(3))),
                    _ => area.draw(&plotters::element::DashedPathElement::new(line, *dash, *gap, colour.stroke_width(3))),
                }
                .map_err(err)?;
                area.draw(&Text::new(label.clone(), (48, y - 7), font.clone())).map_err(err)?;
            }
            LegendEntry::Beta(b, index) => {
                area.draw(&marker_at::<SVGBackend>((28, y), *index)).map_err(err)?;
                area.draw(&Text::new(format!("β = {b}"), (48, y - 7), font.clone())).map_err(err)?;
            }
        }
    }
    Ok(())
}

/// A checkpoint's marker: its β's shape (circle, triangle, square, cross).
fn draw_marker(area: &DrawingArea<SVGBackend, Cartesian2d<LogCoord<f32>, RangedCoordf32>>, p: (f32, f32), beta_index: usize, style: ShapeStyle) -> Result<()> {
    match beta_index % 4 {
        0 => area.draw(&Circle::new(p, 3, style)),
        1 => area.draw(&TriangleMarker::new(p, 4, style)),
        2 => area.draw(&(EmptyElement::at(p) + Rectangle::new([(-3, -3), (3, 3)], style))),
        _ => area.draw(&Cross::new(p, 3, style)),
    }
    .map_err(err)
}

type LogKlChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f32>, RangedCoordf32>>;

/// A panel with KL on a log axis (ticks labelled in KL) and the win rate on a linear one, its mesh drawn.
/// Its text is 13 px in the compact layout (drawn at about the size it is shown there), plotters' default otherwise.
fn log_kl_chart<'a, 'b>(area: &DrawingArea<SVGBackend<'b>, Shift>, caption: &str, (lo, hi): (f32, f32), (y_lo, y_hi): (f32, f32), (x_desc, y_desc): (&str, &str), layout: Layout) -> Result<LogKlChart<'a, 'b>> {
    let compact = layout == Layout::Compact;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", if compact { 13 } else { 14 }))
        .margin(if compact { 8 } else { 14 })
        .x_label_area_size(44)
        .y_label_area_size(if compact { 56 } else { 60 })
        .build_cartesian_2d((lo..hi).log_scale(), y_lo..y_hi)
        .map_err(err)?;
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(TRANSPARENT).x_desc(x_desc).y_desc(y_desc).x_label_formatter(&|x| format!("{x}"));
    if compact {
        mesh.label_style(("sans-serif", 13)).axis_desc_style(("sans-serif", 13)).x_labels(5).y_labels(6);
    }
    mesh.draw().map_err(err)?;
    Ok(chart)
}

#[allow(clippy::too_many_arguments)]
fn curves_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    caption: &str,
    pts: &[&Row],
    grid: &[f32],
    (lo, hi): (f32, f32),
    (y_lo, y_hi): (f32, f32),
    betas: &[f32],
    loss: crate::train::losses::Loss,
    legend_at: Option<SeriesLabelPosition>,
    layout: Layout,
) -> Result<()> {
    let mut chart = log_kl_chart(area, caption, (lo, hi), (y_lo, y_hi), ("KL(π ‖ π_sft), log scale", "golden win rate vs π_sft (ties ½)"), layout)?;
    for (method, label, color) in styles_for(pts.iter().map(|r| r.method)) {
        let seeds = seeds_of(pts, method);
        if seeds.is_empty() {
            continue;
        }
        for r in pts.iter().filter(|r| r.method == method) {
            let bi = betas.iter().position(|&b| b == r.beta).unwrap_or(0);
            draw_marker(chart.plotting_area(), (r.checkpoint.kl, r.checkpoint.golden_win_rate), bi, color.mix(0.35).filled())?;
        }
        let rows: Vec<Row> = pts.iter().map(|r| (*r).clone()).collect();
        let per_seed: Vec<Vec<verdict::Point>> = seeds.iter().map(|&s| verdict::points(&rows, method, s)).collect();
        for p in &per_seed {
            for seg in segments(grid.iter().map(|&x| (x, verdict::smoothed(p, x.ln())))) {
                chart.draw_series(LineSeries::new(seg, color.mix(0.45).stroke_width(1))).map_err(err)?;
            }
        }
        let mean: Vec<(f32, Option<(f32, Option<f32>)>)> = grid.iter().map(|&x| (x, mean_curve(&per_seed, x.ln()))).collect();
        for seg in segments(mean.iter().map(|&(x, m)| (x, m.and_then(|(_, ci)| ci.map(|_| 0.0))))) {
            // The band where two or more seeds have a curve: upper edge out, lower edge back.
            let at = |x: f32| mean.iter().find(|m| m.0 == x).and_then(|m| m.1).and_then(|(y, ci)| Some((y, ci?)));
            let mut band: Vec<(f32, f32)> = seg.iter().filter_map(|&(x, _)| at(x).map(|(y, ci)| (x, (y + ci).min(y_hi)))).collect();
            band.extend(seg.iter().rev().filter_map(|&(x, _)| at(x).map(|(y, ci)| (x, (y - ci).max(y_lo)))));
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.15).filled()))).map_err(err)?;
        }
        let mut first = true;
        for seg in segments(mean.iter().map(|&(x, m)| (x, m.map(|(y, _)| y)))) {
            let series = chart.draw_series(LineSeries::new(seg, color.stroke_width(3))).map_err(err)?;
            if std::mem::take(&mut first) {
                series.label(label.replace("IPO", loss.display())).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
            }
        }
        if let (_, Some((alpha, beta_g))) = gao::across_seeds(&rows, method, &seeds) {
            let fit = gao::GaoFit { alpha: alpha.mean, beta_g: beta_g.mean, points: 0 };
            let (m_lo, m_hi) = per_seed.iter().flatten().fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p.ln_kl), b.max(p.ln_kl)));
            let curve: Vec<(f32, f32)> = grid.iter().filter(|x| x.ln() >= m_lo && x.ln() <= m_hi).map(|&x| (x, fit.win_rate(x).clamp(y_lo, y_hi))).collect();
            chart.draw_series(DashedLineSeries::new(curve, 6, 4, color.stroke_width(2))).map_err(err)?;
        }
    }
    if betas.len() > 1 {
        for (i, &b) in betas.iter().enumerate() {
            chart
                .draw_series(std::iter::empty::<Circle<(f32, f32), i32>>())
                .map_err(err)?
                .label(format!("β = {b}"))
                .legend(move |(x, y)| marker_at((x + 10, y), i));
        }
    }
    if let Some(at) = legend_at {
        chart.configure_series_labels().position(at).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 12)).draw().map_err(err)?;
    }
    Ok(())
}

/// A β marker in the legend (pixel coordinates).
fn marker_at<DB: DrawingBackend>(p: (i32, i32), beta_index: usize) -> DynElement<'static, DB, (i32, i32)> {
    let style = BLACK.mix(0.6).filled();
    match beta_index % 4 {
        0 => Circle::new(p, 4, style).into_dyn(),
        1 => TriangleMarker::new(p, 5, style).into_dyn(),
        2 => Rectangle::new([(p.0 - 4, p.1 - 4), (p.0 + 4, p.1 + 4)], style).into_dyn(),
        _ => Cross::new(p, 4, style).into_dyn(),
    }
}

/// Per method, the mean over seeds of each seed's best win rate among checkpoints with KL ≤ x, from the
/// smallest KL any seed reached to the largest (a seed counts from its own first checkpoint on).
fn frontier_panel(area: &DrawingArea<SVGBackend, Shift>, pts: &[&Row], grid: &[f32], (lo, hi): (f32, f32), (y_lo, y_hi): (f32, f32), layout: Layout) -> Result<()> {
    let mut chart = log_kl_chart(area, "frontier: best win rate within each KL budget", (lo, hi), (y_lo, y_hi), ("KL budget, log scale", "best golden win rate so far"), layout)?;
    for (method, _, color) in styles_for(pts.iter().map(|r| r.method)) {
        let seeds = seeds_of(pts, method);
        let per_seed: Vec<Vec<(f32, f32)>> = seeds.iter().map(|&s| pts.iter().filter(|r| r.method == method && r.seed == s).map(|r| (r.checkpoint.kl, r.checkpoint.golden_win_rate)).collect()).collect();
        let top = per_seed.iter().flatten().fold(0f32, |a, p| a.max(p.0));
        let line: Vec<(f32, Option<f32>)> = grid
            .iter()
            .map(|&x| {
                let best: Vec<f32> = per_seed.iter().filter_map(|p| p.iter().filter(|q| q.0 <= x).map(|q| q.1).reduce(f32::max)).collect();
                (x, (!best.is_empty() && x <= top * 1.0001).then(|| best.iter().sum::<f32>() / best.len() as f32))
            })
            .collect();
        for seg in segments(line.into_iter()) {
            chart.draw_series(LineSeries::new(seg, color.stroke_width(3))).map_err(err)?;
        }
    }
    Ok(())
}

/// One named line of a [`lines_svg`] plot.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f32, f32)>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 20),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A small line plot (training losses, proxy accuracy, KL over steps): non-finite points are left out.
pub fn lines_svg(title: &str, x_desc: &str, y_desc: &str, series: &[Series], size: (u32, u32)) -> Result<String> {
    let finite = |p: &&(f32, f32)| p.0.is_finite() && p.1.is_finite();
    let all: Vec<(f32, f32)> = series.iter().flat_map(|s| s.points.iter().filter(finite).copied()).collect();
    let (x0, x1, y0, y1) = all.iter().fold((f32::MAX, f32::MIN, f32::MAX, f32::MIN), |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)));
    let (x0, x1, y0, y1) = if all.is_empty() { (0.0, 1.0, 0.0, 1.0) } else { (x0, x1.max(x0 + 1e-6), y0, y1.max(y0 + 1e-6)) };
    let pad = (y1 - y0) * 0.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(err)?;
        chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).x_labels(6).y_labels(6).draw().map_err(err)?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f32, f32)> = s.points.iter().filter(finite).copied().collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        if series.len() > 1 {
            chart.configure_series_labels().position(SeriesLabelPosition::UpperRight).border_style(BLACK).background_style(WHITE.mix(0.9)).label_font(("sans-serif", 11)).draw().map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod palette_tests {
    use super::*;

    /// sRGB → CIE L*a*b* (D65) of linear RGB.
    fn lab(linear: [f64; 3]) -> [f64; 3] {
        let m = [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]];
        let white = [0.95047, 1.0, 1.08883];
        let f = |t: f64| if t > 0.008856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 };
        let xyz: Vec<f64> = (0..3).map(|i| (0..3).map(|j| m[i][j] * linear[j]).sum::<f64>() / white[i]).map(f).collect();
        [116.0 * xyz[1] - 16.0, 500.0 * (xyz[0] - xyz[1]), 200.0 * (xyz[1] - xyz[2])]
    }

    /// A colour as seen with a colour-vision deficiency: Machado, Oliveira & Fernandes (2009), severity 1.
    fn seen(c: RGBColor, deficiency: &[[f64; 3]; 3]) -> [f64; 3] {
        let lin = |v: u8| {
            let v = v as f64 / 255.0;
            if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
        };
        let rgb = [lin(c.0), lin(c.1), lin(c.2)];
        let out: Vec<f64> = (0..3).map(|i| (0..3).map(|j| deficiency[i][j] * rgb[j]).sum::<f64>().clamp(0.0, 1.0)).collect();
        lab([out[0], out[1], out[2]])
    }

    /// Figure 1's three methods stay apart (ΔE*76 ≥ 30, where 2.3 is just noticeable) for normal vision and under
    /// protanopia, deuteranopia and tritanopia: their lines differ in colour alone.
    #[test]
    fn figure_1_colours_stay_apart_under_colour_vision_deficiencies() {
        let visions: [(&str, [[f64; 3]; 3]); 4] = [
            ("normal", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
            ("protanopia", [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
            ("deuteranopia", [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
            ("tritanopia", [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]),
        ];
        let methods = [Method::ONLINE, Method::OFFLINE, Method::ONLINE_GOLDEN];
        for (name, m) in &visions {
            for (i, a) in methods.iter().enumerate() {
                for b in &methods[i + 1..] {
                    let (x, y) = (seen(colour_of(*a), m), seen(colour_of(*b), m));
                    let de = ((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt();
                    assert!(de >= 30.0, "{a} and {b} are {de:.0} ΔE apart under {name}");
                }
            }
        }
        // The check can fail: tab10's green against its orange under protanopia.
        let (x, y) = (seen(RGBColor(44, 160, 44), &visions[1].1), seen(colour_of(Method::OFFLINE), &visions[1].1));
        assert!(((x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2) + (x[2] - y[2]).powi(2)).sqrt() < 10.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::eval::Checkpoint;
    use crate::train::losses::Loss;

    /// A run of a value no preset lists (semi-online refreshed every 8 steps) is drawn and labelled like the listed
    /// ones: a new point on an axis needs no table of its own.
    #[test]
    fn a_method_outside_the_table_is_drawn_with_its_label() {
        let row = |method: Method, step: u32, kl: f32, win: f32| Row {
            method,
            seed: 0,
            beta: 0.1,
            lr: 5e-4,
            run_steps: 12,
            align_seed: None,
            policy: None,
            checkpoint: Checkpoint { step, kl, golden_win_rate: win, ..Default::default() },
        };
        let rows: Vec<Row> = [(0, 0.0, 0.5), (6, 0.5, 0.6), (12, 1.0, 0.65)].iter().flat_map(|&(s, k, w)| [row(Method::ONLINE, s, k, w), row(Method::semi_online(8), s, k * 1.1, w)]).collect();
        let svg = fig1_svg(&rows, Loss::Ipo).unwrap();
        assert!(svg.contains("semi-online IPO, data refreshed every 8 steps"), "no legend entry for semi_online8");
        let without = fig1_svg(&rows.iter().filter(|r| r.method == Method::ONLINE).cloned().collect::<Vec<_>>(), Loss::Ipo).unwrap();
        assert!(!without.contains("refreshed every 8"));
    }
}

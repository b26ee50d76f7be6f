//! Figure 1 as SVG (plotters): every checkpoint as a point, the binned means with their 95 % intervals.

use super::summary::{Bin, MIN_KL};
use crate::error::{Error, Result};
use crate::experiments::pipeline::Row;
use plotters::prelude::*;

const STYLE: [(&str, &str, RGBColor); 3] = [
    ("online", "online IPO (proxy labels)", RGBColor(31, 119, 180)),
    ("offline", "offline IPO (D_golden)", RGBColor(230, 120, 20)),
    ("online_golden", "online IPO (golden labels)", RGBColor(44, 160, 44)),
];

fn err(e: impl std::fmt::Display) -> Error {
    Error(format!("figure: {e}"))
}

pub fn fig1_svg(rows: &[Row], bins: &[Bin]) -> Result<String> {
    let pts: Vec<&Row> = rows.iter().filter(|r| r.checkpoint.kl > MIN_KL && r.checkpoint.golden_win_rate.is_finite()).collect();
    let (lo, hi) = pts.iter().fold((f32::MAX, f32::MIN), |(a, b), r| (a.min(r.checkpoint.kl.ln()), b.max(r.checkpoint.kl.ln())));
    let (lo, hi) = if pts.is_empty() { (-1.0, 1.0) } else { (lo - 0.2, hi + 0.2) };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 580)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Golden win rate against π_sft vs KL — online vs offline IPO", ("sans-serif", 20))
            .margin(18)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(lo..hi, 0f32..1f32)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("ln KL(π ‖ π_sft)")
            .y_desc("golden win rate vs π_sft (ties ½)")
            .draw()
            .map_err(err)?;
        for (method, label, color) in STYLE {
            let mine: Vec<(f32, f32)> = pts.iter().filter(|r| r.method == method).map(|r| (r.checkpoint.kl.ln(), r.checkpoint.golden_win_rate)).collect();
            if mine.is_empty() {
                continue;
            }
            chart.draw_series(mine.iter().map(|&p| Circle::new(p, 3, color.mix(0.35).filled()))).map_err(err)?;
            let means: Vec<(f32, f32, Option<f32>)> =
                bins.iter().filter_map(|b| b.get(method).map(|e| ((b.lo + b.hi) / 2.0, e.mean, e.ci))).collect();
            chart
                .draw_series(LineSeries::new(means.iter().map(|&(x, y, _)| (x, y)), color.stroke_width(3)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
            for &(x, y, ci) in &means {
                if let Some(ci) = ci {
                    chart.draw_series(std::iter::once(PathElement::new(vec![(x, (y - ci).max(0.0)), (x, (y + ci).min(1.0))], color.stroke_width(2)))).map_err(err)?;
                }
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerLeft).border_style(BLACK).background_style(WHITE.mix(0.9)).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
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

//! Gao et al. (2023)'s functional form for over-optimisation under RL, fitted to golden win rate:
//! R(d) = d·(α − β_g·ln d) with d = √KL and R the win rate's gain over π_sft (win − ½). α is how fast
//! the golden reward first rises with distance, β_g how strongly over-optimisation bends it back; the
//! curve peaks at d* = exp(α/β_g − 1). Two numbers per method and seed instead of "rise then fall".
//!
//! The fit is ordinary least squares: R is linear in (α, β_g) with regressors d and −d·ln d.

use super::stats::{estimate, Estimate, MIN_KL};
use crate::experiments::Method;
use crate::experiments::pipeline::Row;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaoFit {
    pub alpha: f32,
    pub beta_g: f32,
    /// Checkpoints the fit used.
    pub points: usize,
}

impl GaoFit {
    /// The fitted win rate at `kl`.
    pub fn win_rate(&self, kl: f32) -> f32 {
        let d = kl.max(0.0).sqrt();
        if d == 0.0 {
            return 0.5;
        }
        0.5 + d * (self.alpha - self.beta_g * d.ln())
    }
}

/// Least-squares fit to (KL, win rate) pairs past the start; None with fewer than 3 points or a
/// degenerate design (all at one distance).
pub fn fit(points: &[(f32, f32)]) -> Option<GaoFit> {
    let (mut s11, mut s12, mut s22, mut s1y, mut s2y, mut n) = (0f64, 0f64, 0f64, 0f64, 0f64, 0);
    for &(kl, win) in points.iter().filter(|(kl, _)| *kl > MIN_KL) {
        let d = (kl as f64).sqrt();
        let (x1, x2, y) = (d, -d * d.ln(), win as f64 - 0.5);
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        s1y += x1 * y;
        s2y += x2 * y;
        n += 1;
    }
    let det = s11 * s22 - s12 * s12;
    if n < 3 || det.abs() <= 1e-12 * s11 * s22 {
        return None;
    }
    let alpha = (s22 * s1y - s12 * s2y) / det;
    let beta_g = (s11 * s2y - s12 * s1y) / det;
    Some(GaoFit { alpha: alpha as f32, beta_g: beta_g as f32, points: n })
}

/// The fit to one method's pooled checkpoints of one seed.
pub fn fit_rows(rows: &[Row], method: Method, seed: u32) -> Option<GaoFit> {
    let pts: Vec<(f32, f32)> = rows.iter().filter(|r| r.method == method && r.seed == seed).map(|r| (r.checkpoint.kl, r.checkpoint.golden_win_rate)).collect();
    fit(&pts)
}

/// Per seed fits of one method, and α and β_g across seeds.
pub fn across_seeds(rows: &[Row], method: Method, seeds: &[u32]) -> (Vec<(u32, GaoFit)>, Option<(Estimate, Estimate)>) {
    let fits: Vec<(u32, GaoFit)> = seeds.iter().filter_map(|&s| Some((s, fit_rows(rows, method, s)?))).collect();
    if fits.is_empty() {
        return (fits, None);
    }
    let alphas: Vec<f32> = fits.iter().map(|f| f.1.alpha).collect();
    let betas: Vec<f32> = fits.iter().map(|f| f.1.beta_g).collect();
    (fits, Some((estimate(&alphas), estimate(&betas))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_recovers_alpha_and_beta_from_exact_points() {
        let truth = GaoFit { alpha: 0.3, beta_g: 0.12, points: 0 };
        let pts: Vec<(f32, f32)> = (1..30).map(|i| {
            let kl = 0.05 * i as f32 * i as f32 / 4.0;
            (kl, truth.win_rate(kl))
        }).collect();
        let f = fit(&pts).unwrap();
        assert!((f.alpha - 0.3).abs() < 1e-4 && (f.beta_g - 0.12).abs() < 1e-4, "{f:?}");
        assert_eq!(f.points, 29);
    }

    #[test]
    fn the_fit_recovers_them_through_noise() {
        let truth = GaoFit { alpha: 0.25, beta_g: 0.08, points: 0 };
        // Deterministic ±0.02 noise that averages out.
        let pts: Vec<(f32, f32)> = (1..200).map(|i| {
            let kl = 0.02 * i as f32;
            (kl, truth.win_rate(kl) + if i % 2 == 0 { 0.02 } else { -0.02 })
        }).collect();
        let f = fit(&pts).unwrap();
        assert!((f.alpha - 0.25).abs() < 0.01 && (f.beta_g - 0.08).abs() < 0.01, "{f:?}");
    }

    #[test]
    fn too_few_or_degenerate_points_give_no_fit() {
        assert!(fit(&[(1.0, 0.6), (2.0, 0.7)]).is_none());
        assert!(fit(&[(1.0, 0.6), (1.0, 0.7), (1.0, 0.65), (0.0, 0.5)]).is_none(), "one distance only");
    }

    #[test]
    fn the_fitted_curve_peaks_where_the_form_says() {
        let f = GaoFit { alpha: 0.3, beta_g: 0.1, points: 0 };
        let d_star = (f.alpha / f.beta_g - 1.0).exp();
        let at = |d: f32| f.win_rate(d * d);
        assert!(at(d_star) > at(d_star * 0.9) && at(d_star) > at(d_star * 1.1));
    }
}

//! The GPO family (docs/method.md §3.1) on summed response log-probs. Each returns the mean loss over pairs and its
//! gradient with respect to the policy's log π(y_w|x) and log π(y_l|x), which `Gpt::backward` takes.
//! h = [log π(y_w) − log π_ref(y_w)] − [log π(y_l) − log π_ref(y_l)].

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// (β·h − ½)²
    Ipo,
    /// −log σ(β·h)
    Dpo,
    /// max(0, 1 − β·h)
    Slic,
    /// −log π(y_w|x): SFT on the winner (non-contrastive)
    BestOf2,
}

impl Loss {
    pub const ALL: [Loss; 4] = [Loss::Ipo, Loss::Dpo, Loss::Slic, Loss::BestOf2];

    /// Its name in configs and method names (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            Loss::Ipo => "ipo",
            Loss::Dpo => "dpo",
            Loss::Slic => "slic",
            Loss::BestOf2 => "best_of2",
        }
    }

    /// Its name in figures and summaries.
    pub fn display(self) -> &'static str {
        match self {
            Loss::Ipo => "IPO",
            Loss::Dpo => "DPO",
            Loss::Slic => "SLiC",
            Loss::BestOf2 => "Best-of-2",
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean loss over the pairs and d loss / d logπ(y_w), d loss / d logπ(y_l) per pair.
pub fn gpo(loss: Loss, beta: f32, policy_w: &[f32], policy_l: &[f32], ref_w: &[f32], ref_l: &[f32]) -> (f32, Vec<f32>, Vec<f32>) {
    gpo_of_batch(loss, beta, policy_w, policy_l, ref_w, ref_l, policy_w.len())
}

/// [`gpo`] for some of a batch's `batch_pairs` pairs (a data-parallel chunk's): the loss summed over them and its
/// gradient both divided by the whole batch's pair count, so that the chunks' parts sum to the batch's mean. For
/// the whole batch it is [`gpo`] bit for bit.
pub fn gpo_of_batch(loss: Loss, beta: f32, policy_w: &[f32], policy_l: &[f32], ref_w: &[f32], ref_l: &[f32], batch_pairs: usize) -> (f32, Vec<f32>, Vec<f32>) {
    let (len, n) = (policy_w.len(), batch_pairs);
    let beta = beta as f64;
    let (mut total, mut dw, mut dl) = (0f64, vec![0f32; len], vec![0f32; len]);
    for i in 0..len {
        let h = (policy_w[i] as f64 - ref_w[i] as f64) - (policy_l[i] as f64 - ref_l[i] as f64);
        let (value, dh) = match loss {
            Loss::Ipo => ((beta * h - 0.5).powi(2), 2.0 * beta * (beta * h - 0.5)),
            Loss::Dpo => (-sigmoid(beta * h).ln(), -beta * sigmoid(-beta * h)),
            Loss::Slic => {
                if beta * h < 1.0 { (1.0 - beta * h, -beta) } else { (0.0, 0.0) }
            }
            Loss::BestOf2 => {
                total += -(policy_w[i] as f64);
                dw[i] = (-1.0 / n as f64) as f32;
                continue;
            }
        };
        total += value;
        dw[i] = (dh / n as f64) as f32;
        dl[i] = (-dh / n as f64) as f32;
    }
    ((total / n as f64) as f32, dw, dl)
}

/// The pairwise preference model's position-debiased loss (docs/method.md §3.2):
/// −[½·log r(x, y_w, y_l) + ½·log(1 − r(x, y_l, y_w))] with r = σ(score). `forward` holds the scores of
/// (x, y_w, y_l), `swapped` those of (x, y_l, y_w). Returns the mean loss and d loss / d score for each.
pub fn pairwise_pm(forward: &[f32], swapped: &[f32]) -> (f32, Vec<f32>, Vec<f32>) {
    let n = forward.len() as f64;
    let softplus = |x: f64| if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() };
    let mut total = 0f64;
    let (mut d1, mut d2) = (vec![0f32; forward.len()], vec![0f32; forward.len()]);
    for i in 0..forward.len() {
        let (s1, s2) = (forward[i] as f64, swapped[i] as f64);
        total += 0.5 * softplus(-s1) + 0.5 * softplus(s2);
        d1[i] = (-0.5 * sigmoid(-s1) / n) as f32;
        d2[i] = (0.5 * sigmoid(s2) / n) as f32;
    }
    ((total / n) as f32, d1, d2)
}

/// The sign rule used for labels and accuracy: y1 ≻ y2 iff r(x,y1,y2) − r(x,y2,y1) > 0.
pub fn prefers_first(score_12: f32, score_21: f32) -> bool {
    sigmoid(score_12 as f64) - sigmoid(score_21 as f64) > 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each analytic gradient against a central difference of the loss itself.
    #[test]
    fn gradients_match_finite_differences() {
        let (pw, pl, rw, rl) = (vec![-3.0, -5.0, -2.0], vec![-4.0, -3.5, -2.5], vec![-3.2, -4.0, -2.2], vec![-3.9, -3.0, -2.4]);
        for loss in [Loss::Ipo, Loss::Dpo, Loss::Slic, Loss::BestOf2] {
            let (_, dw, dl) = gpo(loss, 0.5, &pw, &pl, &rw, &rl);
            for i in 0..3 {
                for (which, analytic) in [(0, dw[i]), (1, dl[i])] {
                    let eps = 1e-2;
                    let shift = |d: f32| {
                        let (mut a, mut b) = (pw.clone(), pl.clone());
                        if which == 0 { a[i] += d } else { b[i] += d }
                        gpo(loss, 0.5, &a, &b, &rw, &rl).0
                    };
                    let numeric = (shift(eps) - shift(-eps)) / (2.0 * eps);
                    assert!((numeric - analytic).abs() < 1e-3, "{loss:?} pair {i} side {which}: {analytic} vs {numeric}");
                }
            }
        }
        let (s1, s2) = (vec![0.3, -1.2], vec![0.5, 2.0]);
        let (_, d1, d2) = pairwise_pm(&s1, &s2);
        for i in 0..2 {
            let f = |a: f32, b: f32| {
                let (mut x, mut y) = (s1.clone(), s2.clone());
                x[i] += a;
                y[i] += b;
                pairwise_pm(&x, &y).0
            };
            assert!(((f(1e-2, 0.0) - f(-1e-2, 0.0)) / 2e-2 - d1[i]).abs() < 1e-3);
            assert!(((f(0.0, 1e-2) - f(0.0, -1e-2)) / 2e-2 - d2[i]).abs() < 1e-3);
        }
    }

    #[test]
    fn ipo_is_minimal_at_h_equal_half_over_beta() {
        let beta = 0.1;
        let at = |h: f32| gpo(Loss::Ipo, beta, &[h], &[0.0], &[0.0], &[0.0]).0;
        assert!(at(5.0) < 1e-9 && at(4.0) > 0.0 && at(6.0) > 0.0);
        assert!(prefers_first(1.0, -1.0) && !prefers_first(-1.0, 1.0));
    }
}

//! What the CPU twins share to be fast without being obscure: an `exp` the compiler can vectorise, and a
//! split of row-wise work over the run's threads. (Natively the loops run 8 lanes wide: x86_64 builds target
//! x86-64-v3, see `.cargo/config.toml`; in the browser 4 lanes, SIMD128.)
//!
//! libm's `expf` is a call per element that no loop around it can vectorise; it made GELU alone a third of
//! the CPU training step. [`exp`] is Cephes' `expf` (range reduction by ln 2 in two parts, a degree-5
//! polynomial, the exponent put in by bit arithmetic) written without branches, so a loop of it becomes
//! SIMD code (AVX2 natively, simd128 in the browser). Its error is within 2 ulp of the true value over
//! the whole f32 range, below the 1e-6 the kernels are checked to.

/// e^x for every f32: 0 below −87.3 (where e^x is subnormal), +∞ above 88.7, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to the nearest integer in the low mantissa bits (no float→int conversion).
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.336_54, 88.722_83);
    let shifted = clamped * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    let poly = p * r * r + r + 1.0;
    // n (−126..=128) is in the low bits of `shifted`; 2ⁿ is built as 2^(n/2)·2^(n−n/2) so both factors are
    // normal numbers at either end of the range.
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let half = n_int >> 1;
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let y = poly * pow2(half) * pow2(n_int - half);
    // Edges the polynomial cannot carry: below the clamp e^x is 0 (or subnormal), above it ∞, and NaN stays NaN.
    let y = if x < -87.336_54 { 0.0 } else { y };
    let y = if x > 88.722_83 { f32::INFINITY } else { y };
    if x.is_nan() { x } else { y }
}

/// tanh through one [`exp`] of a clamped argument (tanh is ±1 to f32 precision beyond ±9).
#[inline(always)]
pub fn tanh(u: f32) -> f32 {
    let e = exp(2.0 * u.clamp(-9.0, 9.0));
    (e - 1.0) / (e + 1.0)
}

/// Σ x in 8 interleaved partial sums, then added pairwise: a loop the compiler vectorises, where a plain
/// left-to-right sum (which it may not reorder) runs one value at a time.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    add_lanes(acc) + tail
}

/// Σ a·b in 8 lanes like [`sum`].
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    add_lanes(acc) + tail
}

/// The 8 partial sums of [`sum`] and [`dot`], added pairwise.
#[inline(always)]
fn add_lanes(acc: [f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// The largest value of x (−∞ for none), in 8 lanes like [`sum`].
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for l in 0..8 {
            acc[l] = acc[l].max(c[l]);
        }
    }
    chunks.remainder().iter().chain(&acc).copied().fold(f32::NEG_INFINITY, f32::max)
}

/// How many threads row-wise CPU work may use: the GEMM's setting (`MATMUL_NUM_THREADS`, as
/// matrixmultiply reads it), else 1. Always 1 in the browser, where a worker has one thread.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static THREADS: OnceLock<usize> = OnceLock::new();
        *THREADS.get_or_init(|| std::env::var("MATMUL_NUM_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n >= 1).unwrap_or(1).min(64))
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// Below this many output values a second thread costs more to start than it saves.
const MIN_PARALLEL_VALUES: usize = 1 << 15;

/// Runs `f(first_row, rows_of_out)` over `out` cut into whole rows of `row_len`, on up to [`threads`]
/// threads. Each row is computed by exactly one call, so the result does not depend on the thread count.
pub fn for_row_chunks<F>(out: &mut [f32], row_len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let worth_splitting = out.len() >= MIN_PARALLEL_VALUES;
    split_rows(out, row_len, worth_splitting, f)
}

/// [`for_row_chunks`] where the caller says whether the work is large enough to split (a GEMM's work is its
/// multiply-adds, not its output's size).
pub fn split_rows<F>(out: &mut [f32], row_len: usize, worth_splitting: bool, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let rows = out.len().checked_div(row_len).unwrap_or(0);
    let parts = threads().min(rows.max(1));
    if parts <= 1 || !worth_splitting {
        f(0, out);
        return;
    }
    let per = rows.div_ceil(parts);
    std::thread::scope(|s| {
        let mut chunks = out.chunks_mut(per * row_len).enumerate();
        let (_, first) = chunks.next().expect("at least one chunk");
        for (i, chunk) in chunks {
            let f = &f;
            s.spawn(move || f(i * per, chunk));
        }
        f(0, first);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp_of_libm() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, want) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn tanh_matches_libm() {
        for i in -2000..2000 {
            let u = i as f32 * 0.01;
            assert!((tanh(u) - u.tanh()).abs() < 3e-7, "tanh({u})");
        }
    }

    #[test]
    fn row_chunks_cover_every_row_once() {
        let mut out = vec![0.0f32; 70_001 * 3];
        for_row_chunks(&mut out, 3, |first, rows| {
            for (r, row) in rows.chunks_exact_mut(3).enumerate() {
                row.iter_mut().for_each(|v| *v += (first + r) as f32);
            }
        });
        assert!(out.chunks_exact(3).enumerate().all(|(r, row)| row.iter().all(|&v| v == r as f32)));
    }
}

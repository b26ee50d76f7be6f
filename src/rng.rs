//! Counter-based random numbers.
//!
//! A value is a pure function of its coordinates (seed, stream, row, index): no state is carried between
//! draws, so the CPU and a WGSL kernel that hash the same counter get the same bits, and a run can be
//! split over threads or dispatches without changing what it samples. The mixer is `pcg4d` from Jarzynski
//! & Olano, "Hash Functions for GPU Rendering" (JCGT 2020): u32 arithmetic only, so it is written the same
//! way in WGSL (shaders use the identical function).

/// Hashes a 4-word counter into 4 well-mixed words.
pub fn pcg4d(mut v: [u32; 4]) -> [u32; 4] {
    for x in v.iter_mut() {
        *x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    }
    mix(&mut v);
    for x in v.iter_mut() {
        *x ^= *x >> 16;
    }
    mix(&mut v);
    v
}

fn mix(v: &mut [u32; 4]) {
    v[0] = v[0].wrapping_add(v[1].wrapping_mul(v[3]));
    v[1] = v[1].wrapping_add(v[2].wrapping_mul(v[0]));
    v[2] = v[2].wrapping_add(v[0].wrapping_mul(v[1]));
    v[3] = v[3].wrapping_add(v[1].wrapping_mul(v[2]));
}

/// A uniform number in [0, 1) from the top 24 bits, exactly representable in f32.
pub fn uniform(seed: u32, stream: u32, row: u32, index: u32) -> f32 {
    (pcg4d([seed, stream, row, index])[0] >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// `len` uniform numbers in [lo, hi), the i-th keyed by (seed, stream, 0, i).
pub fn uniform_vec(seed: u32, stream: u32, len: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..len).map(|i| lo + (hi - lo) * uniform(seed, stream, 0, i as u32)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_spread() {
        assert_eq!(pcg4d([1, 2, 3, 4]), pcg4d([1, 2, 3, 4]));
        assert_ne!(uniform(0, 0, 0, 0), uniform(0, 0, 0, 1));
        let xs = uniform_vec(7, 1, 10_000, 0.0, 1.0);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        // Neighbouring counters must not give correlated values.
        let lag1: f32 = xs.windows(2).map(|w| (w[0] - 0.5) * (w[1] - 0.5)).sum::<f32>() / xs.len() as f32;
        assert!(lag1.abs() < 0.01, "lag-1 covariance {lag1}");
    }
}

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

/// Every stream id the experiments draw from, in one place. Each purpose owns a half-open range
/// `[start, end)` of stream ids, and the ranges are disjoint (tested), so no two purposes ever share random
/// numbers. Where a purpose derives several streams from its base (per step, per chunk), the limit that
/// keeps it inside its range is here too, and the config validators enforce it.
pub mod streams {
    /// Parameter initialisation: stream = the tensor's index in the parameter list.
    pub const INIT: (u32, u32) = (0, 0x1_0000);
    /// SFT: prompts (base + 1) and the noisy generator's responses (base + 2).
    pub const SFT: (u32, u32) = (0x5F7_0000, 0x5F8_0000);
    pub const SFT_PROMPTS: u32 = SFT.0 + 1;
    pub const SFT_RESPONSES: u32 = SFT.0 + 2;
    /// Online alignment: prompts (one stream, indexed by step · batch + row).
    pub const ALIGN_PROMPTS: u32 = 0xA11_0000;
    /// Online alignment: the two samples of step s from streams base + 2s and base + 2s + 1.
    pub const ALIGN_SAMPLES: (u32, u32) = (0xA12_0000, 0xA13_0000);
    /// Online steps that fit in [`ALIGN_SAMPLES`].
    pub const MAX_ONLINE_STEPS: u32 = (ALIGN_SAMPLES.1 - ALIGN_SAMPLES.0) / 2;
    /// Online alignment with Bernoulli golden labels: the label coins.
    pub const ALIGN_COINS: u32 = 0xA13_0000;
    /// D_golden and the held-out pairs (`train::data::golden_pairs`): prompts from the base, the two
    /// responses of chunk c from base + 1 + 256c and base + 2 + 256c, label coins from base + 3.
    pub const D_GOLDEN: (u32, u32) = (0xD0_0000, 0xD1_0000);
    pub const HELDOUT: (u32, u32) = (0xD1_0000, 0xD2_0000);
    /// The pair datasets of Figs 5 and 12 (`train::data::pairs_from`): on D_golden's prompts, the two sides
    /// of chunk c from base + 1 + 256c and base + 2 + 256c, label coins from base + 3.
    pub const PAIR_DATASETS: (u32, u32) = (0xD2_0000, 0xD3_0000);
    /// Prompts per chunk of `golden_pairs`.
    pub const PAIR_CHUNK: usize = 512;
    /// Pairs that fit in one of those ranges: 256 chunks.
    pub const MAX_PAIRS: usize = ((D_GOLDEN.1 - D_GOLDEN.0) as usize >> 8) * PAIR_CHUNK;
    /// Evaluation: each checkpoint's samples for the win rate and for the KL (the same streams at every
    /// checkpoint: common random numbers make checkpoints comparable).
    pub const EVAL_WIN_SAMPLES: u32 = 0xE0_0001;
    pub const EVAL_KL_SAMPLES: u32 = 0xE0_0002;
    /// Self-classification: each checkpoint's second sample per win-rate prompt, and the golden label coins.
    pub const EVAL_SELF_SAMPLES: u32 = 0xE0_0003;
    pub const EVAL_SELF_COINS: u32 = 0xE0_0004;
    /// Stream classification: golden label coins of an online stream's pairs (index = position in the stream).
    pub const EVAL_STREAM_COINS: u32 = 0xE0_0005;
    /// Evaluation data fixed per seed: win-rate prompts, π_sft's baseline responses, KL prompts.
    pub const EVAL_WIN_PROMPTS: u32 = 0xE1_0000;
    pub const EVAL_BASELINE: u32 = 0xE2_0000;
    pub const EVAL_KL_PROMPTS: u32 = 0xE3_0000;
    /// The stopping rule's validation data, disjoint from the evaluation prompts: prompts, π_sft's baseline
    /// responses to them, and each checkpoint's samples.
    pub const EVAL_VALIDATION_PROMPTS: u32 = 0xE4_0000;
    pub const EVAL_VALIDATION_BASELINE: u32 = 0xE5_0000;
    pub const EVAL_VALIDATION_SAMPLES: u32 = 0xE0_0006;

    /// The data experiments' reshuffling of an online run's stream (row = the window's index).
    pub const STREAM_SHUFFLE: u32 = 0xF50_0000;

    /// Reports: the proxy map's bootstrap over seeds (row = the resample, index = the draw).
    pub const REPORT_BOOTSTRAP: u32 = 0xB00_0000;

    /// (purpose, start, end) of every range; single streams are ranges of one.
    pub const RANGES: [(&str, u32, u32); 21] = [
        ("init", INIT.0, INIT.1),
        ("sft", SFT.0, SFT.1),
        ("align prompts", ALIGN_PROMPTS, ALIGN_PROMPTS + 1),
        ("align samples", ALIGN_SAMPLES.0, ALIGN_SAMPLES.1),
        ("align coins", ALIGN_COINS, ALIGN_COINS + 1),
        ("d_golden", D_GOLDEN.0, D_GOLDEN.1),
        ("heldout", HELDOUT.0, HELDOUT.1),
        ("pair datasets", PAIR_DATASETS.0, PAIR_DATASETS.1),
        ("eval win samples", EVAL_WIN_SAMPLES, EVAL_WIN_SAMPLES + 1),
        ("eval kl samples", EVAL_KL_SAMPLES, EVAL_KL_SAMPLES + 1),
        ("eval self samples", EVAL_SELF_SAMPLES, EVAL_SELF_SAMPLES + 1),
        ("eval self coins", EVAL_SELF_COINS, EVAL_SELF_COINS + 1),
        ("eval stream coins", EVAL_STREAM_COINS, EVAL_STREAM_COINS + 1),
        ("eval win prompts", EVAL_WIN_PROMPTS, EVAL_WIN_PROMPTS + 1),
        ("eval baseline", EVAL_BASELINE, EVAL_BASELINE + 1),
        ("eval kl prompts", EVAL_KL_PROMPTS, EVAL_KL_PROMPTS + 1),
        ("eval validation prompts", EVAL_VALIDATION_PROMPTS, EVAL_VALIDATION_PROMPTS + 1),
        ("eval validation baseline", EVAL_VALIDATION_BASELINE, EVAL_VALIDATION_BASELINE + 1),
        ("eval validation samples", EVAL_VALIDATION_SAMPLES, EVAL_VALIDATION_SAMPLES + 1),
        ("stream shuffle", STREAM_SHUFFLE, STREAM_SHUFFLE + 1),
        ("report bootstrap", REPORT_BOOTSTRAP, REPORT_BOOTSTRAP + 1),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ranges_are_disjoint() {
        for (i, a) in streams::RANGES.iter().enumerate() {
            assert!(a.1 < a.2, "{a:?} is empty");
            for b in &streams::RANGES[i + 1..] {
                assert!(a.2 <= b.1 || b.2 <= a.1, "streams of {} and {} overlap", a.0, b.0);
            }
        }
        // The derived streams stay inside their ranges at the limits the validators enforce.
        let last_sample = streams::ALIGN_SAMPLES.0 + 2 * (streams::MAX_ONLINE_STEPS - 1) + 1;
        assert!(last_sample < streams::ALIGN_SAMPLES.1);
        let last_chunk = (streams::MAX_PAIRS / streams::PAIR_CHUNK - 1) as u32;
        assert!(streams::D_GOLDEN.0 + 3 + (last_chunk << 8) < streams::D_GOLDEN.1);
        assert!(streams::HELDOUT.0 + 3 + (last_chunk << 8) < streams::HELDOUT.1);
        assert!(streams::PAIR_DATASETS.0 + 3 + (last_chunk << 8) < streams::PAIR_DATASETS.1);
    }

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

//! D_golden: prompts, two samples from π_sft each, labelled by the golden preference (docs/method.md §2).

use super::eval::sample_responses;
use super::pm::Pairs;
use crate::engine::Engine;
use crate::error::Result;
use crate::model::Gpt;
use crate::rng::uniform;
use crate::task::TaskConfig;

/// `n` golden-labelled pairs of SFT samples, keyed by (seed, stream): prompts from `stream`, the two
/// responses of chunk c from streams `stream + 1 + 256c` and `stream + 2 + 256c`, label coins from
/// `stream + 3`. Sampled in chunks of `chunk` prompts; `crate::rng::streams` gives each purpose a range
/// that holds its chunks.
pub async fn golden_pairs(e: &Engine, task: &TaskConfig, sft: &Gpt, n: usize, seed: u32, stream: u32, chunk: usize) -> Result<Pairs> {
    let prompts: Vec<Vec<u32>> = (0..n).map(|i| task.prompt(seed, stream, i as u32)).collect();
    pairs_from(e, task, (sft, sft), &prompts, seed, stream, chunk).await
}

/// Golden-labelled pairs on `prompts`: the first response from policy `a`, the second from `b` (the paper's
/// D_x-vs-y datasets, Figs 5 and 12), chunk c's from streams `stream + 1 + 256c` and `stream + 2 + 256c`, label
/// coins from `stream + 3`, in chunks of `chunk` prompts.
pub async fn pairs_from(e: &Engine, task: &TaskConfig, (a, b): (&Gpt, &Gpt), prompts: &[Vec<u32>], seed: u32, stream: u32, chunk: usize) -> Result<Pairs> {
    let mut pairs = Pairs::default();
    for start in (0..prompts.len()).step_by(chunk.max(1)) {
        crate::control::yield_point().await?;
        let end = (start + chunk).min(prompts.len());
        let prompts = &prompts[start..end];
        // The chunk index keys the sampler so that chunks draw independently.
        let c = (start / chunk.max(1)) as u32;
        let y1 = sample_responses(e, a, task, prompts, seed, stream.wrapping_add(1).wrapping_add(c << 8)).await?;
        let y2 = sample_responses(e, b, task, prompts, seed, stream.wrapping_add(2).wrapping_add(c << 8)).await?;
        for (i, p) in prompts.iter().enumerate() {
            let coin = uniform(seed, stream.wrapping_add(3), 0, (start + i) as u32);
            pairs.first_wins.push(task.golden_label(p, &y1[i], &y2[i], coin));
        }
        pairs.prompts.extend_from_slice(prompts);
        pairs.y1.extend(y1);
        pairs.y2.extend(y2);
    }
    Ok(pairs)
}

/// The online stream D_online reordered for the data experiments (the paper's Figs 4 and 13): cut into
/// consecutive windows of `window` batches of `batch` pairs and shuffled uniformly inside each window.
/// `window` 1 keeps the order (offline IPO on it replays the online run exactly); 0 shuffles the whole
/// stream. Deterministic in `seed`; every pair appears exactly once. The window sizes draw from the same
/// numbers (common random numbers across the arms of one seed, as the checkpoints' evaluations do).
pub fn shuffle_in_windows(stream: &Pairs, batch: usize, window: u32, seed: u32) -> Pairs {
    use crate::rng::{streams::STREAM_SHUFFLE, uniform};
    let n = stream.len();
    let size = if window == 0 { n.max(1) } else { window as usize * batch.max(1) };
    let mut order: Vec<usize> = (0..n).collect();
    if window != 1 {
        for (w, chunk) in order.chunks_mut(size).enumerate() {
            // Fisher–Yates, from the back: position i swaps with a uniform j ≤ i.
            for i in (1..chunk.len()).rev() {
                let j = ((uniform(seed, STREAM_SHUFFLE, w as u32, i as u32) * (i + 1) as f32) as usize).min(i);
                chunk.swap(i, j);
            }
        }
    }
    Pairs {
        prompts: order.iter().map(|&i| stream.prompts[i].clone()).collect(),
        y1: order.iter().map(|&i| stream.y1[i].clone()).collect(),
        y2: order.iter().map(|&i| stream.y2[i].clone()).collect(),
        first_wins: order.iter().map(|&i| stream.first_wins[i]).collect(),
    }
}

#[cfg(test)]
mod shuffle_tests {
    use super::*;

    fn stream(n: usize) -> Pairs {
        Pairs { prompts: (0..n as u32).map(|i| vec![i]).collect(), y1: (0..n as u32).map(|i| vec![i, 1]).collect(), y2: (0..n as u32).map(|i| vec![i, 2]).collect(), first_wins: (0..n).map(|i| i % 3 == 0).collect() }
    }

    #[test]
    fn windows_keep_every_pair_inside_its_window_and_whole_shuffles_across() {
        let s = stream(64);
        assert_eq!(shuffle_in_windows(&s, 4, 1, 7), s, "window 1 is the stream in order");
        for window in [2u32, 8, 0] {
            let t = shuffle_in_windows(&s, 4, window, 7);
            assert_ne!(t, s, "window {window} reorders");
            let mut ids: Vec<u32> = t.prompts.iter().map(|p| p[0]).collect();
            // Each pair keeps its own responses and label.
            for (k, &i) in ids.iter().enumerate() {
                assert_eq!((t.y1[k][0], t.y2[k][0], t.first_wins[k]), (i, i, i % 3 == 0));
            }
            let size = if window == 0 { 64 } else { window as usize * 4 };
            assert!(ids.iter().enumerate().all(|(k, &i)| k / size == i as usize / size), "window {window}: a pair left its window");
            ids.sort_unstable();
            assert_eq!(ids, (0..64).collect::<Vec<_>>(), "window {window}: a permutation");
        }
        let whole = shuffle_in_windows(&s, 4, 0, 7);
        assert!(whole.prompts[..8].iter().any(|p| p[0] >= 8), "the whole-stream shuffle moves pairs across windows of 2 batches");
        assert_eq!(whole, shuffle_in_windows(&s, 4, 0, 7), "deterministic");
        assert_ne!(whole, shuffle_in_windows(&s, 4, 0, 8), "seeded");
    }
}

// Native only: it runs the engine to completion with pollster (the browser tests are tests/web.rs).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod pair_dataset_tests {
    use super::*;
    use crate::model::{GptConfig, Head};

    /// Each side of a pair dataset is sampled from its own policy, on the prompts given, and labelled by the
    /// golden preference; D_golden is the dataset whose two sides are π_sft.
    #[test]
    fn each_side_comes_from_its_own_policy() {
        let e = Engine::cpu();
        let task = TaskConfig::default();
        let cfg = GptConfig { n_layer: 1, n_embd: 16, n_head: 2, n_positions: task.context(), vocab_size: task.vocab_size() };
        let (a, b) = (Gpt::init(&e, cfg, Head::Lm, 1).unwrap(), Gpt::init(&e, cfg, Head::Lm, 2).unwrap());
        let prompts: Vec<Vec<u32>> = (0..12).map(|i| task.prompt(3, 77, i)).collect();
        let run = |pair| pollster::block_on(pairs_from(&e, &task, pair, &prompts, 3, 500, 8)).unwrap();
        let mixed = run((&a, &b));
        assert_eq!(mixed.prompts, prompts);
        // Chunk 1 (prompts 8..12) draws from its own streams.
        let side = |m: &Gpt, s: u32, range: std::ops::Range<usize>, c: u32| pollster::block_on(sample_responses(&e, m, &task, &prompts[range], 3, s + (c << 8))).unwrap();
        assert_eq!(mixed.y1, [side(&a, 501, 0..8, 0), side(&a, 501, 8..12, 1)].concat());
        assert_eq!(mixed.y2, [side(&b, 502, 0..8, 0), side(&b, 502, 8..12, 1)].concat());
        for i in 0..prompts.len() {
            let coin = uniform(3, 503, 0, i as u32);
            assert_eq!(mixed.first_wins[i], task.golden_label(&prompts[i], &mixed.y1[i], &mixed.y2[i], coin));
        }
        assert_ne!(run((&a, &a)).y2, mixed.y2, "the second side follows its policy");
        let golden = pollster::block_on(golden_pairs(&e, &task, &a, 12, 3, 77, 8)).unwrap();
        let same = pollster::block_on(pairs_from(&e, &task, (&a, &a), &prompts, 3, 77, 8)).unwrap();
        assert_eq!(golden, same, "D_golden: both sides from the one policy, its prompts from its own stream");
    }
}

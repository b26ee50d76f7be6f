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
    let mut pairs = Pairs::default();
    for start in (0..n).step_by(chunk.max(1)) {
        crate::control::yield_point().await?;
        let end = (start + chunk).min(n);
        let prompts: Vec<Vec<u32>> = (start..end).map(|i| task.prompt(seed, stream, i as u32)).collect();
        // The chunk index keys the sampler so that chunks draw independently.
        let c = (start / chunk.max(1)) as u32;
        let y1 = sample_responses(e, sft, task, &prompts, seed, stream.wrapping_add(1).wrapping_add(c << 8)).await?;
        let y2 = sample_responses(e, sft, task, &prompts, seed, stream.wrapping_add(2).wrapping_add(c << 8)).await?;
        for (i, p) in prompts.iter().enumerate() {
            let coin = uniform(seed, stream.wrapping_add(3), 0, (start + i) as u32);
            pairs.first_wins.push(task.golden_label(p, &y1[i], &y2[i], coin));
        }
        pairs.prompts.extend(prompts);
        pairs.y1.extend(y1);
        pairs.y2.extend(y2);
    }
    Ok(pairs)
}

//! Data-parallel gradients on the CPU (issue 30, item 3; native threads so far): a batch's rows are split into a
//! fixed number of chunks; each chunk's gradient is computed on a CPU engine and model replica of its own, on one
//! of `threads` threads; the chunk gradients are then summed in chunk order. The result depends on the number of
//! chunks, never on the number of threads. It differs in the last bits from one pass over the whole batch (whose
//! weight-gradient GEMMs sum every row at once), so a trainer that uses it must make it a mode of its own.
//!
//! What is not here yet: the page's workers (a chunk's gradient posted back to the page's worker), and the
//! trainers' modes (SFT, the proxy, alignment). `alignment-gap bench --data-parallel N` times the bench's step
//! with it.

use crate::engine::Engine;
use crate::error::Result;
use crate::model::{Gpt, GptConfig, Head};
use std::ops::Range;

/// Rows [start, end) of chunk `i` of `chunks` over `rows` rows: the first `rows % chunks` chunks hold one row more.
pub fn chunk_rows(rows: usize, chunks: usize, i: usize) -> Range<usize> {
    let (per, extra) = (rows / chunks, rows % chunks);
    let start = i * per + i.min(extra);
    start..start + per + usize::from(i < extra)
}

/// Σ over `chunks` chunks of `rows` rows, in chunk order, of `gradient(engine, model, rows)`: each chunk's
/// gradient (one vector per parameter tensor) computed on a CPU engine holding a replica of the model
/// (`config`, `head`, `values`). Chunk i runs on thread i mod `threads`; each thread builds its replica once.
/// Bit for bit the same for every `threads`.
pub fn chunked_gradients<F>(config: GptConfig, head: Head, values: &[Vec<f32>], rows: usize, chunks: usize, threads: usize, gradient: F) -> Result<Vec<Vec<f32>>>
where
    F: Fn(&Engine, &Gpt, Range<usize>) -> Result<Vec<Vec<f32>>> + Sync,
{
    if chunks == 0 || chunks > rows || threads == 0 {
        crate::bail!("data-parallel: chunks = {chunks} must be in 1..={rows} (the batch's rows) and threads = {threads} ≥ 1");
    }
    let threads = threads.min(chunks);
    let per_thread = |t: usize| -> Result<Vec<(usize, Vec<Vec<f32>>)>> {
        let e = Engine::cpu();
        let model = Gpt::new(&e, config, head, values)?;
        (t..chunks).step_by(threads).map(|i| Ok((i, gradient(&e, &model, chunk_rows(rows, chunks, i))?))).collect()
    };
    let mut parts: Vec<(usize, Vec<Vec<f32>>)> = if threads == 1 {
        per_thread(0)?
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || per_thread(t))).collect();
            handles.into_iter().map(|h| h.join().expect("a data-parallel thread panicked")).collect::<Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect()
    };
    parts.sort_by_key(|(i, _)| *i);
    let mut parts = parts.into_iter().map(|(_, g)| g);
    let mut sum = parts.next().expect("chunks ≥ 1");
    for part in parts {
        for (s, g) in sum.iter_mut().zip(part) {
            s.iter_mut().zip(g).for_each(|(s, g)| *s += g);
        }
    }
    Ok(sum)
}

/// One chunk's gradient of the sequence log-prob loss −(1/`batch_rows`)·Σ_rows log p(row), for a batch of rows of
/// `t` tokens (`ids`, `targets`, `weights`: the whole batch's, row-major): the bench's and SFT's loss, as
/// [`chunked_gradients`] wants it.
#[allow(clippy::too_many_arguments)]
pub fn sequence_logprob_gradient(e: &Engine, m: &Gpt, rows: Range<usize>, t: usize, batch_rows: usize, ids: &[u32], targets: &[u32], weights: &[f32]) -> Result<Vec<Vec<f32>>> {
    let (n, span) = (rows.len(), rows.start * t..rows.end * t);
    let acts = m.activations(e, n, t)?;
    let (tokens, targets, weights) = (e.indices(&ids[span.clone()]), e.indices(&targets[span.clone()]), e.tensor(&weights[span]));
    m.forward(e, &acts, &tokens)?;
    m.sequence_logprobs(e, &acts, &targets, &weights)?;
    let grads = m.zero_grads(e);
    // Every chunk's rows carry −1/batch_rows, so the chunks' gradients sum to the whole batch's.
    m.backward(e, &acts, &grads, &crate::model::TokenBatch { tokens: &tokens, targets: &targets, weights: &weights }, &e.tensor(&vec![-1.0 / batch_rows as f32; n]))?;
    grads.parts.iter().map(|g| pollster::block_on(e.read(g))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_rows_in_order_and_differ_by_at_most_one() {
        let all: Vec<Range<usize>> = (0..4).map(|i| chunk_rows(10, 4, i)).collect();
        assert_eq!(all, vec![0..3, 3..6, 6..8, 8..10]);
        assert_eq!(chunk_rows(8, 8, 7), 7..8);
    }

    /// The sequence log-prob loss of a tiny model, chunked: the same bits for 1, 2 and 3 threads, and the
    /// one-pass gradient up to rounding.
    #[test]
    fn chunked_gradients_do_not_depend_on_the_thread_count() {
        let config = GptConfig { n_layer: 1, n_embd: 16, n_head: 2, n_positions: 6, vocab_size: 11 };
        let values = crate::model::params::init_values(&config, Head::Lm, 4);
        let (rows, t) = (7, 6);
        let ids: Vec<u32> = (0..rows * t).map(|i| (i as u32 * 7 + 3) % 11).collect();
        let targets: Vec<u32> = (0..rows * t).map(|i| if (i + 1) % t == 0 { 0 } else { ids[i + 1] }).collect();
        let weights: Vec<f32> = (0..rows * t).map(|i| if i % t >= 2 && (i + 1) % t != 0 { 1.0 } else { 0.0 }).collect();
        let gradient = |e: &Engine, m: &Gpt, r: Range<usize>| sequence_logprob_gradient(e, m, r, t, rows, &ids, &targets, &weights);
        let one = chunked_gradients(config, Head::Lm, &values, rows, 3, 1, gradient).unwrap();
        for threads in [2, 3] {
            let many = chunked_gradients(config, Head::Lm, &values, rows, 3, threads, gradient).unwrap();
            assert!(one.iter().zip(&many).all(|(a, b)| a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits()))), "{threads} threads");
        }
        let whole = chunked_gradients(config, Head::Lm, &values, rows, 1, 1, gradient).unwrap();
        for (a, b) in one.iter().zip(&whole) {
            let err = crate::selfcheck::relative_error(a, b).unwrap();
            assert!(err < 1e-5, "chunked against one pass: {err:e}");
        }
        assert!(one.iter().flatten().any(|v| *v != 0.0));
        assert!(chunked_gradients(config, Head::Lm, &values, rows, 8, 1, gradient).is_err(), "more chunks than rows");
    }
}

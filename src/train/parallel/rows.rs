//! Forward passes shared by the pool's workers: the evaluation's and the online labels' passes (held-out pairs'
//! log-probs, the KL pass, the proxy's scores). Each row's result depends on its own tokens only: every kernel
//! computes each row alone, and no GEMM is chosen or blocked by the row count. So a batch split into parts, each
//! part passed on some worker's replica of the models, gives the whole batch's results bit for bit, however many
//! workers share it (`tests` below; the page test runs the same split over Web Workers).

use super::{chunk_rows, current, values_id};
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{sequence_kl, Gpt, GptConfig, Head};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// What is read from each row after the forward pass.
#[derive(Clone, Debug, PartialEq)]
pub enum Read {
    /// An LM's summed log-prob of each row's targets, Σ_t weight·log p(target) (the response's log-prob).
    Logps { targets: Vec<u32>, weights: Vec<f32> },
    /// Σ_t weight·KL(first ‖ second) of the two LMs' next-token distributions on the row.
    Kl { weights: Vec<f32> },
    /// A scalar head read at each row's token `last[r]`.
    Score { last: Vec<u32> },
    /// A scalar head summed over each row's positions `spans[r]` (start, end).
    SummedScore { spans: Vec<(u32, u32)> },
}

/// Rows of `t` tokens to pass, and what to read from each.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub t: usize,
    pub tokens: Vec<u32>,
    pub read: Read,
}

/// The read's name on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadKind {
    Logps,
    Kl,
    Score,
    SummedScore,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.tokens.len() / self.t.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> ReadKind {
        match self.read {
            Read::Logps { .. } => ReadKind::Logps,
            Read::Kl { .. } => ReadKind::Kl,
            Read::Score { .. } => ReadKind::Score,
            Read::SummedScore { .. } => ReadKind::SummedScore,
        }
    }

    /// Rows `r` alone.
    fn part(&self, r: Range<usize>) -> Rows {
        let t = self.t;
        let (cells, each) = (r.start * t..r.end * t, r.clone());
        let read = match &self.read {
            Read::Logps { targets, weights } => Read::Logps { targets: targets[cells.clone()].to_vec(), weights: weights[cells.clone()].to_vec() },
            Read::Kl { weights } => Read::Kl { weights: weights[cells.clone()].to_vec() },
            Read::Score { last } => Read::Score { last: last[each].to_vec() },
            Read::SummedScore { spans } => Read::SummedScore { spans: spans[each].to_vec() },
        };
        Rows { t, tokens: self.tokens[cells].to_vec(), read }
    }

    /// Refuses rows whose parts do not fit together (a damaged message, a caller's slip).
    fn check(&self) -> Result<()> {
        let (n, t) = (self.len(), self.t);
        let fits = match &self.read {
            Read::Logps { targets, weights } => targets.len() == n * t && weights.len() == n * t,
            Read::Kl { weights } => weights.len() == n * t,
            Read::Score { last } => last.len() == n && last.iter().all(|&l| (l as usize) < t),
            Read::SummedScore { spans } => spans.len() == n && spans.iter().all(|&(a, b)| a <= b && b as usize <= t),
        };
        if t == 0 || self.tokens.len() != n * t || !fits {
            crate::bail!("row pass: {n} rows of {t} tokens whose {:?} read does not fit them", self.kind());
        }
        Ok(())
    }
}

/// Each row's read of `rows` on `e`: `first`'s forward pass (and `second`'s, for a KL read).
pub async fn compute(e: &Engine, first: &Gpt, second: Option<&Gpt>, rows: &Rows) -> Result<Vec<f32>> {
    rows.check()?;
    let (b, t) = (rows.len(), rows.t);
    let acts = first.activations(e, b, t)?;
    let tokens = e.indices(&rows.tokens);
    first.forward(e, &acts, &tokens)?;
    match &rows.read {
        Read::Logps { targets, weights } => {
            first.sequence_logprobs(e, &acts, &e.indices(targets), &e.tensor(weights))?;
            e.read(&acts.sequence_logprobs).await
        }
        Read::Kl { weights } => {
            let Some(second) = second else { crate::bail!("row pass: a KL read needs a second model") };
            let acts_second = second.activations(e, b, t)?;
            second.forward(e, &acts_second, &tokens)?;
            let out = e.zeros(b);
            sequence_kl(e, (&acts.logits, &acts_second.logits), &e.tensor(weights), &e.zeros(b * t), &out, (b, t, first.config.vocab_size))?;
            e.read(&out).await
        }
        Read::Score { last } => {
            first.score(e, &acts, &e.indices(last))?;
            e.read(&acts.scores).await
        }
        Read::SummedScore { spans } => {
            let at = e.zeros(b * t);
            first.score_every_position(e, &acts, &e.zeros(b * t), &at)?;
            let at = e.read(&at).await?;
            Ok(spans.iter().enumerate().map(|(r, &(a, z))| at[r * t + a as usize..r * t + z as usize].iter().sum()).collect())
        }
    }
}

/// A model as a worker is told of it: its shape, its parameters' identity, and its values (empty when the worker
/// holds it already).
#[derive(Clone, Copy)]
pub struct ModelRef<'a> {
    pub config: GptConfig,
    pub head: Head,
    pub id: u64,
    pub values: &'a [Vec<f32>],
}

/// Fewer rows than this per worker are not worth a worker's round trip.
pub const MIN_PASS_ROWS: usize = 16;

/// Each row's read of `rows` ([`compute`]'s results). With a pool of several workers and the CPU engine, the rows are
/// split into parts, part 0 passed here while the other workers pass theirs on replicas of the models.
pub async fn pass_rows(e: &Engine, first: &Gpt, second: Option<&Gpt>, rows: Rows) -> Result<Vec<f32>> {
    let pool = current();
    let parts = pool.workers().min(rows.len() / MIN_PASS_ROWS).max(1);
    if parts == 1 || e.is_gpu() {
        return compute(e, first, second, &rows).await;
    }
    rows.check()?;
    let values = first.values(e).await?;
    let second_values = match second {
        Some(m) => Some(m.values(e).await?),
        None => None,
    };
    fn model<'v>(m: &Gpt, values: &'v [Vec<f32>]) -> ModelRef<'v> {
        ModelRef { config: m.config, head: m.head, id: values_id(values), values }
    }
    let models: Vec<ModelRef> = std::iter::once(model(first, &values)).chain(second.zip(second_values.as_deref()).map(|(m, v)| model(m, v))).collect();
    let split: Vec<Rows> = (0..parts).map(|i| rows.part(chunk_rows(rows.len(), parts, i))).collect();
    let others = pool.pass_parts(&models, split[1..].to_vec());
    let mut out = compute(e, first, second, &split[0]).await?;
    for theirs in others.await? {
        out.extend(theirs);
    }
    if out.len() != rows.len() {
        crate::bail!("row pass: {} results came back for {} rows", out.len(), rows.len());
    }
    Ok(out)
}

/// Models a worker keeps between passes, by id, the most recently used last. The page's run worker mirrors each
/// helper's list (`web.rs`) to know which models it need not send again, so both sides apply [`note_use`].
pub const HELD_MODELS: usize = 4;

/// Notes the use of model `id` in a list of at most [`HELD_MODELS`], the most recently used last: whether it was
/// there already. A new one goes last, and the least recently used leaves when the list is full.
pub fn note_use(list: &mut Vec<u64>, id: u64) -> bool {
    let held = match list.iter().position(|&h| h == id) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    };
    list.push(id);
    if list.len() > HELD_MODELS {
        list.remove(0);
    }
    held
}

/// A worker's models kept between passes (one set per thread: a page's helper, a native pool thread).
struct Held {
    e: Engine,
    ids: Vec<u64>,
    models: Vec<(u64, Gpt)>,
}

thread_local! {
    static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
}

/// A part's reads on this thread's replicas of `models` (what a worker does): each model is taken from those
/// kept when its values are not sent, and kept when they are.
pub async fn pass_part(models: &[ModelRef<'_>], rows: &Rows) -> Result<Vec<f32>> {
    let mut held = HELD.with(|h| h.borrow_mut().take()).unwrap_or_else(|| Held { e: Engine::cpu(), ids: vec![], models: vec![] });
    let result = async {
        for m in models {
            // A model of the same id has the same values: one held is used as it is.
            if !note_use(&mut held.ids, m.id) {
                if m.values.is_empty() {
                    held.ids.retain(|&id| id != m.id);
                    crate::bail!("row pass: this worker was not sent model {:016x}", m.id);
                }
                held.models.push((m.id, Gpt::new(&held.e, m.config, m.head, m.values)?));
            }
            let ids = held.ids.clone();
            held.models.retain(|(id, _)| ids.contains(id));
        }
        let find = |id: u64| held.models.iter().find(|(h, _)| *h == id).map(|(_, g)| g).ok_or_else(|| crate::Error::new(format!("row pass: model {id:016x} is not held")));
        let first = find(models[0].id)?;
        let second = match models.get(1) {
            Some(m) => Some(find(m.id)?),
            None => None,
        };
        compute(&held.e, first, second, rows).await
    }
    .await;
    HELD.with(|h| *h.borrow_mut() = Some(held));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every read of a batch split over 2 and 3 threads is the whole batch's, bit for bit; a worker keeps the models
    /// it was sent, and one asked for a model it never got refuses by saying so.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn rows_passed_in_parts_are_the_whole_batch() {
        use super::super::{install, ThreadPool};
        use std::rc::Rc;
        let config = GptConfig { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 9, vocab_size: 11 };
        let e = Engine::cpu();
        let lm = |seed| Gpt::new(&e, config, Head::Lm, &crate::model::params::init_values(&config, Head::Lm, seed)).unwrap();
        let (policy, reference) = (lm(3), lm(4));
        let scorer = Gpt::new(&e, config, Head::Score, &crate::model::params::init_values(&config, Head::Score, 5)).unwrap();
        let (n, t) = (53, 9);
        let tokens: Vec<u32> = (0..n * t).map(|i| (i * 7 % 11) as u32).collect();
        let weights: Vec<f32> = (0..n * t).map(|i| if i % t >= 3 { 1.0 } else { 0.0 }).collect();
        let cases = [
            (Read::Logps { targets: (0..n * t).map(|i| (i * 5 % 11) as u32).collect(), weights: weights.clone() }, &policy, Some(&reference)),
            (Read::Kl { weights }, &policy, Some(&reference)),
            (Read::Score { last: (0..n).map(|r| (r % t) as u32).collect() }, &scorer, None),
            (Read::SummedScore { spans: (0..n).map(|r| ((r % 4) as u32, 4 + (r % 5) as u32)).collect() }, &scorer, None),
        ];
        for (read, first, second) in cases {
            let rows = Rows { t, tokens: tokens.clone(), read };
            let second = second.filter(|_| rows.kind() == ReadKind::Kl);
            let whole = pollster::block_on(compute(&e, first, second, &rows)).unwrap();
            assert!(whole.iter().all(|v| v.is_finite()) && whole.windows(2).any(|w| w[0] != w[1]), "{:?}: the rows differ", rows.kind());
            for threads in [2, 3] {
                install(Some(Rc::new(ThreadPool { threads })));
                // Twice: the second time each thread reuses the models it kept.
                for _ in 0..2 {
                    let parts = pollster::block_on(pass_rows(&e, first, second, rows.clone()));
                    assert_eq!(parts.unwrap(), whole, "{:?} on {threads} threads", rows.kind());
                }
                install(None);
            }
        }
        let rows = Rows { t, tokens: tokens[..2 * t].to_vec(), read: Read::Score { last: vec![0, 1] } };
        let unsent = ModelRef { config, head: Head::Score, id: 1, values: &[] };
        let err = pollster::block_on(pass_part(&[unsent], &rows)).unwrap_err().to_string();
        assert!(err.contains("not sent model"), "{err}");
    }

    #[test]
    fn a_held_list_keeps_the_most_recently_used() {
        let mut list = vec![];
        assert!(!note_use(&mut list, 1) && !note_use(&mut list, 2) && !note_use(&mut list, 3) && !note_use(&mut list, 4));
        assert!(note_use(&mut list, 1), "held");
        assert!(!note_use(&mut list, 5), "new: 2, the least recently used, leaves");
        assert_eq!(list, vec![3, 4, 1, 5]);
        assert!(!note_use(&mut list, 2));
    }

    #[test]
    fn rows_that_do_not_fit_their_read_are_refused() {
        let bad = Rows { t: 3, tokens: vec![1; 6], read: Read::Score { last: vec![0, 3] } };
        assert!(bad.check().is_err());
        let bad = Rows { t: 3, tokens: vec![1; 6], read: Read::Kl { weights: vec![1.0; 5] } };
        assert!(bad.check().is_err());
    }
}

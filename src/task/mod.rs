//! The toy task, a summarisation analogue (docs/method.md §2: the controlled setting at toy scale).
//!
//! A prompt is a "document": distinct words from a small vocabulary, some of them *key* words. A response is
//! a "summary": words, then <eos>. The golden reward (the stand-in for the paper's golden preference model)
//! counts the distinct key words of the document the summary covers and charges for hallucinated words (not
//! in the document), repeats, length beyond the document's key words and a missing <eos>. Every knob is
//! configuration (`TaskConfig`), so a search over settings is data, not code.

use crate::error::Result;
use crate::rng::{pcg4d, uniform};
use crate::tokenizer::{WordTokenizer, SPECIALS};
use serde::{Deserialize, Serialize};

pub const PAD: u32 = 0;
pub const EOS: u32 = 1;
pub const SEP: u32 = 2;
/// The special tokens a policy never writes in a response (a bit per id, for `SampleSpec::banned`):
/// padding and the prompt/response separator. <eos> ends a response and stays.
pub const NEVER_SAMPLED: u32 = 1 << PAD | 1 << SEP;

/// What the golden reward's coverage term asks of a summary (issue 29: tasks in which telling two summaries apart
/// is easier than writing a good one). Every other term (hallucinations, repeats, length, <eos>) is the same in each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Each distinct key word of the document the summary covers counts once, in any order: ranking two summaries
    /// and writing a good one are the same skill (the task of every result before issue 29).
    #[default]
    Additive,
    /// Key words count only in the document's order: coverage is the longest chain of the summary's distinct
    /// document key words whose positions in the document rise along the summary. π_sft's generator shuffles its
    /// words, so it rarely writes a long chain, while two of its samples still differ mostly by local faults.
    Ordered,
    /// Key words 2i and 2i + 1 are partners and count only together: a partner pair that is in the document counts
    /// 2 when both are covered and 0 when one is; a key word whose partner is not in the document counts 1.
    Paired,
    /// The summary must cover exactly n of the document's k key words, n = k − 1 (n = k when k ≤ 1): each covered
    /// key word up to n counts 1, each beyond n costs 1. Most of π_sft's pairs are below n, so D_golden teaches
    /// "more key words win", while the best summary stops one short of all of them: a reward whose optimum lies
    /// where ranking π_sft's pairs does not point (issue 29's "exactly the number asked for").
    Counted,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] = [TaskKind::Additive, TaskKind::Ordered, TaskKind::Paired, TaskKind::Counted];

    /// What its golden reward's coverage term asks, in a line (the page's sample view and knob).
    pub fn describe(&self) -> &'static str {
        match self {
            TaskKind::Additive => "each key word of the document the summary covers counts once, in any order",
            TaskKind::Ordered => "key words count only in the document's order (the longest chain of them rising along the summary)",
            TaskKind::Paired => "key words 2i and 2i+1 count only together when both are in the document",
            TaskKind::Counted => "exactly all but one of the document's key words: each up to that count counts 1, each beyond it costs 1",
        }
    }

    /// Its name in configs (its serde name).
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Additive => "additive",
            TaskKind::Ordered => "ordered",
            TaskKind::Paired => "paired",
            TaskKind::Counted => "counted",
        }
    }

    pub fn is_additive(&self) -> bool {
        *self == TaskKind::Additive
    }
}

/// Weights of the golden reward's terms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardWeights {
    /// Per distinct key word of the document that the summary contains.
    pub coverage: f32,
    /// Per word not in the document.
    pub hallucination: f32,
    /// Per repeated occurrence of a word already used.
    pub repeat: f32,
    /// Per word beyond the number of key words in the document.
    pub length: f32,
    /// Charged once when the summary has no <eos>.
    pub missing_eos: f32,
}

/// How D_golden's labels are drawn from the golden reward r.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LabelNoise {
    /// y1 ≻ y2 iff r(y1) > r(y2); ties broken by a fair coin.
    Hard,
    /// y1 ≻ y2 with probability σ((r(y1) − r(y2)) / tau): the golden labeller as a model of noisy people.
    Bernoulli { tau: f32 },
}

/// The noisy summariser whose samples train π_sft.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    /// Probability of including each key word of the document.
    pub key_recall: f32,
    /// Expected number of non-key document words added.
    pub extra_words: f32,
    /// Probability, per slot, of a word from outside the document.
    pub hallucination_rate: f32,
    /// Probability, per slot, of repeating a word already written.
    pub repeat_rate: f32,
    /// Probability of ending without <eos> (running to the maximum length).
    pub missing_eos_rate: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// What the coverage term asks for ([`TaskKind`]; `additive` in every config written before it existed).
    #[serde(default)]
    pub kind: TaskKind,
    /// Words in the vocabulary (besides the special tokens).
    pub vocab_words: usize,
    /// How many of those are key words.
    pub key_words: usize,
    /// Words per document.
    pub doc_len: usize,
    /// Longest summary, <eos> included.
    pub max_summary: usize,
    pub reward: RewardWeights,
    pub generator: GeneratorConfig,
    pub labels: LabelNoise,
}

impl Default for TaskConfig {
    /// The setting a PyTorch prototype explored (see the Figure-1 issue): 40 words, 16 of them key, 8 per document.
    fn default() -> Self {
        TaskConfig {
            kind: TaskKind::Additive,
            vocab_words: 40,
            key_words: 16,
            doc_len: 8,
            max_summary: 12,
            reward: RewardWeights { coverage: 1.0, hallucination: 1.0, repeat: 1.0, length: 0.5, missing_eos: 0.5 },
            generator: GeneratorConfig { key_recall: 0.6, extra_words: 1.0, hallucination_rate: 0.1, repeat_rate: 0.1, missing_eos_rate: 0.05 },
            labels: LabelNoise::Hard,
        }
    }
}

impl TaskConfig {
    /// Every task setting against its range, each with its reason; the error names the key.
    pub fn validate(&self) -> Result<()> {
        use crate::limits::{int, real, Interval};
        int("task.vocab_words", self.vocab_words as u64, 2, 10_000, "words besides the special tokens; the vocabulary is the LM head's width")?;
        int("task.key_words", self.key_words as u64, 1, self.vocab_words as u64, "key words are drawn from the vocabulary (at most task.vocab_words)")?;
        int("task.doc_len", self.doc_len as u64, 1, self.vocab_words as u64 - 1, "a document's words are distinct, so fewer than task.vocab_words")?;
        int("task.max_summary", self.max_summary as u64, 1, 256, "the longest summary, <eos> included; it sets the context")?;
        let r = &self.reward;
        for (name, v) in [("coverage", r.coverage), ("hallucination", r.hallucination), ("repeat", r.repeat), ("length", r.length), ("missing_eos", r.missing_eos)] {
            real(&format!("task.reward.{name}"), v, Interval::closed(0.0, 100.0), "a weight of the golden reward; negative would reward the fault")?;
        }
        let g = &self.generator;
        let p = "a probability";
        real("task.generator.key_recall", g.key_recall, Interval::closed(0.0, 1.0), p)?;
        real("task.generator.extra_words", g.extra_words, Interval::closed(0.0, self.doc_len as f32), "expected non-key document words added, at most task.doc_len")?;
        real("task.generator.hallucination_rate", g.hallucination_rate, Interval::closed(0.0, 1.0), p)?;
        real("task.generator.repeat_rate", g.repeat_rate, Interval::closed(0.0, 1.0), p)?;
        real("task.generator.missing_eos_rate", g.missing_eos_rate, Interval::closed(0.0, 1.0), p)?;
        if let LabelNoise::Bernoulli { tau } = self.labels {
            real("task.labels.tau", tau, Interval::closed(1e-3, 100.0), "the labeller's temperature; near 0 it is the hard rule, large it is a coin")?;
        }
        Ok(())
    }

    /// Prompt length in tokens: the document and <sep>.
    pub fn prompt_len(&self) -> usize {
        self.doc_len + 1
    }

    /// Context a policy needs: prompt + the longest summary.
    pub fn context(&self) -> usize {
        self.prompt_len() + self.max_summary
    }

    pub fn vocab_size(&self) -> usize {
        SPECIALS.len() + self.vocab_words
    }

    /// Token id of word `w` (0-based); key words are the first `key_words` words.
    pub fn word_id(&self, w: usize) -> u32 {
        (SPECIALS.len() + w) as u32
    }

    pub fn is_key(&self, id: u32) -> bool {
        let w = id as usize;
        w >= SPECIALS.len() && w < SPECIALS.len() + self.key_words
    }

    /// The tokenizer: specials, then "K0".."K{k-1}" for key words, "w{k}".. for the rest.
    pub fn tokenizer(&self) -> Result<WordTokenizer> {
        let words: Vec<String> = (0..self.vocab_words).map(|w| if w < self.key_words { format!("K{w}") } else { format!("w{w}") }).collect();
        WordTokenizer::new(&words.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Prompt `index` of stream `stream` under `seed`: `doc_len` distinct words, then <sep>. A pure function
    /// of its coordinates, so evaluation prompt sets are fixed and shared by every run.
    pub fn prompt(&self, seed: u32, stream: u32, index: u32) -> Vec<u32> {
        // A partial Fisher–Yates shuffle driven by the counter-based RNG.
        let mut words: Vec<u32> = (0..self.vocab_words).map(|w| self.word_id(w)).collect();
        for i in 0..self.doc_len {
            let r = pcg4d([seed, stream, index, i as u32])[1] as usize % (self.vocab_words - i);
            words.swap(i, i + r);
        }
        let mut p = words[..self.doc_len].to_vec();
        p.push(SEP);
        p
    }

    /// The golden reward of `summary` (tokens after <sep>, possibly ending in <eos> and padding) for `prompt`.
    pub fn golden_reward(&self, prompt: &[u32], summary: &[u32]) -> f32 {
        let doc = &prompt[..self.doc_len.min(prompt.len())];
        let body: Vec<u32> = summary.iter().copied().take_while(|&t| t != EOS && t != PAD).collect();
        let has_eos = summary.iter().take_while(|&&t| t != PAD).any(|&t| t == EOS);
        let mut seen: Vec<u32> = Vec::new();
        // The document's key words the summary covers, distinct, in the order the summary first writes them.
        let mut covered: Vec<u32> = Vec::new();
        let (mut hallucinated, mut repeats) = (0, 0);
        for &t in &body {
            if seen.contains(&t) {
                repeats += 1;
                continue;
            }
            seen.push(t);
            if !doc.contains(&t) {
                hallucinated += 1;
            } else if self.is_key(t) {
                covered.push(t);
            }
        }
        let keys_in_doc = doc.iter().filter(|&&t| self.is_key(t)).count();
        let r = &self.reward;
        let mut reward = r.coverage * self.coverage(doc, &covered) - r.hallucination * hallucinated as f32 - r.repeat * repeats as f32
            - r.length * body.len().saturating_sub(keys_in_doc) as f32;
        if !has_eos {
            reward -= r.missing_eos;
        }
        reward
    }

    /// The coverage term's count for the document key words a summary covers (`covered`: distinct, in the order
    /// the summary writes them), by [`TaskKind`].
    pub fn coverage(&self, doc: &[u32], covered: &[u32]) -> f32 {
        match self.kind {
            TaskKind::Additive => covered.len() as f32,
            TaskKind::Ordered => {
                // The longest strictly rising chain of document positions (O(k²); k ≤ doc_len).
                let pos: Vec<usize> = covered.iter().map(|t| doc.iter().position(|d| d == t).expect("a covered word is in the document")).collect();
                let mut best = vec![1usize; pos.len()];
                for i in 0..pos.len() {
                    for j in 0..i {
                        if pos[j] < pos[i] {
                            best[i] = best[i].max(best[j] + 1);
                        }
                    }
                }
                best.into_iter().max().unwrap_or(0) as f32
            }
            TaskKind::Paired => covered
                .iter()
                .map(|&t| match self.partner(t) {
                    Some(p) if doc.contains(&p) => covered.contains(&p) as u32 as f32,
                    _ => 1.0,
                })
                .sum(),
            TaskKind::Counted => {
                let asked = self.asked(doc) as f32;
                let c = covered.len() as f32;
                c.min(asked) - (c - asked).max(0.0)
            }
        }
    }

    /// How many key words a summary of `doc` should cover under [`TaskKind::Counted`]: all but one of the document's
    /// key words (all of them when it has at most one).
    pub fn asked(&self, doc: &[u32]) -> usize {
        let k = doc.iter().filter(|&&t| self.is_key(t)).count();
        if k <= 1 { k } else { k - 1 }
    }

    /// The best summary of `prompt` by construction, for every kind: the document's key words in the document's
    /// order (so every chain rises and every pair is whole), as many as fit (under [`TaskKind::Counted`], as many as
    /// it asks for), then <eos>. Its win rate against π_sft's samples is the headroom a task leaves above π_sft
    /// (issue 29's precondition).
    pub fn oracle(&self, prompt: &[u32]) -> Vec<u32> {
        let doc = &prompt[..self.doc_len.min(prompt.len())];
        let most = match self.kind {
            TaskKind::Counted => self.asked(doc),
            _ => usize::MAX,
        };
        let mut out: Vec<u32> = doc.iter().copied().filter(|&t| self.is_key(t)).take(most.min(self.max_summary - 1)).collect();
        out.push(EOS);
        out
    }

    /// A key word's partner under [`TaskKind::Paired`]: key words 2i and 2i + 1 (none for the last of an odd count).
    pub fn partner(&self, id: u32) -> Option<u32> {
        if !self.is_key(id) {
            return None;
        }
        let w = id as usize - SPECIALS.len();
        let p = w ^ 1;
        (p < self.key_words).then(|| self.word_id(p))
    }

    /// The golden label for a pair: true when y1 ≻ y2. `coin` is a uniform number in [0, 1) for ties/noise.
    pub fn golden_label(&self, prompt: &[u32], y1: &[u32], y2: &[u32], coin: f32) -> bool {
        let d = self.golden_reward(prompt, y1) - self.golden_reward(prompt, y2);
        match self.labels {
            LabelNoise::Hard if d == 0.0 => coin < 0.5,
            LabelNoise::Hard => d > 0.0,
            LabelNoise::Bernoulli { tau } => coin < 1.0 / (1.0 + (-d / tau).exp()),
        }
    }

    /// A summary from the noisy generator (SFT data), for `prompt`, keyed by (seed, stream, index).
    /// Tokens: the summary's words and <eos> (unless it runs out), at most `max_summary`.
    pub fn generate(&self, prompt: &[u32], seed: u32, stream: u32, index: u32) -> Vec<u32> {
        let g = &self.generator;
        let doc = &prompt[..self.doc_len];
        let mut draw = 0u32;
        let mut u = || {
            draw += 1;
            uniform(seed, stream, index, draw)
        };
        let mut words: Vec<u32> = doc.iter().copied().filter(|&t| self.is_key(t) && u() < g.key_recall).collect();
        let others: Vec<u32> = doc.iter().copied().filter(|&t| !self.is_key(t)).collect();
        if !others.is_empty() {
            let p = (g.extra_words / others.len() as f32).min(1.0);
            words.extend(others.iter().copied().filter(|_| u() < p));
        }
        // Shuffle, then corrupt slots with hallucinations and repeats.
        for i in (1..words.len()).rev() {
            let j = (u() * (i + 1) as f32) as usize % (i + 1);
            words.swap(i, j);
        }
        let mut out: Vec<u32> = Vec::new();
        for w in words {
            if u() < g.hallucination_rate {
                let outside: Vec<u32> = (0..self.vocab_words).map(|k| self.word_id(k)).filter(|t| !doc.contains(t)).collect();
                out.push(outside[(u() * outside.len() as f32) as usize % outside.len()]);
            }
            out.push(w);
            if u() < g.repeat_rate {
                out.push(out[(u() * out.len() as f32) as usize % out.len()]);
            }
        }
        let missing_eos = u() < g.missing_eos_rate;
        out.truncate(self.max_summary - 1);
        if missing_eos {
            while out.len() < self.max_summary {
                out.push(doc[(u() * doc.len() as f32) as usize % doc.len()]);
            }
        } else {
            out.push(EOS);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskConfig {
        TaskConfig::default()
    }

    #[test]
    fn prompts_are_distinct_words_then_sep_and_fixed_by_their_key() {
        let t = task();
        let p = t.prompt(0, 1, 2);
        assert_eq!(p.len(), t.prompt_len());
        assert_eq!(*p.last().unwrap(), SEP);
        let mut doc = p[..t.doc_len].to_vec();
        doc.sort();
        doc.dedup();
        assert_eq!(doc.len(), t.doc_len);
        assert!(p[..t.doc_len].iter().all(|&w| w >= 4 && (w as usize) < t.vocab_size()));
        assert_eq!(p, t.prompt(0, 1, 2));
        assert_ne!(p, t.prompt(0, 1, 3));
    }

    #[test]
    fn golden_reward_counts_each_term() {
        let t = task();
        let (k0, k1, w30, w31) = (t.word_id(0), t.word_id(1), t.word_id(30), t.word_id(31));
        let prompt = vec![k0, k1, w30, t.word_id(20), t.word_id(21), t.word_id(22), t.word_id(23), t.word_id(24), SEP];
        assert_eq!(t.golden_reward(&prompt, &[k0, k1, EOS]), 2.0);
        assert_eq!(t.golden_reward(&prompt, &[k0, EOS, PAD]), 1.0);
        assert_eq!(t.golden_reward(&prompt, &[k0, k0, EOS]), 1.0 - 1.0 - 0.5 * 0.0); // repeat; length 2 = keys in doc
        assert_eq!(t.golden_reward(&prompt, &[k0, w31, EOS]), 1.0 - 1.0); // hallucination
        assert_eq!(t.golden_reward(&prompt, &[k0, k1, w30, EOS]), 2.0 - 0.5); // one word too many
        assert_eq!(t.golden_reward(&prompt, &[k0, k1]), 2.0 - 0.5); // no <eos>
    }

    /// The task kinds on hand-computed summaries (docs/method.md §2 has the same examples): a document with key
    /// words K0, K1, K2, K5 at positions 0, 2, 3, 5.
    #[test]
    fn each_task_kind_counts_coverage_as_documented() {
        let additive = task();
        let k = |w: usize| additive.word_id(w);
        let prompt = vec![k(0), k(20), k(1), k(2), k(21), k(5), k(22), k(23), SEP];
        let ordered = TaskConfig { kind: TaskKind::Ordered, ..task() };
        let paired = TaskConfig { kind: TaskKind::Paired, ..task() };
        // In the document's order: all three count under every kind but paired (K0 and K1 are partners, both
        // covered: 2; K2's partner K3 is not in the document: 1).
        let in_order = [k(0), k(1), k(2), EOS];
        assert_eq!(additive.golden_reward(&prompt, &in_order), 3.0);
        assert_eq!(ordered.golden_reward(&prompt, &in_order), 3.0);
        assert_eq!(paired.golden_reward(&prompt, &in_order), 3.0);
        // Reversed: positions 3, 2, 0 have no rising pair, so ordered counts 1.
        let reversed = [k(2), k(1), k(0), EOS];
        assert_eq!(additive.golden_reward(&prompt, &reversed), 3.0);
        assert_eq!(ordered.golden_reward(&prompt, &reversed), 1.0);
        // K2, K0, K1: positions 3, 0, 2, the longest rising chain 0, 2: 2.
        assert_eq!(ordered.golden_reward(&prompt, &[k(2), k(0), k(1), EOS]), 2.0);
        // K1 without its partner K0 (which is in the document): 0 under paired; K5 (partner K4 absent): 1.
        assert_eq!(paired.golden_reward(&prompt, &[k(1), k(5), EOS]), 1.0);
        assert_eq!(additive.golden_reward(&prompt, &[k(1), k(5), EOS]), 2.0);
        // The other terms are the same for every kind: a repeat and a hallucinated word, then no <eos>.
        let faulty = [k(0), k(0), k(30), k(1)];
        for (t, coverage) in [(&additive, 2.0), (&ordered, 2.0), (&paired, 2.0)] {
            assert_eq!(t.golden_reward(&prompt, &faulty), coverage - 1.0 - 1.0 - 0.5, "{:?}", t.kind);
        }
        assert_eq!((additive.partner(k(0)), additive.partner(k(5)), additive.partner(k(20))), (Some(k(1)), Some(k(4)), None));
        // Counted: the document has 4 key words, so it asks for 3. K0 K1 K2: 3; K0 K1: 2; all four: 3 − 1 = 2,
        // with no length charge (4 words, 4 key words in the document).
        let counted = TaskConfig { kind: TaskKind::Counted, ..task() };
        assert_eq!(counted.asked(&prompt[..8]), 3);
        assert_eq!(counted.golden_reward(&prompt, &in_order), 3.0);
        assert_eq!(counted.golden_reward(&prompt, &[k(0), k(1), EOS]), 2.0);
        assert_eq!(counted.golden_reward(&prompt, &[k(0), k(1), k(2), k(5), EOS]), 2.0);
        assert_eq!(counted.golden_reward(&prompt, &reversed), 3.0, "order does not count");
        assert_eq!(counted.golden_reward(&prompt, &faulty), 2.0 - 1.0 - 1.0 - 0.5);
        // One key word in the document: it is asked for; none: nothing is.
        let one = vec![k(0), k(20), k(21), k(22), k(23), k(24), k(25), k(26), SEP];
        assert_eq!((counted.asked(&one[..8]), counted.golden_reward(&one, &[k(0), EOS])), (1, 1.0));
        let none = vec![k(20), k(21), k(22), k(23), k(24), k(25), k(26), k(27), SEP];
        assert_eq!((counted.asked(&none[..8]), counted.golden_reward(&none, &[EOS])), (0, 0.0));
        let odd = TaskConfig { key_words: 15, ..task() };
        assert_eq!(odd.partner(odd.word_id(14)), None, "the last key word of an odd count has no partner");
    }

    /// The second task's reward (issue 29, `experiments::presets::counted_task`; docs/method.md §2's example): the
    /// count and a missing <eos> alone, on the same document as above (K0, K1, K2, K5; asked for 3).
    #[test]
    fn the_second_tasks_reward_is_the_count_and_eos_alone() {
        let t = crate::experiments::presets::counted_task();
        let k = |w: usize| t.word_id(w);
        let prompt = vec![k(0), k(20), k(1), k(2), k(21), k(5), k(22), k(23), SEP];
        // w30 is not in the document, K0 is repeated, the summary is longer than the document's 4 key words:
        // none of it costs anything.
        assert_eq!(t.golden_reward(&prompt, &[k(0), k(1), k(20), k(30), EOS]), 2.0);
        assert_eq!(t.golden_reward(&prompt, &[k(0), k(0), k(1), k(30), k(31), k(20), EOS]), 2.0);
        // One key word too many and no <eos>: 3 − 1, less 0.5.
        assert_eq!(t.golden_reward(&prompt, &[k(0), k(1), k(2), k(5)]), 1.5);
        assert_eq!(t.golden_reward(&prompt, &[k(2), k(1), k(0), EOS]), 3.0, "order does not count");
        // Its generator makes no faults: every word it writes is in the document, once, and it always ends.
        for i in 0..200 {
            let p = t.prompt(3, 0, i);
            let y = t.generate(&p, 3, 1, i);
            let body: Vec<u32> = y.iter().copied().take_while(|&w| w != EOS).collect();
            assert!(y.contains(&EOS) && body.iter().all(|w| p[..t.doc_len].contains(w)), "{y:?} for {p:?}");
            assert_eq!(body.iter().collect::<std::collections::BTreeSet<_>>().len(), body.len(), "a repeat in {y:?}");
        }
    }

    /// The oracle summary scores at least as high as any summary the generator writes, under every kind.
    #[test]
    fn the_oracle_summary_is_never_beaten_by_the_generator() {
        for kind in TaskKind::ALL {
            let t = TaskConfig { kind, ..task() };
            for i in 0..300 {
                let p = t.prompt(5, 0, i);
                let best = t.golden_reward(&p, &t.oracle(&p));
                let keys = p[..t.doc_len].iter().filter(|&&w| t.is_key(w)).count();
                let asked = if kind == TaskKind::Counted { t.asked(&p[..t.doc_len]) } else { keys };
                assert_eq!(best, asked as f32, "{kind:?}: the oracle covers every key word asked for, fault-free");
                assert!(t.golden_reward(&p, &t.generate(&p, 5, 1, i)) <= best, "{kind:?} prompt {i}");
            }
        }
    }

    #[test]
    fn task_kind_is_set_by_name_and_refused_by_name() {
        let set = |v: &str| crate::settings::apply_overrides(&task(), &[format!("kind={v}")]);
        assert_eq!(set("ordered").unwrap().kind, TaskKind::Ordered);
        assert_eq!(set("paired").unwrap().kind, TaskKind::Paired);
        assert_eq!(set("counted").unwrap().kind, TaskKind::Counted);
        let err = set("sorted").unwrap_err().message;
        assert!(err.contains("kind=sorted") && ["additive", "ordered", "paired", "counted"].iter().all(|k| err.contains(k)), "{err}");
        // A config written before kinds existed reads as additive.
        let mut old = serde_json::to_value(task()).unwrap();
        old.as_object_mut().unwrap().remove("kind");
        assert_eq!(serde_json::from_value::<TaskConfig>(old).unwrap(), task());
    }

    #[test]
    fn labels_follow_the_reward_or_its_noise() {
        let t = task();
        let prompt = t.prompt(0, 0, 0);
        let keys: Vec<u32> = prompt[..t.doc_len].iter().copied().filter(|&w| t.is_key(w)).collect();
        assert!(!keys.is_empty(), "prompt 0 has a key word");
        let good = vec![keys[0], EOS];
        let bad = vec![t.word_id(39), t.word_id(39), EOS];
        assert!(t.golden_label(&prompt, &good, &bad, 0.99));
        assert!(!t.golden_label(&prompt, &bad, &good, 0.01));
        let noisy = TaskConfig { labels: LabelNoise::Bernoulli { tau: 1.0 }, ..task() };
        let wins = (0..1000).filter(|&i| noisy.golden_label(&prompt, &good, &bad, uniform(1, 0, 0, i))).count();
        assert!(wins > 800 && wins < 1000, "{wins}");
    }

    #[test]
    fn the_generator_is_noisy_but_mostly_sensible() {
        let t = task();
        let (mut rewards, mut eos) = (vec![], 0);
        for i in 0..500 {
            let p = t.prompt(3, 0, i);
            let y = t.generate(&p, 3, 1, i);
            assert!(!y.is_empty() && y.len() <= t.max_summary);
            eos += y.contains(&EOS) as usize;
            rewards.push(t.golden_reward(&p, &y));
        }
        let mean = rewards.iter().sum::<f32>() / rewards.len() as f32;
        let spread = rewards.iter().fold(f32::MIN, |a, &b| a.max(b)) - rewards.iter().fold(f32::MAX, |a, &b| a.min(b));
        assert!(mean > 0.0 && spread >= 3.0, "mean {mean}, spread {spread}");
        assert!(eos > 400 && eos < 500, "{eos} of 500 end in <eos>");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let bad = TaskConfig { key_words: 50, ..task() };
        assert!(bad.validate().unwrap_err().message.contains("task.key_words = 50 is out of range 1..=40"));
        let bad = TaskConfig { labels: LabelNoise::Bernoulli { tau: 0.0 }, ..task() };
        assert!(bad.validate().unwrap_err().message.contains("task.labels.tau"));
        assert!(task().validate().is_ok());
        assert_eq!(task().tokenizer().unwrap().vocab_size(), task().vocab_size());
    }
}

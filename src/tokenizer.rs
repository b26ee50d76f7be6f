//! The word-level tokenizer of the toy task, built with the `tokenizers` crate so that it saves as a
//! standard `tokenizer.json` (loadable by Hugging Face's `PreTrainedTokenizerFast`). The vocabulary is
//! made here from a word list, in order, because the crate's trainers are not deterministic across runs.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::str::FromStr;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::Tokenizer;

/// Special tokens, always the first ids: padding, end of sequence, prompt/response separator, unknown.
pub const SPECIALS: [&str; 4] = ["<pad>", "<eos>", "<sep>", "<unk>"];

#[derive(Clone, Debug)]
pub struct WordTokenizer {
    inner: Tokenizer,
}

impl WordTokenizer {
    /// Ids 0..4 are the specials, then `words` in order. Words must be distinct and contain no whitespace.
    pub fn new(words: &[&str]) -> Result<Self> {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        for w in SPECIALS.iter().chain(words) {
            if w.is_empty() || w.chars().any(char::is_whitespace) {
                return Err(Error::new(format!("tokenizer: word '{w}' is empty or holds whitespace")));
            }
            let id = vocab.len() as u32;
            if vocab.insert(w.to_string(), id).is_some() {
                return Err(Error::new(format!("tokenizer: word '{w}' appears twice")));
            }
        }
        let model = WordLevel::builder()
            .vocab(vocab.into_iter().collect())
            .unk_token("<unk>".into())
            .build()
            .map_err(|e| Error::new(format!("tokenizer: {e}")))?;
        let mut inner = Tokenizer::new(model);
        inner.with_pre_tokenizer(Some(WhitespaceSplit));
        Ok(Self { inner })
    }

    pub fn from_json(json: &str) -> Result<Self> {
        Tokenizer::from_str(json).map(|inner| Self { inner }).map_err(|e| Error::new(format!("tokenizer.json: {e}")))
    }

    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(|e| Error::new(format!("tokenizer.json: {e}")))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.inner.token_to_id(word)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::new(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Words joined by spaces; special tokens are kept so a reader sees <eos> and <pad>.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::new(format!("tokenizer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_json() {
        let t = WordTokenizer::new(&["apple", "pear", "fig"]).unwrap();
        assert_eq!(t.vocab_size(), 7);
        let ids = t.encode("pear fig <eos> plum").unwrap();
        assert_eq!(ids, vec![5, 6, 1, 3]);
        let t2 = WordTokenizer::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(t2.encode("pear fig <eos> plum").unwrap(), ids);
        assert_eq!(t2.decode(&[4, 5]).unwrap(), "apple pear");
    }

    #[test]
    fn rejects_duplicates_and_blank_words() {
        assert!(WordTokenizer::new(&["a", "a"]).unwrap_err().message.contains("twice"));
        assert!(WordTokenizer::new(&["a b"]).unwrap_err().message.contains("whitespace"));
    }
}

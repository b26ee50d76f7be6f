//! Model sizes as data. Field names follow Hugging Face's GPT2Config, so config.json round-trips.

use crate::bail;
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptConfig {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    /// Context length (learned positions).
    pub n_positions: usize,
    pub vocab_size: usize,
}

impl GptConfig {
    /// Rejects sizes the engine cannot run, naming the field and the allowed range.
    pub fn validate(&self) -> Result<()> {
        let ranges = [
            ("n_layer (layers)", self.n_layer, 1, 48),
            ("n_embd (d_model)", self.n_embd, 1, 4096),
            ("n_head (heads)", self.n_head, 1, 64),
            ("n_positions (context)", self.n_positions, 1, 4096),
            ("vocab_size (vocab)", self.vocab_size, 1, 1 << 20),
        ];
        for (name, v, lo, hi) in ranges {
            if v < lo || v > hi {
                bail!("{name} = {v} is out of range {lo}..={hi}");
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            bail!("n_embd (d_model) = {} must be divisible by n_head (heads) = {}", self.n_embd, self.n_head);
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }
}

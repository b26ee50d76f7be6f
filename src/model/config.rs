//! Model sizes as data. Field names follow Hugging Face's GPT2Config, so config.json round-trips.

use crate::bail;
use crate::error::Result;
use crate::task::TaskConfig;
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

/// The policy's shape (its context and vocabulary come from the task).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSize {
    pub layers: usize,
    pub d_model: usize,
    pub heads: usize,
}

impl ModelSize {
    /// The GPT-2 of this shape for `task` (its context and vocabulary).
    pub fn model_config(self, task: &TaskConfig) -> GptConfig {
        GptConfig { n_layer: self.layers, n_embd: self.d_model, n_head: self.heads, n_positions: task.context(), vocab_size: task.vocab_size() }
    }

    /// Parameters of the policy (embeddings included; the LM head is tied).
    pub fn parameters(self, task: &TaskConfig) -> usize {
        super::params::param_infos(&self.model_config(task), super::Head::Lm).iter().map(|p| p.shape.iter().product::<usize>()).sum()
    }
}

/// `LxDhH`: L layers of width D with H heads (e.g. `2x64h4`, the fig1 preset's policy), as the scaling ladder and
/// the runs of its sizes are written in results.json, metrics.csv, model names and the page's links.
impl std::fmt::Display for ModelSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}h{}", self.layers, self.d_model, self.heads)
    }
}

impl std::str::FromStr for ModelSize {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s.trim().split_once('x').and_then(|(l, rest)| {
            let (d, h) = rest.split_once('h')?;
            Some(ModelSize { layers: l.parse().ok()?, d_model: d.parse().ok()?, heads: h.parse().ok()? })
        });
        match parsed {
            Some(size) => Ok(size),
            None => bail!("'{s}' is not a policy size LxDhH (L layers of width D with H heads, e.g. 2x64h4)"),
        }
    }
}

/// Serde for sizes written as text ([`ModelSize`]'s `LxDhH`): a list (the config's ladder) and an optional one (a row's).
pub mod size_text {
    use super::ModelSize;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sizes: &[ModelSize], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(sizes.iter().map(|m| m.to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModelSize>, D::Error> {
        Vec::<String>::deserialize(d)?.iter().map(|t| t.parse().map_err(|e: crate::Error| D::Error::custom(e.message))).collect()
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(size: &Option<ModelSize>, s: S) -> Result<S::Ok, S::Error> {
            match size {
                Some(m) => s.serialize_str(&m.to_string()),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ModelSize>, D::Error> {
            Option::<String>::deserialize(d)?.map(|t| t.parse().map_err(|e: crate::Error| D::Error::custom(e.message))).transpose()
        }
    }
}

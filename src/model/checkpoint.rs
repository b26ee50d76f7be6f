//! Checkpoints in Hugging Face's format: `model.safetensors` (GPT-2 names, Conv1D layout), `config.json`
//! (a GPT2Config) and `tokenizer.json`, so `GPT2LMHeadModel.from_pretrained(dir)` (or
//! `GPT2ForSequenceClassification` for a preference model) loads what we write, and we load what it writes.

use super::{param_infos, GptConfig, Head};
use crate::bail;
use crate::error::{Error, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde_json::json;
use std::collections::HashMap;

/// Token ids the config records (GPT2Config's bos/eos/pad).
#[derive(Clone, Copy, Debug, Default)]
pub struct SpecialIds {
    pub pad: u32,
    pub eos: u32,
}

/// `model.safetensors` bytes for the given parameter values (in `param_infos` order).
pub fn safetensors_bytes(config: &GptConfig, head: Head, values: &[Vec<f32>]) -> Result<Vec<u8>> {
    let infos = param_infos(config, head);
    if infos.len() != values.len() {
        bail!("checkpoint: {} tensors given, the model has {}", values.len(), infos.len());
    }
    let bytes: Vec<&[u8]> = values.iter().map(|v| bytemuck::cast_slice(v.as_slice())).collect();
    let mut views = Vec::with_capacity(infos.len());
    for (info, b) in infos.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, info.shape.clone(), b).map_err(|e| Error(format!("checkpoint: {}: {e}", info.name)))?;
        views.push((info.name.clone(), view));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error(format!("checkpoint: {e}")))
}

/// `config.json`: a GPT2Config that transformers reads unchanged.
pub fn config_json(config: &GptConfig, head: Head, special: SpecialIds) -> String {
    let mut v = json!({
        "model_type": "gpt2",
        "architectures": [if head == Head::Lm { "GPT2LMHeadModel" } else { "GPT2ForSequenceClassification" }],
        "vocab_size": config.vocab_size,
        "n_positions": config.n_positions,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": null,
        "activation_function": "gelu_new",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": crate::engine::cpu::LAYERNORM_EPS,
        "initializer_range": 0.02,
        "scale_attn_weights": true,
        "tie_word_embeddings": true,
        "bos_token_id": special.eos,
        "eos_token_id": special.eos,
        "pad_token_id": special.pad,
    });
    if head == Head::Score {
        v["num_labels"] = json!(1);
        v["id2label"] = json!({"0": "LABEL_0"});
        v["label2id"] = json!({"LABEL_0": 0});
    }
    serde_json::to_string_pretty(&v).expect("json")
}

/// Reads the sizes and head kind back from a config.json.
pub fn parse_config(text: &str) -> Result<(GptConfig, Head)> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error(format!("config.json: {e}")))?;
    let field = |k: &str| -> Result<usize> {
        v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize).ok_or_else(|| Error(format!("config.json: missing or non-integer field '{k}'")))
    };
    let config = GptConfig {
        n_layer: field("n_layer")?,
        n_embd: field("n_embd")?,
        n_head: field("n_head")?,
        n_positions: field("n_positions")?,
        vocab_size: field("vocab_size")?,
    };
    config.validate().map_err(|e| Error(format!("config.json: {e}")))?;
    let arch = v["architectures"][0].as_str().unwrap_or("GPT2LMHeadModel");
    let head = if arch.contains("SequenceClassification") { Head::Score } else { Head::Lm };
    Ok((config, head))
}

/// Little-endian f32 values of a tensor, whatever its alignment in the file.
fn f32_values(view: &TensorView<'_>) -> Vec<f32> {
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Parameter values from `model.safetensors` bytes, checked against the config: a missing tensor, a
/// wrong shape or a non-f32 dtype is an error naming the tensor.
pub fn values_from_safetensors(bytes: &[u8], config: &GptConfig, head: Head) -> Result<Vec<Vec<f32>>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error(format!("model.safetensors: {e}")))?;
    param_infos(config, head)
        .iter()
        .map(|info| {
            let view = st.tensor(&info.name).map_err(|_| Error(format!("model.safetensors: tensor '{}' is missing", info.name)))?;
            if view.dtype() != Dtype::F32 {
                bail!("model.safetensors: tensor '{}' is {:?}, expected F32", info.name, view.dtype());
            }
            if view.shape() != info.shape.as_slice() {
                bail!("model.safetensors: tensor '{}' has shape {:?}, the config needs {:?}", info.name, view.shape(), info.shape);
            }
            Ok(f32_values(&view))
        })
        .collect()
}

/// Named f32 and i32 tensors (as f32) plus the metadata of any safetensors file (fixtures).
pub fn read_all(bytes: &[u8]) -> Result<(HashMap<String, (Vec<usize>, Vec<f32>)>, HashMap<String, String>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error(format!("safetensors: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error(format!("safetensors: {e}")))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let values = match view.dtype() {
            Dtype::F32 => f32_values(&view),
            Dtype::I32 => view.data().chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect(),
            other => bail!("safetensors: tensor '{name}' has unsupported dtype {other:?}"),
        };
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

#[cfg(not(target_arch = "wasm32"))]
mod files {
    use super::*;
    use std::path::Path;

    /// Writes a file whole or not at all: to a temporary name beside it, then renamed.
    pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, bytes).map_err(|e| Error(format!("{}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| Error(format!("{}: {e}", path.display())))
    }

    /// Writes model.safetensors, config.json and (if given) tokenizer.json into `dir`.
    pub fn save(dir: &Path, config: &GptConfig, head: Head, values: &[Vec<f32>], special: SpecialIds, tokenizer_json: Option<&str>) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error(format!("{}: {e}", dir.display())))?;
        write_atomic(&dir.join("model.safetensors"), &safetensors_bytes(config, head, values)?)?;
        write_atomic(&dir.join("config.json"), config_json(config, head, special).as_bytes())?;
        if let Some(t) = tokenizer_json {
            write_atomic(&dir.join("tokenizer.json"), t.as_bytes())?;
        }
        Ok(())
    }

    /// Reads a checkpoint directory: (config, head, values).
    pub fn load(dir: &Path) -> Result<(GptConfig, Head, Vec<Vec<f32>>)> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error(format!("{}: {e}", dir.join(name).display())));
        let config_text = String::from_utf8(read("config.json")?).map_err(|_| Error("config.json is not UTF-8".into()))?;
        let (config, head) = parse_config(&config_text)?;
        let values = values_from_safetensors(&read("model.safetensors")?, &config, head)?;
        Ok((config, head, values))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use files::{load, save, write_atomic};

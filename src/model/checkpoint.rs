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
        let view = TensorView::new(Dtype::F32, info.shape.clone(), b).map_err(|e| Error::new(format!("checkpoint: {}: {e}", info.name)))?;
        views.push((info.name.clone(), view));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::new(format!("checkpoint: {e}")))
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
        "layer_norm_epsilon": crate::engine::kernels::layernorm::LAYERNORM_EPS,
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

/// Reads the sizes and head kind back from a config.json. Fields that would change the computation and
/// that this engine does not implement (another activation, LayerNorm ε, MLP width, an untied LM head, …)
/// are refused by name, so a checkpoint is never run as a different model than it describes.
pub fn parse_config(text: &str) -> Result<(GptConfig, Head)> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::new(format!("config.json: {e}")))?;
    let field = |k: &str| -> Result<usize> {
        v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize).ok_or_else(|| Error::new(format!("config.json: missing or non-integer field '{k}'")))
    };
    let config = GptConfig {
        n_layer: field("n_layer")?,
        n_embd: field("n_embd")?,
        n_head: field("n_head")?,
        n_positions: field("n_positions")?,
        vocab_size: field("vocab_size")?,
    };
    config.validate().map_err(|e| Error::new(format!("config.json: {e}")))?;
    check_supported(&v, &config)?;
    let arch = v["architectures"][0].as_str().unwrap_or("GPT2LMHeadModel");
    let head = match arch {
        "GPT2LMHeadModel" | "GPT2Model" => Head::Lm,
        "GPT2ForSequenceClassification" => Head::Score,
        other => bail!("config.json: architectures[0] = '{other}' is not supported (GPT2LMHeadModel or GPT2ForSequenceClassification)"),
    };
    if head == Head::Score {
        if let Some(n) = v.get("num_labels").and_then(|x| x.as_u64()).filter(|&n| n != 1) {
            bail!("config.json: num_labels = {n} is not supported (a preference model has one score, num_labels = 1)");
        }
    }
    Ok((config, head))
}

/// Refuses config.json values this engine would silently compute differently; absent fields take
/// GPT2Config's defaults, which are the engine's.
fn check_supported(v: &serde_json::Value, config: &GptConfig) -> Result<()> {
    let unsupported = |k: &str, why: &str| Error::new(format!("config.json: {k} = {} is not supported: {why}", v[k]));
    if let Some(t) = v.get("model_type") {
        if t != "gpt2" {
            return Err(unsupported("model_type", "only GPT-2 (\"gpt2\") models are implemented"));
        }
    }
    if let Some(a) = v.get("activation_function") {
        if a != "gelu_new" && a != "gelu_pytorch_tanh" {
            return Err(unsupported("activation_function", "the engine's GELU is the tanh approximation (\"gelu_new\")"));
        }
    }
    if let Some(eps) = v.get("layer_norm_epsilon") {
        let want = crate::engine::kernels::layernorm::LAYERNORM_EPS as f64;
        if !eps.as_f64().is_some_and(|e| (e - want).abs() <= want * 1e-3) {
            return Err(unsupported("layer_norm_epsilon", &format!("the engine's LayerNorm uses ε = {want:e}")));
        }
    }
    if let Some(n) = v.get("n_inner") {
        if !n.is_null() && n.as_u64() != Some(4 * config.n_embd as u64) {
            return Err(unsupported("n_inner", &format!("the MLP is 4·n_embd = {} wide (null)", 4 * config.n_embd)));
        }
    }
    for (k, want) in [("tie_word_embeddings", true), ("scale_attn_weights", true), ("scale_attn_by_inverse_layer_idx", false), ("add_cross_attention", false)] {
        if let Some(b) = v.get(k) {
            if b.as_bool() != Some(want) {
                return Err(unsupported(k, &format!("the engine implements {k} = {want} only")));
            }
        }
    }
    Ok(())
}

/// Little-endian f32 values of a tensor, whatever its alignment in the file.
fn f32_values(view: &TensorView<'_>) -> Vec<f32> {
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Parameter values from `model.safetensors` bytes, checked against the config: a missing tensor, a
/// wrong shape, a non-f32 dtype, a non-finite value or a tensor the config does not use (a layer beyond
/// `n_layer`, an untied `lm_head.weight`) is an error naming the tensor.
pub fn values_from_safetensors(bytes: &[u8], config: &GptConfig, head: Head) -> Result<Vec<Vec<f32>>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::new(format!("model.safetensors: {e}")))?;
    let infos = param_infos(config, head);
    let values = infos
        .iter()
        .map(|info| {
            let view = st.tensor(&info.name).map_err(|_| Error::new(format!("model.safetensors: tensor '{}' is missing", info.name)))?;
            if view.dtype() != Dtype::F32 {
                bail!("model.safetensors: tensor '{}' is {:?}, expected F32", info.name, view.dtype());
            }
            if view.shape() != info.shape.as_slice() {
                bail!("model.safetensors: tensor '{}' has shape {:?}, the config needs {:?}", info.name, view.shape(), info.shape);
            }
            let values = f32_values(&view);
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                bail!("model.safetensors: tensor '{}' holds a non-finite value ({} at flat index {i}); the model diverged or the file is damaged", info.name, values[i]);
            }
            Ok(values)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut extra: Vec<String> = st.names().into_iter().filter(|n| !infos.iter().any(|i| i.name == *n)).map(str::to_string).collect();
    extra.sort();
    for name in extra {
        // Older transformers versions store each layer's causal mask as a buffer; it carries no parameters,
        // but one of a layer the config does not have means the file is of a deeper model.
        let layer = name.strip_prefix("transformer.h.").and_then(|r| r.split_once('.')).filter(|(_, rest)| *rest == "attn.bias" || *rest == "attn.masked_bias");
        if layer.and_then(|(l, _)| l.parse::<usize>().ok()).is_some_and(|l| l < config.n_layer) {
            continue;
        }
        // A tied LM head may be stored as a copy of the embedding; only an untied one changes the model.
        if name == "lm_head.weight" && head == Head::Lm {
            let view = st.tensor(&name).map_err(|e| Error::new(format!("model.safetensors: {name}: {e}")))?;
            if view.dtype() == Dtype::F32 && view.shape() == infos[0].shape.as_slice() && f32_values(&view) == values[0] {
                continue;
            }
            bail!("model.safetensors: tensor 'lm_head.weight' differs from 'transformer.wte.weight': an untied LM head is not supported");
        }
        bail!("model.safetensors: tensor '{name}' is not used by this config ({} layers, {} head); refusing to drop it silently", config.n_layer, if head == Head::Lm { "LM" } else { "score" });
    }
    Ok(values)
}

/// Named f32 and i32 tensors (as f32) plus the metadata of any safetensors file (fixtures).
pub fn read_all(bytes: &[u8]) -> Result<(HashMap<String, (Vec<usize>, Vec<f32>)>, HashMap<String, String>)> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| Error::new(format!("safetensors: {e}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::new(format!("safetensors: {e}")))?;
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

    /// Set by the fault-injection test hook (`ALIGNMENT_GAP_FAULT_READONLY_AFTER_RUNS`): every later write
    /// through this module fails as on a read-only file system.
    static READ_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Makes every later write through this module fail (tests of what a failed write keeps).
    pub fn simulate_read_only() {
        READ_ONLY.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_writable(path: &Path) -> Result<()> {
        if READ_ONLY.load(std::sync::atomic::Ordering::SeqCst) {
            bail!("{}: Read-only file system (os error 30) [injected by ALIGNMENT_GAP_FAULT_READONLY_AFTER_RUNS]", path.display());
        }
        Ok(())
    }

    /// A temporary name beside `path` that no other writer (thread or process) uses at the same time.
    pub fn unique_temp(path: &Path) -> std::path::PathBuf {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        path.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()))
    }

    /// Writes a file whole or not at all: to a unique temporary name beside it, then renamed.
    pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
        check_writable(path)?;
        let tmp = unique_temp(path);
        if let Err(e) = std::fs::write(&tmp, bytes) {
            let _ = std::fs::remove_file(&tmp);
            bail!("{}: {e}", path.display());
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::new(format!("{}: {e}", path.display()))
        })
    }

    /// Creates a directory and its parents (refused like a write under the fault-injection hook).
    pub fn create_dir_all(dir: &Path) -> Result<()> {
        check_writable(dir)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))
    }

    /// Writes model.safetensors, config.json and (if given) tokenizer.json into `dir`.
    pub fn save(dir: &Path, config: &GptConfig, head: Head, values: &[Vec<f32>], special: SpecialIds, tokenizer_json: Option<&str>) -> Result<()> {
        create_dir_all(dir)?;
        write_atomic(&dir.join("model.safetensors"), &safetensors_bytes(config, head, values)?)?;
        write_atomic(&dir.join("config.json"), config_json(config, head, special).as_bytes())?;
        if let Some(t) = tokenizer_json {
            write_atomic(&dir.join("tokenizer.json"), t.as_bytes())?;
        }
        Ok(())
    }

    /// Reads a checkpoint directory: (config, head, values).
    pub fn load(dir: &Path) -> Result<(GptConfig, Head, Vec<Vec<f32>>)> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::new(format!("{}: {e}", dir.join(name).display())));
        let config_text = String::from_utf8(read("config.json")?).map_err(|_| Error::new("config.json is not UTF-8"))?;
        let (config, head) = parse_config(&config_text)?;
        let values = values_from_safetensors(&read("model.safetensors")?, &config, head)?;
        Ok((config, head, values))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use files::{create_dir_all, load, save, simulate_read_only, unique_temp, write_atomic};

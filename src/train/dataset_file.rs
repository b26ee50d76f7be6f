//! Preference datasets as files: the pairs a run trained on (an online run's stream D_online in training order,
//! a pair dataset of Figs 5 and 12), for a user to download, read elsewhere, change and load back.
//!
//! The format is safetensors, readable with `safetensors.numpy.load_file` or `safetensors.torch.load_file`:
//! - `prompts`: u32 [n, doc_len + 1], the document's word ids, then <sep>;
//! - `y1`, `y2`: u32 [n, max_summary], each response's ids padded with <pad> (id 0);
//! - `y1_length`, `y2_length`: u32 [n], each response's length before the padding;
//! - `first_wins`: u8 [n], 1 when y1 is the preferred response.
//!
//! Its metadata has one key, `alignment_gap`, a JSON object (one key, so that the file's bytes, and so its
//! SHA-256, do not depend on the order a map is written in) with `format` ([`FORMAT`]), `task` (the task's
//! config: vocabulary sizes, lengths, golden reward), `tokenizer` (a Hugging Face tokenizer.json, as text, that
//! decodes the ids) and `source` (what the pairs are, e.g. "D_online: the stream of online IPO (seed 0, β 0.1,
//! lr 0.0005): 200 steps of 64 pairs …, in training order").
//! A file is read back only for the same task and tokenizer: the ids would mean other words otherwise.

use super::pm::Pairs;
use crate::bail;
use crate::error::{Error, Result};
use crate::task::{TaskConfig, PAD};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::HashMap;

/// The `format` of a dataset file.
pub const FORMAT: &str = "alignment-gap preference pairs v1";

/// The file's one metadata key.
const META_KEY: &str = "alignment_gap";

/// The file's bytes for `pairs` of `task`, described by `source`.
pub fn to_bytes(pairs: &Pairs, task: &TaskConfig, source: &str) -> Result<Vec<u8>> {
    let n = pairs.len();
    let (p_len, y_len) = (task.prompt_len(), task.max_summary);
    let mut prompts = Vec::with_capacity(n * p_len);
    for (i, p) in pairs.prompts.iter().enumerate() {
        if p.len() != p_len {
            bail!("dataset: pair {i}'s prompt has {} tokens, the task's prompts {p_len}", p.len());
        }
        prompts.extend_from_slice(p);
    }
    let side = |ys: &[Vec<u32>], name: &str| -> Result<(Vec<u32>, Vec<u32>)> {
        let (mut ids, mut lengths) = (Vec::with_capacity(n * y_len), Vec::with_capacity(n));
        for (i, y) in ys.iter().enumerate() {
            if y.len() > y_len {
                bail!("dataset: pair {i}'s {name} has {} tokens, more than max_summary = {y_len}", y.len());
            }
            ids.extend_from_slice(y);
            ids.extend(std::iter::repeat_n(PAD, y_len - y.len()));
            lengths.push(y.len() as u32);
        }
        Ok((ids, lengths))
    };
    let (y1, y1_length) = side(&pairs.y1, "y1")?;
    let (y2, y2_length) = side(&pairs.y2, "y2")?;
    let first_wins: Vec<u8> = pairs.first_wins.iter().map(|&w| w as u8).collect();
    let u32s = [("prompts", &prompts, vec![n, p_len]), ("y1", &y1, vec![n, y_len]), ("y2", &y2, vec![n, y_len]), ("y1_length", &y1_length, vec![n]), ("y2_length", &y2_length, vec![n])];
    let mut views = vec![];
    for (name, data, shape) in u32s {
        views.push((name.to_string(), TensorView::new(Dtype::U32, shape, bytemuck::cast_slice(data)).map_err(|e| Error::new(format!("dataset: {name}: {e}")))?));
    }
    views.push(("first_wins".to_string(), TensorView::new(Dtype::U8, vec![n], &first_wins).map_err(|e| Error::new(format!("dataset: first_wins: {e}")))?));
    let about = serde_json::json!({ "format": FORMAT, "task": task, "tokenizer": task.tokenizer()?.to_json()?, "source": source });
    let meta = HashMap::from([(META_KEY.to_string(), about.to_string())]);
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::new(format!("dataset: {e}")))
}

/// Reads a dataset file written by [`to_bytes`] for `task`: the pairs and the file's `source`. Refuses, by name,
/// a file of another format, task or tokenizer, a missing or misshapen tensor, and ids outside the vocabulary.
pub fn from_bytes(bytes: &[u8], task: &TaskConfig) -> Result<(Pairs, String)> {
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| Error::new(format!("dataset: not a safetensors file ({e})")))?;
    let not_ours = || Error::new(format!("dataset: the file's metadata has no '{META_KEY}' object (not a file of format \"{FORMAT}\")"));
    let about: serde_json::Value = header.metadata().as_ref().and_then(|m| m.get(META_KEY)).and_then(|t| serde_json::from_str(t).ok()).ok_or_else(not_ours)?;
    let get = |k: &str| about.get(k).and_then(|v| v.as_str()).ok_or_else(|| Error::new(format!("dataset: its metadata has no text field '{k}'")));
    if get("format")? != FORMAT {
        bail!("dataset: format \"{}\" is not \"{FORMAT}\"", get("format")?);
    }
    let theirs: TaskConfig = about.get("task").and_then(|t| serde_json::from_value(t.clone()).ok()).ok_or_else(|| Error::new("dataset: its metadata has no readable 'task'"))?;
    if &theirs != task {
        let keys = crate::settings::differing_keys(&theirs, task)?;
        bail!("dataset: made for another task (task.{} differ{}); its ids would mean other words or its labels another judge", keys.join(", task."), if keys.len() == 1 { "s" } else { "" });
    }
    if get("tokenizer")? != task.tokenizer()?.to_json()? {
        bail!("dataset: made with another tokenizer than this task's");
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::new(format!("dataset: {e}")))?;
    let first_wins = st.tensor("first_wins").map_err(|e| Error::new(format!("dataset: first_wins: {e}")))?;
    let n = first_wins.shape().first().copied().unwrap_or(0);
    if first_wins.dtype() != Dtype::U8 || first_wins.shape() != [n] {
        bail!("dataset: first_wins must be u8 [n], is {:?} {:?}", first_wins.dtype(), first_wins.shape());
    }
    let u32s = |name: &str, shape: &[usize]| -> Result<Vec<u32>> {
        let t = st.tensor(name).map_err(|e| Error::new(format!("dataset: {name}: {e}")))?;
        if t.dtype() != Dtype::U32 || t.shape() != shape {
            bail!("dataset: {name} must be u32 {shape:?} (n = {n} pairs), is {:?} {:?}", t.dtype(), t.shape());
        }
        Ok(t.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    let (p_len, y_len, vocab) = (task.prompt_len(), task.max_summary, task.vocab_size() as u32);
    let prompts = u32s("prompts", &[n, p_len])?;
    let mut pairs = Pairs { prompts: prompts.chunks(p_len.max(1)).map(<[u32]>::to_vec).collect(), first_wins: first_wins.data().iter().map(|&w| w != 0).collect(), ..Pairs::default() };
    for (ids, lengths, out) in [("y1", "y1_length", &mut pairs.y1), ("y2", "y2_length", &mut pairs.y2)] {
        let (ys, ls) = (u32s(ids, &[n, y_len])?, u32s(lengths, &[n])?);
        for (i, (y, &l)) in ys.chunks(y_len.max(1)).zip(&ls).enumerate() {
            if l as usize > y_len {
                bail!("dataset: {lengths}[{i}] = {l} is more than max_summary = {y_len}");
            }
            out.push(y[..l as usize].to_vec());
        }
    }
    let bad = |ys: &[Vec<u32>]| ys.iter().enumerate().find_map(|(i, y)| y.iter().find(|&&t| t >= vocab).map(|&t| (i, t)));
    for (name, ys) in [("prompts", &pairs.prompts), ("y1", &pairs.y1), ("y2", &pairs.y2)] {
        if let Some((i, t)) = bad(ys) {
            bail!("dataset: {name}[{i}] holds id {t}, outside the task's vocabulary (0..{vocab})");
        }
    }
    Ok((pairs, get("source")?.to_string()))
}

/// SHA-256 of `bytes` as 64 hex digits (the digest results.json records for each dataset file).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(task: &TaskConfig) -> Pairs {
        let prompts: Vec<Vec<u32>> = (0..5).map(|i| task.prompt(1, 2, i)).collect();
        let y = |k: u32| -> Vec<Vec<u32>> { (0..5u32).map(|i| (0..(i + k) % 6).map(|j| task.word_id(((i + j + k) % 10) as usize)).chain([crate::task::EOS]).collect()).collect() };
        Pairs { prompts, y1: y(1), y2: y(4), first_wins: vec![true, false, false, true, true] }
    }

    #[test]
    fn a_dataset_reads_back_as_written() {
        let task = TaskConfig::default();
        let p = pairs(&task);
        let bytes = to_bytes(&p, &task, "a test").unwrap();
        let (back, source) = from_bytes(&bytes, &task).unwrap();
        assert_eq!(back, p);
        assert_eq!(source, "a test");
        assert_eq!(to_bytes(&p, &task, "a test").unwrap(), bytes, "the same pairs, the same bytes (and digest)");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn another_task_a_cut_file_or_foreign_ids_are_refused_by_name() {
        let task = TaskConfig::default();
        let bytes = to_bytes(&pairs(&task), &task, "").unwrap();
        let other = TaskConfig { vocab_words: task.vocab_words + 8, ..task.clone() };
        let err = from_bytes(&bytes, &other).unwrap_err().message;
        assert!(err.contains("another task") && err.contains("task.vocab_words"), "{err}");
        let err = from_bytes(&bytes[..bytes.len() - 7], &task).unwrap_err().message;
        assert!(err.starts_with("dataset:"), "{err}");
        let err = from_bytes(b"not a file", &task).unwrap_err().message;
        assert!(err.contains("not a safetensors file"), "{err}");
        let mut foreign = pairs(&task);
        foreign.y2[3][0] = task.vocab_size() as u32 + 3;
        let err = from_bytes(&to_bytes(&foreign, &task, "").unwrap(), &task).unwrap_err().message;
        assert!(err.contains("y2[3]") && err.contains("outside the task's vocabulary"), "{err}");
    }
}

//! The `--set key=value` grammar of every config (the CLI's overrides, the page's URL keys): dotted keys into its
//! JSON form, values as JSON, unknown keys and wrong types refused by name; and the settings two configs differ in.

use crate::bail;
use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

/// Applies `key=value` overrides (dotted paths into the config's JSON form; values parsed as JSON, else
/// taken as a string) and returns the new config. An unknown key lists the keys that exist at that level.
pub fn apply_overrides<T: Serialize + DeserializeOwned>(config: &T, overrides: &[String]) -> Result<T> {
    let mut v = json_value(config)?;
    for o in overrides {
        let Some((key, value)) = o.split_once('=') else { bail!("--set {o}: expected key=value") };
        let mut node = &mut v;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let known: Vec<String> = node.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            let Some(next) = node.get_mut(*part) else {
                bail!("--set {key}: unknown key '{}'; known keys here: {}", parts[..=i].join("."), known.join(", "))
            };
            node = next;
        }
        let parsed: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        // null is for optional settings (e.g. max_grad_norm = null: no clipping); parsing below refuses it elsewhere.
        if std::mem::discriminant(node) != std::mem::discriminant(&parsed) && !node.is_null() && !parsed.is_null() {
            bail!("--set {key}={value}: expected a value like {node}");
        }
        *node = parsed;
        // Parse after each override, so a value of the wrong type is reported with its key.
        serde_json::from_value::<T>(v.clone()).map_err(|e| {
            let e = e.to_string().replace("expected u32", "expected a whole number ≥ 0").replace("expected usize", "expected a whole number ≥ 0").replace("expected f32", "expected a number");
            Error::new(format!("--set {key}={value}: {e}"))
        })?;
    }
    serde_json::from_value(v).map_err(|e| Error::new(format!("--set: {e}")))
}

/// A config as a JSON value, with f32 fields as their shortest decimal (0.05, not 0.05000000074505806),
/// as the JSON text prints them.
pub fn json_value<T: Serialize>(config: &T) -> Result<serde_json::Value> {
    let text = serde_json::to_string(config).map_err(|e| Error::new(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error::new(e.to_string()))
}

/// Every leaf of a config's JSON form as (dotted key, value): the `--set` keys and the page's URL keys.
pub fn setting_leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match v.as_object() {
        Some(map) => {
            for (k, child) in map {
                setting_leaves(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, child, out);
            }
        }
        None => out.push((prefix.to_string(), v.clone())),
    }
}

/// The keys whose values differ between two configs (for "this folder holds another config" messages).
pub fn differing_keys<T: Serialize>(a: &T, b: &T) -> Result<Vec<String>> {
    Ok(differing_settings(&[a, b])?.into_iter().map(|(k, _)| k).collect())
}

/// The settings in which configs differ, each with its value in every config (null where a config lacks the key),
/// in the order the keys first appear: the page's *Compare runs* table.
pub fn differing_settings<T: Serialize>(configs: &[&T]) -> Result<Vec<(String, Vec<serde_json::Value>)>> {
    let mut leaves = vec![];
    for c in configs {
        let mut l = vec![];
        setting_leaves("", &json_value(*c)?, &mut l);
        leaves.push(l);
    }
    let mut keys: Vec<&String> = vec![];
    for (k, _) in leaves.iter().flatten() {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let value = |l: &[(String, serde_json::Value)], k: &str| l.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    Ok(keys
        .into_iter()
        .filter(|k| leaves.iter().any(|l| value(l, k) != value(&leaves[0], k)))
        .map(|k| (k.clone(), leaves.iter().map(|l| value(l, k).unwrap_or(serde_json::Value::Null)).collect()))
        .collect())
}

//! Experiments as data: one config per paper figure, named presets, and `--set key=value` overrides that
//! reject unknown keys and out-of-range values by name.

pub mod fig1;

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
        if std::mem::discriminant(node) != std::mem::discriminant(&parsed) && !node.is_null() {
            bail!("--set {key}={value}: expected a value like {node}");
        }
        *node = parsed;
        // Parse after each override, so a value of the wrong type is reported with its key.
        serde_json::from_value::<T>(v.clone()).map_err(|e| {
            let e = e.to_string().replace("expected u32", "expected a whole number ≥ 0").replace("expected usize", "expected a whole number ≥ 0").replace("expected f32", "expected a number");
            Error(format!("--set {key}={value}: {e}"))
        })?;
    }
    serde_json::from_value(v).map_err(|e| Error(format!("--set: {e}")))
}

/// A config as a JSON value, with f32 fields as their shortest decimal (0.05, not 0.05000000074505806),
/// as the JSON text prints them.
pub fn json_value<T: Serialize>(config: &T) -> Result<serde_json::Value> {
    let text = serde_json::to_string(config).map_err(|e| Error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| Error(e.to_string()))
}

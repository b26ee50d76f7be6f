//! `results/index.json`: the committed experiments, each with what a reader needs before opening it (its preset's
//! description, seeds, backend, times, figures). The page's "what the full run found" and the static site read it;
//! `alignment-gap index` writes it from each folder's results.json, and `--check` (run by the tests) refuses a stale one.

use crate::experiments::{preset_info, ExperimentResults, PRESETS};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The folder under results/ (a preset's name when it holds that preset's results).
    pub name: String,
    /// The preset's one-line description (empty for a folder that is not a preset's).
    pub description: String,
    pub seeds: Vec<u32>,
    pub backend: String,
    /// The loss of the config's runs (e.g. "IPO").
    pub loss: String,
    pub checkpoints: usize,
    pub complete: bool,
    /// Start to finish of the `reproduce` that wrote it, when it was recorded.
    pub wall_seconds: Option<f64>,
    /// The stages' times summed over the seeds' threads (with what the stage cache held).
    pub stage_seconds: f64,
    /// The SVG figures in the folder, Figure 1's first.
    pub figures: Vec<String>,
}

impl IndexEntry {
    pub fn new(name: &str, results: &ExperimentResults, mut figures: Vec<String>) -> Self {
        figures.sort_by_key(|f| (f != "fig1.svg", f.clone()));
        IndexEntry {
            name: name.into(),
            description: preset_info(name).map_or("", |p| p.description).into(),
            seeds: results.config.seeds.clone(),
            backend: results.backend.clone(),
            loss: results.config.loss.display().into(),
            checkpoints: results.checkpoints.len(),
            complete: results.complete,
            wall_seconds: results.wall_seconds.map(|s| s.round()),
            stage_seconds: results.timings.iter().map(|(_, s)| s).sum::<f64>().round(),
            figures,
        }
    }
}

/// The entries in the page's order: the presets' folders in [`PRESETS`] order, then any other folder by name.
pub fn sort(entries: &mut [IndexEntry]) {
    entries.sort_by_key(|e| (PRESETS.iter().position(|p| p.name == e.name).unwrap_or(PRESETS.len()), e.name.clone()));
}

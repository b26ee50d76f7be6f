//! Experiments as data: one config per paper figure, named presets, and `--set key=value` overrides that
//! reject unknown keys and out-of-range values by name.
//!
//! The rooms: `experiment` (the config and its settings' checks), `validate` (every check, the arms' too), `method` (a kind of run, on the paper's axes), `arms` (the
//! optional arms), `presets`, `plan` (the runs of each seed, shards, a seed's run), `estimate`, `knobs` (the page's),
//! `results` (results.json and its merge), `pipeline` (the stages every run is built from and their cache). What
//! other modules use is named here once.

pub mod arms;
pub mod estimate;
pub mod experiment;
pub mod knobs;
pub mod method;
pub mod pipeline;
pub mod plan;
pub mod presets;
pub mod results;
pub mod validate;

pub use experiment::{range, training_bytes, Analysis, ExperimentConfig, Knob, MatchingConfig, MatchingGrid, PAGE_ALIGN_CHUNKS};
pub use method::Method;
pub use knobs::knobs;
pub use plan::{run_seed, Placement, Shard};
pub use presets::{preset_info, preset_names, Preset, PRESETS};
pub use results::{merge, merge_seed_groups, merge_shards, run, trl_names, DatasetRecord, ExperimentResults, SizedSftLoss, TrlName};


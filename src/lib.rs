//! alignment-gap: Tang et al. 2024, "Understanding the performance gap between online and offline
//! alignment algorithms", reproduced at toy scale — in a browser tab on WebGPU, or natively.

pub mod bench;
pub mod clock;
pub mod control;
pub mod engine;
pub mod error;
pub mod experiments;
pub mod limits;
pub mod rng;
pub mod selfcheck;
pub mod settings;
pub mod model;
pub mod report;
pub mod task;
pub mod tokenizer;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};

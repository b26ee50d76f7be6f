//! Shared by the native test files.
#![allow(dead_code)]

use alignment_gap::engine::{AdapterRequest, Engine};

/// A GPU engine, or a loud failure. Set ALIGNMENT_GAP_ALLOW_NO_GPU=1 to turn "no adapter" into a skip on a
/// machine that has none; CI never sets it, so a missing lavapipe fails the build.
pub fn gpu() -> Option<Engine> {
    let request = AdapterRequest { software: std::env::var("ALIGNMENT_GAP_SOFTWARE_ADAPTER").is_ok(), name_contains: None };
    match pollster::block_on(alignment_gap::engine::gpu::GpuBackend::new(&request, &alignment_gap::engine::kernels::SHADERS)) {
        Ok(g) => Some(Engine::Gpu(g)),
        Err(e) if std::env::var("ALIGNMENT_GAP_ALLOW_NO_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (no GPU adapter, ALIGNMENT_GAP_ALLOW_NO_GPU=1): {e}");
            None
        }
        Err(e) => panic!("no GPU adapter: {e}. Install mesa-vulkan-drivers (lavapipe) or set ALIGNMENT_GAP_ALLOW_NO_GPU=1"),
    }
}

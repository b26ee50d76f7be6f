//! Browser tests (`wasm-pack test --headless --chrome`): the same kernel self-check, on WebGPU in headless
//! Chromium (SwiftShader). A browser without WebGPU fails here, loudly: CI must run these on a real adapter.
#![cfg(target_arch = "wasm32")]

use alignment_gap::engine::{AdapterRequest, BackendChoice, Engine};
use alignment_gap::selfcheck;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn webgpu_is_available() {
    assert!(alignment_gap::engine::gpu::browser_has_webgpu(), "navigator.gpu missing: start Chromium with --enable-unsafe-webgpu");
}

#[wasm_bindgen_test]
async fn gpu_kernels_match_cpu_twins_in_the_browser() {
    let (engine, note) = Engine::open(BackendChoice::Gpu, &AdapterRequest::default()).await.expect("a WebGPU adapter");
    assert!(note.is_none());
    let report = selfcheck::run(&engine).await;
    for r in &report.results {
        console_log!("{} {} {:?} {}", if r.passed { "OK  " } else { "FAIL" }, r.name, r.relative_error, r.message.as_deref().unwrap_or(""));
    }
    assert!(report.results.len() >= 30);
    assert_eq!(report.failed, 0, "{}", report.summary_line());
}

#[wasm_bindgen_test]
async fn cpu_backend_in_wasm_matches_reference() {
    let report = selfcheck::run(&Engine::cpu()).await;
    assert_eq!(report.failed, 0, "{}", report.summary_line());
}

#[wasm_bindgen_test]
async fn doctor_reports_the_adapter() {
    let report = selfcheck::doctor(BackendChoice::Auto, &AdapterRequest::default()).await.unwrap();
    assert!(report.note.is_none(), "auto fell back to the CPU: {:?}", report.note);
    assert_eq!(report.adapters.len(), 1);
    assert!(report.adapters[0].limits.max_storage_buffers_per_shader_stage >= 8);
}

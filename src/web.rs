//! The wasm-bindgen surface the page's Web Worker calls. Results cross as plain JS objects
//! (serde-wasm-bindgen); errors cross as strings, so the page can show them instead of failing.

use crate::engine::{AdapterRequest, BackendChoice};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// True when the worker's global scope exposes WebGPU.
#[wasm_bindgen(js_name = hasWebGpu)]
pub fn has_webgpu() -> bool {
    crate::engine::gpu::browser_has_webgpu()
}

/// The device report: adapter, limits, and every kernel checked against its reference.
/// `backend` is "auto", "gpu" or "cpu".
#[wasm_bindgen]
pub async fn doctor(backend: String) -> Result<JsValue, JsValue> {
    let choice: BackendChoice = backend.parse().map_err(|e: crate::Error| JsValue::from_str(&e.0))?;
    let report = crate::selfcheck::doctor(choice, &AdapterRequest::default()).await.map_err(|e| JsValue::from_str(&e.0))?;
    web_sys::console::log_1(&report.selfcheck.summary_line().into());
    serde_wasm_bindgen::to_value(&report).map_err(|e| JsValue::from_str(&e.to_string()))
}

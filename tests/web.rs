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

/// The tests' build is the SIMD128 one (the relaxed-SIMD build is checked by the page tests): its multiply-adds
/// round twice, and its CPU engine is named for it.
#[wasm_bindgen_test]
fn the_simd128_build_rounds_multiply_adds_twice_and_is_named_so() {
    assert!(!cfg!(target_feature = "relaxed-simd"), "wasm-pack test builds with .cargo/config.toml's flags (SIMD128 only)");
    assert!(!alignment_gap::engine::kernels::matmul::multiply_add_fuses());
    assert_eq!(Engine::cpu().identity(), "cpu (WebAssembly SIMD128, 4x8 panel + matrixmultiply GEMM)");
}

#[wasm_bindgen_test]
async fn doctor_reports_the_adapter() {
    let report = selfcheck::doctor(BackendChoice::Auto, &AdapterRequest::default()).await.unwrap();
    assert!(report.note.is_none(), "auto fell back to the CPU: {:?}", report.note);
    assert_eq!(report.adapters.len(), 1);
    assert!(report.adapters[0].limits.max_storage_buffers_per_shader_stage >= 8);
}

/// The page's link state: a query names the preset and the changed settings; bad values are reported by
/// field and leave the preset's value; the query written for a config reads back as that config.
#[wasm_bindgen_test]
fn url_query_round_trips_and_reports_bad_fields() {
    use alignment_gap::web::{config_from_query, query_from_config};
    let get = |v: &wasm_bindgen::JsValue, path: &[&str]| path.iter().fold(v.clone(), |o, k| js_sys::Reflect::get(&o, &(*k).into()).unwrap());
    let parsed = config_from_query("?preset=fig1-tiny&steps=7&betas=0.05,0.2&seeds=3,4").unwrap();
    assert_eq!(get(&parsed, &["errors", "length"]).as_f64(), Some(0.0));
    let config = get(&parsed, &["config"]);
    assert_eq!(get(&config, &["steps"]).as_f64(), Some(7.0));
    assert_eq!(get(&config, &["betas", "0"]).as_f64(), Some(0.05));
    let query = query_from_config("fig1-tiny", config.clone()).unwrap();
    assert_eq!(query, "preset=fig1-tiny&betas=0.05,0.2&seeds=3,4&steps=7");
    let again = config_from_query(&query).unwrap();
    assert_eq!(js_sys::JSON::stringify(&get(&again, &["config"])).unwrap(), js_sys::JSON::stringify(&config).unwrap());
    // The page's presets take data-parallel steps in 4 chunks (the CLI's, one pass); a link asking for one pass says so.
    assert_eq!(get(&config, &["align_chunks"]).as_f64(), Some(4.0));
    let one_pass = config_from_query("preset=fig1-tiny&align_chunks=0").unwrap();
    assert_eq!(query_from_config("fig1-tiny", get(&one_pass, &["config"])).unwrap(), "preset=fig1-tiny&align_chunks=0");

    let bad = config_from_query("preset=fig1-tiny&steps=0&policy.heads=3&nope=1").unwrap();
    let errors = js_sys::JSON::stringify(&get(&bad, &["errors"])).unwrap().as_string().unwrap();
    for field in ["\"steps\"", "\"policy.heads\"", "\"nope\""] {
        assert!(errors.contains(field), "{errors}");
    }
    let range = format!("out of range 1..={}", alignment_gap::experiments::range::ONLINE_STEPS);
    assert!(errors.contains(&range), "{errors}");
    assert_eq!(get(&bad, &["config", "steps"]).as_f64(), Some(12.0), "the preset's value is kept");
    assert_eq!(get(&bad, &["config", "policy", "heads"]).as_f64(), Some(2.0));
}

/// The browser's GEMM (the 4×8 panel kernel for single products, matrixmultiply for batches) against a plain f64
/// loop: every transpose, rows and columns that are no whole panel or strip, k past one pass (256), accumulating.
#[wasm_bindgen_test]
fn the_browsers_gemm_matches_a_plain_loop() {
    use alignment_gap::engine::kernels::matmul::{chosen_gemm, matmul, CpuGemm};
    use alignment_gap::engine::MatmulSpec;
    for (m, n, k) in [(1, 1, 1), (7, 17, 3), (13, 64, 300), (70, 9, 513), (5, 130, 70)] {
        for (a_transposed, b_transposed) in [(false, false), (false, true), (true, false), (true, true)] {
            for accumulate in [false, true] {
                let spec = MatmulSpec { batch: 1, m, n, k, a_transposed, b_transposed, accumulate };
                assert_eq!(chosen_gemm(&spec), CpuGemm::Ours);
                let a = alignment_gap::rng::uniform_vec(5, 1, spec.a_len(), -1.0, 1.0);
                let b = alignment_gap::rng::uniform_vec(5, 2, spec.b_len(), -1.0, 1.0);
                let c0 = alignment_gap::rng::uniform_vec(5, 3, spec.c_len(), -1.0, 1.0);
                let mut c = c0.clone();
                matmul(&a, &b, &mut c, spec);
                let ((ars, acs), (brs, bcs)) = (spec.a_strides(), spec.b_strides());
                for i in 0..m {
                    for j in 0..n {
                        let dot: f64 = (0..k).map(|kk| a[i * ars + kk * acs] as f64 * b[kk * brs + j * bcs] as f64).sum();
                        let want = dot + if accumulate { c0[i * n + j] as f64 } else { 0.0 };
                        let err = (c[i * n + j] as f64 - want).abs() / (1.0 + want.abs());
                        assert!(err < 1e-5, "{spec:?} C[{i}][{j}] = {} vs {want}", c[i * n + j]);
                    }
                }
            }
        }
    }
    assert_eq!(chosen_gemm(&MatmulSpec { batch: 8, m: 32, n: 32, k: 16, a_transposed: false, b_transposed: true, accumulate: false }), CpuGemm::Matrixmultiply);
}

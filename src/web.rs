//! The wasm-bindgen surface the page calls. The Web Worker runs the device report and the training
//! (`doctor`, `measureSpeed`, `runFigure`); the page's main thread uses the pure functions (configs, URL
//! state, figures, CSV). Results cross as plain JS objects (serde-wasm-bindgen); errors cross as strings,
//! so the page can show them instead of failing.

use crate::engine::{AdapterRequest, BackendChoice, Engine};
use crate::experiments::{self, ExperimentConfig, PRESETS};
use crate::experiments::pipeline::{Progress, ProxyReport, Row};
use crate::settings::{apply_overrides, json_value, setting_leaves};
use crate::model::checkpoint::{config_json, safetensors_bytes, SpecialIds};
use crate::report::{figure, metrics_csv, stats, summary};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// A crate error as the page catches it: a JS `Error` whose text is the message (its name is empty, so `String(e)`
/// is the message alone, as for the plain strings other failures throw) and whose `kind` is its
/// [`crate::error::ErrorKind`]'s name ("failed", "gpu_lost", "stopped"), which the worker tells errors apart by.
fn js_error(e: crate::Error) -> JsValue {
    let error = js_sys::Error::new(&e.message);
    error.set_name("");
    // Setting a property on a fresh Error cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &e.kind.name().into());
    error.into()
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    // Through JSON text: plain objects (not Maps), and f32 fields as their shortest decimal (β 0.05, not
    // 0.05000000074505806), exactly as results.json prints them.
    js_sys::JSON::parse(&serde_json::to_string(v).map_err(js_err)?)
}

fn config_from_js(config: JsValue) -> Result<ExperimentConfig, JsValue> {
    let cfg: ExperimentConfig = serde_wasm_bindgen::from_value(config).map_err(|e| js_err(format!("config: {e}")))?;
    cfg.validate().map_err(js_error)?;
    Ok(cfg)
}

/// Destroys this worker's GPU device, as a driver reset would lose it (the page's test of what a run does then).
#[wasm_bindgen(js_name = destroyGpuDevice)]
pub fn destroy_gpu_device() -> bool {
    crate::engine::gpu::destroy_current_device()
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
    let choice: BackendChoice = backend.parse().map_err(|e: crate::Error| js_error(e))?;
    let report = crate::selfcheck::doctor(choice, &AdapterRequest::default()).await.map_err(js_error)?;
    web_sys::console::log_1(&report.selfcheck.summary_line().into());
    to_js(&report)
}

async fn open(backend: &str) -> Result<(Engine, Option<String>), JsValue> {
    let choice: BackendChoice = backend.parse().map_err(|e: crate::Error| js_error(e))?;
    Engine::open(choice, &AdapterRequest::default()).await.map_err(js_error)
}

/// The S-size bench on this device (a training step of 128 × 32 tokens, and sampling), for run-time estimates.
#[wasm_bindgen(js_name = measureSpeed)]
pub async fn measure_speed(backend: String) -> Result<JsValue, JsValue> {
    let (e, _) = open(&backend).await?;
    let (name, l, d, h) = crate::bench::SIZES[0];
    to_js(&crate::bench::run_size(&e, name, l, d, h, 2).await.map_err(js_error)?)
}

/// One bench size (S, M or L) on this device, `repeats` timed steps: what `bench/wasm.mjs` runs in headless
/// Chromium to compare the page's WebAssembly with the native CLI.
#[wasm_bindgen(js_name = benchSize)]
pub async fn bench_size(backend: String, size: String, repeats: usize) -> Result<JsValue, JsValue> {
    let (e, _) = open(&backend).await?;
    let Some(&(name, l, d, h)) = crate::bench::SIZES.iter().find(|s| s.0 == size) else {
        return Err(js_err(format!("size: '{size}' is not one of {}", crate::bench::SIZES.map(|s| s.0).join(", "))));
    };
    if !(1..=50).contains(&repeats) {
        return Err(js_err(format!("repeats = {repeats} is out of range 1..=50")));
    }
    to_js(&crate::bench::run_size(&e, name, l, d, h, repeats).await.map_err(js_error)?)
}

/// One training step of `size` profiled op by op on this worker's CPU backend (`bench::profile_size`, `steps` steps
/// after a warm-up): per op, calls and seconds per step. `bench/wasm.mjs --profile` prints it beside native's.
#[wasm_bindgen(js_name = benchProfile)]
pub async fn bench_profile(size: String, steps: usize) -> Result<JsValue, JsValue> {
    let Some(&(_, l, d, h)) = crate::bench::SIZES.iter().find(|s| s.0 == size) else {
        return Err(js_err(format!("size: '{size}' is not one of {}", crate::bench::SIZES.map(|s| s.0).join(", "))));
    };
    if !(1..=20).contains(&steps) {
        return Err(js_err(format!("steps = {steps} is out of range 1..=20")));
    }
    to_js(&crate::bench::profile_size(&crate::engine::Engine::cpu(), l, d, h, steps).await.map_err(js_error)?)
}

/// A data-parallel alignment step at `size` (`bench::align_step_size`) in `chunks` chunks, shared by this worker and
/// `helpers` (as `runFigure` takes them; undefined: this worker alone): `{ms, workers, gradient}`, the last a hash of
/// the summed gradient's bits, so that runs on different worker counts can be compared.
#[wasm_bindgen(js_name = benchAlignStep)]
pub async fn bench_align_step(size: String, repeats: usize, chunks: usize, helpers: JsValue) -> Result<JsValue, JsValue> {
    let Some(&(_, l, d, h)) = crate::bench::SIZES.iter().find(|s| s.0 == size) else {
        return Err(js_err(format!("size: '{size}' is not one of {}", crate::bench::SIZES.map(|s| s.0).join(", "))));
    };
    if !(1..=50).contains(&repeats) {
        return Err(js_err(format!("repeats = {repeats} is out of range 1..=50")));
    }
    let pool = HelperPool::from_js(&helpers)?;
    let workers = pool.as_ref().map_or(1, |p| p.count + 1);
    crate::train::parallel::install(pool.map(|p| std::rc::Rc::new(p) as std::rc::Rc<dyn crate::train::parallel::ChunkPool>));
    let timed = crate::bench::align_step_size(l, d, h, chunks, repeats).await;
    crate::train::parallel::install(None);
    let (ms, gradient) = timed.map_err(js_error)?;
    to_js(&serde_json::json!({ "ms": ms, "workers": workers, "gradient": format!("{:016x}", crate::train::parallel::values_id(&gradient)) }))
}

/// Each matmul shape of a training step at `size`, timed with both CPU GEMMs in this browser
/// (`bench::gemm_size`): the rows, and the table as text.
#[wasm_bindgen(js_name = benchGemm)]
pub async fn bench_gemm(size: String) -> Result<JsValue, JsValue> {
    let Some(&(name, l, d, h)) = crate::bench::SIZES.iter().find(|s| s.0 == size) else {
        return Err(js_err(format!("size: '{size}' is not one of {}", crate::bench::SIZES.map(|s| s.0).join(", "))));
    };
    let rows = crate::bench::gemm_size(&Engine::cpu(), name, l, d, h).await.map_err(js_error)?;
    to_js(&serde_json::json!({ "rows": rows, "table": crate::bench::gemm_table(&rows), "backend": Engine::cpu().identity() }))
}

#[derive(Serialize)]
struct PresetInfo {
    #[serde(flatten)]
    preset: experiments::Preset,
    config: ExperimentConfig,
}

/// Every preset: name, title, one-line description, full config.
#[wasm_bindgen]
pub fn presets() -> Result<JsValue, JsValue> {
    let list: Vec<PresetInfo> = PRESETS
        .iter()
        .map(|&preset| Ok(PresetInfo { preset, config: page_preset(preset.name)? }))
        .collect::<Result<_, JsValue>>()?;
    to_js(&list)
}

/// A preset as the page offers it: the CLI's, with data-parallel alignment steps
/// ([`experiments::PAGE_ALIGN_CHUNKS`] chunks) where the CLI's takes one pass, so that the page's CPU workers can share
/// one run. A run on a GPU takes one pass (the page sets `align_chunks` to 0 there, and results.json says so).
fn page_preset(name: &str) -> Result<ExperimentConfig, JsValue> {
    let mut cfg = ExperimentConfig::preset(name).map_err(js_error)?;
    if cfg.align_chunks == 0 && cfg.batch >= experiments::PAGE_ALIGN_CHUNKS as usize {
        cfg.align_chunks = experiments::PAGE_ALIGN_CHUNKS;
    }
    Ok(cfg)
}

/// Facts the page shows that Rust owns: the knobs with their ranges, the arms' slider stops, each method's label, the
/// classifier analyses, the smallest KL a checkpoint is plotted at, and the shape of the speed probe.
#[wasm_bindgen(js_name = pageFacts)]
pub fn page_facts() -> Result<JsValue, JsValue> {
    use crate::experiments::method::Method;
    let methods: serde_json::Map<String, serde_json::Value> = Method::ALL.iter().map(|m| (m.name(), m.label().into())).collect();
    let (_, layers, d_model, heads) = crate::bench::SIZES[0];
    to_js(&serde_json::json!({
        "knobs": experiments::knobs(),
        // The arms whose few allowed values the page offers as slider stops: key → [[value, what it means], …].
        "sliders": experiments::arms::ARMS.iter().filter_map(|a| { let stops = (a.stops)(); (!stops.is_empty()).then(|| (a.key.to_string(), serde_json::json!(stops))) }).collect::<serde_json::Map<_, _>>(),
        "methods": methods,
        // The classifier analyses the page offers as boxes: [{key, label}].
        "analyses": experiments::Analysis::ALL.iter().map(|a| serde_json::json!({ "key": a.name(), "label": a.label() })).collect::<Vec<_>>(),
        // What each task kind's golden reward asks: kind → a line (the sample view says which the run's is).
        "task_kinds": crate::task::TaskKind::ALL.iter().map(|t| (t.name().to_string(), serde_json::Value::from(t.describe()))).collect::<serde_json::Map<_, _>>(),
        "min_kl": stats::MIN_KL,
        "bench": { "batch": crate::bench::BATCH, "context": crate::bench::CONTEXT, "layers": layers, "d_model": d_model, "heads": heads },
    }))
}

/// Seconds `config` should take on a device with the given bench numbers; when `stage_keys` (the keys a cache holds, e.g.
/// the shipped manifest's) hold every SFT and proxy stage it needs as trained on `backend`, without those stages.
/// Returns `[seconds, stages given]`.
/// `workers`: `{seed_groups, chunk_workers}`, the CPU workers the page would spread the run over (undefined: one).
#[wasm_bindgen(js_name = estimateSecondsWith)]
pub fn estimate_seconds_with(config: JsValue, train_step_ms: f64, sample_tokens_per_s: f64, backend: String, stage_keys: JsValue, workers: JsValue) -> Result<JsValue, JsValue> {
    let cfg = config_from_js(config)?;
    let held: Vec<String> = serde_wasm_bindgen::from_value(stage_keys).map_err(|e| js_err(format!("stage_keys: {e}")))?;
    let workers = match workers.is_undefined() || workers.is_null() {
        true => experiments::estimate::Workers::ONE,
        false => serde_wasm_bindgen::from_value(workers).map_err(|e| js_err(format!("workers: {e}")))?,
    };
    let given = cfg.stage_cache_keys(&backend).iter().all(|k| held.contains(k));
    to_js(&(cfg.estimate_seconds_on(train_step_ms, sample_tokens_per_s, given, workers), given))
}

#[derive(Serialize)]
struct FieldError {
    field: String,
    message: String,
}

#[derive(Serialize)]
struct ParsedQuery {
    preset: String,
    config: ExperimentConfig,
    errors: Vec<FieldError>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the page's URL query: `preset=NAME` and any `key=value` with the CLI's `--set` keys (lists as
/// `0.1,0.3`). Each bad value is reported by field and left at the preset's value; nothing is dropped
/// silently and nothing throws.
#[wasm_bindgen(js_name = configFromQuery)]
pub fn config_from_query(query: &str) -> Result<JsValue, JsValue> {
    let pairs: Vec<(String, String)> = query
        .trim_start_matches('?')
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect();
    let mut errors = vec![];
    let mut preset = "fig1-quick".to_string();
    if let Some((_, name)) = pairs.iter().find(|(k, _)| k == "preset") {
        if experiments::preset_info(name).is_some() {
            preset = name.clone();
        } else {
            errors.push(FieldError { field: "preset".into(), message: format!("'{name}' is not one of {}; using {preset}", experiments::preset_names().join(", ")) });
        }
    }
    let mut cfg = page_preset(&preset)?;
    let known = {
        let mut l = vec![];
        setting_leaves("", &json_value(&cfg).map_err(js_error)?, &mut l);
        l
    };
    for (key, value) in pairs.iter().filter(|(k, _)| k != "preset") {
        let is_list = known.iter().any(|(k, v)| k == key && v.is_array());
        let value = if is_list && !value.trim_start().starts_with('[') { list_json(value) } else { value.clone() };
        let attempt = apply_overrides(&cfg, &[format!("{key}={value}")]).and_then(|c| c.validate().map(|_| c));
        match attempt {
            Ok(c) => cfg = c,
            Err(e) => errors.push(FieldError { field: key.clone(), message: format!("{}; the preset's value stands in", e.message.trim_start_matches("--set ")) }),
        }
    }
    to_js(&ParsedQuery { preset, config: cfg, errors })
}

/// A knob's comma-separated list as JSON: numbers stay numbers, bare words become strings (`late_vs_late`).
fn list_json(value: &str) -> String {
    let item = |s: &str| if serde_json::from_str::<serde_json::Value>(s).is_ok() { s.to_string() } else { serde_json::Value::String(s.to_string()).to_string() };
    format!("[{}]", value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(item).collect::<Vec<_>>().join(","))
}

/// The URL query for `config`: the preset and every setting that differs from it (so links stay short).
#[wasm_bindgen(js_name = queryFromConfig)]
pub fn query_from_config(preset: &str, config: JsValue) -> Result<String, JsValue> {
    let cfg: ExperimentConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
    let base = page_preset(preset)?;
    let (mut a, mut b) = (vec![], vec![]);
    setting_leaves("", &json_value(&cfg).map_err(js_error)?, &mut a);
    setting_leaves("", &json_value(&base).map_err(js_error)?, &mut b);
    let mut q = format!("preset={preset}");
    for ((key, v), (_, w)) in a.iter().zip(&b) {
        if v != w {
            let text = match v {
                serde_json::Value::Array(items) => items.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).collect::<Vec<_>>().join(","),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            q += &format!("&{key}={}", text.replace('%', "%25").replace('&', "%26").replace('#', "%23").replace(' ', "%20"));
        }
    }
    Ok(q)
}

/// Checks a whole config; the error names the field and its allowed range.
#[wasm_bindgen(js_name = validateConfig)]
pub fn validate_config(config: JsValue) -> Result<(), JsValue> {
    config_from_js(config).map(|_| ())
}

fn rows_from_js(rows: JsValue) -> Result<Vec<Row>, JsValue> {
    serde_wasm_bindgen::from_value(rows).map_err(|e| js_err(format!("rows: {e}")))
}

/// Figure 1 (the CLI's fig1.svg) from checkpoint rows; `compact`: laid out for a phone's width (`figure::Layout`).
#[wasm_bindgen(js_name = figureSvg)]
pub fn figure_svg(rows: JsValue, loss: JsValue, compact: bool) -> Result<String, JsValue> {
    let rows = rows_from_js(rows)?;
    // The runs' loss names the curves; IPO when not given.
    let loss = if loss.is_undefined() || loss.is_null() { crate::train::losses::Loss::Ipo } else { serde_wasm_bindgen::from_value(loss).map_err(|e| js_err(format!("loss: {e}")))? };
    let layout = if compact { figure::Layout::Compact } else { figure::Layout::Wide };
    figure::fig1_svg_in(&rows, loss, layout).map_err(js_error)
}

/// The computed comparison (summary.md's verdict and table) for the rows so far; `proxy_accuracy` is
/// `[[seed, held-out accuracy], ...]`.
#[wasm_bindgen(js_name = summaryMarkdown)]
pub fn summary_markdown(config: JsValue, rows: JsValue, backend: String, proxy_accuracy: JsValue, bins: usize) -> Result<String, JsValue> {
    let config: ExperimentConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
    let rows = rows_from_js(rows)?;
    let proxy: Vec<(u32, f32)> = serde_wasm_bindgen::from_value(proxy_accuracy).map_err(|e| js_err(format!("proxy_accuracy: {e}")))?;
    let proxy = proxy.into_iter().map(|(seed, heldout_accuracy)| ProxyReport { seed, heldout_accuracy, ..ProxyReport::default() }).collect();
    let bins = stats::binned(&stats::main_rows(&rows), bins.max(1));
    let results = experiments::ExperimentResults { config, backend, checkpoints: rows, proxy, oracle: vec![], sft_loss: vec![], timings: vec![], complete: true, shard: None, datasets: vec![], trl_names: experiments::trl_names(), scaling_sft_loss: vec![], wall_seconds: None };
    Ok(summary::summary_md(&results, &bins))
}

/// The figures the page draws below Figure 1 for a run of `config` (its analyses, its scaling ladder's Figs 10 and
/// 11), in the CLI's order: `[{key, file}]`, `file` the name `reproduce` writes it under (`report::artifacts`).
#[wasm_bindgen(js_name = pageFigures)]
pub fn page_figures(config: JsValue) -> Result<JsValue, JsValue> {
    let config: ExperimentConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
    let list: Vec<serde_json::Value> = crate::report::artifacts::below_figure_1(&config).into_iter().map(|f| serde_json::json!({ "key": f.page_key(), "file": f.file() })).collect();
    to_js(&list)
}

/// The figure the page draws under `key` (one of [`page_figures`]' keys) from the checkpoint rows of a run of
/// `config`: it reads only the checkpoints, so it works on a saved run without retraining.
#[wasm_bindgen(js_name = pageFigureSvg)]
pub fn page_figure_svg(config: JsValue, rows: JsValue, key: String) -> Result<String, JsValue> {
    let config: ExperimentConfig = serde_wasm_bindgen::from_value(config).map_err(js_err)?;
    let figure = crate::report::artifacts::Figure::from_page_key(&key).map_err(js_error)?;
    let results = experiments::ExperimentResults { checkpoints: rows_from_js(rows)?, complete: true, ..experiments::ExperimentResults::empty(&config, String::new()) };
    figure.svg(&results).map_err(js_error)
}

/// A run to compare: its label, config and checkpoint rows.
#[derive(serde::Deserialize)]
struct Compared {
    label: String,
    config: ExperimentConfig,
    rows: Vec<Row>,
}

/// Several runs on one Figure-1 panel (`runs`: `[{label, config, rows}]`), and the settings in which their configs
/// differ: `{svg, settings: [[key, value of each run…]…]}`.
#[wasm_bindgen(js_name = compareRuns)]
pub fn compare_runs(runs: JsValue, compact: bool) -> Result<JsValue, JsValue> {
    let runs: Vec<Compared> = serde_wasm_bindgen::from_value(runs).map_err(|e| js_err(format!("runs: {e}")))?;
    let curves: Vec<(String, Vec<Row>)> = runs.iter().map(|r| (r.label.clone(), r.rows.clone())).collect();
    let layout = if compact { figure::Layout::Compact } else { figure::Layout::Wide };
    let svg = figure::overlay_svg_in(&curves, layout).map_err(js_error)?;
    let configs: Vec<&ExperimentConfig> = runs.iter().map(|r| &r.config).collect();
    let settings: Vec<serde_json::Value> = crate::settings::differing_settings(&configs)
        .map_err(js_error)?
        .into_iter()
        .map(|(k, values)| serde_json::Value::Array(std::iter::once(serde_json::Value::String(k)).chain(values).collect()))
        .collect();
    to_js(&serde_json::json!({ "svg": svg, "settings": settings }))
}

/// A line plot; `series` is `[{label, points: [[x, y], ...]}]`.
#[wasm_bindgen(js_name = linesSvg)]
pub fn lines_svg(title: &str, x_desc: &str, y_desc: &str, series: JsValue, width: u32, height: u32) -> Result<String, JsValue> {
    let series: Vec<figure::Series> = serde_wasm_bindgen::from_value(series).map_err(|e| js_err(format!("series: {e}")))?;
    figure::lines_svg(title, x_desc, y_desc, &series, (width.clamp(200, 2000), height.clamp(150, 1500))).map_err(js_error)
}

/// metrics.csv (the CLI's) from checkpoint rows.
#[wasm_bindgen(js_name = metricsCsv)]
pub fn metrics_csv_js(rows: JsValue) -> Result<String, JsValue> {
    Ok(metrics_csv(&rows_from_js(rows)?))
}

fn emit(on_event: &js_sys::Function, event: &impl Serialize) {
    if let Ok(v) = to_js(event) {
        let _ = on_event.call1(&JsValue::NULL, &v);
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    Backend { backend: String, note: Option<String> },
    Stage { name: String, step: u64, total: u64 },
    SftLoss { seed: u32, step: u32, loss: f32 },
    ProxyEval { seed: u32, step: u32, train_loss: f32, validation_loss: f32, validation_accuracy: f32 },
    Checkpoint { row: &'a Row },
    Seed { seed: u32, heldout_accuracy: f32, timings: &'a [(String, f64)] },
    /// The run's SFT and proxy stages were trained on this backend (shipped with the site), not here.
    Stages { backend: String },
    /// An alignment step looked into (`train::align::StepInside`), after the page asked for one ("step").
    StepInside { inside: serde_json::Value },
    /// The workers this run's alignment steps are split over (this one and its helpers), and into how many chunks.
    Workers { workers: usize, chunks: u32 },
}

/// Runs Figure 1 in this worker. `on_event(event)` sees the backend, every stage's progress, SFT losses,
/// proxy evaluations, checkpoints and finished seeds; `on_model(seed, name, safetensors: Uint8Array,
/// config_json, tokenizer_json)` receives every trained model. `control()` is awaited once per step and
/// resolves to `true` to stop (pause by not resolving), or to `"step"` to take one step and, in an alignment run,
/// report what happened inside it (`Event::StepInside`). Returns results.json's object.
///
/// `stages` (optional) is the page's stage cache: `{load(keys) → Promise<{key: {safetensors, config, meta}}>,
/// store(key, entry), shipped_backend}`. Before training, the run asks `load` for every SFT and proxy stage it needs,
/// keyed as on this engine and, with `shipped_backend`, as on the backend the site's shipped stages were trained on
/// (the CLI's); it uses this engine's entries when it has them all, else the shipped ones when they are all there
/// (its runs then train here from stages trained there: `Event::Stages` says so), and hands each stage it trains to
/// `store`. Each run hands `store` its state at every checkpoint and its entry when done, and `forget(key)` drops the
/// state then; with `resume: true` the run also asks `load` for those, so an interrupted run goes on from its last
/// checkpoint and finished runs are not trained again.
///
/// `helpers`: the page's helper workers for data-parallel steps (`align_chunks` > 0), `{count, send(i, request)}` where
/// `send` posts a chunk request (`train::parallel::wire`) to helper i and resolves to its reply; undefined: none,
/// the chunks are computed here one after another (the same numbers).
#[wasm_bindgen(js_name = runFigure)]
#[allow(clippy::too_many_arguments)]
pub async fn run_figure(config: JsValue, backend: String, on_event: js_sys::Function, on_model: js_sys::Function, control: js_sys::Function, stages: JsValue, helpers: JsValue) -> Result<JsValue, JsValue> {
    let cfg = config_from_js(config)?;
    let (e, note) = open(&backend).await?;
    if cfg.align_chunks > 0 && e.is_gpu() {
        return Err(js_err(format!("align_chunks = {}: data-parallel steps run on the CPU backend; set it to 0 on a GPU", cfg.align_chunks)));
    }
    let pool = HelperPool::from_js(&helpers)?;
    let workers = pool.as_ref().map_or(1, |p| p.count + 1);
    emit(&on_event, &Event::Backend { backend: e.identity(), note });
    emit(&on_event, &Event::Workers { workers, chunks: cfg.align_chunks });
    crate::train::parallel::install(pool.map(|p| std::rc::Rc::new(p) as std::rc::Rc<dyn crate::train::parallel::ChunkPool>));
    let (mut cache, stage_backend) = PageCache::load(&e, &cfg, &stages).await?;
    if let Some(b) = &stage_backend {
        emit(&on_event, &Event::Stages { backend: b.clone() });
    }
    crate::control::set_hook(Some(control));
    let sink = on_event.clone();
    crate::control::set_step_sink(Some(Box::new(move |inside| emit(&sink, &Event::StepInside { inside }))));
    let runs_from = cache.runs_from.clone();
    let result = run_seeds(&e, &cfg, &on_event, &on_model, &mut cache, stage_backend.as_deref(), runs_from.as_deref()).await;
    crate::control::set_hook(None);
    crate::control::set_step_sink(None);
    crate::train::parallel::install(None);
    to_js(&result.map_err(js_error)?)
}

/// The page's helper workers as a chunk pool: chunk c goes to worker c mod (helpers + 1), worker 0 being this one.
/// Each helper is sent π_sft's parameters once per run (it keeps the last it was sent), the policy's every step.
struct HelperPool {
    count: usize,
    send: js_sys::Function,
    /// The π_sft each helper holds (its `reference_id`).
    holds: std::cell::RefCell<Vec<Option<u64>>>,
    /// The models each helper keeps for row passes, as it keeps them (`parallel::rows::note_use`).
    held: std::cell::RefCell<Vec<Vec<u64>>>,
}

impl HelperPool {
    fn from_js(helpers: &JsValue) -> Result<Option<Self>, JsValue> {
        if helpers.is_undefined() || helpers.is_null() {
            return Ok(None);
        }
        let count = js_sys::Reflect::get(helpers, &"count".into())?.as_f64().filter(|c| c.fract() == 0.0 && (0.0..=64.0).contains(c)).ok_or_else(|| js_err("helpers.count: a whole number 0–64"))? as usize;
        let send = js_sys::Reflect::get(helpers, &"send".into())?.dyn_into::<js_sys::Function>().map_err(|_| js_err("helpers.send: a function (i, request) → Promise<reply>"))?;
        Ok((count > 0).then(|| HelperPool { count, send, holds: std::cell::RefCell::new(vec![None; count]), held: std::cell::RefCell::new(vec![vec![]; count]) }))
    }

    /// Posts `request` to helper `h`: its reply, to await.
    fn post(&self, h: usize, request: &[u8]) -> crate::Result<wasm_bindgen_futures::JsFuture> {
        let sent = self.send.call2(&JsValue::NULL, &JsValue::from(h as u32), &js_sys::Uint8Array::from(request).into());
        let promise = sent.map_err(|e| crate::Error::new(format!("data-parallel: could not post to helper {h}: {e:?}")))?;
        Ok(wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise)))
    }

    /// Helper `h`'s reply, as bytes.
    async fn reply(h: usize, reply: wasm_bindgen_futures::JsFuture) -> crate::Result<Vec<u8>> {
        // A JS Error says its message; anything else as it prints.
        let said = |e: JsValue| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"));
        let reply = reply.await.map_err(|e| crate::Error::new(format!("data-parallel: helper worker {h} failed: {}", said(e))))?;
        Ok(js_sys::Uint8Array::new(&reply).to_vec())
    }
}

impl crate::train::parallel::ChunkPool for HelperPool {
    fn workers(&self) -> usize {
        self.count + 1
    }

    fn sample_parts<'a>(&'a self, config: crate::model::GptConfig, policy: &'a [Vec<f32>], parts: Vec<(Vec<Vec<u32>>, crate::model::sample::SampleSpec)>) -> crate::train::parallel::SampleFuture<'a> {
        use crate::train::parallel::wire;
        // Posted now, so that the helpers sample while this worker samples part 0; awaited when the caller is done.
        let pending: Result<Vec<_>, crate::Error> = parts
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, (prompts, spec))| {
                let request = wire::sample_request(config, policy, prompts, *spec);
                self.post(i - 1, &request).map(|p| (i - 1, p))
            })
            .collect();
        Box::pin(async move {
            let mut out = vec![];
            for (h, reply) in pending? {
                out.push(wire::read_sample_reply(&Self::reply(h, reply).await?)?);
            }
            Ok(out)
        })
    }

    fn pass_parts<'a>(&'a self, models: &[crate::train::parallel::rows::ModelRef<'a>], parts: Vec<crate::train::parallel::rows::Rows>) -> crate::train::parallel::PassFuture<'a> {
        use crate::train::parallel::{rows::note_use, wire};
        // Part i to helper i − 1, posted now; a model's values go only to a helper that does not keep it already.
        let pending: Result<Vec<_>, crate::Error> = parts
            .iter()
            .enumerate()
            .map(|(h, part)| {
                let send: Vec<bool> = models.iter().map(|m| !note_use(&mut self.held.borrow_mut()[h], m.id)).collect();
                self.post(h, &wire::pass_request(models, &send, part)).map(|p| (h, p))
            })
            .collect();
        Box::pin(async move {
            let mut out = vec![];
            for (h, reply) in pending? {
                out.push(wire::read_pass_reply(&Self::reply(h, reply).await?)?);
            }
            Ok(out)
        })
    }

    fn train_chunks<'a>(&'a self, models: crate::train::parallel::ChunkModels<'a>, jobs: Vec<crate::train::parallel::ChunkJob>) -> crate::train::parallel::ChunkFuture<'a> {
        use crate::train::parallel::{compute_chunks, wire};
        Box::pin(async move {
            let workers = self.workers();
            let mut pending = vec![];
            // The helpers' chunks first, so that they compute while this worker computes its own.
            for h in 0..self.count {
                let mine: Vec<_> = jobs.iter().filter(|j| j.chunk % workers == h + 1).cloned().collect();
                if mine.is_empty() {
                    continue;
                }
                let send_reference = mine.iter().any(|j| j.reference.is_none()) && self.holds.borrow()[h] != Some(models.reference_id);
                let request = wire::request(models, &mine, send_reference);
                if send_reference {
                    self.holds.borrow_mut()[h] = Some(models.reference_id);
                }
                pending.push((h, self.post(h, &request)?));
            }
            let own: Vec<_> = jobs.iter().filter(|j| j.chunk % workers == 0).cloned().collect();
            let mut outs = compute_chunks(models, &own).await?;
            for (h, reply) in pending {
                outs.extend(wire::read_reply(&Self::reply(h, reply).await?)?);
            }
            Ok(outs)
        })
    }
}

thread_local! {
    /// A helper worker's π_sft: the last one a run's worker sent it, with its id.
    static HELPER_REFERENCE: std::cell::RefCell<Option<(u64, Vec<Vec<f32>>)>> = const { std::cell::RefCell::new(None) };
}

/// A helper worker's job (`worker.js` started as a helper): a request (`train::parallel::wire`) of a run's worker, a
/// step's chunks or a part of a batch to sample, done here; its reply returned.
#[wasm_bindgen(js_name = helperJob)]
pub async fn helper_job(request: Vec<u8>) -> Result<Vec<u8>, JsValue> {
    use crate::train::parallel::{compute_chunks, rows, sample_part, wire, ChunkModels};
    let (config, policy, reference, reference_id, jobs) = match wire::read_request(&request).map_err(js_error)? {
        wire::Work::Sample { config, policy, spec, prompts } => return Ok(wire::sample_reply(&sample_part(config, &policy, &prompts, spec).await.map_err(js_error)?)),
        wire::Work::Pass { models, rows } => {
            let models: Vec<rows::ModelRef> = models.iter().map(|(config, head, id, values)| rows::ModelRef { config: *config, head: *head, id: *id, values }).collect();
            return Ok(wire::pass_reply(&rows::pass_part(&models, &rows).await.map_err(js_error)?));
        }
        wire::Work::Train { config, policy, reference, reference_id, jobs } => (config, policy, reference, reference_id, jobs),
    };
    if let Some(values) = reference {
        HELPER_REFERENCE.with(|r| *r.borrow_mut() = Some((reference_id, values)));
    }
    let reference = HELPER_REFERENCE.with(|r| r.borrow().as_ref().filter(|(id, _)| *id == reference_id).map(|(_, v)| v.clone()));
    if reference.is_none() && jobs.iter().any(|j| j.reference.is_none()) {
        return Err(js_err("data-parallel: this helper was not sent the run's π_sft"));
    }
    let reference = reference.unwrap_or_default();
    let models = ChunkModels { config, policy: &policy, reference: &reference, reference_id };
    let outs = compute_chunks(models, &jobs).await.map_err(js_error)?;
    Ok(wire::reply(config, &outs))
}

/// A page run's stage cache: the SFT and proxy entries the page had for it (from IndexedDB, or shipped with the site),
/// and where the stages it trains go (`store`). Its runs keep their finished entries and their saved states there too
/// (`StageSpec::resumable`), read back only when the page resumes an interrupted run; `forget` drops a state once its
/// run is done (and the page drops the finished runs once the whole experiment is).
struct PageCache {
    entries: std::collections::HashMap<String, (Vec<u8>, String, String)>,
    store: Option<js_sys::Function>,
    forget: Option<js_sys::Function>,
    /// The backend a run going on here was cut off on (a lost GPU's), whose runs it takes over (`StageSpec::runs_from`).
    runs_from: Option<String>,
}

/// Every key in `keys` that `load` (the page's `stages.load`) has, read into `cache`.
async fn load_entries(load: &js_sys::Function, keys: &[String], cache: &mut PageCache) -> Result<(), JsValue> {
    let list: js_sys::Array = keys.iter().map(|k| JsValue::from_str(k)).collect();
    let found = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(load.call1(&JsValue::NULL, &list)?)).await?;
    for key in keys {
        let entry = js_sys::Reflect::get(&found, &JsValue::from_str(key))?;
        if entry.is_undefined() || entry.is_null() {
            continue;
        }
        let part = |name: &str| js_sys::Reflect::get(&entry, &JsValue::from_str(name));
        let bytes = js_sys::Uint8Array::new(&part("safetensors")?).to_vec();
        let (config, meta) = (part("config")?.as_string().unwrap_or_default(), part("meta")?.as_string().unwrap_or_default());
        cache.entries.insert(key.clone(), (bytes, config, meta));
    }
    Ok(())
}

impl PageCache {
    /// Asks `stages.load` for the config's stage keys on this engine and on the shipped backend, and with
    /// `stages.resume` for its runs' finished entries and saved states too; returns the cache and the backend whose
    /// stages the run uses when not this engine's.
    async fn load(e: &Engine, cfg: &ExperimentConfig, stages: &JsValue) -> Result<(PageCache, Option<String>), JsValue> {
        let mut cache = PageCache { entries: Default::default(), store: None, forget: None, runs_from: None };
        if stages.is_undefined() || stages.is_null() {
            return Ok((cache, None));
        }
        let field = |name: &str| js_sys::Reflect::get(stages, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
        cache.store = field("store").dyn_into::<js_sys::Function>().ok();
        cache.forget = field("forget").dyn_into::<js_sys::Function>().ok();
        let own = cfg.stage_cache_keys(&e.identity());
        // Stages trained elsewhere, in order of preference: on the backend a run going on here was cut off on (a lost
        // GPU's), then the site's shipped ones.
        let elsewhere: Vec<(String, Vec<String>)> = ["previous_backend", "shipped_backend"]
            .iter()
            .filter_map(|f| field(f).as_string())
            .filter(|b| *b != e.identity())
            .map(|b| (b.clone(), cfg.stage_cache_keys(&b)))
            .collect();
        let Ok(load) = field("load").dyn_into::<js_sys::Function>() else { return Ok((cache, None)) };
        load_entries(&load, &[own.clone(), elsewhere.iter().flat_map(|(_, k)| k.clone()).collect()].concat(), &mut cache).await?;
        let all = |keys: &[String]| !keys.is_empty() && keys.iter().all(|k| cache.entries.contains_key(k));
        let stage_backend = if all(&own) { None } else { elsewhere.iter().find(|(_, keys)| all(keys)).map(|(b, _)| b.clone()) };
        if field("resume").as_bool() == Some(true) {
            cache.runs_from = field("previous_backend").as_string().filter(|b| *b != e.identity());
            load_entries(&load, &cfg.run_cache_keys(&e.identity(), stage_backend.as_deref(), cache.runs_from.as_deref()), &mut cache).await?;
        }
        Ok((cache, stage_backend))
    }
}

impl crate::experiments::pipeline::StageCache for PageCache {
    fn get(&mut self, key: &str) -> Option<(crate::model::GptConfig, crate::model::Head, Vec<Vec<f32>>, serde_json::Value)> {
        let (bytes, config, meta) = self.entries.get(key)?;
        let (config, head) = crate::model::checkpoint::parse_config(config).ok()?;
        let values = crate::model::checkpoint::values_from_safetensors(bytes, &config, head).ok()?;
        Some((config, head, values, serde_json::from_str(meta).ok()?))
    }

    fn put(&mut self, key: &str, model: &crate::model::Gpt, values: &[Vec<f32>], meta: serde_json::Value) -> crate::Result<()> {
        let special = SpecialIds { pad: crate::task::PAD, eos: crate::task::EOS };
        let (bytes, config, meta) = (safetensors_bytes(&model.config, model.head, values)?, config_json(&model.config, model.head, special), meta.to_string());
        if let Some(store) = &self.store {
            let entry = js_sys::Object::new();
            let set = |k: &str, v: &JsValue| js_sys::Reflect::set(&entry, &JsValue::from_str(k), v).map(|_| ());
            let stored = set("safetensors", &js_sys::Uint8Array::from(&bytes[..]).into())
                .and_then(|_| set("config", &JsValue::from_str(&config)))
                .and_then(|_| set("meta", &JsValue::from_str(&meta)))
                .and_then(|_| store.call2(&JsValue::NULL, &JsValue::from_str(key), &entry).map(|_| ()));
            // A cache that cannot keep an entry costs a retrain next time, not this run.
            if let Err(e) = stored {
                web_sys::console::warn_1(&format!("stage cache: could not keep {key}: {e:?}").into());
            }
        }
        // Runs and their states only go to the store: this run reads them back (on a resume) only before it trains them.
        if key.starts_with("sft-") || key.starts_with("proxy-") {
            self.entries.insert(key.into(), (bytes, config, meta));
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
        if let Some(forget) = &self.forget {
            let _ = forget.call1(&JsValue::NULL, &JsValue::from_str(key));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_seeds(
    e: &Engine,
    cfg: &ExperimentConfig,
    on_event: &js_sys::Function,
    on_model: &js_sys::Function,
    cache: &mut PageCache,
    stage_backend: Option<&str>,
    runs_from: Option<&str>,
) -> crate::Result<experiments::ExperimentResults> {
    let tokenizer = cfg.task.tokenizer()?.to_json()?;
    let special = SpecialIds { pad: crate::task::PAD, eos: crate::task::EOS };
    let mut seeds = vec![];
    for &seed in &cfg.seeds {
        let mut models = None;
        let progress = |p: Progress<'_>| match p {
            Progress::Stage { name, step, total } => emit(on_event, &Event::Stage { name, step, total }),
            Progress::SftLoss { seed, step, loss } => emit(on_event, &Event::SftLoss { seed, step, loss }),
            Progress::ProxyEval { seed, step, eval } => emit(
                on_event,
                &Event::ProxyEval { seed, step, train_loss: eval.train_loss, validation_loss: eval.validation_loss, validation_accuracy: eval.validation_accuracy },
            ),
            Progress::Checkpoint(row) => emit(on_event, &Event::Checkpoint { row }),
            Progress::StagesReady { .. } => {}
        };
        // Online and offline side by side, so that both curves start within the first minute.
        let placement = experiments::Placement { stage_backend, interleave: true, resumable: true, runs_from };
        let r = experiments::run_seed(e, cfg, seed, &cfg.runs_for(seed), cache, placement, progress, |m| {
            models = Some(m);
            Ok(())
        })
        .await?;
        if let Some(m) = models {
            for (name, model) in m.named() {
                let bytes = safetensors_bytes(&model.config, model.head, &model.values(e).await?)?;
                let args = js_sys::Array::of5(
                    &JsValue::from(seed),
                    &JsValue::from_str(name),
                    &js_sys::Uint8Array::from(&bytes[..]).into(),
                    &JsValue::from_str(&config_json(&model.config, model.head, special)),
                    &JsValue::from_str(&tokenizer),
                );
                let _ = on_model.apply(&JsValue::NULL, &args);
            }
        }
        emit(on_event, &Event::Seed { seed, heldout_accuracy: r.proxy.heldout_accuracy, timings: &r.timings });
        seeds.push(r);
    }
    experiments::merge(cfg, e.identity(), seeds)
}

/// Results of one config run over disjoint groups of its seeds, one group per Web Worker, merged into the
/// results one worker running every seed would return (`experiments::merge_seed_groups`).
#[wasm_bindgen(js_name = mergeSeedGroups)]
pub fn merge_seed_groups(config: JsValue, parts: JsValue) -> Result<JsValue, JsValue> {
    let cfg = config_from_js(config)?;
    let parts: Vec<experiments::ExperimentResults> = serde_wasm_bindgen::from_value(parts).map_err(|e| js_err(format!("parts: {e}")))?;
    to_js(&experiments::merge_seed_groups(&cfg, parts).map_err(js_error)?)
}


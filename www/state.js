// The page's state, every field declared here; and the facts Rust owns (knobs and their ranges, method
// labels, the smallest plotted KL, the speed probe's shape), filled from the wasm module at start.

export const state = {
  presets: [], preset: 'fig1-quick', config: null, backend: 'auto',
  wasm: null, // the link's ?wasm= (simd128 or relaxed): the build the workers must load; null lets them choose
  wasmBuild: null, // the build the page's worker loaded ('simd128' or 'relaxed'), from its 'ready' message
  run: null, // {id, created, preset, config, query, status, rows, sftLoss, proxyEval, models, results, timings, backend, backendUsed, elapsed}
  running: false, paused: false, bench: null,
  stage: null, // the progress bar's stage: {name, t0, s0}
  startedAt: 0, // performance.now() at Start
  pickedByUser: false, // the sample viewer shows the visitor's checkpoint, not the newest
  // Settings that could not be used, by field: from the link (until the visitor accepts the preset's values)
  // and from the knobs. While either holds any, the run does not start: it would not be the run asked for.
  urlErrors: [], knobErrors: [],
  worker: null, // the Web Worker that trains (worker.js)
  cpuOnly: false, // the device check found no usable WebGPU: runs go to the CPU backend (WebAssembly)
  // A run split over Web Workers by seed (CPU backend): {workers, parts: Map(worker → results), ended, stopped, error}
  group: null,
  committed: [], // the committed experiments (results/index.json), once loaded (found.js)
};

// A training worker's URL: worker.js, told the wasm build the link forces (if any).
export function workerUrl() {
  const url = new URL('./worker.js', import.meta.url);
  if (state.wasm) url.searchParams.set('wasm', state.wasm);
  return url;
}

// Filled from pageFacts() (src/web.rs) when the wasm module has loaded.
export const facts = { knobs: [], sliders: {}, methods: {}, min_kl: 0, bench: { batch: 0, context: 0, layers: 0, d_model: 0, heads: 0 } };

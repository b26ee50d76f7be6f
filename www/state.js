// The page's state, every field declared here; and the facts Rust owns (knobs and their ranges, method
// labels, the smallest plotted KL, the speed probe's shape), filled from the wasm module at start.

export const state = {
  presets: [], preset: 'fig1-quick', config: null, backend: 'auto',
  wasm: null, // the link's ?wasm= (simd128 or relaxed): the build the workers must load; null lets them choose
  wasmBuild: null, // the build the page's worker loaded ('simd128' or 'relaxed'), from its 'ready' message
  workers: null, // the link's ?workers= (1–16): the Web Workers a CPU run may use; null: one per core
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
  helpers: [], // the helper workers of a data-parallel run (CPU backend, one seed group): each computes its share of a step's chunks
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

// Web Workers a CPU run may use at once: the link's ?workers=, else one per core.
export function workerBudget() {
  return state.workers || navigator.hardwareConcurrency || 2;
}

// Whether a run goes to the CPU backend (chosen, or the only one the device check found).
export function isCpuRun() {
  return state.backend === 'cpu' || (state.backend === 'auto' && state.cpuOnly);
}

// The Web Workers a run of `config` is spread over (run.js starts them; the estimate counts them). On the CPU a
// worker computes on one core: seeds go to groups of their own, up to one per core but one (left to the page);
// a single group shares its data-parallel steps' chunks with helpers, up to one worker per core and per chunk. On a
// GPU one worker keeps the device to itself.
export function plannedWorkers(config) {
  if (!isCpuRun()) return { seed_groups: 1, chunk_workers: 1 };
  const budget = workerBudget();
  const seed_groups = Math.max(1, Math.min(config.seeds.length, budget - 1));
  const chunk_workers = seed_groups === 1 ? Math.max(1, Math.min(config.align_chunks || 0, budget)) : 1;
  return { seed_groups, chunk_workers };
}

// The Web Worker that owns the wasm module and the GPU device: the device check, the speed measurement and
// the training all happen here, so the page never freezes.
// In:  {type: 'speed', backend} | {type: 'bench', backend, size, repeats} | {type: 'gemm', size}
//      | {type: 'bench-dp', size, repeats, chunks, ports} (a data-parallel step with helpers on ports)
//      | {type: 'run', config, backend, useShipped, resume, ports} (ports: one MessagePort per helper worker)
//      | {type: 'helper', port} (this worker computes data-parallel chunks posted on port)
//      | {type: 'pause'|'resume'|'stop'|'step'|'lose-gpu'} (step: while paused, one step, looked into if it is an alignment
//      step; lose-gpu: destroys the GPU device, to test what a run does then)
// Out: {type: 'ready', webgpu, build} | {type: 'doctor', report} | {type: 'speed', bench} | {type: 'bench', row} | {type: 'gemm', result}
//      | {type: 'bench-dp', result} | {type: 'event', event}
//      | {type: 'model', seed, name, safetensors, config, tokenizer} | {type: 'done', results}
//      | {type: 'stopped'} | {type: 'error', message, during}
import { deleteStage, getStage, putStage } from './store.js';

// Which build of the wasm package this worker runs: `pkg-relaxed/` (SIMD128 + relaxed SIMD: the GEMM's
// multiply-adds fused where the processor has FMA) where this browser validates relaxed SIMD (Chrome/Edge 114+,
// Firefox 145+; Safari refuses to even instantiate a module that holds one relaxed op), else `pkg/` (SIMD128).
// The probe is the smallest module with one f32x4.relaxed_madd: (v128, v128, v128) -> v128.
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // types: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b, // local.get ×3, f32x4.relaxed_madd
]);
// `?wasm=simd128` or `?wasm=relaxed` on the page (passed on in this worker's URL) forces a build.
const forced = new URL(self.location.href).searchParams.get('wasm');
const build = ['simd128', 'relaxed'].includes(forced) ? forced : (WebAssembly.validate(RELAXED_PROBE) ? 'relaxed' : 'simd128');
const packageDir = build === 'relaxed' ? 'pkg-relaxed' : 'pkg';
let wasm = null; // the package's exports, once loaded


const post = (msg, transfer) => self.postMessage(msg, transfer || []);

let paused = false;
let stopRequested = false;
// While paused: steps the visitor asked to take (and look into), one per "step" message.
let stepsAllowed = 0;
let lastYield = 0;
// Every job waits for the wasm module: a message can arrive before it has loaded (a seed-group worker
// is sent its run as soon as it is created).
const loaded = import(`./${packageDir}/alignment_gap.js`).then(async (m) => { await m.default(); wasm = m; });
let busy = loaded.then(() => {}, () => {});

// Awaited by the Rust loops once per step: resolves false to go on, true to stop, 'step' to take one step while
// paused; while paused it waits. It gives the event loop a turn (so pause/stop messages arrive) at most every 50 ms.
// Calls are answered oldest first: two runs trained side by side take the visitor's steps in turn, even when a
// step's work waits on helper workers while the other run reaches its next step.
const waiting = [];
let answerTimer = null;

function control() {
  const now = performance.now();
  if (!paused && !stopRequested && now - lastYield < 50) return Promise.resolve(false);
  return new Promise((resolve) => {
    waiting.push(resolve);
    answerSoon(0);
  });
}

function answerSoon(ms) {
  if (answerTimer === null) answerTimer = setTimeout(() => { answerTimer = null; answer(); }, ms);
}

function answer() {
  lastYield = performance.now();
  while (waiting.length) {
    if (stopRequested) waiting.shift()(true);
    else if (!paused) waiting.shift()(false);
    else if (stepsAllowed > 0) { stepsAllowed -= 1; waiting.shift()('step'); }
    else { answerSoon(100); return; }
  }
}

// The SFT and proxy models shipped with the site (www/stages/, made by `alignment-gap ship-stages`): the manifest,
// or null when there is none.
async function shippedManifest() {
  try {
    const res = await fetch(new URL('./stages/index.json', import.meta.url));
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

// The stage cache the run asks before it trains (runFigure's `stages`): this browser's IndexedDB first, then (when
// the visitor allows it) the shipped files, each checked against the manifest's size and SHA-256 before use. The
// run's own entries (`run-…`: finished runs and the states they keep at each checkpoint) are kept so that a reload
// can resume it (`resume`), and dropped once the whole run is done (`dropRuns`).
async function stageCache(useShipped, resume, previousBackend) {
  const manifest = useShipped ? await shippedManifest() : null;
  const load = async (keys) => {
    const found = {};
    for (const key of keys) {
      try {
        const kept = await getStage(key);
        if (kept) { found[key] = kept; continue; }
      } catch { /* no IndexedDB here: shipped files only */ }
      const entry = manifest?.entries.find((e) => e.key === key);
      if (!entry) continue;
      try {
        const res = await fetch(new URL(`./stages/${entry.file}`, import.meta.url));
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const bytes = await res.arrayBuffer();
        const sha = hex(await crypto.subtle.digest('SHA-256', bytes));
        if (bytes.byteLength !== entry.bytes || sha !== entry.sha256) throw new Error(`${bytes.byteLength} bytes, SHA-256 ${sha}; the manifest says ${entry.bytes} bytes, ${entry.sha256}`);
        found[key] = { safetensors: new Uint8Array(bytes), config: entry.config, meta: entry.meta };
      } catch (e) {
        post({ type: 'event', event: { type: 'note', text: `The shipped ${entry.stage} of seed ${entry.seed} (www/stages/${entry.file}) was not used: ${e.message || e}. It is trained here instead.` } });
      }
    }
    return found;
  };
  const runKeys = new Set();
  const loadAll = async (keys) => {
    const found = await load(keys);
    for (const key of Object.keys(found)) if (key.startsWith('run-')) runKeys.add(key);
    return found;
  };
  // Writes in order, so that a reload mid-write leaves the newest complete state (the Rust side checks their steps).
  let writes = Promise.resolve();
  const store = (key, entry) => {
    if (key.startsWith('run-')) runKeys.add(key);
    writes = writes.then(() => putStage(key, entry)).catch((e) => console.warn('stage cache: could not keep', key, e));
  };
  const forget = (key) => { runKeys.delete(key); writes = writes.then(() => deleteStage(key)).catch(() => {}); };
  const dropRuns = async () => {
    for (const key of runKeys) forget(key);
    await writes;
  };
  return { load: loadAll, store, forget, resume: !!resume, previous_backend: previousBackend ?? null, shipped_backend: manifest?.backend ?? null, dropRuns };
}

// The helper workers of a data-parallel run (run.js starts them; one MessagePort each): `send(i, request)` posts a
// chunk request (bytes) to helper i and resolves to its reply. Each port answers its requests in order.
function helperPool(ports) {
  if (!ports?.length) return undefined;
  let next = 0;
  const waiting = new Map();
  // Set when the page says a helper failed: every wait fails with it, now and later, so the run ends as failed
  // instead of waiting for a reply that will not come.
  let lost = null;
  for (const port of ports) {
    port.onmessage = ({ data }) => {
      const w = waiting.get(data.id);
      // A reply to a wait already failed (a helper was lost): nobody waits for it.
      if (!w) return;
      waiting.delete(data.id);
      if (data.error) w.reject(new Error(data.error));
      else w.resolve(data.reply);
    };
  }
  runHelpers = {
    count: ports.length,
    send: (i, request) => new Promise((resolve, reject) => {
      if (lost) { reject(new Error(lost)); return; }
      const id = next++;
      waiting.set(id, { resolve, reject });
      ports[i].postMessage({ id, request }, [request.buffer]);
    }),
    lose: (message) => {
      lost = message;
      for (const w of waiting.values()) w.reject(new Error(message));
      waiting.clear();
    },
  };
  return runHelpers;
}

// The helpers of the run in progress (helperPool), for 'helpers-lost'.
let runHelpers;

// A helper worker: does what a run's worker posts on `port` (a step's chunks, a part of a batch to sample:
// wasm.helperJob) and posts back the reply.
function serveChunks(port) {
  port.onmessage = async ({ data }) => {
    try {
      await loaded;
      const reply = await wasm.helperJob(data.request);
      port.postMessage({ id: data.id, reply }, [reply.buffer]);
    } catch (e) {
      port.postMessage({ id: data.id, error: String(e) });
    }
  };
}

async function run(config, backend, useShipped, resume, previousBackend, ports) {
  let stages = null;
  try {
    stages = await stageCache(useShipped, resume, previousBackend);
    const results = await wasm.runFigure(config, backend,
      (event) => post({ type: 'event', event }),
      (seed, name, safetensors, configJson, tokenizer) =>
        post({ type: 'model', seed, name, safetensors, config: configJson, tokenizer }, [safetensors.buffer]),
      control, stages, helperPool(ports));
    await stages.dropRuns();
    post({ type: 'done', results });
  } catch (e) {
    const message = String(e);
    // The run's error says what kind it is (Rust's ErrorKind): a lost GPU, a stop, or a failure.
    const gpuLost = e?.kind === 'gpu_lost';
    // Its finished runs and each run's state at its last checkpoint are kept for going on on the CPU; a run stopped
    // or failed otherwise cannot be resumed, so they are dropped.
    if (!gpuLost) await stages?.dropRuns();
    if (e?.kind === 'stopped') post({ type: 'stopped' });
    else post({ type: 'error', message, during: 'run', gpuLost });
  }
}

self.onmessage = ({ data }) => {
  if (data.type === 'pause') paused = true;
  else if (data.type === 'resume') { paused = false; stepsAllowed = 0; }
  else if (data.type === 'step') { if (paused) stepsAllowed = 1; }
  // The device lost as a driver reset would lose it (the page's test; from the console: alignmentGap.loseGpu()).
  else if (data.type === 'lose-gpu') post({ type: 'event', event: { type: 'note', text: wasm?.destroyGpuDevice() ? 'The GPU device was destroyed (as a test).' : 'No GPU device to destroy.' } });
  else if (data.type === 'stop') stopRequested = true;
  // One job at a time, in order.
  else if (data.type === 'run') {
    // A new run starts unpaused; a stop sent after this message (even before the run begins) holds.
    paused = false;
    stopRequested = false;
    busy = busy.then(() => run(data.config, data.backend, data.useShipped !== false, data.resume === true, data.previousBackend, data.ports));
  }
  else if (data.type === 'helper') serveChunks(data.port);
  // A helper of this worker's run failed (the page saw its error event).
  else if (data.type === 'helpers-lost') runHelpers?.lose(data.message);
  else if (data.type === 'bench') {
    busy = busy.then(async () => {
      try {
        post({ type: 'bench', row: await wasm.benchSize(data.backend, data.size, data.repeats) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'bench' });
      }
    });
  } else if (data.type === 'bench-dp') {
    // A data-parallel alignment step shared with the helper workers on data.ports (bench/wasm.mjs --data-parallel).
    busy = busy.then(async () => {
      try {
        post({ type: 'bench-dp', result: await wasm.benchAlignStep(data.size, data.repeats, data.chunks, helperPool(data.ports)) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'bench-dp' });
      }
    });
  } else if (data.type === 'profile') {
    // One step's per-op profile on the CPU backend (bench/wasm.mjs --profile).
    busy = busy.then(async () => {
      try {
        post({ type: 'profile', ops: await wasm.benchProfile(data.size, data.steps) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'profile' });
      }
    });
  } else if (data.type === 'gemm') {
    busy = busy.then(async () => {
      try {
        post({ type: 'gemm', result: await wasm.benchGemm(data.size) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'gemm' });
      }
    });
  } else if (data.type === 'speed') {
    busy = busy.then(async () => {
      try {
        post({ type: 'speed', bench: await wasm.measureSpeed(data.backend) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'speed' });
      }
    });
  }
};

async function main() {
  try {
    await loaded;
  } catch (e) {
    post({ type: 'error', message: `could not load the wasm package (www/${packageDir}/): ${e}`, during: 'load' });
    return;
  }
  post({ type: 'ready', webgpu: wasm.hasWebGpu(), build });
  // A worker started for a group of seeds or as a helper (run.js, CPU backend) trains only: the page's first worker
  // has already checked the device.
  if (self.name === 'seed-group' || self.name === 'chunk-helper') return;
  busy = busy.then(async () => {
    try {
      post({ type: 'doctor', report: await wasm.doctor('auto') });
    } catch (e) {
      post({ type: 'error', message: String(e), during: 'doctor' });
    }
  });
}

main();

// The run: start, pause, stop, the worker's progress events, and keeping the run in IndexedDB as it goes.
import { validateConfig } from './pkg/alignment_gap.js';
import { putRun } from './store.js';
import { $, fmtTime } from './ui.js';
import { setRunStatus, setButtons } from './buttons.js';
import { state, workerUrl, isCpuRun, plannedWorkers } from './state.js';
import { renderSoon, renderAll } from './render.js';
import { listSaved } from './saved.js';
import { renderInside } from './inside.js';
import { readUrl } from './settings.js';

let saveTimer = null;

export function saveSoon() {
  if (saveTimer) return;
  saveTimer = setTimeout(() => { saveTimer = null; saveNow(); }, 1000);
}

export async function saveNow() {
  if (!state.run) return;
  try { await putRun(state.run); } catch (e) { console.warn('could not store the run', e); }
  listSaved();
}

export function start() {
  const bad = [...state.urlErrors, ...state.knobErrors];
  if (bad.length) { setRunStatus(`Cannot start: fix ${bad.map((e) => e.field).join(', ')} first`, 'error'); return; }
  // Data-parallel steps are the CPU workers'; a GPU takes one pass, and the run's config (results.json) says so.
  const config = isCpuRun() ? state.config : { ...state.config, align_chunks: 0 };
  try { validateConfig(config); } catch (e) { setRunStatus(`Cannot start: ${e}`, 'error'); return; }
  launch({
    id: `${Date.now()}`, created: new Date().toISOString(), preset: state.preset, config,
    query: location.search, status: 'running', rows: [], sftLoss: {}, proxyEval: {}, models: [], results: null,
    timings: [], backend: state.backend, elapsed: 0, useShipped: $('use-shipped').checked,
  }, false);
}

// Goes on with a saved run that a reload (or a closed tab) cut off: the same settings, backend and shipped-models
// choice; every run of it that had finished comes from this browser's cache, and the run that was going resumes from
// its last checkpoint (its policy, optimiser state and data position were kept there). Its curves are drawn again.
// A run whose GPU was lost goes on the same way on the CPU backend, from the stages and run states the GPU left.
export function resumeSaved(saved) {
  if (state.running) return;
  // A run continued on the CPU and cut off again still takes its stages and runs from the lost GPU's.
  const previousBackend = saved.status === 'gpu-lost' ? saved.lostGpu?.backend : saved.continuedFrom;
  const backend = previousBackend ? 'cpu' : saved.backend;
  history.replaceState(null, '', saved.query || '?');
  readUrl();
  state.preset = saved.preset;
  state.config = saved.config;
  state.backend = backend;
  $('backend').value = backend;
  $('use-shipped').checked = saved.useShipped !== false;
  launch({
    ...saved, status: 'running', rows: [], sftLoss: {}, proxyEval: {}, models: [], results: null, timings: [], backend, stagesFrom: undefined,
    resumedAt: saved.rows.length, resumes: (saved.resumes || 0) + 1, ...(previousBackend ? { continuedFrom: previousBackend } : {}),
  }, true, previousBackend);
}

function launch(run, resume, previousBackend) {
  state.run = run;
  state.running = true;
  state.paused = false;
  state.startedAt = performance.now();
  state.stages = new Map();
  delete document.body.dataset.stagesFrom;
  delete document.body.dataset.cachedStages;
  delete document.body.dataset.resumedRuns;
  state.stage = null;
  state.pickedByUser = false;
  state.inside = null;
  renderInside(null);
  $('progress').hidden = false;
  setRunStatus(!resume ? 'Running…' : previousBackend ? `Continuing on the CPU from the last checkpoints the GPU (${previousBackend}) left…`
    : `Resuming the run of ${new Date(run.created).toLocaleString()} from its last checkpoint…`);
  document.body.dataset.run = 'running';
  renderAll();
  setButtons();
  // A resumed run is stored again once its first checkpoint is back, so one that cannot go on keeps its record.
  if (!resume) saveNow();
  // Seed groups, and helpers for one group's data-parallel steps (plannedWorkers says how many of each).
  const seeds = run.config.seeds;
  const planned = plannedWorkers(run.config);
  const count = planned.seed_groups;
  const workers = [state.worker];
  for (let i = 1; i < count; i++) {
    const w = new Worker(workerUrl(), { type: 'module', name: 'seed-group' });
    w.onmessage = state.worker.onmessage;
    // A seed worker that cannot start fails the run like any worker's error (the others are stopped).
    w.onerror = (e) => state.worker.onmessage({ data: { type: 'error', during: 'run', message: `a seed worker failed: ${e.message || 'could not load'}` }, target: w });
    workers.push(w);
  }
  // One seed group on the CPU with data-parallel steps: the run's chunks are shared with helper workers, each
  // talking to the run's worker on a channel of its own.
  const helperCount = planned.chunk_workers - 1;
  const ports = [];
  state.helpers = [];
  for (let i = 0; i < helperCount; i++) {
    const h = new Worker(workerUrl(), { type: 'module', name: 'chunk-helper' });
    h.onmessage = () => {};
    // The run's worker is told, and its run fails with this message: it must not wait for the lost helper's replies.
    h.onerror = (e) => state.worker.postMessage({ type: 'helpers-lost', message: `a helper worker failed: ${e.message || 'could not load'}` });
    const channel = new MessageChannel();
    h.postMessage({ type: 'helper', port: channel.port2 }, [channel.port2]);
    ports.push(channel.port1);
    state.helpers.push(h);
  }
  state.group = { workers, parts: new Map(), ended: 0, stopped: false, error: null };
  document.body.dataset.workers = String(count + helperCount);
  workers.forEach((w, i) => {
    const group = seeds.filter((_, j) => j % count === i);
    const mine = i === 0 ? ports : [];
    w.postMessage({ type: 'run', config: { ...run.config, seeds: group }, backend: state.backend, useShipped: run.useShipped !== false, resume, previousBackend, ports: mine }, mine);
  });
}


// A message to every worker of the run (pause, resume, stop), or to the page's worker when none runs.
export function broadcast(msg) {
  for (const w of state.group?.workers || [state.worker]) w.postMessage(msg);
}

export function finish(status, message, kind) {
  for (const w of state.group?.workers.slice(1) || []) w.terminate();
  for (const h of state.helpers) h.terminate();
  state.helpers = [];
  state.group = null;
  state.running = false;
  state.paused = false;
  state.run.status = status;
  state.run.elapsed = (performance.now() - state.startedAt) / 1000;
  setRunStatus(message, kind);
  document.body.dataset.run = status;
  setButtons();
  renderAll();
  // A resume that ends before any checkpoint came back leaves the saved record as it was.
  if (state.run.rows.length || state.run.resumedAt === undefined) saveNow();
}

// The status line while a run trains: its backend, the workers sharing it, and where its SFT and proxy came from (each
// event adds its part, so none hides another's). Why a GPU was not used is the device panel's to say, at length.
function runningStatus(run) {
  const parts = [`Running on ${run.backendUsed}`];
  if (run.chunks > 0) {
    parts.push(run.workers > 1
      ? `each alignment step in ${run.chunks} chunks; steps, sampling and evaluation shared by ${run.workers} Web Workers`
      : `each alignment step in ${run.chunks} chunks`);
  }
  if (run.stagesFrom) parts.push(`from the SFT and proxy models shipped with the site (trained by the CLI on ${run.stagesFrom}); untick "start from the shipped models" to train them here`);
  return `${parts.join(', ')}…`;
}

export function onEvent(ev) {
  const run = state.run;
  if (!run) return;
  if (ev.type === 'backend') {
    run.backendUsed = ev.backend;
    setRunStatus(runningStatus(run));
  } else if (ev.type === 'workers') {
    // The workers one run is shared by (its own and its helpers), kept with the run.
    run.workers = ev.workers;
    run.chunks = ev.chunks;
    document.body.dataset.runWorkers = String(ev.workers);
    setRunStatus(runningStatus(run));
  } else if (ev.type === 'stage') {
    const now = performance.now();
    // Each stage's start, by name: an online and an offline run trained side by side report in turn.
    state.stages ||= new Map();
    if (!state.stages.has(ev.name)) {
      state.stages.set(ev.name, { t0: now, s0: ev.step });
      // Stages that came from a cache (this browser's, or shipped with the site), counted for whoever looks.
      if (ev.name.endsWith('(cached)')) document.body.dataset.cachedStages = String(Number(document.body.dataset.cachedStages || 0) + 1);
      if (ev.name.includes('(resumed at step')) document.body.dataset.resumedRuns = String(Number(document.body.dataset.resumedRuns || 0) + 1);
    }
    state.stage = { name: ev.name, ...state.stages.get(ev.name) };
    const { t0, s0 } = state.stage;
    const rate = (ev.step - s0) / ((now - t0) / 1000);
    const left = rate > 0 ? (ev.total - ev.step) / rate : NaN;
    $('stage').textContent = ev.name;
    $('stage-bar').max = ev.total;
    $('stage-bar').value = ev.step;
    if (state.paused) setButtons();
    $('stage-numbers').textContent = `step ${ev.step} of ${ev.total}` + (rate > 0 ? ` · ${rate.toFixed(1)} steps/s · ${fmtTime(left)} left in this stage` : '') +
      ` · ${fmtTime((now - state.startedAt) / 1000)} elapsed`;
  } else if (ev.type === 'step_inside') {
    state.inside = ev.inside;
    renderInside(ev.inside);
    setRunStatus(`Paused after step ${ev.inside.step} of the ${ev.inside.source.replace('_', ' ')} run: see "Look inside one update" below. Step again, resume or stop.`, 'warn');
  } else if (ev.type === 'stages') {
    // SFT and proxy were trained by the CLI and shipped with the site: said in the run, kept with it.
    run.stagesFrom = ev.backend;
    document.body.dataset.stagesFrom = ev.backend;
    setRunStatus(runningStatus(run));
  } else if (ev.type === 'note') {
    setRunStatus(ev.text, 'warn');
  } else if (ev.type === 'sft_loss') {
    (run.sftLoss[ev.seed] ||= []).push([ev.step, ev.loss]);
    renderSoon();
  } else if (ev.type === 'proxy_eval') {
    (run.proxyEval[ev.seed] ||= []).push([ev.step, ev.validation_accuracy]);
    renderSoon();
  } else if (ev.type === 'checkpoint') {
    run.rows.push(ev.row); // as results.json holds it: the Rust Row, its checkpoint flattened
    renderSoon();
    saveSoon();
  } else if (ev.type === 'seed') {
    run.timings.push({ seed: ev.seed, timings: ev.timings, proxy_heldout_accuracy: ev.heldout_accuracy });
    saveSoon();
  }
}

// The device panel (adapter, limits, kernel self-check, measured speed) and every message from the worker.
import { $, el, fmtTime, fact, mib } from './ui.js';
import { state, facts, workerBudget } from './state.js';
import { learnFromRun, updateEstimate } from './settings.js';
import { mergeSeedGroups } from './pkg/alignment_gap.js';
import { saveSoon, finish, onEvent, broadcast } from './run.js';
import { setRunStatus, setButtons, showReadiness } from './buttons.js';
import { renderModels } from './render.js';

export function setDeviceStatus(text, kind) {
  const s = $('device-status');
  s.textContent = text;
  s.className = `status ${kind || ''}`;
}

export function showReport(report) {
  const dl = $('device-facts');
  dl.replaceChildren();
  fact(dl, 'Backend', report.backend);
  // The CPU backend's WebAssembly build (worker.js picks it by what this browser validates).
  if (state.wasmBuild) fact(dl, 'WebAssembly build', state.wasmBuild === 'relaxed' ? 'SIMD128 + relaxed SIMD (www/pkg-relaxed/)' : 'SIMD128 (www/pkg/)');
  // How many Web Workers a CPU run may use: a run's seeds, or one run's data-parallel chunks, are shared among them.
  if (report.note || report.backend.startsWith('cpu')) {
    fact(dl, 'Web Workers', `${workerBudget()} (${state.workers ? 'set by the link, ?workers=' : 'one per core'}): a run's seeds, or one run's data-parallel chunks, are shared among them`);
  }
  const adapter = report.adapters[0];
  if (adapter) {
    const l = adapter.limits;
    fact(dl, 'Adapter', `${adapter.name} (${adapter.backend}, ${adapter.device_type})`);
    fact(dl, 'Limits', `buffer ${mib(l.max_buffer_size)}, storage binding ${mib(l.max_storage_buffer_binding_size)}, ` +
      `${l.max_storage_buffers_per_shader_stage} storage buffers/stage, workgroup memory ${l.max_compute_workgroup_storage_size / 1024} KiB, ` +
      `${l.max_compute_invocations_per_workgroup} invocations/workgroup`);
  }
  const sc = report.selfcheck;
  fact(dl, 'Self-check', `${sc.passed} passed, ${sc.failed} failed`);
  dl.hidden = false;
  $('selfcheck-rows').replaceChildren(...sc.results.map((r) => {
    const err = r.relative_error == null ? '—' : r.relative_error.toExponential(2);
    const verdict = r.passed ? 'OK' : `FAIL${r.message ? ': ' + r.message : ''}`;
    return el('tr', { className: r.passed ? 'ok' : 'fail' }, ...[r.name, err, r.reference, verdict].map((t) => el('td', { textContent: t })));
  }));
  $('selfcheck-summary').textContent = `Kernel self-check: ${sc.passed} passed, ${sc.failed} failed (against the ${sc.results[0]?.reference ?? 'reference'})`;
  $('selfcheck').hidden = false;
  $('selfcheck').open = sc.failed > 0;
  if (report.note) {
    setDeviceStatus(`WebGPU is unavailable here, so everything runs on the CPU backend (WebAssembly), which is slower. (${report.note})`, 'warn');
  } else if (sc.failed > 0) {
    setDeviceStatus(`GPU ready, but ${sc.failed} kernel check(s) failed: results on this device cannot be trusted.`, 'error');
  } else {
    setDeviceStatus(`GPU ready: ${adapter ? adapter.name : report.backend}. All ${sc.passed} kernel checks passed.`, 'ok');
  }
  state.cpuOnly = !!report.note || report.backend.startsWith('cpu');
  document.body.dataset.doctor = sc.failed === 0 ? 'passed' : 'failed';
  showReadiness();
  setButtons();
}

// How a run's worker ended: results, stopped or failed. A run split over workers by seed ends when every
// worker has, with the parts merged by Rust into the results one worker would have returned.
function runEnded(from, data) {
  const g = state.group;
  if (!g || g.workers.length === 1) return runOutcome(data);
  g.ended += 1;
  if (data.type === 'done') g.parts.set(from, data.results);
  else if (data.type === 'stopped') g.stopped = true;
  else if (!g.error) { g.error = data; broadcast({ type: 'resume' }); broadcast({ type: 'stop' }); }
  if (g.ended < g.workers.length) return;
  if (g.error) return runOutcome(g.error);
  if (g.stopped) return runOutcome({ type: 'stopped' });
  try {
    runOutcome({ type: 'done', results: mergeSeedGroups(state.run.config, g.workers.map((w) => g.parts.get(w))) });
  } catch (e) {
    runOutcome({ type: 'error', during: 'run', message: `could not merge the seeds' results: ${e}` });
  }
}

function runOutcome(data) {
  if (data.type === 'done') {
    state.run.results = data.results;
    // The estimate is for one worker; a run split over several would teach it a wrong speed.
    if (!state.group || state.group.workers.length === 1) learnFromRun(state.run.config, (performance.now() - state.startedAt) / 1000, !!state.run.stagesFrom);
    updateEstimate();
    finish('finished', `Finished in ${fmtTime((performance.now() - state.startedAt) / 1000)}: ${state.run.rows.length} checkpoints. Stored in this browser (Saved runs).`, 'ok');
  } else if (data.type === 'stopped') {
    finish('stopped', `Stopped. The ${state.run.rows.length} checkpoints so far are kept (plots, downloads, Saved runs).`, 'warn');
  } else if (data.gpuLost) {
    state.run.lostGpu = { backend: state.run.backendUsed, message: data.message };
    finish('gpu-lost', `The GPU stopped working: ${data.message}. The ${state.run.rows.length} checkpoints up to then are kept, and so is each run's state at its last checkpoint: "Continue on the CPU" goes on from there (slower, with the same settings; the runs trained on from there are the CPU backend's).`, 'error');
  } else {
    finish('failed', `The run failed: ${data.message}. The ${state.run.rows.length} checkpoints up to then are kept.`, 'error');
  }
}

export function onWorkerMessage({ data, target }) {
  // Workers started for a group of seeds report only their run (any error of theirs ends it); the progress
  // bar follows the first worker.
  if (target !== state.worker) {
    if (data.type === 'error') { if (state.group?.workers.includes(target)) runEnded(target, { ...data, during: 'run' }); return; }
    if (['ready', 'doctor', 'speed'].includes(data.type) || (data.type === 'event' && data.event.type === 'stage')) return;
  }
  if (data.type === 'ready') {
    state.wasmBuild = data.build;
    document.body.dataset.wasmBuild = data.build;
    if (data.webgpu) setDeviceStatus('WebGPU found; checking the kernels on this GPU…');
  } else if (data.type === 'doctor') {
    showReport(data.report);
    const cached = sessionStorage.getItem(`bench-${state.backend}`);
    if (cached) { state.bench = JSON.parse(cached); updateEstimate(); } else state.worker.postMessage({ type: 'speed', backend: state.backend });
  } else if (data.type === 'speed') {
    state.bench = data.bench;
    sessionStorage.setItem(`bench-${state.backend}`, JSON.stringify(data.bench));
    fact($('device-facts'), `Measured speed (${data.bench.backend})`, `training step (${facts.bench.batch} × ${facts.bench.context} tokens, ${facts.bench.layers} layers × d ${facts.bench.d_model}) ${data.bench.train_step_ms.toFixed(0)} ms; sampling ${Math.round(data.bench.sample_tokens_per_s)} tokens/s`);
    updateEstimate();
  } else if (data.type === 'event') {
    onEvent(data.event);
  } else if (data.type === 'model') {
    state.run?.models.push({ seed: data.seed, name: data.name, safetensors: data.safetensors, config: data.config, tokenizer: data.tokenizer });
    renderModels();
    saveSoon();
  } else if (data.type === 'done' || data.type === 'stopped') {
    if (state.run) runEnded(target, data);
  } else if (data.type === 'error') {
    if (data.during === 'run' && state.run) {
      runEnded(target, data);
    } else if (data.during === 'speed') {
      $('estimate').textContent = `Could not measure this device's speed: ${data.message}`;
    } else {
      setDeviceStatus(`Error: ${data.message}`, 'error');
      document.body.dataset.doctor = 'error';
      setRunStatus('The device check failed; see Device below.', 'error');
    }
  }
}

// The page's UI thread: loads the wasm module (for pure functions: checking settings, the URL, drawing
// with the same Rust code as the CLI), starts the Web Worker that trains (worker.js) and wires the controls.
// Each part lives in its own module: settings.js, run.js, render.js, downloads.js, saved.js, device.js.
import init from './pkg/alignment_gap.js';
import { presets, metricsCsv, pageFacts } from './pkg/alignment_gap.js';
import { markInterrupted } from './store.js';
import { $, el } from './ui.js';
import { state, facts, workerUrl } from './state.js';
import { buildKnobs, writeUrl, applyPreset, readUrl, updateEstimate } from './settings.js';
import { start, finish, broadcast, resumeSaved } from './run.js';
import { setRunStatus, setButtons } from './buttons.js';
import { buildAnalysisBoxes, plotRows, renderAll, renderSamples } from './render.js';
import { download, resultsJson, svgText, pngOf } from './downloads.js';
import { listSaved, onResume } from './saved.js';
import { setDeviceStatus, onWorkerMessage } from './device.js';
import { loadFound } from './found.js';
import { refreshCompare } from './compare.js';

async function main() {
  try {
    await init();
  } catch (e) {
    setDeviceStatus(`Could not load the wasm package (www/pkg/): ${e}`, 'error');
    document.body.dataset.doctor = 'error';
    return;
  }
  Object.assign(facts, pageFacts());
  buildAnalysisBoxes();
  state.presets = presets();
  $('preset').replaceChildren(...state.presets.map((p) => el('option', { value: p.name, textContent: p.title })));
  buildKnobs();
  readUrl();
  // The SFT and proxy models shipped with the site (their keys): the estimate leaves out what they save.
  fetch(new URL('./stages/index.json', import.meta.url)).then((r) => (r.ok ? r.json() : null)).then((m) => {
    state.shipped = m && { backend: m.backend, keys: m.entries.map((e) => e.key) };
    updateEstimate();
  }).catch(() => {});
  $('use-shipped').addEventListener('change', () => updateEstimate());
  // The committed result first; the page does not wait for it.
  loadFound();
  $('preset').addEventListener('change', () => applyPreset($('preset').value));
  $('backend').addEventListener('change', () => { state.backend = $('backend').value; state.bench = null; writeUrl(); state.worker.postMessage({ type: 'speed', backend: state.backend }); });
  $('start').addEventListener('click', start);
  $('pause').addEventListener('click', () => { broadcast({ type: 'pause' }); state.paused = true; state.run.status = 'paused'; setRunStatus('Paused (resume or stop).', 'warn'); setButtons(); });
  $('resume').addEventListener('click', () => { broadcast({ type: 'resume' }); state.paused = false; state.run.status = 'running'; setRunStatus('Running…'); setButtons(); });
  $('continue-cpu').addEventListener('click', () => resumeSaved(state.run));
  // What a lost GPU does to a run, tried by hand from the console (the page's test does the same).
  // And a helper worker lost mid-run (as a crash would lose it: gone, and its error event fired).
  window.alignmentGap = {
    loseGpu: () => state.worker.postMessage({ type: 'lose-gpu' }),
    loseHelper: () => { const h = state.helpers?.[0]; if (!h) return false; h.terminate(); h.onerror({ message: 'lost for a test' }); return true; },
  };
  // One step of the worker that trains the first seeds (each worker pauses on its own).
  $('step').addEventListener('click', () => { state.worker.postMessage({ type: 'step' }); setRunStatus('Taking one step…', 'warn'); });
  $('stop').addEventListener('click', () => { broadcast({ type: 'resume' }); broadcast({ type: 'stop' }); setRunStatus('Stopping at the end of this step…', 'warn'); });
  $('copy-link').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(location.href); setRunStatus('Link copied: it opens this page with these settings and seeds.', 'ok'); } catch { setRunStatus(`Link: ${location.href}`); }
  });
  $('analyses').addEventListener('change', () => renderAll());
  // Figure 1's layout follows the width (a phone turned, a window resized).
  window.addEventListener('resize', () => {
    const layout = ($('fig1').clientWidth || window.innerWidth) < 700 ? 'compact' : 'wide';
    if (layout !== $('fig1').dataset.layout) renderAll();
    const plot = $('compare-plot');
    if (plot.dataset.layout && plot.dataset.layout !== ((plot.clientWidth || window.innerWidth) < 700 ? 'compact' : 'wide')) refreshCompare();
  });
  $('checkpoint-pick').addEventListener('change', () => { state.pickedByUser = true; renderSamples(); });
  $('dl-json').addEventListener('click', () => download('results.json', resultsJson(), 'application/json'));
  $('dl-csv').addEventListener('click', () => download('metrics.csv', metricsCsv(plotRows()), 'text/csv'));
  $('dl-svg').addEventListener('click', () => download('fig1.svg', svgText('fig1'), 'image/svg+xml'));
  $('dl-png').addEventListener('click', async () => {
    try { download('fig1.png', await pngOf(svgText('fig1'), 900, 580)); } catch (e) { setRunStatus(`PNG: ${e}`, 'error'); }
  });
  $('dl-plots').addEventListener('click', () => {
    for (const [id, name] of [['plot-sft', 'sft_loss'], ['plot-proxy', 'proxy_accuracy'], ['plot-kl', 'kl_over_steps'], ['plot-loss', 'alignment_loss']]) download(`${name}.svg`, svgText(id), 'image/svg+xml');
    // The analyses drawn, under the CLI's file names (pageFigures).
    for (const div of document.querySelectorAll('#analysis-plots .plot')) {
      if (div.querySelector('svg')) download(div.dataset.file, svgText(div.id), 'image/svg+xml');
    }
  });
  renderAll();
  try { await markInterrupted(); } catch { /* no IndexedDB: listSaved says so */ }
  onResume(resumeSaved);
  listSaved();
  if (!('gpu' in navigator)) setDeviceStatus('WebGPU is unavailable in this browser; the CPU backend (WebAssembly) will be used. Checking it…', 'warn');
  try {
    state.worker = new Worker(workerUrl(), { type: 'module' });
  } catch (e) {
    setDeviceStatus(`Could not start the Web Worker: ${e}`, 'error');
    return;
  }
  state.worker.onmessage = onWorkerMessage;
  state.worker.onerror = (e) => {
    setDeviceStatus(`The worker failed: ${e.message || 'could not load www/worker.js or the wasm package'}`, 'error');
    document.body.dataset.doctor = 'error';
    if (state.running) finish('failed', `The worker failed: ${e.message}. Checkpoints up to then are kept.`, 'error');
  };
}

main();

// Settings, validation and the link: the knobs, the URL query (the CLI's --set keys), presets, and the
// time estimate from the measured speed.
import { presets, configFromQuery, queryFromConfig, estimateSecondsWith } from './pkg/alignment_gap.js';
import { $, el, get, show, fmtTime } from './ui.js';
import { state, facts, plannedWorkers } from './state.js';
import { setButtons, showReadiness } from './buttons.js';

// List knobs with a few meaningful values get a slider over them: each stop runs one arm beside online; the
// list knob it writes stays the one source of the setting. The stops and what each means are the arm's own, from
// Rust (pageFacts().sliders); only the element ids and names are the page's. Semi-online: its refresh interval
// (online is refresh 1). IPO-MD: π_sft's weight m in the sampling mixture (online is m = 0).
const SLIDER_IDS = {
  semi_online: { id: 'semi-online', aria: 'Semi-online refresh interval' },
  mixtures: { id: 'mixture', aria: 'IPO-MD mixture weight of π_sft' },
};

function sliders() {
  return Object.fromEntries(Object.entries(SLIDER_IDS).map(([key, ids]) => [key, { ...ids, stops: facts.sliders[key] }]).filter(([, s]) => s.stops));
}

function stopsSlider(input, { id, aria, stops }) {
  const slider = el('input', { type: 'range', id: `${id}-slider`, min: '0', max: String(stops.length - 1), step: '1' });
  slider.setAttribute('aria-label', aria);
  const shown = el('output', { id: `${id}-shown`, htmlFor: `${id}-slider` });
  slider.addEventListener('input', () => {
    const [value, label] = stops[Number(slider.value)];
    input.value = value;
    shown.textContent = label;
    onKnobChange();
  });
  return el('span', { className: 'slider' }, slider, shown);
}

function fillSliders() {
  for (const [key, { id, stops }] of Object.entries(sliders())) {
    const slider = $(`${id}-slider`);
    if (!slider) continue;
    const v = get(state.config, key) || [];
    const at = v.length === 0 ? 0 : v.length === 1 ? stops.findIndex(([s]) => s === String(v[0])) : -1;
    // A list of several values (from the text knob or a link) has no one stop: the slider says so.
    $(`${id}-shown`).textContent = at >= 0 ? stops[at][1] : `several: ${show(v)}`;
    if (at >= 0) slider.value = String(at);
  }
}

export function buildKnobs() {
  const form = $('knobs');
  form.replaceChildren();
  for (const { key, label, kind, help } of facts.knobs) {
    const id = `knob-${key.replace('.', '-')}`;
    const input = kind === 'bool' ? el('input', { type: 'checkbox', id }) : el('input', { type: 'text', id, inputMode: kind === 'int' ? 'numeric' : 'text' });
    input.dataset.key = key;
    input.addEventListener('change', onKnobChange);
    form.append(el('div', { className: 'knob' },
      el('label', { htmlFor: id, textContent: label }), input,
      ...(sliders()[key] ? [stopsSlider(input, sliders()[key])] : []),
      el('span', { className: 'hint', textContent: help }),
      el('span', { className: 'field-error', id: `${id}-error`, role: 'alert' })));
  }
}

export function fillKnobs() {
  for (const input of $('knobs').querySelectorAll('input[data-key]')) {
    const v = get(state.config, input.dataset.key);
    if (input.type === 'checkbox') input.checked = !!v; else input.value = show(v);
  }
  fillSliders();
}

export function knobQuery() {
  const params = [`preset=${encodeURIComponent(state.preset)}`];
  for (const input of $('knobs').querySelectorAll('input[data-key]')) {
    const v = input.type === 'checkbox' ? String(input.checked) : input.value.trim();
    params.push(`${input.dataset.key}=${encodeURIComponent(v)}`);
  }
  return params.join('&');
}

export function showFieldErrors(errors) {
  for (const e of $('knobs').querySelectorAll('.field-error')) e.textContent = '';
  for (const { field, message } of errors) {
    const target = $(`knob-${field.replace('.', '-')}-error`);
    if (target) target.textContent = message;
  }
}

export function writeUrl() {
  let q = queryFromConfig(state.preset, state.config);
  if (state.backend !== 'auto') q += `&backend=${state.backend}`;
  if (state.wasm) q += `&wasm=${state.wasm}`;
  if (state.workers) q += `&workers=${state.workers}`;
  history.replaceState(null, '', `?${q}`);
  updateEstimate();
}

export function onKnobChange() {
  const parsed = configFromQuery(knobQuery());
  state.config = parsed.config;
  state.knobErrors = parsed.errors;
  showFieldErrors(parsed.errors);
  fillSliders();
  writeUrl();
  setButtons();
  showReadiness();
}

// The visitor accepts the preset's values for the link's unusable settings: the run may start.
export function acceptUrlDefaults() {
  state.urlErrors = [];
  $('url-errors').hidden = true;
  setButtons();
  showReadiness();
}

export function applyPreset(name) {
  state.preset = name;
  state.config = presets().find((p) => p.name === name).config;
  $('preset-description').textContent = state.presets.find((p) => p.name === name).description;
  fillKnobs();
  showFieldErrors([]);
  state.knobErrors = [];
  acceptUrlDefaults();
  writeUrl();
}

// Reads the page's own URL; bad values are listed at the top of the page and the preset's values are used.
export function readUrl() {
  const params = new URLSearchParams(location.search);
  const problems = [];
  const backend = params.get('backend');
  if (backend !== null) {
    if (['auto', 'gpu', 'cpu'].includes(backend)) state.backend = backend;
    else problems.push({ field: 'backend', message: `'${backend}' is not one of auto, gpu, cpu; using auto` });
    params.delete('backend');
  }
  // The wasm build the training workers load (worker.js chooses when the link does not say).
  const wasm = params.get('wasm');
  if (wasm !== null) {
    if (['simd128', 'relaxed'].includes(wasm)) state.wasm = wasm;
    else problems.push({ field: 'wasm', message: `'${wasm}' is not one of simd128, relaxed; this browser's best is used` });
    params.delete('wasm');
  }
  // How many Web Workers a CPU run may use (one per core when the link does not say): the numbers do not depend on it.
  const workers = params.get('workers');
  if (workers !== null) {
    const n = Number(workers);
    if (Number.isInteger(n) && n >= 1 && n <= 16) state.workers = n;
    else problems.push({ field: 'workers', message: `'${workers}' is not a whole number 1–16; one worker per core is used` });
    params.delete('workers');
  }
  const parsed = configFromQuery(params.toString());
  state.preset = parsed.preset;
  state.config = parsed.config;
  problems.push(...parsed.errors);
  $('preset').value = state.preset;
  $('backend').value = state.backend;
  $('preset-description').textContent = state.presets.find((p) => p.name === state.preset).description;
  fillKnobs();
  showFieldErrors(parsed.errors);
  const box = $('url-errors');
  state.urlErrors = problems;
  if (problems.length) {
    const accept = el('button', { id: 'accept-url-defaults', textContent: "Use the preset's values" });
    accept.addEventListener('click', acceptUrlDefaults);
    box.replaceChildren(el('b', { textContent: 'Some settings in this link were not usable:' }),
      el('ul', {}, ...problems.map((p) => el('li', { textContent: `${p.field}: ${p.message}` }))),
      el('p', { textContent: 'The run will not start with them: fix the link, pick a preset, or ' }, accept));
    box.hidden = false;
    $('knobs-box').open = true;
  }
  writeUrl();
}

// Finished runs teach the estimate: the ratio of measured to estimated time, per backend, kept in this browser.
export const calibrationKey = () => `calibration-${state.bench?.backend}`;

export function calibration() {
  const c = JSON.parse(localStorage.getItem(calibrationKey()) || 'null');
  return c && c.runs > 0 ? c : { ratio: 1, runs: 0 };
}

// Seconds `config` should take here, without SFT and the proxy when the site ships them for it (and the visitor
// starts from them), and whether it does: [seconds, shipped].
function estimate(config, useShipped = $('use-shipped').checked) {
  const shipped = useShipped && state.shipped ? state.shipped : { backend: '', keys: [] };
  return estimateSecondsWith(config, state.bench.train_step_ms, state.bench.sample_tokens_per_s, shipped.backend, shipped.keys, plannedWorkers(config));
}

export function learnFromRun(config, seconds, usedShipped) {
  if (!state.bench) return;
  const [estimated] = estimate(config, usedShipped);
  if (!(estimated > 0 && seconds > 0)) return;
  const c = calibration();
  // A running geometric mean of measured / estimated.
  const ratio = Math.exp((Math.log(c.ratio) * c.runs + Math.log(seconds / estimated)) / (c.runs + 1));
  localStorage.setItem(calibrationKey(), JSON.stringify({ ratio, runs: c.runs + 1 }));
}

export function updateEstimate() {
  if (!state.bench) return;
  const { train_step_ms: ms, sample_tokens_per_s: tps } = state.bench;
  const c = calibration();
  const seconds = (config) => estimate(config)[0] * c.ratio;
  for (const opt of $('preset').options) {
    const p = state.presets.find((x) => x.name === opt.value);
    opt.textContent = `${p.title} — about ${fmtTime(seconds(p.config))} here`;
  }
  let est = '—';
  try {
    const [s, shipped] = estimate(state.config);
    est = fmtTime(s * c.ratio) + (shipped ? ' from the shipped SFT and proxy' : '');
  } catch (e) { est = `— (${e})`; }
  const w = plannedWorkers(state.config);
  const spread = w.seed_groups > 1 ? `, seeds in ${w.seed_groups} Web Workers at once` : w.chunk_workers > 1 ? `, each alignment step's ${state.config.align_chunks} chunks, the sampling and the evaluation shared by ${w.chunk_workers} Web Workers` : '';
  $('estimate').textContent = `With these settings: about ${est} on this device${spread} (${state.bench.backend}: a training step of ` +
    `${facts.bench.batch} × ${facts.bench.context} tokens took ${ms.toFixed(0)} ms, sampling ran at ${Math.round(tps)} tokens/s` +
    (c.runs ? `; corrected by ${c.runs} finished run${c.runs > 1 ? 's' : ''} here, ×${c.ratio.toFixed(2)}` : '') + '). An estimate.';
}

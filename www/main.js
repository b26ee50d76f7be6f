// The page's UI thread: settings and the link, the live plots, the sample viewer, downloads and saved runs.
// Training happens in the worker (worker.js); the wasm module is loaded here too, but only for pure
// functions: checking settings, the URL, and drawing the figures with the same Rust code as the CLI.
import init, {
  presets, configFromQuery, queryFromConfig, validateConfig, estimateSeconds, figureSvg, linesSvg, summaryMarkdown, metricsCsv,
} from './pkg/alignment_gap.js';
import { putRun, getRun, deleteRun, allRuns, markInterrupted } from './store.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

// The settings a visitor can change here (any other key of the config can still be set in the URL).
const KNOBS = [
  ['seeds', 'Seeds', 'list', 'one run per seed; intervals need ≥ 2'],
  ['betas', 'β values', 'list', 'IPO regularisation, each in (0, 100]; larger stays closer to SFT'],
  ['lrs', 'Learning rates', 'list', 'each in (0, 1]; the same for online and offline'],
  ['steps', 'Online steps', 'int', '1 – 1048576 per online run'],
  ['offline_steps', 'Offline steps', 'list', 'one offline run per value, each 1 – 1048576'],
  ['batch', 'Batch (pairs)', 'int', '1 – 1024 pairs per step, online and offline'],
  ['eval_every', 'Evaluate every', 'int', '1 – 1048576 steps between checkpoints'],
  ['golden_reference', 'Golden-labelled online run', 'bool', 'also run online IPO with golden labels'],
  ['loss', 'Loss', 'text', 'Ipo, Dpo, Slic or BestOf2'],
  ['sft.steps', 'SFT steps', 'int', 'steps of supervised fine-tuning'],
  ['d_golden', 'D_golden pairs', 'int', 'from one batch to 1048576 labelled pairs'],
  ['heldout', 'Held-out pairs', 'int', '16 – 65536 (proxy early stopping, classifier accuracy)'],
  ['proxy.steps', 'Proxy PM steps', 'int', 'training steps of the proxy preference model'],
  ['win_prompts', 'Win-rate prompts', 'int', '16 – 65536 prompts per checkpoint'],
  ['kl_prompts', 'KL prompts', 'int', '8 – 65536 prompts per checkpoint'],
  ['policy.layers', 'Layers', 'int', '1 – 12 transformer blocks'],
  ['policy.d_model', 'Width (d_model)', 'int', '8 – 1024, divisible by the heads'],
  ['policy.heads', 'Heads', 'int', '1 – 16 attention heads'],
];
const METHOD_NAMES = { online: 'online IPO (proxy labels)', offline: 'offline IPO (D_golden)', online_golden: 'online IPO (golden labels)' };

const state = {
  presets: [], preset: 'fig1-quick', config: null, backend: 'auto',
  run: null, // {id, created, preset, config, query, status, rows, sftLoss, proxyEval, models, results, timings, backend}
  running: false, paused: false, bench: null, stage: null,
  // Settings that could not be used, by field: from the link (until the visitor accepts the preset's values)
  // and from the knobs. While either holds any, the run does not start: it would not be the run asked for.
  urlErrors: [], knobErrors: [],
};
let worker;

function get(obj, key) { return key.split('.').reduce((o, k) => o?.[k], obj); }
function show(v) { return Array.isArray(v) ? v.join(',') : String(v); }

// ---------- settings, validation and the URL ----------

function buildKnobs() {
  const form = $('knobs');
  form.replaceChildren();
  for (const [key, label, kind, help] of KNOBS) {
    const id = `knob-${key.replace('.', '-')}`;
    const input = kind === 'bool' ? el('input', { type: 'checkbox', id }) : el('input', { type: 'text', id, inputMode: kind === 'int' ? 'numeric' : 'text' });
    input.dataset.key = key;
    input.addEventListener('change', onKnobChange);
    form.append(el('div', { className: 'knob' },
      el('label', { htmlFor: id, textContent: label }), input,
      el('span', { className: 'hint', textContent: help }),
      el('span', { className: 'field-error', id: `${id}-error`, role: 'alert' })));
  }
}

function fillKnobs() {
  for (const input of $('knobs').querySelectorAll('input')) {
    const v = get(state.config, input.dataset.key);
    if (input.type === 'checkbox') input.checked = !!v; else input.value = show(v);
  }
}

function knobQuery() {
  const params = [`preset=${encodeURIComponent(state.preset)}`];
  for (const input of $('knobs').querySelectorAll('input')) {
    const v = input.type === 'checkbox' ? String(input.checked) : input.value.trim();
    params.push(`${input.dataset.key}=${encodeURIComponent(v)}`);
  }
  return params.join('&');
}

function showFieldErrors(errors) {
  for (const e of $('knobs').querySelectorAll('.field-error')) e.textContent = '';
  for (const { field, message } of errors) {
    const target = $(`knob-${field.replace('.', '-')}-error`);
    if (target) target.textContent = message;
  }
}

function writeUrl() {
  let q = queryFromConfig(state.preset, state.config);
  if (state.backend !== 'auto') q += `&backend=${state.backend}`;
  history.replaceState(null, '', `?${q}`);
  updateEstimate();
}

function onKnobChange() {
  const parsed = configFromQuery(knobQuery());
  state.config = parsed.config;
  state.knobErrors = parsed.errors;
  showFieldErrors(parsed.errors);
  writeUrl();
  setButtons();
}

// The visitor accepts the preset's values for the link's unusable settings: the run may start.
function acceptUrlDefaults() {
  state.urlErrors = [];
  $('url-errors').hidden = true;
  setButtons();
}

function applyPreset(name) {
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
function readUrl() {
  const params = new URLSearchParams(location.search);
  const problems = [];
  const backend = params.get('backend');
  if (backend !== null) {
    if (['auto', 'gpu', 'cpu'].includes(backend)) state.backend = backend;
    else problems.push({ field: 'backend', message: `'${backend}' is not one of auto, gpu, cpu; using auto` });
    params.delete('backend');
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

function fmtTime(s) {
  if (!isFinite(s)) return '—';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// Finished runs teach the estimate: the ratio of measured to estimated time, per backend, kept in this browser.
const calibrationKey = () => `calibration-${state.bench?.backend}`;
function calibration() {
  const c = JSON.parse(localStorage.getItem(calibrationKey()) || 'null');
  return c && c.runs > 0 ? c : { ratio: 1, runs: 0 };
}
function learnFromRun(config, seconds) {
  if (!state.bench) return;
  const estimate = estimateSeconds(config, state.bench.train_step_ms, state.bench.sample_tokens_per_s);
  if (!(estimate > 0 && seconds > 0)) return;
  const c = calibration();
  // A running geometric mean of measured / estimated.
  const ratio = Math.exp((Math.log(c.ratio) * c.runs + Math.log(seconds / estimate)) / (c.runs + 1));
  localStorage.setItem(calibrationKey(), JSON.stringify({ ratio, runs: c.runs + 1 }));
}

function updateEstimate() {
  if (!state.bench) return;
  const { train_step_ms: ms, sample_tokens_per_s: tps } = state.bench;
  const c = calibration();
  const seconds = (config) => estimateSeconds(config, ms, tps) * c.ratio;
  for (const opt of $('preset').options) {
    const p = state.presets.find((x) => x.name === opt.value);
    opt.textContent = `${p.title} — about ${fmtTime(seconds(p.config))} here`;
  }
  let est = '—';
  try { est = fmtTime(seconds(state.config)); } catch (e) { est = `— (${e})`; }
  $('estimate').textContent = `With these settings: about ${est} on this device (${state.bench.backend}: a training step of ` +
    `128 × 32 tokens took ${ms.toFixed(0)} ms, sampling ran at ${Math.round(tps)} tokens/s` +
    (c.runs ? `; corrected by ${c.runs} finished run${c.runs > 1 ? 's' : ''} here, ×${c.ratio.toFixed(2)}` : '') + '). An estimate.';
}

// ---------- the run ----------

function setRunStatus(text, kind) {
  const s = $('run-status');
  s.textContent = text;
  s.className = `status ${kind || ''}`;
}

function setButtons() {
  const blocked = state.urlErrors.length > 0 || state.knobErrors.length > 0;
  $('start').disabled = state.running || blocked || !document.body.dataset.doctor || document.body.dataset.doctor === 'error';
  $('start').title = blocked ? `Fix first: ${[...state.urlErrors, ...state.knobErrors].map((e) => e.field).join(', ')}` : '';
  $('pause').disabled = !state.running || state.paused;
  $('resume').disabled = !state.running || !state.paused;
  $('stop').disabled = !state.running;
  const has = !!state.run && state.run.rows.length > 0;
  for (const id of ['dl-json', 'dl-csv', 'dl-svg', 'dl-png', 'dl-plots']) $(id).disabled = !has;
  $('preset').disabled = $('backend').disabled = state.running;
  for (const i of $('knobs').querySelectorAll('input')) i.disabled = state.running;
}

let saveTimer = null;
function saveSoon() {
  if (saveTimer) return;
  saveTimer = setTimeout(() => { saveTimer = null; saveNow(); }, 1000);
}
async function saveNow() {
  if (!state.run) return;
  try { await putRun(state.run); } catch (e) { console.warn('could not store the run', e); }
  listSaved();
}

function start() {
  const bad = [...state.urlErrors, ...state.knobErrors];
  if (bad.length) { setRunStatus(`Cannot start: fix ${bad.map((e) => e.field).join(', ')} first`, 'error'); return; }
  try { validateConfig(state.config); } catch (e) { setRunStatus(`Cannot start: ${e}`, 'error'); return; }
  state.run = {
    id: `${Date.now()}`, created: new Date().toISOString(), preset: state.preset, config: state.config,
    query: location.search, status: 'running', rows: [], sftLoss: {}, proxyEval: {}, models: [], results: null,
    timings: [], backend: state.backend, elapsed: 0,
  };
  state.running = true;
  state.paused = false;
  state.startedAt = performance.now();
  state.stage = null;
  state.pickedByUser = false;
  $('progress').hidden = false;
  setRunStatus('Running…');
  document.body.dataset.run = 'running';
  renderAll();
  setButtons();
  saveNow();
  worker.postMessage({ type: 'run', config: state.config, backend: state.backend });
}

function finish(status, message, kind) {
  state.running = false;
  state.paused = false;
  state.run.status = status;
  state.run.elapsed = (performance.now() - state.startedAt) / 1000;
  setRunStatus(message, kind);
  document.body.dataset.run = status;
  setButtons();
  renderAll();
  saveNow();
}

function onEvent(ev) {
  const run = state.run;
  if (!run) return;
  if (ev.type === 'backend') {
    run.backendUsed = ev.backend;
    setRunStatus(`Running on ${ev.backend}${ev.note ? ` (${ev.note})` : ''}…`);
  } else if (ev.type === 'stage') {
    const now = performance.now();
    if (!state.stage || state.stage.name !== ev.name) state.stage = { name: ev.name, t0: now, s0: ev.step };
    const { t0, s0 } = state.stage;
    const rate = (ev.step - s0) / ((now - t0) / 1000);
    const left = rate > 0 ? (ev.total - ev.step) / rate : NaN;
    $('stage').textContent = ev.name;
    $('stage-bar').max = ev.total;
    $('stage-bar').value = ev.step;
    $('stage-numbers').textContent = `step ${ev.step} of ${ev.total}` + (rate > 0 ? ` · ${rate.toFixed(1)} steps/s · ${fmtTime(left)} left in this stage` : '') +
      ` · ${fmtTime((now - state.startedAt) / 1000)} elapsed`;
  } else if (ev.type === 'sft_loss') {
    (run.sftLoss[ev.seed] ||= []).push([ev.step, ev.loss]);
    renderSoon();
  } else if (ev.type === 'proxy_eval') {
    (run.proxyEval[ev.seed] ||= []).push([ev.step, ev.heldout_accuracy]);
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

// ---------- drawing ----------

let renderTimer = null;
function renderSoon() {
  if (renderTimer) return;
  renderTimer = setTimeout(() => { renderTimer = null; renderAll(); }, 400);
}

function plotRows() { return (state.run?.rows || []).map(({ samples, ...r }) => r); }

function setSvg(target, svg) {
  target.innerHTML = svg;
  const s = target.querySelector('svg');
  if (s) {
    const w = s.getAttribute('width'), h = s.getAttribute('height');
    s.setAttribute('viewBox', `0 0 ${w} ${h}`);
    s.removeAttribute('width');
    s.removeAttribute('height');
  }
}

function renderAll() {
  const rows = plotRows();
  const fig = $('fig1');
  try {
    setSvg(fig, figureSvg(rows, 6));
  } catch (e) {
    fig.textContent = `Could not draw the figure: ${e}`;
  }
  for (const m of Object.keys(METHOD_NAMES)) {
    fig.dataset[`points${m.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase())}`] = rows.filter((r) => r.method === m && r.kl > 1e-3).length;
  }
  fig.dataset.checkpoints = rows.length;
  renderVerdict(rows);
  renderSmallPlots(rows);
  renderCheckpointPicker();
  renderModels();
  setButtons();
}

function renderVerdict(rows) {
  const box = $('verdict');
  if (!state.run || rows.length === 0) { box.replaceChildren(el('p', { className: 'hint', textContent: 'No checkpoints yet: press Start.' })); return; }
  let md;
  const proxy = (state.run.timings || []).map((t) => [t.seed, t.proxy_heldout_accuracy]);
  try { md = summaryMarkdown(state.run.config, rows, state.run.backendUsed || state.run.backend, proxy, 6); } catch (e) { box.textContent = String(e); return; }
  box.replaceChildren(...markdown(md.split('\n').filter((l) => !l.startsWith('# ')).join('\n')));
}

// Enough Markdown for summary.md: headings, tables, paragraphs, **bold**.
function markdown(md) {
  const out = [];
  const inline = (text) => {
    const span = el('span');
    text.split(/(\*\*[^*]+\*\*)/).forEach((part) => span.append(part.startsWith('**') ? el('b', { textContent: part.slice(2, -2) }) : part));
    return span;
  };
  let table = null;
  for (const line of md.split('\n')) {
    if (line.startsWith('|')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      if (cells.every((c) => /^-+:?$|^:?-+$/.test(c))) continue;
      if (!table) { table = el('table', { className: 'summary' }); out.push(table); }
      table.append(el('tr', {}, ...cells.map((c) => el(table.rows.length ? 'td' : 'th', {}, inline(c)))));
      continue;
    }
    table = null;
    if (line.startsWith('## ')) out.push(el('h3', { textContent: line.slice(3) }));
    else if (line.trim()) out.push(el('p', {}, inline(line)));
  }
  return out;
}

const num = (x) => String(+x.toPrecision(3));
function runLabel(r) { return `${r.method} β=${num(r.beta)} lr=${num(r.lr)}${r.method === 'offline' ? ` ${r.run_steps} steps` : ''} · seed ${r.seed}`; }

function groupBy(rows, key) {
  const m = new Map();
  for (const r of rows) { const k = key(r); if (!m.has(k)) m.set(k, []); m.get(k).push(r); }
  return m;
}

function renderSmallPlots(rows) {
  const run = state.run;
  const w = 460, h = 300;
  const draw = (id, title, x, y, series) => {
    try { setSvg($(id), linesSvg(title, x, y, series, w, h)); } catch (e) { $(id).textContent = String(e); }
  };
  const seedsOf = (obj) => Object.entries(obj || {}).map(([seed, pts]) => ({ label: `seed ${seed}`, points: pts }));
  draw('plot-sft', 'SFT loss', 'step', 'NLL per response (nats)', seedsOf(run?.sftLoss));
  draw('plot-proxy', 'Proxy PM: held-out accuracy', 'step', 'accuracy', seedsOf(run?.proxyEval));
  const runs = [...groupBy(rows, runLabel).entries()].slice(0, 8);
  draw('plot-kl', 'KL(π ‖ π_sft) over steps', 'step', 'KL', runs.map(([label, rs]) => ({ label, points: rs.map((r) => [r.step, r.kl]) })));
  draw('plot-loss', 'Alignment loss (mean since last checkpoint)', 'step', 'loss',
    runs.map(([label, rs]) => ({ label, points: rs.filter((r) => r.train_loss != null).map((r) => [r.step, r.train_loss]) })));
}

function renderCheckpointPicker() {
  const pick = $('checkpoint-pick');
  const rows = state.run?.rows || [];
  const previous = pick.value;
  const options = rows.map((r, i) => [i, r]).filter(([, r]) => r.samples?.length);
  pick.replaceChildren(...options.map(([i, r]) => el('option', { value: String(i), textContent: `${runLabel(r)} · step ${r.step} · KL ${r.kl.toFixed(2)} · win ${r.golden_win_rate.toFixed(2)}` })));
  if (state.pickedByUser && options.some(([i]) => String(i) === previous)) pick.value = previous;
  else if (options.length) pick.value = String(options.findLast(([, r]) => r.method === 'online')?.[0] ?? options.at(-1)[0]);
  renderSamples();
}

function words(text, keys, cls) {
  const span = el('span', { className: cls || '' });
  text.split(' ').forEach((w, i) => {
    if (i) span.append(' ');
    span.append(keys.includes(w) ? el('b', { textContent: w }) : w);
  });
  return span;
}

function renderSamples() {
  const box = $('sample-table');
  const r = state.run?.rows[Number($('checkpoint-pick').value)];
  if (!r) { box.replaceChildren(el('p', { className: 'hint', textContent: 'Samples appear with the first checkpoint.' })); return; }
  const table = el('table', { className: 'samples' },
    el('tr', {}, el('th', { textContent: 'document (prompt)' }), el('th', { textContent: 'SFT policy' }), el('th', { textContent: `${METHOD_NAMES[r.method]}, step ${r.step}` })));
  for (const s of r.samples) {
    const proxy = s.proxy_prefers == null ? '' : s.proxy_prefers ? ' · proxy prefers this' : ' · proxy prefers SFT';
    table.append(el('tr', {},
      el('td', {}, words(s.prompt, s.key_words)),
      el('td', {}, words(s.baseline, s.key_words), el('div', { className: 'score', textContent: `golden ${s.baseline_golden_reward}` })),
      el('td', {}, words(s.response, s.key_words), el('div', { className: 'score', textContent: `golden ${s.golden_reward}${proxy}` }))));
  }
  box.replaceChildren(table, el('p', { className: 'hint',
    textContent: `At this checkpoint: golden win rate ${r.golden_win_rate.toFixed(3)}` + (r.proxy_win_rate != null ? `, proxy win rate ${r.proxy_win_rate.toFixed(3)}` : '') +
      `, mean length ${r.responses.length.toFixed(1)}, repeats ${r.responses.repeats.toFixed(2)}, made-up words ${r.responses.hallucinations.toFixed(2)} per response.` }));
}

// ---------- downloads ----------

function download(name, data, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

function resultsJson() {
  const run = state.run;
  const base = run.results || { config: run.config, backend: run.backendUsed || run.backend, checkpoints: run.rows, timings: run.timings };
  return JSON.stringify({ ...base, status: run.status, page: { preset: run.preset, query: run.query, created: run.created, elapsed_s: run.elapsed } }, null, 2);
}

function svgText(id) {
  const s = $(id).querySelector('svg').cloneNode(true);
  const [, , w, h] = s.getAttribute('viewBox').split(' ');
  s.setAttribute('width', w);
  s.setAttribute('height', h);
  s.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  return s.outerHTML;
}

function pngOf(svg, w, h) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const c = el('canvas', { width: w * 2, height: h * 2 });
      const g = c.getContext('2d');
      g.fillStyle = '#fff';
      g.fillRect(0, 0, c.width, c.height);
      g.drawImage(img, 0, 0, c.width, c.height);
      c.toBlob((b) => (b ? resolve(b) : reject(new Error('canvas gave no PNG'))), 'image/png');
    };
    img.onerror = () => reject(new Error('the SVG did not load as an image'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
}

function renderModels() {
  const box = $('models');
  const models = state.run?.models || [];
  if (!models.length) { box.replaceChildren(el('span', { className: 'hint', textContent: 'none yet — they arrive when a seed finishes' })); return; }
  box.replaceChildren(...models.map((m) => {
    const b = el('button', { textContent: `seed ${m.seed}: ${m.name}`, className: 'model' });
    b.addEventListener('click', () => {
      const prefix = `seed${m.seed}_${m.name}_`;
      download(`${prefix}model.safetensors`, new Blob([m.safetensors]));
      download(`${prefix}config.json`, m.config, 'application/json');
      download(`${prefix}tokenizer.json`, m.tokenizer, 'application/json');
    });
    return b;
  }));
}

// ---------- saved runs ----------

async function listSaved() {
  let runs = [];
  try { runs = await allRuns(); } catch (e) { $('saved-list').textContent = `IndexedDB is not available here: ${e}`; return; }
  runs.sort((a, b) => b.created.localeCompare(a.created));
  if (!runs.length) { $('saved-list').replaceChildren(el('span', { className: 'hint', textContent: 'none yet' })); return; }
  $('saved-list').replaceChildren(el('table', {}, ...runs.map((r) => {
    const showBtn = el('button', { textContent: 'Show' });
    showBtn.addEventListener('click', async () => { if (!state.running) { state.run = await getRun(r.id); state.pickedByUser = false; renderAll(); setRunStatus(`Showing the saved run of ${r.created} (${r.status}).`); } });
    const linkBtn = el('a', { href: r.query || '?', textContent: 'settings' });
    const delBtn = el('button', { textContent: 'Delete' });
    delBtn.addEventListener('click', async () => { await deleteRun(r.id); listSaved(); });
    const status = r.status === 'interrupted' ? 'interrupted (the page was closed or reloaded; checkpoints up to then are kept)' : r.status;
    return el('tr', {}, el('td', { textContent: new Date(r.created).toLocaleString() }), el('td', { textContent: r.preset }),
      el('td', { textContent: status, className: `run-${r.status}` }), el('td', { textContent: `${r.rows.length} checkpoints` }),
      el('td', {}, showBtn, ' ', linkBtn, ' ', delBtn));
  })));
}

// ---------- the device ----------

function fact(dl, term, value) { dl.append(el('dt', { textContent: term }), el('dd', { textContent: value })); }
const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;

function setDeviceStatus(text, kind) {
  const s = $('device-status');
  s.textContent = text;
  s.className = `status ${kind || ''}`;
}

function showReport(report) {
  const dl = $('device-facts');
  dl.replaceChildren();
  fact(dl, 'Backend', report.backend);
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
  document.body.dataset.doctor = sc.failed === 0 ? 'passed' : 'failed';
  if (!state.running) setRunStatus('Ready: pick a preset and press Start.', 'ok');
  setButtons();
}

function onWorkerMessage({ data }) {
  if (data.type === 'ready') {
    if (data.webgpu) setDeviceStatus('WebGPU found; checking the kernels on this GPU…');
  } else if (data.type === 'doctor') {
    showReport(data.report);
    const cached = sessionStorage.getItem(`bench-${state.backend}`);
    if (cached) { state.bench = JSON.parse(cached); updateEstimate(); } else worker.postMessage({ type: 'speed', backend: state.backend });
  } else if (data.type === 'speed') {
    state.bench = data.bench;
    sessionStorage.setItem(`bench-${state.backend}`, JSON.stringify(data.bench));
    fact($('device-facts'), `Measured speed (${data.bench.backend})`, `training step (128 × 32 tokens, 2 layers × d 64) ${data.bench.train_step_ms.toFixed(0)} ms; sampling ${Math.round(data.bench.sample_tokens_per_s)} tokens/s`);
    updateEstimate();
  } else if (data.type === 'event') {
    onEvent(data.event);
  } else if (data.type === 'model') {
    state.run?.models.push({ seed: data.seed, name: data.name, safetensors: data.safetensors, config: data.config, tokenizer: data.tokenizer });
    renderModels();
    saveSoon();
  } else if (data.type === 'done') {
    state.run.results = data.results;
    learnFromRun(state.run.config, (performance.now() - state.startedAt) / 1000);
    updateEstimate();
    finish('finished', `Finished in ${fmtTime((performance.now() - state.startedAt) / 1000)}: ${state.run.rows.length} checkpoints. Stored in this browser (Saved runs).`, 'ok');
  } else if (data.type === 'stopped') {
    finish('stopped', `Stopped. The ${state.run.rows.length} checkpoints so far are kept (plots, downloads, Saved runs).`, 'warn');
  } else if (data.type === 'error') {
    if (data.during === 'run' && state.run) {
      const lost = /lost|device/i.test(data.message) ? ' The GPU device was lost;' : '';
      finish('failed', `The run failed:${lost} ${data.message}. The ${state.run.rows.length} checkpoints up to then are kept.`, 'error');
    } else if (data.during === 'speed') {
      $('estimate').textContent = `Could not measure this device's speed: ${data.message}`;
    } else {
      setDeviceStatus(`Error: ${data.message}`, 'error');
      document.body.dataset.doctor = 'error';
      setRunStatus('The device check failed; see Device below.', 'error');
    }
  }
}

async function main() {
  try {
    await init();
  } catch (e) {
    setDeviceStatus(`Could not load the wasm package (www/pkg/): ${e}`, 'error');
    document.body.dataset.doctor = 'error';
    return;
  }
  const titles = { fig1: 'Figure 1 (full)', 'fig1-quick': 'Figure 1 (quick)', 'fig1-tiny': 'tiny (smoke)' };
  state.presets = presets().map((p) => ({ ...p, title: titles[p.name] || p.name }));
  $('preset').replaceChildren(...state.presets.map((p) => el('option', { value: p.name, textContent: p.title })));
  buildKnobs();
  readUrl();
  $('preset').addEventListener('change', () => applyPreset($('preset').value));
  $('backend').addEventListener('change', () => { state.backend = $('backend').value; state.bench = null; writeUrl(); worker.postMessage({ type: 'speed', backend: state.backend }); });
  $('start').addEventListener('click', start);
  $('pause').addEventListener('click', () => { worker.postMessage({ type: 'pause' }); state.paused = true; state.run.status = 'paused'; setRunStatus('Paused (resume or stop).', 'warn'); setButtons(); });
  $('resume').addEventListener('click', () => { worker.postMessage({ type: 'resume' }); state.paused = false; state.run.status = 'running'; setRunStatus('Running…'); setButtons(); });
  $('stop').addEventListener('click', () => { worker.postMessage({ type: 'resume' }); worker.postMessage({ type: 'stop' }); setRunStatus('Stopping at the end of this step…', 'warn'); });
  $('copy-link').addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(location.href); setRunStatus('Link copied: it opens this page with these settings and seeds.', 'ok'); } catch { setRunStatus(`Link: ${location.href}`); }
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
  });
  renderAll();
  try { await markInterrupted(); } catch { /* no IndexedDB: listSaved says so */ }
  listSaved();
  if (!('gpu' in navigator)) setDeviceStatus('WebGPU is unavailable in this browser; the CPU backend (WebAssembly) will be used. Checking it…', 'warn');
  try {
    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  } catch (e) {
    setDeviceStatus(`Could not start the Web Worker: ${e}`, 'error');
    return;
  }
  worker.onmessage = onWorkerMessage;
  worker.onerror = (e) => {
    setDeviceStatus(`The worker failed: ${e.message || 'could not load www/worker.js or the wasm package'}`, 'error');
    document.body.dataset.doctor = 'error';
    if (state.running) finish('failed', `The worker failed: ${e.message}. Checkpoints up to then are kept.`, 'error');
  };
}

main();

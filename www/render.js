// Drawing: Figure 1 and the small plots (by the CLI's plotters code, through wasm), the computed verdict,
// the checkpoint picker and sample viewer, the trained models.
import { figureSvg, linesSvg, pageFigureSvg, pageFigures, summaryMarkdown } from './pkg/alignment_gap.js';
import { $, el, num } from './ui.js';
import { state, facts } from './state.js';
import { setButtons } from './buttons.js';
import { download } from './downloads.js';

let renderTimer = null;

export function renderSoon() {
  if (renderTimer) return;
  renderTimer = setTimeout(() => { renderTimer = null; renderAll(); }, 400);
}

export function plotRows() { return (state.run?.rows || []).map(({ samples, ...r }) => r); }

export function setSvg(target, svg) {
  target.innerHTML = svg;
  const s = target.querySelector('svg');
  if (s) {
    const w = s.getAttribute('width'), h = s.getAttribute('height');
    s.setAttribute('viewBox', `0 0 ${w} ${h}`);
    s.removeAttribute('width');
    s.removeAttribute('height');
  }
}

export function renderAll() {
  const rows = plotRows();
  const fig = $('fig1');
  try {
    // Below 700 px (a phone) the compact layout: panels stacked at about the size shown, the legend under them.
    const compact = (fig.clientWidth || window.innerWidth) < 700;
    setSvg(fig, figureSvg(rows, state.run?.config?.loss, compact));
    fig.dataset.layout = compact ? 'compact' : 'wide';
  } catch (e) {
    fig.textContent = `Could not draw the figure: ${e}`;
  }
  for (const m of Object.keys(facts.methods)) {
    fig.dataset[`points${m.replace(/(^|_)(\w)/g, (_, __, c) => c.toUpperCase())}`] = rows.filter((r) => r.method === m && r.kl > facts.min_kl).length;
  }
  fig.dataset.checkpoints = rows.length;
  renderVerdict(rows);
  renderAnalyses(rows);
  renderSmallPlots(rows);
  renderCheckpointPicker();
  renderModels();
  setButtons();
}

// The analyses to draw: those the run's config asks for, and those ticked on the page (any run's checkpoints).
function analyses(config) {
  const ticked = [...document.querySelectorAll('input[name=analysis]:checked')].map((i) => i.value);
  return [...new Set([...(config?.analyses || []), ...ticked])];
}

function withAnalyses(config) { return { ...config, analyses: analyses(config) }; }

// A box per classifier analysis Rust offers (experiments::Analysis), once, before the first render.
export function buildAnalysisBoxes() {
  const box = $('analyses');
  for (const { key, label } of facts.analyses) {
    box.append(el('label', {}, el('input', { type: 'checkbox', name: 'analysis', value: key }), ` ${label}`));
  }
}

export function renderAnalyses(rows) {
  const box = $('analysis-plots');
  const config = state.run?.config;
  for (const input of document.querySelectorAll('input[name=analysis]')) {
    // The run's own analyses are always drawn.
    const own = (config?.analyses || []).includes(input.value);
    input.disabled = own;
    if (own) input.checked = true;
  }
  if (!config || rows.length === 0) { box.replaceChildren(); return; }
  // Which figures a run has below Figure 1 is Rust's list (report::artifacts): its analyses and those ticked here, and
  // with a scaling ladder Figs 10 (a panel per size) and 11 (best performance over online's).
  const asked = withAnalyses(config);
  const drawn = pageFigures(asked).map(({ key, file }) => {
    const div = el('div', { className: 'plot', id: `analysis-${key}` });
    div.dataset.file = file;
    try { setSvg(div, pageFigureSvg(asked, rows, key)); } catch (e) { div.textContent = `Could not draw ${key}: ${e}`; }
    return div;
  });
  box.replaceChildren(...drawn);
}

export function renderVerdict(rows) {
  const box = $('verdict');
  if (!state.run || rows.length === 0) { box.replaceChildren(el('p', { className: 'hint', textContent: 'No checkpoints yet: press Start.' })); return; }
  let md;
  const proxy = (state.run.timings || []).map((t) => [t.seed, t.proxy_heldout_accuracy]);
  try { md = summaryMarkdown(withAnalyses(state.run.config), rows, state.run.backendUsed || state.run.backend, proxy, 6); } catch (e) { box.textContent = String(e); return; }
  box.replaceChildren(...markdown(md.split('\n').filter((l) => !l.startsWith('# ')).join('\n')));
}

// Enough Markdown for summary.md: headings (## and ###), tables, bullet lists, paragraphs, **bold**.
export function markdown(md) {
  const out = [];
  const inline = (text) => {
    const span = el('span');
    text.split(/(\*\*[^*]+\*\*)/).forEach((part) => span.append(part.startsWith('**') ? el('b', { textContent: part.slice(2, -2) }) : part));
    return span;
  };
  let table = null;
  let list = null;
  for (const line of md.split('\n')) {
    if (line.startsWith('- ')) {
      if (!list) { list = el('ul'); out.push(list); }
      list.append(el('li', {}, inline(line.slice(2))));
      continue;
    }
    list = null;
    if (line.startsWith('|')) {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      if (cells.every((c) => /^-+:?$|^:?-+$/.test(c))) continue;
      if (!table) { table = el('table', { className: 'summary' }); out.push(table); }
      table.append(el('tr', {}, ...cells.map((c) => el(table.rows.length ? 'td' : 'th', {}, inline(c)))));
      continue;
    }
    table = null;
    if (line.startsWith('### ')) out.push(el('h4', { textContent: line.slice(4) }));
    else if (line.startsWith('## ')) out.push(el('h3', { textContent: line.slice(3) }));
    else if (line.trim()) out.push(el('p', {}, inline(line)));
  }
  return out;
}

export function runLabel(r) { return `${r.method} β=${num(r.beta)} lr=${num(r.lr)}${r.method === 'offline' ? ` ${r.run_steps} steps` : ''} · seed ${r.seed}`; }

export function groupBy(rows, key) {
  const m = new Map();
  for (const r of rows) { const k = key(r); if (!m.has(k)) m.set(k, []); m.get(k).push(r); }
  return m;
}

export function renderSmallPlots(rows) {
  const run = state.run;
  const w = 460, h = 300;
  const draw = (id, title, x, y, series) => {
    try { setSvg($(id), linesSvg(title, x, y, series, w, h)); } catch (e) { $(id).textContent = String(e); }
  };
  const seedsOf = (obj) => Object.entries(obj || {}).map(([seed, pts]) => ({ label: `seed ${seed}`, points: pts }));
  draw('plot-sft', 'SFT loss', 'step', 'NLL per response (nats)', seedsOf(run?.sftLoss));
  draw('plot-proxy', 'Proxy PM: validation accuracy (a split of D_golden)', 'step', 'accuracy', seedsOf(run?.proxyEval));
  const runs = [...groupBy(rows, runLabel).entries()].slice(0, 8);
  draw('plot-kl', 'KL(π ‖ π_sft) over steps', 'step', 'KL', runs.map(([label, rs]) => ({ label, points: rs.map((r) => [r.step, r.kl]) })));
  draw('plot-loss', 'Alignment loss (mean since last checkpoint)', 'step', 'loss',
    runs.map(([label, rs]) => ({ label, points: rs.filter((r) => r.train_loss != null).map((r) => [r.step, r.train_loss]) })));
}

export function renderCheckpointPicker() {
  const pick = $('checkpoint-pick');
  const rows = state.run?.rows || [];
  const previous = pick.value;
  const options = rows.map((r, i) => [i, r]).filter(([, r]) => r.samples?.length);
  pick.replaceChildren(...options.map(([i, r]) => el('option', { value: String(i), textContent: `${runLabel(r)} · step ${r.step} · KL ${r.kl.toFixed(2)} · win ${r.golden_win_rate.toFixed(2)}` })));
  if (state.pickedByUser && options.some(([i]) => String(i) === previous)) pick.value = previous;
  else if (options.length) pick.value = String(options.findLast(([, r]) => r.method === 'online')?.[0] ?? options.at(-1)[0]);
  renderSamples();
}

export function words(text, keys, cls) {
  const span = el('span', { className: cls || '' });
  text.split(' ').forEach((w, i) => {
    if (i) span.append(' ');
    span.append(keys.includes(w) ? el('b', { textContent: w }) : w);
  });
  return span;
}

export function renderSamples() {
  const box = $('sample-table');
  const r = state.run?.rows[Number($('checkpoint-pick').value)];
  if (!r) { box.replaceChildren(el('p', { className: 'hint', textContent: 'Samples appear with the first checkpoint.' })); return; }
  const table = el('table', { className: 'samples' },
    el('tr', {}, el('th', { textContent: 'document (prompt)' }), el('th', { textContent: 'SFT policy' }), el('th', { textContent: `${facts.methods[r.method]}, step ${r.step}` })));
  for (const s of r.samples) {
    const proxy = s.proxy_prefers == null ? '' : s.proxy_prefers ? ' · proxy prefers this' : ' · proxy prefers SFT';
    table.append(el('tr', {},
      el('td', {}, words(s.prompt, s.key_words)),
      el('td', {}, words(s.baseline, s.key_words), el('div', { className: 'score', textContent: `golden ${s.baseline_golden_reward}` })),
      el('td', {}, words(s.response, s.key_words), el('div', { className: 'score', textContent: `golden ${s.golden_reward}${proxy}` }))));
  }
  // The golden reward these scores come from: the run's task kind (issue 29's tasks score the same words differently).
  const kind = state.run.config?.task?.kind || 'additive';
  const task = el('p', { className: 'hint', id: 'sample-task', textContent: `Golden reward of task.kind = ${kind}: ${facts.task_kinds?.[kind] || ''}; ${rewardCharges(state.run.config?.task?.reward)}. Key words in bold.` });
  box.replaceChildren(task, table, el('p', { className: 'hint',
    textContent: `At this checkpoint: golden win rate ${r.golden_win_rate.toFixed(3)}` + (r.proxy_win_rate != null ? `, proxy win rate ${r.proxy_win_rate.toFixed(3)}` : '') +
      `, mean length ${r.responses.length.toFixed(1)}, repeats ${r.responses.repeats.toFixed(2)}, made-up words ${r.responses.hallucinations.toFixed(2)} per response.` }));
}

// What the golden reward charges besides its coverage term (task.reward's weights; the second task sets most to 0).
function rewardCharges(w) {
  if (!w) return '';
  const charges = [[w.hallucination, 'each made-up word'], [w.repeat, 'each repeat'], [w.length, 'each word beyond the document\'s key-word count'], [w.missing_eos, 'a missing <eos>']]
    .filter(([v]) => v > 0).map(([v, what]) => `${v} for ${what}`);
  return charges.length ? `less ${charges.join(', ')}` : 'nothing else counts';
}

export function renderModels() {
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

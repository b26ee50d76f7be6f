// Compare runs: two or more runs (saved in IndexedDB, or committed under results/) on one Figure-1 panel, drawn by
// the same Rust plotting code as the figure (compareRuns), with the settings in which their configs differ.
import { compareRuns } from './pkg/alignment_gap.js';
import { allRuns, getRun } from './store.js';
import { $, el, show } from './ui.js';
import { setSvg } from './render.js';
import { state } from './state.js';

// Loaded runs by key ("saved:ID" or "results:NAME"): {config, rows}.
const loaded = new Map();
// Keys in the order they were ticked (the order of the line styles and letters).
let ticked = [];

async function load(key) {
  if (loaded.has(key)) return loaded.get(key);
  let run;
  if (key.startsWith('saved:')) {
    const r = await getRun(key.slice(6));
    run = { config: r.config, rows: r.rows.map(({ samples, ...row }) => row) };
  } else {
    const res = await fetch(`results/${key.slice(8)}/results.json`);
    if (!res.ok) throw new Error(`results/${key.slice(8)}/results.json: ${res.status}`);
    const r = await res.json();
    run = { config: r.config, rows: r.checkpoints.map(({ samples, ...row }) => row) };
  }
  loaded.set(key, run);
  return run;
}

async function draw() {
  const plot = $('compare-plot');
  const table = $('compare-settings');
  if (ticked.length < 2) {
    plot.replaceChildren(el('p', { className: 'hint', textContent: 'Tick two or more runs to compare them.' }));
    table.replaceChildren();
    delete document.body.dataset.compared;
    return;
  }
  const labels = new Map([...document.querySelectorAll('#compare-pick input')].map((i) => [i.value, i.dataset.label]));
  try {
    const runs = [];
    for (const [i, key] of ticked.entries()) {
      const { config, rows } = await load(key);
      runs.push({ label: `${String.fromCharCode(65 + i)}: ${labels.get(key)}`, config, rows });
    }
    // Below 700 px the compact layout (as Figure 1's): the legend under the plot, runs named by letter.
    const compact = (plot.clientWidth || window.innerWidth) < 700;
    const { svg, settings } = compareRuns(runs, compact);
    plot.dataset.layout = compact ? 'compact' : 'wide';
    setSvg(plot, svg);
    table.replaceChildren(settings.length
      ? el('table', { className: 'summary' },
        el('tr', {}, el('th', { textContent: 'setting' }), ...runs.map((r) => el('th', { textContent: r.label }))),
        ...settings.map(([key, ...values]) => el('tr', {}, el('td', { textContent: key }), ...values.map((v) => el('td', { textContent: v === null ? '—' : (Array.isArray(v) && !v.length ? 'none' : show(v)) })))))
      : el('p', { className: 'hint', textContent: 'Their settings are the same: the runs differ in their seeds\' randomness, or in the backend.' }));
    document.body.dataset.compared = String(runs.length);
  } catch (e) {
    plot.replaceChildren(el('p', { className: 'status error', textContent: `Could not compare: ${e}` }));
  }
}

// Rebuilds the list of runs to tick (after a run is saved or deleted), keeping what was ticked.
export async function refreshCompare() {
  let saved = [];
  try { saved = await allRuns(); } catch { /* no IndexedDB: committed results only */ }
  saved.sort((a, b) => b.created.localeCompare(a.created));
  const options = [
    ...saved.map((r) => ({ key: `saved:${r.id}`, label: `saved ${r.preset}, ${new Date(r.created).toLocaleString()}` })),
    ...state.committed.map((e) => ({ key: `results:${e.name}`, label: `committed ${state.presets.find((p) => p.name === e.name)?.title || e.name}` })),
  ];
  ticked = ticked.filter((k) => options.some((o) => o.key === k));
  const box = $('compare-pick');
  box.replaceChildren(el('legend', { textContent: 'Runs' }), ...options.map((o) => {
    const input = el('input', { type: 'checkbox', name: 'compare', value: o.key, checked: ticked.includes(o.key) });
    input.dataset.label = o.label;
    input.addEventListener('change', () => {
      ticked = input.checked ? [...ticked, o.key] : ticked.filter((k) => k !== o.key);
      draw();
    });
    return el('label', {}, input, ` ${o.label}`);
  }));
  draw();
}

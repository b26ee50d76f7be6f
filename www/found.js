// "What the full run found": the committed CLI results (results/index.json, written by `alignment-gap index`),
// shown before anything is trained here: an experiment's figure, its computed verdict (from its summary.md) and
// where and how long it ran, with buttons that load its preset (or the quick version) into the run controls.
import { $, el, fact, fmtTime } from './ui.js';
import { state } from './state.js';
import { applyPreset } from './settings.js';
import { markdown } from './render.js';
import { refreshCompare } from './compare.js';

let entries = [];

// The verdict sections of a summary.md: each "## Verdict (computed)…" section up to its first sub-heading, the
// bullet verdicts of the other sections (the analyses' and scaling's findings) and the proxy map's threshold.
export function verdictOf(md) {
  const out = [];
  let keep = false;
  for (const line of md.split('\n')) {
    if (line.startsWith('## ')) keep = line.startsWith('## Verdict (computed)');
    else if (line.startsWith('### ')) keep = false;
    if (keep || line.startsWith('**Computed threshold**') || (line.startsWith('- **') && /: (shown|direction only|not shown|holds|does not hold|is reversed|is reversed in direction only|holds in direction only)\b/.test(line))) out.push(line);
  }
  return out.join('\n');
}

async function show(name) {
  const e = entries.find((x) => x.name === name);
  if (!e) return;
  const dir = `results/${e.name}/`;
  const title = state.presets.find((p) => p.name === e.name)?.title || e.name;
  $('found-description').textContent = e.description || `The results in results/${e.name}/.`;
  const facts = $('found-facts');
  facts.replaceChildren();
  fact(facts, 'Seeds', e.seeds.join(', '));
  fact(facts, 'Backend', e.backend);
  fact(facts, 'Wall time', e.wall_seconds != null ? `${fmtTime(e.wall_seconds)} (with the stage cache it had)` : 'not recorded in these results (results/FINDINGS.md lists it)');
  fact(facts, 'Stage time', `${fmtTime(e.stage_seconds)}, summed over the seeds' threads`);
  fact(facts, 'Checkpoints', e.complete ? String(e.checkpoints) : `${e.checkpoints} so far: these results are partial (the run had not finished when they were committed)`);
  const figure = $('found-figure');
  // The folder's own figure (fig10.svg in results/fig10/, proxy-map.svg in results/proxy-map/), else Figure 1.
  const own = `${e.name}.svg`;
  const main = e.figures.includes(own) ? own : e.figures.includes('fig1.svg') ? 'fig1.svg' : e.figures[0];
  const verdictBox = $('found-verdict');
  let verdict = '';
  try {
    const res = await fetch(`${dir}summary.md`);
    if (!res.ok) throw new Error(`${res.status}`);
    verdict = verdictOf(await res.text());
    verdictBox.replaceChildren(...markdown(verdict));
  } catch (err) {
    verdictBox.replaceChildren(el('p', { className: 'status error', textContent: `Could not read ${dir}summary.md (${err.message}).` }));
  }
  // The verdict in words is the figure's text alternative.
  const alt = `${title}: ${verdict.replace(/\*\*/g, '').split('\n').filter((l) => l.startsWith('By the agreement rule') || l.startsWith('- ') || l.startsWith('Computed threshold')).join(' ')}`;
  // At a phone's width, Figure 1 as the CLI laid it out for one (fig1-phone.svg), where the results have it.
  const img = main && el('img', { src: dir + main, alt, loading: 'eager' });
  const phone = main === 'fig1.svg' && e.figures.includes('fig1-phone.svg');
  const picture = phone ? el('picture', {}, el('source', { media: '(max-width: 700px)', srcset: `${dir}fig1-phone.svg` }), img) : img;
  figure.replaceChildren(...(main ? [picture, el('figcaption', { textContent: `${dir}${main}` })] : []));
  $('found-files').replaceChildren('Files: ', ...[...e.figures, 'summary.md', 'results.json', 'metrics.csv'].flatMap((f, i) => [i ? ', ' : '', el('a', { href: dir + f, textContent: f })]));
  $('found-reproduce').disabled = !state.presets.some((p) => p.name === e.name);
  $('found-reproduce').textContent = `Reproduce it here: ${title}`;
  document.body.dataset.found = e.name;
}

export async function loadFound() {
  try {
    const res = await fetch('results/index.json');
    if (!res.ok) throw new Error(`${res.status}`);
    entries = await res.json();
    state.committed = entries;
  } catch (err) {
    $('found').replaceChildren(el('h2', { textContent: 'What the full run found' }), el('p', { className: 'hint', textContent: `No committed results were found here (results/index.json: ${err.message}).` }));
    return;
  }
  const pick = $('found-pick');
  pick.replaceChildren(...entries.map((e) => el('option', { value: e.name, textContent: state.presets.find((p) => p.name === e.name)?.title || e.name })));
  pick.addEventListener('change', () => show(pick.value));
  const toRun = (name) => { $('preset').value = name; applyPreset(name); $('run').scrollIntoView(); $('start').focus(); };
  $('found-reproduce').addEventListener('click', () => toRun(pick.value));
  $('found-quick').addEventListener('click', () => toRun('fig1-quick'));
  if (entries.length) await show(entries[0].name);
  refreshCompare();
}

// Saved runs: the runs kept in IndexedDB, to show again, link to or delete.
import { getRun, deleteRun, allRuns } from './store.js';
import { $, el } from './ui.js';
import { state } from './state.js';
import { setRunStatus } from './buttons.js';
import { renderAll } from './render.js';
import { refreshCompare } from './compare.js';

// What a saved run's Resume button does (run.js's resumeSaved, handed over by main.js: saved.js does not run runs).
let resume = () => {};
export function onResume(handler) { resume = handler; }

export async function listSaved() {
  refreshCompare();
  let runs = [];
  try { runs = await allRuns(); } catch (e) { $('saved-list').textContent = `IndexedDB is not available here: ${e}`; return; }
  runs.sort((a, b) => b.created.localeCompare(a.created));
  if (!runs.length) { $('saved-list').replaceChildren(el('span', { className: 'hint', textContent: 'none yet' })); return; }
  $('saved-list').replaceChildren(el('table', {}, ...runs.map((r) => {
    const showBtn = el('button', { textContent: 'Show' });
    showBtn.addEventListener('click', async () => { if (!state.running) { state.run = await getRun(r.id); state.pickedByUser = false; renderAll(); setRunStatus(`Showing the saved run of ${r.created} (${r.status}).`); } });
    const linkBtn = el('a', { href: r.query || '?', textContent: 'settings' });
    // A run cut off by a reload goes on from its last checkpoint (its state is in this browser's cache).
    const resumeBtn = ['interrupted', 'gpu-lost'].includes(r.status) && el('button', {
      textContent: r.status === 'gpu-lost' ? 'Continue on the CPU' : 'Resume', className: 'resume-saved', title: 'Go on from its last checkpoint',
    });
    if (resumeBtn) resumeBtn.addEventListener('click', async () => { if (!state.running && !$('start').disabled) resume(await getRun(r.id)); });
    const delBtn = el('button', { textContent: 'Delete' });
    delBtn.addEventListener('click', async () => { await deleteRun(r.id); listSaved(); });
    const status = r.status === 'interrupted' ? 'interrupted (the page was closed or reloaded; Resume goes on from its last checkpoint)'
      : r.status === 'gpu-lost' ? 'the GPU was lost (its checkpoints and run states are kept)' : r.continuedFrom ? `${r.status} (continued on the CPU after the GPU was lost)` : r.status;
    return el('tr', {}, el('td', { textContent: new Date(r.created).toLocaleString() }), el('td', { textContent: r.preset }),
      el('td', { textContent: status, className: `run-${r.status}` }), el('td', { textContent: `${r.rows.length} checkpoints` }),
      el('td', {}, ...(resumeBtn ? [resumeBtn, ' '] : []), showBtn, ' ', linkBtn, ' ', delBtn));
  })));
}

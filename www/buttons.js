// What the controls allow right now, and the status line: read from the state alone, so every module that changes
// the state calls these without importing the module that runs the run.
import { $ } from './ui.js';
import { state } from './state.js';

export function setRunStatus(text, kind) {
  const s = $('run-status');
  s.textContent = text;
  s.className = `status ${kind || ''}`;
}

// The status line while no run is going: ready, or what blocks Start (and it agrees with the button).
export function showReadiness() {
  if (state.running || !['passed', 'failed'].includes(document.body.dataset.doctor)) return;
  const bad = [...state.urlErrors, ...state.knobErrors];
  if (bad.length) setRunStatus(`Start is off until ${bad.map((e) => e.field).join(', ')} ${bad.length > 1 ? 'are' : 'is'} fixed (or the preset's values are used).`, 'warn');
  else setRunStatus('Ready: pick a preset and press Start.', 'ok');
}

export function setButtons() {
  const blocked = state.urlErrors.length > 0 || state.knobErrors.length > 0;
  $('start').disabled = state.running || blocked || !document.body.dataset.doctor || document.body.dataset.doctor === 'error';
  $('start').title = blocked ? `Fix first: ${[...state.urlErrors, ...state.knobErrors].map((e) => e.field).join(', ')}` : '';
  $('pause').disabled = !state.running || state.paused;
  $('resume').disabled = !state.running || !state.paused;
  $('stop').disabled = !state.running;
  $('continue-cpu').hidden = state.running || state.run?.status !== 'gpu-lost';
  // Stepping looks into alignment steps: their stage names carry their β.
  $('step').disabled = !state.running || !state.paused || !/β=/.test(state.stage?.name || '');
  const has = !!state.run && state.run.rows.length > 0;
  for (const id of ['dl-json', 'dl-csv', 'dl-svg', 'dl-png', 'dl-plots']) $(id).disabled = !has;
  $('preset').disabled = $('backend').disabled = $('use-shipped').disabled = state.running;
  for (const i of $('knobs').querySelectorAll('input')) i.disabled = state.running;
}

// "Look inside one update": the pairs of one alignment step the run took while paused (Event::StepInside, made by
// train::align::look_inside), with h against IPO's target, each pair's loss, both judges' views, and per token how the
// update moved the log-probabilities.
import { $, el, num } from './ui.js';

const signed = (x) => `${x >= 0 ? '+' : '−'}${num(Math.abs(x))}`;
const view = (agrees) => (agrees === true ? 'prefers it' : agrees === false ? 'prefers the other' : 'ranks neither first');

// A strip of the response's tokens, each shaded by how far the update moved its log-prob: blue up, orange down (a
// pair of hues told apart under the common colour-vision deficiencies), the numbers in its tooltip and label.
function strip(tokens) {
  const most = Math.max(1e-6, ...tokens.map((t) => Math.abs(t.after - t.before)));
  return el('span', { className: 'strip' }, ...tokens.map((t) => {
    const d = t.after - t.before;
    const alpha = (0.15 + 0.85 * Math.abs(d) / most).toFixed(2);
    const colour = d >= 0 ? `rgba(31, 119, 180, ${alpha})` : `rgba(230, 120, 20, ${alpha})`;
    const label = `${t.token}: log-prob ${num(t.before)} → ${num(t.after)} (${signed(d)})`;
    return el('span', { className: 'token', textContent: t.token, title: label, ariaLabel: label, style: `background:${colour}` });
  }));
}

export function renderInside(inside) {
  const section = $('inside');
  if (!inside) { section.hidden = true; return; }
  section.hidden = false;
  const by = inside.labels === 'proxy' ? 'the proxy' : 'the golden preference';
  const pairs = inside.pairs;
  const disagree = pairs.filter((p) => p.golden_agrees === false).length;
  const gained = pairs.filter((p) => (p.logp_preferred[1] - p.logp_rejected[1]) > (p.logp_preferred[0] - p.logp_rejected[0])).length;
  $('inside-summary').replaceChildren(el('p', { id: 'inside-facts' },
    `Step ${inside.step} of the ${inside.source.replace('_', ' ')} run: ${pairs.length} pairs ordered by ${by}. `,
    `Loss ${num(inside.loss)} (${inside.loss_name.toUpperCase()}, β ${num(inside.beta)}, target h = 1/(2β) = ${num(inside.target)}), `,
    `lr ${num(inside.lr)}, gradient norm ${num(inside.grad_norm)}. `,
    `The golden reward disagrees with the order in ${disagree} of ${pairs.length} pairs; `,
    `the update widened the preferred response's lead in ${gained}.`));
  const head = el('tr', {}, ...['prompt', 'preferred', 'rejected', 'golden reward', 'proxy', 'h (target ' + num(inside.target) + ')', 'loss', 'Δ log π preferred', 'Δ log π rejected', ''].map((h) => el('th', { textContent: h })));
  const rows = [];
  pairs.forEach((p, i) => {
    const tokensBtn = el('button', { type: 'button', textContent: 'Tokens', className: 'tokens-btn' });
    const row = el('tr', { className: p.golden_agrees === false ? 'disagree' : '' },
      el('td', { className: 'mono', textContent: p.prompt }),
      el('td', { className: 'mono', textContent: p.preferred }),
      el('td', { className: 'mono', textContent: p.rejected }),
      el('td', { textContent: `${num(p.golden_reward_preferred)} vs ${num(p.golden_reward_rejected)}${p.golden_agrees === false ? ' — disagrees' : ''}` }),
      el('td', { textContent: p.proxy_agrees === null || p.proxy_agrees === undefined ? '—' : view(p.proxy_agrees) }),
      el('td', { textContent: num(p.h) }),
      el('td', { textContent: num(p.loss) }),
      el('td', { textContent: signed(p.logp_preferred[1] - p.logp_preferred[0]) }),
      el('td', { textContent: signed(p.logp_rejected[1] - p.logp_rejected[0]) }),
      el('td', {}, tokensBtn));
    const detail = el('tr', { className: 'token-row', hidden: true }, el('td', { colSpan: 10 },
      el('div', {}, el('b', { textContent: 'preferred ' }), strip(p.tokens_preferred)),
      el('div', {}, el('b', { textContent: 'rejected ' }), strip(p.tokens_rejected))));
    tokensBtn.addEventListener('click', () => { detail.hidden = !detail.hidden; tokensBtn.setAttribute('aria-expanded', String(!detail.hidden)); });
    tokensBtn.setAttribute('aria-expanded', 'false');
    row.dataset.pair = String(i);
    rows.push(row, detail);
  });
  $('inside-table').replaceChildren(el('div', { className: 'scroll' }, el('table', { className: 'inside' }, el('thead', {}, head), el('tbody', {}, ...rows))));
  section.dataset.step = String(inside.step);
  section.dataset.source = inside.source;
}

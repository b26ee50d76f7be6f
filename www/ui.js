// Small DOM and formatting helpers shared by every part of the page.

export const $ = (id) => document.getElementById(id);

export const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

export function get(obj, key) { return key.split('.').reduce((o, k) => o?.[k], obj); }

export function show(v) { return Array.isArray(v) ? v.join(',') : String(v); }

export function fmtTime(s) {
  if (!isFinite(s)) return '—';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export const num = (x) => String(+x.toPrecision(3));

export function fact(dl, term, value) { dl.append(el('dt', { textContent: term }), el('dd', { textContent: value })); }

export const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;

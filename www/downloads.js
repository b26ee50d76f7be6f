// Downloads: results.json, the figure as SVG and PNG, and (from render.js) the trained models.
import { $, el } from './ui.js';
import { state } from './state.js';

export function download(name, data, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const a = el('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export function resultsJson() {
  const run = state.run;
  const base = run.results || { config: run.config, backend: run.backendUsed || run.backend, checkpoints: run.rows, timings: run.timings };
  return JSON.stringify({ ...base, status: run.status, page: { preset: run.preset, query: run.query, created: run.created, elapsed_s: run.elapsed } }, null, 2);
}

export function svgText(id) {
  const s = $(id).querySelector('svg').cloneNode(true);
  const [, , w, h] = s.getAttribute('viewBox').split(' ');
  s.setAttribute('width', w);
  s.setAttribute('height', h);
  s.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  return s.outerHTML;
}

export function pngOf(svg, w, h) {
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

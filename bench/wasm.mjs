// The page's WebAssembly CPU backend against the native CLI, on this machine, interleaved in one run:
// a training step and sampling at bench sizes, in headless Chromium (the page's own worker, no WebGPU)
// and natively on one thread. Prints a markdown table.
//
//   node bench/wasm.mjs [--sizes S,M] [--repeats 5] [--rounds 2]
//
// Needs the release wasm in www/pkg (bash scripts/serve.sh builds it, or
// `wasm-pack build --release --target web --out-dir www/pkg --no-typescript --no-pack`), the release CLI
// (cargo build --release) and the page tests' node modules (cd tests/page && npm ci).
// Env: ALIGNMENT_GAP_BIN (default target/release/alignment-gap), CHROMIUM (default /usr/bin/chromium).
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from '../tests/page/node_modules/playwright-core/index.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const sizes = arg('sizes', 'S,M').split(',');
const repeats = Number(arg('repeats', '5'));
const rounds = Number(arg('rounds', '2'));
const bin = process.env.ALIGNMENT_GAP_BIN || path.join(root, 'target/release/alignment-gap');
const port = 19080 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${port}/`;

function native(size) {
  const out = execFileSync(bin, ['bench', '--backend', 'cpu', '--sizes', size, '--repeats', String(repeats)],
    { env: { ...process.env, MATMUL_NUM_THREADS: '1' }, encoding: 'utf8' });
  // Columns: size, params, train step (ms), train tokens/s, GFLOP/s, "NN %" (two tokens), sample tokens/s.
  const line = out.split('\n').find((l) => l.startsWith(`${size} `));
  const cols = line.trim().split(/\s+/);
  return { train_step_ms: Number(cols[2]), sample_tokens_per_s: Number(cols[7]) };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
const server = spawn(bin, ['serve', '--port', String(port), '--root', root], { stdio: ['ignore', 'ignore', 'inherit'] });
try {
  for (let i = 0; ; i++) {
    try { if ((await fetch(url)).ok) break; } catch { /* not up yet */ }
    if (i > 100) throw new Error(`server did not answer on ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const page = await browser.newPage();
  await page.goto(`${url}www/state.js`); // any page of the origin: the worker is all we need
  await page.evaluate(() => {
    window.benchWorker = new Worker('/www/worker.js', { type: 'module' });
    window.nextMessage = (type) => new Promise((resolve, reject) => {
      const on = ({ data }) => {
        if (data.type === type) { window.benchWorker.removeEventListener('message', on); resolve(data); }
        if (data.type === 'error') { window.benchWorker.removeEventListener('message', on); reject(new Error(data.message)); }
      };
      window.benchWorker.addEventListener('message', on);
    });
  });
  await page.evaluate(() => window.nextMessage('doctor')); // the worker's start-up self-check, out of the way
  const rows = [];
  for (let round = 1; round <= rounds; round++) {
    for (const size of sizes) {
      const n = native(size);
      const w = await page.evaluate(async ({ size, repeats }) => {
        const done = window.nextMessage('bench');
        window.benchWorker.postMessage({ type: 'bench', backend: 'cpu', size, repeats });
        return (await done).row;
      }, { size, repeats });
      rows.push({ round, size, n, w });
      console.error(`round ${round} ${size}: native ${n.train_step_ms} ms, wasm ${w.train_step_ms.toFixed(1)} ms`);
    }
  }
  console.log('| round | size | native step (ms) | wasm step (ms) | wasm / native | native sample tok/s | wasm sample tok/s | wasm / native |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const { round, size, n, w } of rows) {
    console.log(`| ${round} | ${size} | ${n.train_step_ms.toFixed(1)} | ${w.train_step_ms.toFixed(1)} | ${(w.train_step_ms / n.train_step_ms).toFixed(2)}× | ` +
      `${Math.round(n.sample_tokens_per_s)} | ${Math.round(w.sample_tokens_per_s)} | ${(n.sample_tokens_per_s / w.sample_tokens_per_s).toFixed(2)}× slower |`);
  }
} finally {
  await browser.close();
  server.kill();
}

// The page's WebAssembly CPU backend against the native CLI, on this machine, interleaved in one run:
// a training step and sampling at bench sizes, in headless Chromium (the page's own worker, no WebGPU)
// and natively on one thread. Prints a markdown table.
//
//   node bench/wasm.mjs [--sizes S,M] [--repeats 5] [--rounds 2] [--wasm simd128,relaxed] [--gemm | --data-parallel C | --profile]
//
// Each wasm build (www/pkg/: SIMD128; www/pkg-relaxed/: + relaxed SIMD) runs in a worker of its own, forced by
// the worker's ?wasm=. Needs both release builds (bash scripts/build-wasm.sh), the release CLI
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
const builds = arg('wasm', 'simd128,relaxed').split(',');
// --gemm: instead of whole steps, each matmul shape of a step with both CPU GEMMs (direct, packed), per build and natively.
const gemm = process.argv.includes('--gemm');
// --data-parallel C: instead, a data-parallel alignment step in C chunks on 1 and 2 workers (the page's helper Web
// Workers) per build, and natively on 1 and 2 threads (`bench --data-parallel C`).
const dataParallel = arg('data-parallel', null);
// --profile: instead, one training step's per-op profile (ms per step, each op run alone), natively on one thread
// (`bench --profile`) and per build, side by side, with each op's wasm/native ratio.
const profile = process.argv.includes('--profile');
for (const b of builds) if (!['simd128', 'relaxed'].includes(b)) throw new Error(`--wasm: '${b}' is not one of simd128, relaxed`);
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
  await page.goto(`${url}www/state.js`); // any page of the origin: the workers are all we need
  // One worker per wasm build, each forced by its URL (worker.js reads ?wasm=).
  await page.evaluate((builds) => {
    window.benchWorkers = Object.fromEntries(builds.map((b) => [b, new Worker(`/www/worker.js?wasm=${b}`, { type: 'module' })]));
    window.nextMessage = (build, type) => new Promise((resolve, reject) => {
      const w = window.benchWorkers[build];
      const on = ({ data }) => {
        if (data.type === type) { w.removeEventListener('message', on); resolve(data); }
        if (data.type === 'error') { w.removeEventListener('message', on); reject(new Error(data.message)); }
      };
      w.addEventListener('message', on);
    });
    // Every worker's start-up self-check is awaited from the start: a report that came before its listener would be lost.
    window.doctors = Object.fromEntries(builds.map((b) => [b, window.nextMessage(b, 'doctor')]));
  }, builds);
  const identity = {};
  for (const b of builds) identity[b] = (await page.evaluate((b) => window.doctors[b], b)).report.backend; // out of the way
  for (const b of builds) console.error(`${b}: ${identity[b]}`);
  if (gemm) {
    for (const size of sizes) {
      const out = execFileSync(bin, ['bench', '--backend', 'cpu', '--sizes', size, '--repeats', '1', '--gemm'],
        { env: { ...process.env, MATMUL_NUM_THREADS: '1' }, encoding: 'utf8' });
      console.log(`### ${size}, native, one thread\n\n\`\`\`\n${out.slice(out.indexOf(`size ${size}: each matmul`))}\`\`\`\n`);
      for (const b of builds) {
        const result = await page.evaluate(async ({ b, size }) => {
          const done = window.nextMessage(b, 'gemm');
          window.benchWorkers[b].postMessage({ type: 'gemm', size });
          return (await done).result;
        }, { b, size });
        console.log(`### ${size}, ${b} (${result.backend})\n\n\`\`\`\n${result.table}\`\`\`\n`);
      }
    }
  }
  if (dataParallel) {
    const chunks = Number(dataParallel);
    const out = [];
    for (let round = 1; round <= rounds; round++) {
      for (const size of sizes) {
        const text = execFileSync(bin, ['bench', '--backend', 'cpu', '--sizes', size, '--repeats', String(repeats), '--data-parallel', String(chunks)],
          { env: { ...process.env, MATMUL_NUM_THREADS: '1' }, encoding: 'utf8' });
        // Rows: size, chunks, threads, step (ms), speed-up, same bits.
        const native = text.split('\n').filter((l) => l.startsWith(`${size} `) && l.trim().split(/\s+/).length === 6).map((l) => Number(l.trim().split(/\s+/)[3]));
        const row = { round, size, native };
        for (const b of builds) {
          row[b] = [];
          for (const workers of [1, 2]) {
            row[b].push(await page.evaluate(async ({ b, size, repeats, chunks, workers }) => {
              // The helpers: workers of the same build, each on a channel of its own (as run.js starts them).
              const helpers = [], ports = [];
              for (let i = 1; i < workers; i++) {
                const h = new Worker(`/www/worker.js?wasm=${b}`, { type: 'module', name: 'chunk-helper' });
                const channel = new MessageChannel();
                h.postMessage({ type: 'helper', port: channel.port2 }, [channel.port2]);
                helpers.push(h);
                ports.push(channel.port1);
              }
              const done = window.nextMessage(b, 'bench-dp');
              window.benchWorkers[b].postMessage({ type: 'bench-dp', size, repeats, chunks, ports }, ports);
              const { result } = await done;
              helpers.forEach((h) => h.terminate());
              return result;
            }, { b, size, repeats, chunks, workers }));
          }
        }
        out.push(row);
        console.error(`round ${round} ${size}: native ${native.join(' / ')} ms, ` + builds.map((b) => `${b} ${row[b].map((r) => r.ms.toFixed(1)).join(' / ')} ms`).join(', '));
      }
    }
    console.log(`Data-parallel alignment step (offline IPO, 64 pairs in ${chunks} chunks), ms per step on 1 / 2 threads or workers:\n`);
    console.log(`| round | size | native 1 / 2 threads | speed-up | ${builds.map((b) => `${b} 1 / 2 workers | speed-up | same bits`).join(' | ')} |`);
    console.log(`|---|---|---|---|${builds.map(() => '---|---|---|').join('')}`);
    for (const r of out) {
      console.log(`| ${r.round} | ${r.size} | ${r.native.map((v) => v.toFixed(1)).join(' / ')} | ${(r.native[0] / r.native[1]).toFixed(2)}× | ` +
        builds.map((b) => `${r[b].map((x) => x.ms.toFixed(1)).join(' / ')} | ${(r[b][0].ms / r[b][1].ms).toFixed(2)}× | ${r[b][0].gradient === r[b][1].gradient ? 'yes' : 'NO'}`).join(' | ') + ' |');
    }
  }
  if (profile) {
    for (const size of sizes) {
      const text = execFileSync(bin, ['bench', '--backend', 'cpu', '--sizes', size, '--repeats', '3', '--profile'],
        { env: { ...process.env, MATMUL_NUM_THREADS: '1' }, encoding: 'utf8' });
      // The profile table's rows: op, calls, ms/step, share, GFLOP/s, MB/step, GB/s.
      const table = text.slice(text.indexOf(`size ${size}: `));
      const native = Object.fromEntries(table.split('\n').slice(2).filter((l) => l.trim()).map((l) => l.trim().split(/\s+/)).map((c) => [c[0], Number(c[2])]));
      const wasm = {};
      for (const b of builds) {
        const ops = await page.evaluate(async ({ b, size }) => {
          const done = window.nextMessage(b, 'profile');
          window.benchWorkers[b].postMessage({ type: 'profile', size, steps: 3 });
          return (await done).ops;
        }, { b, size });
        wasm[b] = Object.fromEntries(ops.map((o) => [o.name, { ms: o.seconds * 1e3, calls: o.calls }]));
      }
      const names = [...new Set([...Object.keys(native), ...builds.flatMap((b) => Object.keys(wasm[b]))])];
      const total = (m) => Object.values(m).reduce((a, v) => a + (typeof v === 'number' ? v : v.ms), 0);
      console.log(`### ${size}: ms per step, each op run alone (native one thread against each build)\n`);
      console.log(`| op | calls | native | ${builds.map((b) => `${b} | ratio`).join(' | ')} |`);
      console.log(`|---|---|---|${builds.map(() => '---|---|').join('')}`);
      const cell = (v) => (v === undefined ? '–' : v.toFixed(2));
      for (const n of names.sort((x, y) => (wasm[builds[0]][y]?.ms || 0) - (wasm[builds[0]][x]?.ms || 0))) {
        console.log(`| ${n} | ${wasm[builds[0]][n]?.calls ?? '–'} | ${cell(native[n])} | ${builds.map((b) => `${cell(wasm[b][n]?.ms)} | ${native[n] && wasm[b][n] ? `${(wasm[b][n].ms / native[n]).toFixed(2)}×` : '–'}`).join(' | ')} |`);
      }
      console.log(`| **step** | | ${total(native).toFixed(1)} | ${builds.map((b) => `${total(wasm[b]).toFixed(1)} | ${(total(wasm[b]) / total(native)).toFixed(2)}×`).join(' | ')} |\n`);
    }
  }
  const rows = [];
  for (let round = 1; !gemm && !dataParallel && !profile && round <= rounds; round++) {
    for (const size of sizes) {
      const n = native(size);
      const w = {};
      for (const b of builds) {
        w[b] = await page.evaluate(async ({ b, size, repeats }) => {
          const done = window.nextMessage(b, 'bench');
          window.benchWorkers[b].postMessage({ type: 'bench', backend: 'cpu', size, repeats });
          return (await done).row;
        }, { b, size, repeats });
      }
      rows.push({ round, size, n, w });
      console.error(`round ${round} ${size}: native ${n.train_step_ms} ms, ` + builds.map((b) => `${b} ${w[b].train_step_ms.toFixed(1)} ms`).join(', '));
    }
  }
  if (!gemm && !dataParallel && !profile) {
  console.log(builds.map((b) => `- ${b}: ${identity[b]}`).join('\n') + '\n');
  console.log(`| round | size | native step (ms) | ${builds.map((b) => `${b} step (ms) | ${b} / native`).join(' | ')} | native sample tok/s | ${builds.map((b) => `${b} sample tok/s`).join(' | ')} |`);
  console.log(`|---|---|---|${builds.map(() => '---|---|').join('')}---|${builds.map(() => '---|').join('')}`);
  for (const { round, size, n, w } of rows) {
    console.log(`| ${round} | ${size} | ${n.train_step_ms.toFixed(1)} | ` +
      builds.map((b) => `${w[b].train_step_ms.toFixed(1)} | ${(w[b].train_step_ms / n.train_step_ms).toFixed(2)}×`).join(' | ') +
      ` | ${Math.round(n.sample_tokens_per_s)} | ${builds.map((b) => Math.round(w[b].sample_tokens_per_s)).join(' | ')} |`);
  }
  }
} finally {
  await browser.close();
  server.kill();
}

// Page tests: serve the built page with `alignment-gap serve` on 127.0.0.1, open it in headless Chromium,
// and check what a person would see. Screenshots go to target/screenshots/ (look at them).
// Env: ALIGNMENT_GAP_BIN (the CLI binary), CHROMIUM (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = process.env.ALIGNMENT_GAP_BIN || path.join(root, 'target/debug/alignment-gap');
const shots = path.join(root, 'target/screenshots');
const port = 18080 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${port}/`;
// Flags from the machine notes: as root Chromium needs --no-sandbox; the network flags stop it calling home.
const baseArgs = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];
let server;

before(async () => {
  mkdirSync(shots, { recursive: true });
  server = spawn(bin, ['serve', '--port', String(port), '--root', root], { stdio: ['ignore', 'pipe', 'inherit'] });
  const deadline = Date.now() + 20000;
  for (;;) {
    try { if ((await fetch(url)).ok) break; } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`server did not answer on ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(() => server?.kill());

async function openPage(extraArgs, viewport) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: [...baseArgs, ...extraArgs] });
  const page = await browser.newPage({ viewport });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.doctor, null, { timeout: 180000 });
  return { browser, page, errors };
}

test('serve answers with the right MIME types', async () => {
  const wasm = await fetch(`${url}www/pkg/alignment_gap_bg.wasm`);
  assert.equal(wasm.status, 200, 'www/pkg is built');
  assert.equal(wasm.headers.get('content-type'), 'application/wasm');
  assert.match((await fetch(`${url}www/worker.js`)).headers.get('content-type'), /^text\/javascript/);
  assert.equal((await fetch(`${url}no-such-file.js`)).status, 404);
});

test('with WebGPU: the device panel shows the adapter and a passing self-check', async () => {
  const { browser, page, errors } = await openPage(['--enable-unsafe-webgpu'], { width: 1200, height: 1000 });
  try {
    assert.equal(await page.evaluate(() => document.body.dataset.doctor), 'passed', await page.textContent('#device-status'));
    assert.match(await page.textContent('#device-status'), /GPU ready/);
    assert.match(await page.textContent('#device-facts'), /Adapter.*Limits.*Self-check\d+ passed, 0 failed/s);
    await page.click('#selfcheck summary');
    await page.screenshot({ path: path.join(shots, 'device-webgpu-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(shots, 'device-webgpu-phone.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('without WebGPU: the page says so plainly and runs the CPU backend', async () => {
  const { browser, page, errors } = await openPage(['--disable-gpu', '--disable-webgpu'], { width: 1200, height: 800 });
  try {
    const status = await page.textContent('#device-status');
    assert.match(status, /WebGPU is unavailable here, so everything runs on the CPU backend/);
    assert.equal(await page.evaluate(() => document.body.dataset.doctor), 'passed');
    assert.match(await page.textContent('#device-facts'), /Backendcpu/);
    await page.screenshot({ path: path.join(shots, 'device-no-webgpu.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

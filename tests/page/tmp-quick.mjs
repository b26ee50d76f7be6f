// Temporary: Figure 1 (quick) whole in the page on N workers (issue 30's wall-time target). Deleted after use.
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';
const bin = process.env.ALIGNMENT_GAP_BIN;
const port = 19500 + Math.floor(Math.random() * 300);
const url = `http://127.0.0.1:${port}/`;
const server = spawn(bin, ['serve', '--port', String(port), '--root', process.cwd()], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1500));
const baseArgs = ['--no-sandbox', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-gpu', '--disable-webgpu'];
for (const n of (process.env.ORDER || '2,1').split(',').map(Number)) {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: baseArgs });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('pageerror', (e) => console.log('pageerror', String(e)));
  await page.goto(`${url}?preset=fig1-quick&backend=cpu&workers=${n}`);
  await page.waitForFunction(() => document.body.dataset.doctor, null, { timeout: 180000 });
  await page.waitForFunction(() => !document.getElementById('start').disabled, null, { timeout: 120000 });
  const estimate = await page.textContent('#estimate');
  if (n === 2) await page.locator('#device-facts').screenshot({ path: 'target/screenshots/device-workers.png' });
  const t0 = Date.now();
  await page.click('#start');
  const points = (m) => page.waitForFunction((m) => Number(document.getElementById('fig1').dataset[m]) > 0, m, { timeout: 600000, polling: 250 });
  await points('pointsOnline');
  const online = (Date.now() - t0) / 1000;
  await points('pointsOffline');
  const offline = (Date.now() - t0) / 1000;
  if (n === 2) await page.locator('#run-status').screenshot({ path: 'target/screenshots/run-status-workers.png' });
  await page.waitForFunction(() => ['finished', 'failed', 'stopped'].includes(document.body.dataset.run), null, { timeout: 1200000, polling: 500 });
  const total = (Date.now() - t0) / 1000;
  const status = await page.textContent('#run-status');
  const w = await page.evaluate(() => [document.body.dataset.workers, document.body.dataset.runWorkers, document.body.dataset.wasmBuild]);
  console.log(JSON.stringify({ workers: n, dataset: w, first_online_s: online, first_offline_s: offline, total_s: total, status: status.slice(0, 120), estimate }));
  await browser.close();
}
server.kill();

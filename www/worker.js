// The Web Worker that owns the wasm module and the GPU device: the device check, the speed measurement and
// the training all happen here, so the page never freezes.
// In:  {type: 'speed', backend} | {type: 'run', config, backend} | {type: 'pause'|'resume'|'stop'}
// Out: {type: 'ready', webgpu} | {type: 'doctor', report} | {type: 'speed', bench} | {type: 'event', event}
//      | {type: 'model', seed, name, safetensors, config, tokenizer} | {type: 'done', results}
//      | {type: 'stopped'} | {type: 'error', message, during}
import init, { doctor, hasWebGpu, measureSpeed, runFigure, stoppedMessage } from './pkg/alignment_gap.js';

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

let paused = false;
let stopRequested = false;
let lastYield = 0;
let busy = Promise.resolve();

// Awaited by the Rust loops once per step: resolves false to go on, true to stop; while paused it waits.
// It gives the event loop a turn (so pause/stop messages arrive) at most every 50 ms.
function control() {
  const now = performance.now();
  if (!paused && !stopRequested && now - lastYield < 50) return Promise.resolve(false);
  return new Promise((resolve) => {
    const check = () => {
      lastYield = performance.now();
      if (stopRequested) resolve(true);
      else if (paused) setTimeout(check, 100);
      else resolve(false);
    };
    setTimeout(check, 0);
  });
}

async function run(config, backend) {
  paused = false;
  stopRequested = false;
  try {
    const results = await runFigure(config, backend,
      (event) => post({ type: 'event', event }),
      (seed, name, safetensors, configJson, tokenizer) =>
        post({ type: 'model', seed, name, safetensors, config: configJson, tokenizer }, [safetensors.buffer]),
      control);
    post({ type: 'done', results });
  } catch (e) {
    const message = String(e);
    if (message.includes(stoppedMessage())) post({ type: 'stopped' });
    else post({ type: 'error', message, during: 'run' });
  }
}

self.onmessage = ({ data }) => {
  if (data.type === 'pause') paused = true;
  else if (data.type === 'resume') paused = false;
  else if (data.type === 'stop') stopRequested = true;
  // One job at a time, in order.
  else if (data.type === 'run') busy = busy.then(() => run(data.config, data.backend));
  else if (data.type === 'speed') {
    busy = busy.then(async () => {
      try {
        post({ type: 'speed', bench: await measureSpeed(data.backend) });
      } catch (e) {
        post({ type: 'error', message: String(e), during: 'speed' });
      }
    });
  }
};

async function main() {
  try {
    await init();
  } catch (e) {
    post({ type: 'error', message: `could not load the wasm package (www/pkg/): ${e}`, during: 'load' });
    return;
  }
  post({ type: 'ready', webgpu: hasWebGpu() });
  busy = busy.then(async () => {
    try {
      post({ type: 'doctor', report: await doctor('auto') });
    } catch (e) {
      post({ type: 'error', message: String(e), during: 'doctor' });
    }
  });
}

main();

// The Web Worker that owns the wasm module and the GPU device, so the page never freezes while it computes.
// Messages out: {type: 'ready', webgpu} | {type: 'doctor', report} | {type: 'error', message}.
import init, { doctor, hasWebGpu } from './pkg/alignment_gap.js';

const post = (msg) => self.postMessage(msg);

async function main() {
  try {
    await init();
  } catch (e) {
    post({ type: 'error', message: `could not load the wasm package (www/pkg/): ${e}` });
    return;
  }
  post({ type: 'ready', webgpu: hasWebGpu() });
  try {
    post({ type: 'doctor', report: await doctor('auto') });
  } catch (e) {
    post({ type: 'error', message: String(e) });
  }
}

main();

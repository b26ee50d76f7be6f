// The page's UI thread: starts the worker and shows what it reports. No computation happens here.

const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  const el = $('device-status');
  el.textContent = text;
  el.className = `status ${kind || ''}`;
}

function fact(dl, term, value) {
  const dt = document.createElement('dt');
  dt.textContent = term;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

const mib = (bytes) => `${Math.round(bytes / 1048576)} MiB`;

function showReport(report) {
  const dl = $('device-facts');
  dl.replaceChildren();
  fact(dl, 'Backend', report.backend);
  const adapter = report.adapters[0];
  if (adapter) {
    const l = adapter.limits;
    fact(dl, 'Adapter', `${adapter.name} (${adapter.backend}, ${adapter.device_type})`);
    fact(dl, 'Limits', `buffer ${mib(l.max_buffer_size)}, storage binding ${mib(l.max_storage_buffer_binding_size)}, ` +
      `${l.max_storage_buffers_per_shader_stage} storage buffers/stage, ` +
      `workgroup memory ${l.max_compute_workgroup_storage_size / 1024} KiB, ` +
      `${l.max_compute_invocations_per_workgroup} invocations/workgroup`);
  }
  const sc = report.selfcheck;
  fact(dl, 'Self-check', `${sc.passed} passed, ${sc.failed} failed`);
  dl.hidden = false;

  const rows = $('selfcheck-rows');
  rows.replaceChildren();
  for (const r of sc.results) {
    const tr = document.createElement('tr');
    const err = r.relative_error == null ? '—' : r.relative_error.toExponential(2);
    const verdict = r.passed ? 'OK' : `FAIL${r.message ? ': ' + r.message : ''}`;
    for (const text of [r.name, err, r.reference, verdict]) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    tr.className = r.passed ? 'ok' : 'fail';
    rows.append(tr);
  }
  $('selfcheck-summary').textContent = `Kernel self-check: ${sc.passed} passed, ${sc.failed} failed (against the ${sc.results[0]?.reference ?? 'reference'})`;
  $('selfcheck').hidden = false;
  $('selfcheck').open = sc.failed > 0;

  if (report.note) {
    setStatus(`WebGPU is unavailable here, so everything runs on the CPU backend (WebAssembly), which is slower. ` +
      `(${report.note})`, 'warn');
  } else if (sc.failed > 0) {
    setStatus(`GPU ready, but ${sc.failed} kernel check(s) failed: results on this device cannot be trusted.`, 'error');
  } else {
    setStatus(`GPU ready: ${adapter ? adapter.name : report.backend}. All ${sc.passed} kernel checks passed.`, 'ok');
  }
  document.body.dataset.doctor = sc.failed === 0 ? 'passed' : 'failed';
}

function start() {
  if (!('gpu' in navigator)) {
    setStatus('WebGPU is unavailable in this browser; the CPU backend (WebAssembly) will be used. Checking it…', 'warn');
  }
  let worker;
  try {
    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  } catch (e) {
    setStatus(`Could not start the Web Worker: ${e}`, 'error');
    return;
  }
  worker.onmessage = ({ data }) => {
    if (data.type === 'ready') {
      if (data.webgpu) setStatus('WebGPU found; checking the kernels on this GPU…');
    } else if (data.type === 'doctor') {
      showReport(data.report);
    } else if (data.type === 'error') {
      setStatus(`Error: ${data.message}`, 'error');
      document.body.dataset.doctor = 'error';
    }
  };
  worker.onerror = (e) => {
    setStatus(`The worker failed: ${e.message || 'could not load www/worker.js or the wasm package'}`, 'error');
    document.body.dataset.doctor = 'error';
  };
}

start();

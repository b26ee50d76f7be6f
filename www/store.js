// Kept in this browser (IndexedDB): runs (config, status, every checkpoint, the live curves and the trained
// models, so a reload or a closed tab loses nothing that had finished), and the stage cache (SFT and proxy models by
// the CLI's cache keys, so a second run of the same stages never trains them again; and, while a run goes, its
// finished runs and the state it keeps at each checkpoint, so a reload can resume it). The page and its workers
// both open it; each transaction closes its connection, so a version upgrade is never blocked for long.
const DB = 'alignment-gap';
const STORE = 'runs';
const STAGES = 'stages';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 2);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'id' });
      if (!db.objectStoreNames.contains(STAGES)) db.createObjectStore(STAGES);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn, store = STORE) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(store, mode);
    const req = fn(t.objectStore(store));
    t.oncomplete = () => { db.close(); resolve(req?.result); };
    t.onerror = () => { db.close(); reject(t.error); };
    t.onabort = () => { db.close(); reject(t.error || new Error('transaction aborted')); };
  });
}

export const putRun = (run) => tx('readwrite', (s) => s.put(run));
export const getRun = (id) => tx('readonly', (s) => s.get(id));
export const deleteRun = (id) => tx('readwrite', (s) => s.delete(id));
export const allRuns = () => tx('readonly', (s) => s.getAll());

// A stage cache entry ({safetensors: Uint8Array, config, meta}) by its key, e.g. `sft-…`, `proxy-…`.
export const getStage = (key) => tx('readonly', (s) => s.get(key), STAGES);
export const putStage = (key, entry) => tx('readwrite', (s) => s.put(entry, key), STAGES);
export const deleteStage = (key) => tx('readwrite', (s) => s.delete(key), STAGES);

// A run still marked "running" when the page loads was cut off by a reload or a closed tab.
export async function markInterrupted() {
  for (const run of await allRuns()) {
    if (run.status === 'running' || run.status === 'paused') {
      run.status = 'interrupted';
      await putRun(run);
    }
  }
}

// Runs kept in this browser (IndexedDB): config, status, every checkpoint, the live curves and the trained
// models, so a reload or a closed tab loses nothing that had finished.
const DB = 'alignment-gap';
const STORE = 'runs';

function open() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const req = fn(t.objectStore(STORE));
    t.oncomplete = () => { db.close(); resolve(req?.result); };
    t.onerror = () => { db.close(); reject(t.error); };
    t.onabort = () => { db.close(); reject(t.error || new Error('transaction aborted')); };
  });
}

export const putRun = (run) => tx('readwrite', (s) => s.put(run));
export const getRun = (id) => tx('readonly', (s) => s.get(id));
export const deleteRun = (id) => tx('readwrite', (s) => s.delete(id));
export const allRuns = () => tx('readonly', (s) => s.getAll());

// A run still marked "running" when the page loads was cut off by a reload or a closed tab.
export async function markInterrupted() {
  for (const run of await allRuns()) {
    if (run.status === 'running' || run.status === 'paused') {
      run.status = 'interrupted';
      await putRun(run);
    }
  }
}

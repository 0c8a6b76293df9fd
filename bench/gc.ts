/**
 * A forced full GC without requiring `node --expose-gc`: the flag is turned
 * on at run time and `gc` taken from a fresh context.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

function loadGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

const forceGc = loadGc();

/** Heap in use after a full GC, in bytes. */
export function heapAfterGc(): number {
  forceGc();
  return process.memoryUsage().heapUsed;
}

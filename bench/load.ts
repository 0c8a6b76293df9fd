/** Drivers that run an operation n times and time it. */
import { performance } from 'node:perf_hooks';

/** Runs `op(0)` … `op(n-1)` one after another; resolves the elapsed seconds. */
export async function sequential(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  return (performance.now() - started) / 1000;
}

/**
 * `workers` concurrent callers share `n` operations, each calling `op` again
 * as soon as its previous call settled; resolves the elapsed seconds.
 */
export async function concurrent(workers: number, n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await op(next++);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: workers }, worker));
  return (performance.now() - started) / 1000;
}

/** Fails loudly when a client did not read the seeded value (wrong key, wrong reply type). */
export function expectValue(reply: unknown, bytes: number, who: string): void {
  if (!Buffer.isBuffer(reply) || reply.length !== bytes) {
    const got = Buffer.isBuffer(reply) ? `a Buffer of ${reply.length} bytes` : typeof reply;
    throw new Error(`bench: ${who} read ${got}, expected a Buffer of ${bytes} bytes`);
  }
}

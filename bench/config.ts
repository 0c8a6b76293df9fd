/**
 * Settings every scenario shares: how long to run, how many rounds, and the
 * key set all clients read (the same keys redis-benchmark reads with `-r`).
 */

/** BENCH_QUICK=1: shorter runs for development; ratios get noisier. */
export const QUICK = process.env.BENCH_QUICK === '1';

/** Measured rounds per scenario, after one warm-up round; the median is reported. */
export const ROUNDS = 3;

/** Size of every ordinary value. */
export const VALUE_BYTES = 100;

/** Number of keys: redis-benchmark `-r 1000` reads exactly these. */
export const KEY_COUNT = 1000;

/** `key:000000000000` … `key:000000000999`, as redis-benchmark names them. */
export const KEYS: readonly string[] = Array.from({ length: KEY_COUNT }, (_, i) => `key:${String(i).padStart(12, '0')}`);

/** The key of the `large` scenario's value. */
export const LARGE_KEY = 'bench:large';
export const LARGE_BYTES = 1024 * 1024;

/** Number of counters the fastify-* routes INCR and EXPIRE (not seeded: INCR creates them). */
export const COUNTER_COUNT = 1000;

/** Concurrent callers in the pool-50, shared-50 and fastify-* scenarios. */
export const CONCURRENCY = 50;

/** A workload size, cut down under BENCH_QUICK=1. */
export function scaled(n: number): number {
  return QUICK ? Math.max(1, Math.round(n / 5)) : n;
}

/** The i-th key of the rotation every client follows. */
export function keyAt(i: number): string {
  return KEYS[i % KEY_COUNT] as string;
}

/** The i-th counter of the rotation the fastify-* routes follow. */
export function counterAt(i: number): string {
  return `bench:counter:${i % COUNTER_COUNT}`;
}

/** seq: one connection, sequential awaited GETs (pure round-trip latency). */
import { keyAt, VALUE_BYTES } from '../config.js';
import type { Scenario } from '../harness.js';
import { redisBenchmarkGet } from '../redis-benchmark.js';
import { sequentialGetContenders } from './sequential-get.js';

const opsPerSecond = (n: number, seconds: number) => ({ value: n / seconds });

export const seq: Scenario = {
  name: 'seq',
  unit: 'ops/s',
  warmup: 5_000,
  work: 20_000,
  rounds: 5,
  contenders: [...sequentialGetContenders(keyAt, VALUE_BYTES, opsPerSecond), redisBenchmarkGet(1, 1)],
  target: {
    text: '>=1.2x peer, >=0.8x rb',
    met: (r) => (r.vsBestPeer ?? 0) >= 1.2 && (r.vsRedisBenchmark ?? 0) >= 0.8,
  },
};

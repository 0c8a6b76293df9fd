/** large: sequential GETs of one 1 MiB value on one connection, in MB/s. */
import { LARGE_BYTES, LARGE_KEY, scaled } from '../config.js';
import type { Scenario } from '../harness.js';
import { redisBenchmarkCommand } from '../redis-benchmark.js';
import { sequentialGetContenders } from './sequential-get.js';

const MB = 1e6;
const megabytesPerSecond = (n: number, seconds: number) => ({ value: (n * LARGE_BYTES) / MB / seconds });

export const large: Scenario = {
  name: 'large',
  unit: 'MB/s',
  warmup: scaled(100),
  work: scaled(500),
  rounds: 5,
  contenders: [...sequentialGetContenders(() => LARGE_KEY, LARGE_BYTES, megabytesPerSecond), redisBenchmarkCommand(['GET', LARGE_KEY], LARGE_BYTES / MB)],
  target: { text: '>=1.0x peer', met: (r) => (r.vsBestPeer ?? 0) >= 1.0 },
};

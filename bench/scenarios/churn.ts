/**
 * churn: borrow/release cycles with nothing in between (the pool's own cost
 * per lease) and the heap left behind after a full GC. Peer: node-redis's
 * createClientPool; ioredis has no pool.
 */
import { newPool } from '../../src/index.js';
import { scaled } from '../config.js';
import type { Contender, Sample, Scenario } from '../harness.js';
import { heapAfterGc } from '../gc.js';
import { sequential } from '../load.js';
import { connectNodeRedisPool } from '../peers.js';

const MIB = 1024 * 1024;

async function cycles(n: number, cycle: () => Promise<unknown>): Promise<Sample> {
  const before = heapAfterGc();
  const seconds = await sequential(n, cycle);
  return { value: n / seconds, extras: { heapGrowthMiB: (heapAfterGc() - before) / MIB } };
}

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'pool.get → close',
  async open(server) {
    const pool = newPool(server.addr);
    const cycle = async () => (await pool.get()).close();
    await cycle(); // dial the connection the cycles reuse
    return { run: (n) => cycles(n, cycle), close: () => pool.close() };
  },
};

const nodeRedisPool: Contender = {
  client: 'node-redis',
  variant: 'createClientPool',
  async open(server) {
    const pool = await connectNodeRedisPool(server, 1);
    const cycle = () => pool.execute(() => undefined);
    return { run: (n) => cycles(n, cycle), close: () => pool.close() };
  },
};

export const churn: Scenario = {
  name: 'churn',
  unit: 'cycles/s',
  warmup: scaled(200_000),
  work: scaled(1_000_000),
  contenders: [redisconn, nodeRedisPool],
  target: { text: 'heap growth <5 MiB', met: (r) => (r.redisconn?.extras.heapGrowthMiB ?? Infinity) < 5 },
  note: (r) => r.contenders.map((c) => `heap ${c.client} ${c.extras.heapGrowthMiB?.toFixed(2)} MiB`).join(', '),
};

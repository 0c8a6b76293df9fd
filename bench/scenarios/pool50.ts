/**
 * pool-50: 50 concurrent callers, each GET on a connection of its own for the
 * call: redisconn borrows from its pool (borrow → do → release); the peers use
 * their natural API (one multiplexed connection), and node-redis also its pool.
 */
import { newPool, type Pool } from '../../src/index.js';
import { CONCURRENCY, keyAt, scaled, VALUE_BYTES } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { concurrent, expectValue } from '../load.js';
import { connectIoredis, connectNodeRedis, connectNodeRedisPool } from '../peers.js';
import { redisBenchmarkGet } from '../redis-benchmark.js';

/** Runs `n` ops over CONCURRENCY callers; the sample is ops/s. */
export async function fifty(n: number, op: (i: number) => Promise<unknown>): Promise<{ value: number }> {
  return { value: n / (await concurrent(CONCURRENCY, n, op)) };
}

async function borrowGet(pool: Pool, key: string): Promise<unknown> {
  const conn = await pool.get();
  try {
    return await conn.do('GET', key);
  } finally {
    await conn.close();
  }
}

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'pool.get → do → close',
  async open(server) {
    const pool = newPool(server.addr);
    // Dial all 50 up front, as the peers' connections are opened before timing.
    await fifty(CONCURRENCY, (i) => borrowGet(pool, keyAt(i)));
    expectValue(await borrowGet(pool, keyAt(0)), VALUE_BYTES, 'redisconn');
    return { run: (n) => fifty(n, (i) => borrowGet(pool, keyAt(i))), close: () => pool.close() };
  },
};

export const ioredisPlain: Contender = {
  client: 'ioredis',
  variant: '',
  async open(server) {
    const client = await connectIoredis(server);
    expectValue(await client.getBuffer(keyAt(0)), VALUE_BYTES, 'ioredis');
    return { run: (n) => fifty(n, (i) => client.getBuffer(keyAt(i))), close: async () => void (await client.quit()) };
  },
};

export const nodeRedisPlain: Contender = {
  client: 'node-redis',
  variant: '',
  async open(server) {
    const client = await connectNodeRedis(server);
    expectValue(await client.get(keyAt(0)), VALUE_BYTES, 'node-redis');
    return { run: (n) => fifty(n, (i) => client.get(keyAt(i))), close: () => client.close() };
  },
};

const nodeRedisPool: Contender = {
  client: 'node-redis',
  variant: 'createClientPool',
  async open(server) {
    const pool = await connectNodeRedisPool(server, CONCURRENCY);
    const get = (key: string) => pool.execute((client) => client.get(key));
    expectValue(await get(keyAt(0)), VALUE_BYTES, 'node-redis pool');
    return { run: (n) => fifty(n, (i) => get(keyAt(i))), close: () => pool.close() };
  },
};

export const pool50: Scenario = {
  name: 'pool-50',
  unit: 'ops/s',
  warmup: scaled(50_000),
  work: scaled(200_000),
  contenders: [redisconn, ioredisPlain, nodeRedisPlain, nodeRedisPool, redisBenchmarkGet(CONCURRENCY, 1)],
  target: { text: '>=0.8x rb -c 50', met: (r) => (r.vsRedisBenchmark ?? 0) >= 0.8 },
};

/**
 * shared-50: the same 50 concurrent callers on one shared, auto-pipelined
 * connection: redisconn's `pool.do` against ioredis (with and without
 * enableAutoPipelining) and node-redis.
 */
import { newPool } from '../../src/index.js';
import { keyAt, scaled, VALUE_BYTES } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { expectValue } from '../load.js';
import { connectIoredis } from '../peers.js';
import { fifty, ioredisPlain, nodeRedisPlain } from './pool50.js';

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'pool.do',
  async open(server) {
    const pool = newPool(server.addr);
    expectValue(await pool.do('GET', keyAt(0)), VALUE_BYTES, 'redisconn');
    return { run: (n) => fifty(n, (i) => pool.do('GET', keyAt(i))), close: () => pool.close() };
  },
};

const ioredisAutoPipelining: Contender = {
  client: 'ioredis',
  variant: 'auto-pipelining',
  async open(server) {
    const client = await connectIoredis(server, { enableAutoPipelining: true });
    expectValue(await client.getBuffer(keyAt(0)), VALUE_BYTES, 'ioredis');
    return { run: (n) => fifty(n, (i) => client.getBuffer(keyAt(i))), close: async () => void (await client.quit()) };
  },
};

export const shared50: Scenario = {
  name: 'shared-50',
  unit: 'ops/s',
  warmup: scaled(50_000),
  work: scaled(200_000),
  contenders: [redisconn, ioredisPlain, ioredisAutoPipelining, nodeRedisPlain],
  target: { text: '>=1.2x peer', met: (r) => (r.vsBestPeer ?? 0) >= 1.2 },
};

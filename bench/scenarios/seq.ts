/** seq: one connection, sequential awaited GETs (pure round-trip latency). */
import { dial } from '../../src/index.js';
import { keyAt, VALUE_BYTES } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { expectValue, sequential } from '../load.js';
import { connectIoredis, connectNodeRedis } from '../peers.js';
import { redisBenchmarkGet } from '../redis-benchmark.js';

const opsPerSecond = (n: number, seconds: number) => ({ value: n / seconds });

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'conn.do',
  async open(server) {
    const conn = await dial(server.addr);
    expectValue(await conn.do('GET', keyAt(0)), VALUE_BYTES, 'redisconn');
    return {
      run: async (n) => opsPerSecond(n, await sequential(n, (i) => conn.do('GET', keyAt(i)))),
      close: () => conn.close(),
    };
  },
};

const ioredis: Contender = {
  client: 'ioredis',
  variant: '',
  async open(server) {
    const client = await connectIoredis(server);
    expectValue(await client.getBuffer(keyAt(0)), VALUE_BYTES, 'ioredis');
    return {
      run: async (n) => opsPerSecond(n, await sequential(n, (i) => client.getBuffer(keyAt(i)))),
      close: async () => void (await client.quit()),
    };
  },
};

const nodeRedis: Contender = {
  client: 'node-redis',
  variant: '',
  async open(server) {
    const client = await connectNodeRedis(server);
    expectValue(await client.get(keyAt(0)), VALUE_BYTES, 'node-redis');
    return {
      run: async (n) => opsPerSecond(n, await sequential(n, (i) => client.get(keyAt(i)))),
      close: () => client.close(),
    };
  },
};

export const seq: Scenario = {
  name: 'seq',
  unit: 'ops/s',
  warmup: 5_000,
  work: 20_000,
  rounds: 5,
  contenders: [redisconn, ioredis, nodeRedis, redisBenchmarkGet(1, 1)],
  target: {
    text: '>=1.2x peer, >=0.8x rb',
    met: (r) => (r.vsBestPeer ?? 0) >= 1.2 && (r.vsRedisBenchmark ?? 0) >= 0.8,
  },
};

/** pipeline: one connection, batches of 100 GETs written together, read back in order. */
import { dial } from '../../src/index.js';
import { keyAt, scaled, VALUE_BYTES } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { expectValue, sequential } from '../load.js';
import { connectIoredis, connectNodeRedis } from '../peers.js';
import { redisBenchmarkGet } from '../redis-benchmark.js';

const BATCH = 100;

/** Runs `n` commands as n / BATCH batches; `batch(first)` does commands first … first+BATCH-1. */
async function batches(n: number, batch: (first: number) => Promise<unknown>): Promise<{ value: number }> {
  const count = Math.ceil(n / BATCH);
  const seconds = await sequential(count, (b) => batch(b * BATCH));
  return { value: (count * BATCH) / seconds };
}

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'send/flush/receive',
  async open(server) {
    const conn = await dial(server.addr);
    expectValue(await conn.do('GET', keyAt(0)), VALUE_BYTES, 'redisconn');
    const batch = async (first: number): Promise<void> => {
      for (let i = 0; i < BATCH; i++) conn.send('GET', keyAt(first + i));
      await conn.flush();
      for (let i = 0; i < BATCH; i++) await conn.receive();
    };
    return { run: (n) => batches(n, batch), close: () => conn.close() };
  },
};

const ioredis: Contender = {
  client: 'ioredis',
  variant: 'pipeline().exec()',
  async open(server) {
    const client = await connectIoredis(server);
    expectValue(await client.getBuffer(keyAt(0)), VALUE_BYTES, 'ioredis');
    const batch = (first: number) => {
      const pipeline = client.pipeline();
      for (let i = 0; i < BATCH; i++) pipeline.getBuffer(keyAt(first + i));
      return pipeline.exec();
    };
    return { run: (n) => batches(n, batch), close: async () => void (await client.quit()) };
  },
};

const nodeRedis: Contender = {
  client: 'node-redis',
  variant: 'multi().execAsPipeline()',
  async open(server) {
    const client = await connectNodeRedis(server);
    expectValue(await client.get(keyAt(0)), VALUE_BYTES, 'node-redis');
    const batch = (first: number) => {
      const multi = client.multi();
      for (let i = 0; i < BATCH; i++) multi.get(keyAt(first + i));
      return multi.execAsPipeline();
    };
    return { run: (n) => batches(n, batch), close: () => client.close() };
  },
};

export const pipeline: Scenario = {
  name: 'pipeline',
  unit: 'ops/s',
  warmup: scaled(100_000),
  work: scaled(500_000),
  contenders: [redisconn, ioredis, nodeRedis, redisBenchmarkGet(1, BATCH)],
  target: {
    text: '>=1.5x peer, >=0.6x rb',
    met: (r) => (r.vsBestPeer ?? 0) >= 1.5 && (r.vsRedisBenchmark ?? 0) >= 0.6,
  },
};

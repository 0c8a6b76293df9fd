/** large: sequential GETs of one 1 MiB value on one connection, in MB/s. */
import { dial } from '../../src/index.js';
import { LARGE_BYTES, LARGE_KEY, scaled } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { expectValue, sequential } from '../load.js';
import { connectIoredis, connectNodeRedis } from '../peers.js';
import { redisBenchmarkCommand } from '../redis-benchmark.js';

const MB = 1e6;
const megabytesPerSecond = (n: number, seconds: number) => ({ value: (n * LARGE_BYTES) / MB / seconds });

const redisconn: Contender = {
  client: 'redisconn',
  variant: 'conn.do',
  async open(server) {
    const conn = await dial(server.addr);
    expectValue(await conn.do('GET', LARGE_KEY), LARGE_BYTES, 'redisconn');
    return {
      run: async (n) => megabytesPerSecond(n, await sequential(n, () => conn.do('GET', LARGE_KEY))),
      close: () => conn.close(),
    };
  },
};

const ioredis: Contender = {
  client: 'ioredis',
  variant: '',
  async open(server) {
    const client = await connectIoredis(server);
    expectValue(await client.getBuffer(LARGE_KEY), LARGE_BYTES, 'ioredis');
    return {
      run: async (n) => megabytesPerSecond(n, await sequential(n, () => client.getBuffer(LARGE_KEY))),
      close: async () => void (await client.quit()),
    };
  },
};

const nodeRedis: Contender = {
  client: 'node-redis',
  variant: '',
  async open(server) {
    const client = await connectNodeRedis(server);
    expectValue(await client.get(LARGE_KEY), LARGE_BYTES, 'node-redis');
    return {
      run: async (n) => megabytesPerSecond(n, await sequential(n, () => client.get(LARGE_KEY))),
      close: () => client.close(),
    };
  },
};

export const large: Scenario = {
  name: 'large',
  unit: 'MB/s',
  warmup: scaled(100),
  work: scaled(500),
  rounds: 5,
  contenders: [redisconn, ioredis, nodeRedis, redisBenchmarkCommand(['GET', LARGE_KEY], LARGE_BYTES / MB)],
  target: { text: '>=1.0x peer', met: (r) => (r.vsBestPeer ?? 0) >= 1.0 },
};

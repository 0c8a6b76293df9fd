/**
 * The contenders of a scenario made of sequential awaited GETs on one
 * connection per client (seq, large): the same loop for every client, only
 * the key and the figure computed from (operations, seconds) differ.
 */
import { dial } from '../../src/index.js';
import type { Contender } from '../harness.js';
import { expectValue, sequential } from '../load.js';
import { connectIoredis, connectNodeRedis } from '../peers.js';

/** Turns n operations in `seconds` into the scenario's figure. */
export type Measure = (n: number, seconds: number) => { value: number };

/** redisconn (`conn.do`), ioredis and node-redis doing `GET keyOf(i)` one after another. */
export function sequentialGetContenders(keyOf: (i: number) => string, valueBytes: number, measure: Measure): Contender[] {
  const redisconn: Contender = {
    client: 'redisconn',
    variant: 'conn.do',
    async open(server) {
      const conn = await dial(server.addr);
      expectValue(await conn.do('GET', keyOf(0)), valueBytes, 'redisconn');
      return {
        run: async (n) => measure(n, await sequential(n, (i) => conn.do('GET', keyOf(i)))),
        close: () => conn.close(),
      };
    },
  };
  const ioredis: Contender = {
    client: 'ioredis',
    variant: '',
    async open(server) {
      const client = await connectIoredis(server);
      expectValue(await client.getBuffer(keyOf(0)), valueBytes, 'ioredis');
      return {
        run: async (n) => measure(n, await sequential(n, (i) => client.getBuffer(keyOf(i)))),
        close: async () => void (await client.quit()),
      };
    },
  };
  const nodeRedis: Contender = {
    client: 'node-redis',
    variant: '',
    async open(server) {
      const client = await connectNodeRedis(server);
      expectValue(await client.get(keyOf(0)), valueBytes, 'node-redis');
      return {
        run: async (n) => measure(n, await sequential(n, (i) => client.get(keyOf(i)))),
        close: () => client.close(),
      };
    },
  };
  return [redisconn, ioredis, nodeRedis];
}

/**
 * One Fastify app serving `GET /` for the fastify-* scenarios, run as its own
 * process so the load generator and the other apps do not share its CPU:
 *
 *   node server.js <redisconn|redisconn-exclusive|fastify-redis|none> <get|get-incr-expire|multi> <host:port>
 *
 * Apps, all with default options except where stated:
 *   `redisconn`            the plugin, `await using conn = await request.redis.get()` (a lease)
 *   `redisconn-exclusive`  the same with `exclusiveConnections: true` (an exclusive borrow per get)
 *   `fastify-redis`        @fastify/redis (ioredis), its client
 *   `none`                 no Redis: the same route shape returning a constant
 *
 * Route shapes, each command awaited in turn as a handler would write them:
 *   `get`              GET key                       → the value (a Buffer)
 *   `get-incr-expire`  GET key; INCR ctr; EXPIRE ctr → the value (a Buffer)
 *   `multi`            send MULTI, INCR ctr, EXPIRE ctr, then do EXEC: one round trip (ioredis: `multi().incr().expire().exec()`)
 *                                                    → the counter (a number)
 * Keys rotate over the seeded data set, counters over COUNTER_COUNT keys.
 * Prints `{"port":N}` once listening; exits when stdin closes.
 */
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyPluginCallback, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import redisconn from '../../plugin/index.js';
import { counterAt, keyAt, VALUE_BYTES } from '../config.js';
import '../trace.js'; // BENCH_TRACE=1 (inherited from the bench): no-op tracing subscribers

export type ServerKind = 'redisconn' | 'redisconn-exclusive' | 'fastify-redis' | 'none';
export type RouteShape = 'get' | 'get-incr-expire' | 'multi';

/** Seconds every counter is given by EXPIRE. */
const COUNTER_TTL = 60;

// @fastify/redis's typings declare `app.redis` too, with another type than the
// redisconn plugin's, so it is loaded untyped and its decorator read by hand.
const fastifyRedis = createRequire(import.meta.url)('@fastify/redis') as FastifyPluginCallback<{ host: string; port: number }>;

let requests = 0;

function redisconnRoute(shape: RouteShape): (request: FastifyRequest) => Promise<unknown> {
  switch (shape) {
    case 'get':
      return async (request) => {
        const i = requests++;
        await using conn = await request.redis.get();
        return await conn.do('GET', keyAt(i));
      };
    case 'get-incr-expire':
      return async (request) => {
        const i = requests++;
        await using conn = await request.redis.get();
        const value = await conn.do('GET', keyAt(i));
        await conn.do('INCR', counterAt(i));
        await conn.do('EXPIRE', counterAt(i), COUNTER_TTL);
        return value;
      };
    case 'multi':
      return async (request) => {
        const i = requests++;
        await using conn = await request.redis.get();
        // A transaction the redigo way: queued with send, one round trip with do('EXEC').
        conn.send('MULTI');
        conn.send('INCR', counterAt(i));
        conn.send('EXPIRE', counterAt(i), COUNTER_TTL);
        const replies = (await conn.do('EXEC')) as [number, number];
        return replies[0];
      };
  }
}

function ioredisRoute(client: Redis, shape: RouteShape): () => Promise<unknown> {
  // getBuffer: every client in the bench returns bulk strings as Buffers, as redisconn does (see peers.ts).
  switch (shape) {
    case 'get':
      return async () => await client.getBuffer(keyAt(requests++));
    case 'get-incr-expire':
      return async () => {
        const i = requests++;
        const value = await client.getBuffer(keyAt(i));
        await client.incr(counterAt(i));
        await client.expire(counterAt(i), COUNTER_TTL);
        return value;
      };
    case 'multi':
      return async () => {
        const i = requests++;
        const results = (await client.multi().incr(counterAt(i)).expire(counterAt(i), COUNTER_TTL).exec()) as [[Error | null, number], [Error | null, number]];
        return results[0][1];
      };
  }
}

function constantRoute(shape: RouteShape): () => Promise<unknown> {
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  switch (shape) {
    case 'get':
    case 'get-incr-expire':
      return async () => value;
    case 'multi':
      return async () => 1;
  }
}

async function build(kind: ServerKind, shape: RouteShape, addr: string): Promise<FastifyInstance> {
  const app = Fastify();
  switch (kind) {
    case 'redisconn':
      await app.register(redisconn, { addr });
      app.get('/', redisconnRoute(shape));
      break;
    case 'redisconn-exclusive':
      await app.register(redisconn, { addr, exclusiveConnections: true });
      app.get('/', redisconnRoute(shape));
      break;
    case 'fastify-redis': {
      const [host = '', port = ''] = addr.split(':');
      await app.register(fastifyRedis, { host, port: Number(port) });
      app.get('/', ioredisRoute((app as unknown as { redis: Redis }).redis, shape));
      break;
    }
    case 'none':
      app.get('/', constantRoute(shape));
      break;
    default:
      throw new Error(`bench: unknown server kind ${String(kind)}`);
  }
  return app;
}

const SHAPES: readonly string[] = ['get', 'get-incr-expire', 'multi'] satisfies RouteShape[];

const [kind, shape = '', addr = ''] = process.argv.slice(2);
if (!SHAPES.includes(shape)) throw new Error(`bench: unknown route shape ${JSON.stringify(shape)}; have ${SHAPES.join(', ')}`);
const app = await build(kind as ServerKind, shape as RouteShape, addr);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);
process.stdin.resume();
process.stdin.once('end', () => {
  void app.close().then(() => process.exit(0));
});

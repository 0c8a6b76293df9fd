/**
 * One Fastify app serving `GET /` for the fastify scenario, run as its own
 * process so the load generator and the other apps do not share its CPU:
 *
 *   node server.js <redisconn|fastify-redis|none> <host:port>
 *
 * `redisconn`: the plugin, `req.redis.get()` then one GET; `fastify-redis`:
 * @fastify/redis (ioredis), one GET; `none`: a constant value, no Redis.
 * Prints `{"port":N}` once listening; exits when stdin closes.
 */
import { createRequire } from 'node:module';
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify';
import type { Redis } from 'ioredis';
import redisconn from '../../plugin/index.js';
import { keyAt, VALUE_BYTES } from '../config.js';

export type ServerKind = 'redisconn' | 'fastify-redis' | 'none';

// @fastify/redis's typings declare `app.redis` too, with another type than the
// redisconn plugin's, so it is loaded untyped and its decorator read by hand.
const fastifyRedis = createRequire(import.meta.url)('@fastify/redis') as FastifyPluginCallback<{ host: string; port: number }>;

let requests = 0;
const nextKey = (): string => keyAt(requests++);

async function build(kind: ServerKind, addr: string): Promise<FastifyInstance> {
  const app = Fastify();
  switch (kind) {
    case 'redisconn':
      await app.register(redisconn, { addr });
      app.get('/', async (request) => {
        await using conn = await request.redis.get();
        return await conn.do('GET', nextKey());
      });
      break;
    case 'fastify-redis': {
      const [host = '', port = ''] = addr.split(':');
      await app.register(fastifyRedis, { host, port: Number(port) });
      const client = (app as unknown as { redis: Redis }).redis;
      app.get('/', async () => client.getBuffer(nextKey()));
      break;
    }
    case 'none': {
      const value = Buffer.alloc(VALUE_BYTES, 'v');
      app.get('/', async () => value);
      break;
    }
    default:
      throw new Error(`bench: unknown server kind ${String(kind)}`);
  }
  return app;
}

const [kind, addr = ''] = process.argv.slice(2);
const app = await build(kind as ServerKind, addr);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`);
process.stdin.resume();
process.stdin.once('end', () => {
  void app.close().then(() => process.exit(0));
});

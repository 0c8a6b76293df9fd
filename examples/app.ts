/**
 * The example app: what a Fastify service on redisconn looks like. Built by
 * `buildApp` so tests can drive it with `inject()` or a real listener.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Registry } from 'prom-client';
import redisconn, { PubSubConn, RedisConnError, asInt, type RedisconnOptions } from '../plugin/index.js';

/** Options of {@link buildApp}. */
export interface ExampleOptions {
  /** Redis address; unset → the plugin reads flags/env. */
  redis?: Pick<RedisconnOptions, 'addr' | 'db' | 'argv' | 'env'> & Partial<RedisconnOptions>;
  /** Token that unlocks the admin API (`x-admin-token` header); unset → always denied. */
  adminToken?: string;
  /** Milliseconds the "slow computation" takes. Default 300. */
  slowMs?: number;
  /** Health-check period of the SSE route's subscriptions (`PubSubOptions.healthCheckMs`). Default 15 000. */
  sseHealthCheckMs?: number;
  logger?: FastifyServerOptions['logger'];
}

/** n-th Fibonacci number, slowly, standing in for an expensive computation. */
async function slowFibonacci(n: number, slowMs: number): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, slowMs));
  let a = 0n;
  let b = 1n;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a.toString();
}

export async function buildApp(options: ExampleOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? true });
  const registry = new Registry();
  const adminToken = options.adminToken;
  const slowMs = options.slowMs ?? 300;
  // An event stream can sit silent for minutes, and a subscriber learns of a
  // hung Redis (or a connection dropped without a FIN) only by asking: PING
  // after 15 s of silence, so a dead stream ends within 15 s plus the pool's
  // read timeout (5 s), and idle proxies between us and Redis see traffic.
  const sseHealthCheckMs = options.sseHealthCheckMs ?? 15_000;

  // Default options: request.redis.get() returns a lease (stateless commands
  // ride the pool's shared connection; MULTI, BLPOP, SUBSCRIBE... move it to a
  // connection of its own). Pass `exclusiveConnections: true` for an exclusive
  // borrow per get().
  await app.register(redisconn, {
    ...options.redis,
    metrics: { registry, route: '/metrics' },
    health: { route: '/healthz', timeoutMs: 1000 },
    admin: {
      prefix: '/admin',
      authorize: (request) => adminToken !== undefined && adminToken !== '' && request.headers['x-admin-token'] === adminToken,
    },
  });

  // A counter: one INCR on this request's connection (a lease: no socket of its own).
  app.post<{ Params: { name: string } }>('/counter/:name', async (request) => {
    await using conn = await request.redis.get();
    const value = asInt(await conn.do('INCR', `counter:${request.params.name}`));
    return { name: request.params.name, value };
  });

  // A slow computation cached in the blob cache for 60 s.
  app.get<{ Params: { n: number } }>(
    '/fib/:n',
    { schema: { params: { type: 'object', properties: { n: { type: 'integer', minimum: 0, maximum: 10000 } }, required: ['n'] } } },
    async (request) => {
      const cache = app.redis.blobCache('fib');
      const key = String(request.params.n);
      const hit = await cache?.get(key);
      if (hit) return { n: request.params.n, value: hit.toString(), cached: true };
      const value = await slowFibonacci(request.params.n, slowMs);
      await cache?.set(key, value, 60_000);
      return { n: request.params.n, value, cached: false };
    },
  );

  // Publish the request body's `message` on a channel.
  app.post<{ Params: { channel: string }; Body: { message: string } }>(
    '/publish/:channel',
    { schema: { body: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } } },
    async (request) => {
      await using conn = await request.redis.get();
      const receivers = asInt(await conn.do('PUBLISH', request.params.channel, request.body.message));
      return { channel: request.params.channel, receivers };
    },
  );

  // Server-Sent Events: every message published on the channel, until the
  // client leaves, the app closes, or the subscription fails (Redis hung or
  // gone: then an `error` event, and the stream ends so the client can
  // reconnect). Open streams are ended in preClose, so they do not hold up
  // shutdown (server.close() waits for open responses).
  const streams = new Set<() => Promise<void>>();
  app.addHook('preClose', async () => {
    await Promise.all([...streams].map((stop) => stop()));
  });
  app.get<{ Params: { channel: string } }>('/events/:channel', async (request, reply) => {
    const psc = new PubSubConn(await app.redis.get(), { healthCheckMs: sseHealthCheckMs });
    try {
      await psc.subscribe(request.params.channel);
    } catch (err) {
      await psc.close();
      throw err;
    }
    reply.hijack();
    const res = reply.raw;
    // 'close': the response ended, or the client left (possibly already,
    // while we waited for a connection: then `destroyed` is set).
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    // (Its failure, if any, surfaces where `finally` awaits the same close.)
    closed.then(() => psc.close()).catch(() => {});
    if (res.destroyed) return psc.close();
    const stop = async (): Promise<void> => {
      await psc.close();
      await closed;
    };
    streams.add(stop);
    try {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(': subscribed\n\n');
      for await (const event of psc) {
        if (event.kind === 'message') res.write(`event: message\ndata: ${JSON.stringify({ channel: event.channel, data: event.data.toString() })}\n\n`);
      }
    } catch (err) {
      request.log.warn({ err }, 'SSE subscription ended by a Redis error');
      // Tell the client why the stream ends (e.g. REDIS_TIMEOUT from the health check).
      const code = err instanceof RedisConnError ? err.code : 'REDIS_ERROR';
      if (!res.destroyed) res.write(`event: error\ndata: ${JSON.stringify({ code, message: 'subscription to Redis lost' })}\n\n`);
    } finally {
      streams.delete(stop);
      await psc.close();
      res.end();
    }
  });

  return app;
}

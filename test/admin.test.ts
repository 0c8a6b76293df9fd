/**
 * The plugin's admin route (`POST <prefix>/flushall`, off unless `authorize`
 * is given, 403 + audit warning when refused, body validated) and health
 * route (PING within a deadline → 200 or 503), against real redis-server
 * processes, through `inject()` and a real listener.
 */
import type { FastifyInstance, FastifyRequest, FastifyServerOptions } from 'fastify';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Conn, RedisconnOptions } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, makeApp as newApp, memoryLogger, useApps, useServerWithConn, type LogLine } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;
const apps = useApps();

function makeApp(options: RedisconnOptions, fastifyOptions?: FastifyServerOptions): Promise<FastifyInstance> {
  return newApp(apps, options, fastifyOptions);
}

const TOKEN = 's3cret';
const byToken = (request: FastifyRequest): boolean => request.headers['x-admin-token'] === TOKEN;

async function seed(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await admin.do('SET', `admin-test:${i}`, i);
}

async function dbsize(): Promise<number> {
  return (await admin.do('DBSIZE')) as number;
}

useServerWithConn((started) => ({ server, conn: admin } = started));

beforeEach(async () => {
  await admin.do('FLUSHALL');
});

describe('admin', () => {
  it('without authorize there is no admin route', async () => {
    const plain = await makeApp({ addr: server.addr });
    expect((await plain.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {} })).statusCode).toBe(404);
    // An admin block whose authorize is absent (e.g. unset in this deployment) is off too.
    const unset = await makeApp({ addr: server.addr, admin: { prefix: '/ops', authorize: undefined } });
    expect((await unset.inject({ method: 'POST', url: '/ops/flushall', payload: {} })).statusCode).toBe(404);
    await seed(2);
    expect(await dbsize()).toBe(2);
  });

  it('a full pool answers 503 REDIS_TIMEOUT within getTimeoutMs instead of holding the call', async () => {
    const app = await makeApp({ addr: server.addr, admin: { authorize: byToken }, maxActive: 1, getTimeoutMs: 200 });
    const held = await app.redis.pool?.get();
    try {
      await seed(2);
      const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {}, headers: { 'x-admin-token': TOKEN } });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ code: 'REDIS_TIMEOUT' });
      expect(await dbsize()).toBe(2);
    } finally {
      await held?.close();
    }
  });

  it('unauthorized → 403 and an audit warning naming the caller; nothing flushed', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, admin: { authorize: byToken } }, { logger: memoryLogger(lines) });
    await seed();
    for (const headers of [{}, { 'x-admin-token': 'wrong' }]) {
      const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {}, headers: { ...headers, 'user-agent': 'probe/1.0' } });
      expect(res.statusCode).toBe(403);
      expect(res.json()).toMatchObject({ statusCode: 403, error: 'Forbidden' });
    }
    const denied = lines.filter((line) => line.level === 40 && line.msg.includes('denied'));
    expect(denied).toHaveLength(2);
    expect(denied[0]).toMatchObject({ ip: '127.0.0.1', userAgent: 'probe/1.0' });
    expect(denied[0]?.reqId).toBeTypeOf('string');
    expect(await dbsize()).toBe(5);
  });

  it('an authorize that throws denies (403), logged', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp(
      {
        addr: server.addr,
        admin: {
          authorize: () => {
            throw new Error('auth backend down');
          },
        },
      },
      { logger: memoryLogger(lines) },
    );
    await seed(1);
    expect((await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {} })).statusCode).toBe(403);
    expect(lines.some((line) => line.level === 40 && line.msg.includes('authorize threw'))).toBe(true);
    expect(await dbsize()).toBe(1);
  });

  it('authorized FLUSHALL empties the server, with and without a body (inject)', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, admin: { authorize: async (request) => byToken(request) } }, { logger: memoryLogger(lines) });
    await seed();
    const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {}, headers: { 'x-admin-token': TOKEN } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', async: false });
    expect(await dbsize()).toBe(0);
    // Audit trail for the authorized call as well.
    expect(lines.some((line) => line.level === 40 && line.msg.includes('FLUSHALL by authorized caller'))).toBe(true);

    await seed();
    const bare = await app.inject({ method: 'POST', url: '/admin/redis/flushall', headers: { 'x-admin-token': TOKEN } });
    expect(bare.statusCode).toBe(200);
    expect(await dbsize()).toBe(0);
    expect(app.redis.pool?.stats().inUseCount).toBe(0);
  });

  it('authorized FLUSHALL {async:true} on a custom prefix (real listener)', async () => {
    const app = await makeApp({ addr: server.addr, admin: { authorize: byToken, prefix: '/ops/' } });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    await seed(50);
    const res = await fetch(`${base}/ops/flushall`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-admin-token': TOKEN },
      body: JSON.stringify({ async: true }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', async: true });
    expect(await eventually(async () => (await dbsize()) === 0)).toBe(true);
    const denied = await fetch(`${base}/ops/flushall`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(denied.status).toBe(403);
    await denied.arrayBuffer();
  });

  it.each([
    ['{"async":"yes"}', 'a non-boolean async'],
    ['{"async":true,"db":3}', 'an unknown property'],
    ['{"force":1}', 'only an unknown property'],
    ['[]', 'an array'],
    ['"flush"', 'a string'],
  ])('the body schema rejects %s (%s) with 400; nothing flushed', async (body) => {
    const app = await makeApp({ addr: server.addr, admin: { authorize: byToken } });
    await seed(3);
    const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: body, headers: { 'content-type': 'application/json', 'x-admin-token': TOKEN } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'FST_ERR_VALIDATION' });
    expect(await dbsize()).toBe(3);
  });

  it('an unauthorized caller gets 403 (and an audit line) even with a bad body; nothing flushed', async () => {
    const app = await makeApp({ addr: server.addr, admin: { authorize: byToken } });
    await seed(2);
    const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: '{"async":"yes"}', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(403);
    expect(await dbsize()).toBe(2);
  });

  it('authorized but unconfigured → 503 FST_REDIS_NOT_CONFIGURED', async () => {
    const app = await makeApp({ admin: { authorize: () => true } });
    const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: {} });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED' });
  });
});

describe('health', () => {
  it('200 { status: ok, latencyMs } on the default route with health: true', async () => {
    const app = await makeApp({ addr: server.addr, health: true });
    const res = await app.inject('/healthz/redis');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.status).toBe('ok');
    expect(body.latencyMs).toBeTypeOf('number');
    expect(body.latencyMs).toBeGreaterThanOrEqual(0);
    expect(body.latencyMs).toBeLessThan(1_000);
    expect(Object.keys(body).sort()).toEqual(['latencyMs', 'status']);
    expect(app.redis.pool?.stats().inUseCount).toBe(0);
  });

  it('no health option → no route', async () => {
    const app = await makeApp({ addr: server.addr });
    expect((await app.inject('/healthz/redis')).statusCode).toBe(404);
  });

  it('unconfigured → 503 { status: unavailable }', async () => {
    const app = await makeApp({ health: { route: '/hz' } });
    const res = await app.inject('/hz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'unavailable', error: 'Redis connection pool is not configured' });
  });

  it('a paused server → 503 within timeoutMs + slack; 200 again after resume (real listener)', async () => {
    const hung = await startRedisServer();
    try {
      const timeoutMs = 300;
      const app = await makeApp({ addr: hung.addr, health: { route: '/hz', timeoutMs } });
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      const ok = await fetch(`${base}/hz`);
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as { status: string }).status).toBe('ok');

      hung.pause();
      try {
        // Once with the idle connection from before, once dialing afresh.
        for (let i = 0; i < 2; i++) {
          const started = performance.now();
          const res = await fetch(`${base}/hz`);
          const took = performance.now() - started;
          expect(res.status).toBe(503);
          const body = (await res.json()) as { status: string; error: string };
          expect(body.status).toBe('unavailable');
          expect(body.error).toMatch(/timed out|within/);
          expect(took).toBeGreaterThanOrEqual(timeoutMs - 20);
          expect(took).toBeLessThan(timeoutMs + 400);
        }
        const injected = await app.inject('/hz');
        expect(injected.statusCode).toBe(503);
      } finally {
        hung.resume();
      }
      expect(await eventually(async () => (await fetch(`${base}/hz`)).status === 200, 2_000)).toBe(true);
      expect(app.redis.pool?.stats().inUseCount).toBe(0);
    } finally {
      await hung.stop();
    }
  });

  it('latencyMs is rounded to 0.1 ms', async () => {
    const app = await makeApp({ addr: server.addr, health: true });
    for (let i = 0; i < 20; i++) {
      const { latencyMs } = (await app.inject('/healthz/redis')).json() as { latencyMs: number };
      expect(latencyMs).toBeGreaterThanOrEqual(0);
      expect(String(latencyMs)).toMatch(/^\d+(\.\d)?$/);
    }
  });

  it('a PING past the deadline is reported in whole ms, not raw floats', async () => {
    const hung = await startRedisServer();
    try {
      const app = await makeApp({ addr: hung.addr, health: { route: '/hz', timeoutMs: 150 } });
      // A connection already in the pool, so get() takes a fraction of a ms and PING gets the rest.
      expect((await app.inject('/hz')).statusCode).toBe(200);
      hung.pause();
      try {
        const res = await app.inject('/hz');
        expect(res.statusCode).toBe(503);
        const { error } = res.json() as { error: string };
        expect(error).toMatch(/within \d+ ms/);
        expect(error).not.toMatch(/within \d+\.\d/);
      } finally {
        hung.resume();
      }
    } finally {
      await hung.stop();
    }
  });

  it('a killed server → 503 promptly', async () => {
    const doomed = await startRedisServer();
    try {
      const app = await makeApp({ addr: doomed.addr, health: { route: '/hz', timeoutMs: 1_000 } });
      expect((await app.inject('/hz')).statusCode).toBe(200);
      await doomed.kill();
      const started = performance.now();
      const res = await app.inject('/hz');
      expect(res.statusCode).toBe(503);
      expect(res.json().status).toBe('unavailable');
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      await doomed.stop();
    }
  });
});

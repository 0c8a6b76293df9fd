/**
 * The example app (`examples/app.ts`, what `npm start` serves) against a real
 * redis-server: the counter, the cached slow computation, publish + SSE on a
 * real listener, /metrics, /healthz and the token-guarded admin route. Also
 * the SSE route's connection hygiene: the subscription connection goes back
 * when the client leaves (even while the handler is still waiting for it),
 * an open event stream does not hold up `app.close()`, and a hung Redis
 * (SIGSTOP) ends the stream with an `error` event instead of hanging it.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp, type ExampleOptions } from '../examples/app.js';
import { dial, type Conn, type Pool } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientList, eventually, guardProcessErrors, lent, memoryLogger, sleep, useApps, useServerWithConn, type LogLine } from './helpers.js';

guardProcessErrors();

const CLIENT_NAME = 'example-test';
const TOKEN = 'let-me-in';

let server: TestRedisServer;
let admin: Conn;
const apps = useApps(() => admin.do('FLUSHALL'));

async function makeApp(options: Partial<ExampleOptions> = {}): Promise<FastifyInstance> {
  const { redis, ...rest } = options;
  const app = await buildApp({
    redis: { addr: server.addr, argv: [], env: {}, clientName: CLIENT_NAME, ...redis },
    logger: false,
    slowMs: 50,
    adminToken: TOKEN,
    ...rest,
  });
  apps.push(app);
  return app;
}

async function subscribers(channel: string): Promise<number> {
  const reply = (await admin.do('PUBSUB', 'NUMSUB', channel)) as [Buffer, number];
  return reply[1];
}

/** Reads an event stream until `predicate` holds on the text so far (or the deadline passes). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, predicate: (text: string) => boolean, seen: { text: string }, timeoutMs = 3_000): Promise<boolean> {
  const decoder = new TextDecoder();
  const deadline = Date.now() + timeoutMs;
  while (!predicate(seen.text)) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const chunk = await Promise.race([reader.read(), sleep(left).then(() => null)]);
    if (chunk === null) return predicate(seen.text);
    if (chunk.done) return predicate(seen.text);
    seen.text += decoder.decode(chunk.value, { stream: true });
  }
  return true;
}

useServerWithConn((started) => ({ server, conn: admin } = started));

describe('example app', () => {
  it('the counter increments (inject and a real listener)', async () => {
    const app = await makeApp();
    expect((await app.inject({ method: 'POST', url: '/counter/visits' })).json()).toEqual({ name: 'visits', value: 1 });
    expect((await app.inject({ method: 'POST', url: '/counter/visits' })).json()).toEqual({ name: 'visits', value: 2 });
    expect((await app.inject({ method: 'POST', url: '/counter/other' })).json()).toEqual({ name: 'other', value: 1 });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const results = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/counter/visits`, { method: 'POST' }).then((res) => res.json() as Promise<{ value: number }>)));
    expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(Number((await admin.do('GET', 'counter:visits'))?.toString())).toBe(12);
    expect(lent(app.redis.pool)).toBe(0);
  });

  it('/fib is computed once, then served from the blob cache with a TTL', async () => {
    const app = await makeApp({ slowMs: 150 });
    const t0 = performance.now();
    const first = await app.inject('/fib/90');
    const firstMs = performance.now() - t0;
    expect(first.statusCode).toBe(200);
    expect(first.json()).toEqual({ n: 90, value: '2880067194370816120', cached: false });
    expect(firstMs).toBeGreaterThanOrEqual(140);
    const t1 = performance.now();
    const second = await app.inject('/fib/90');
    expect(second.json()).toEqual({ n: 90, value: '2880067194370816120', cached: true });
    expect(performance.now() - t1).toBeLessThan(100);
    const pttl = (await admin.do('PTTL', 'redisconn.blobcache.fib:90')) as number;
    expect(pttl).toBeGreaterThan(55_000);
    expect(pttl).toBeLessThanOrEqual(60_000);
    expect((await app.inject('/fib/0')).json()).toEqual({ n: 0, value: '0', cached: false });
    expect((await app.inject('/fib/0')).json()).toEqual({ n: 0, value: '0', cached: true });
    expect((await app.inject('/fib/abc')).statusCode).toBe(400);
    expect((await app.inject('/fib/10001')).statusCode).toBe(400);
  });

  it('publish + SSE: a published message arrives on the event stream (real listener)', async () => {
    const app = await makeApp();
    const pool = app.redis.pool as Pool;
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${base}/events/news`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const seen = { text: '' };
    expect(await readUntil(reader, (t) => t.includes(': subscribed'), seen)).toBe(true);
    expect(await eventually(async () => (await subscribers('news')) === 1)).toBe(true);

    const published = await fetch(`${base}/publish/news`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'hello 👋' }) });
    expect(published.status).toBe(200);
    expect(await published.json()).toEqual({ channel: 'news', receivers: 1 });
    // Through inject as well.
    expect((await app.inject({ method: 'POST', url: '/publish/news', payload: { message: 'second' } })).json()).toEqual({ channel: 'news', receivers: 1 });
    expect(await readUntil(reader, (t) => t.includes('second'), seen)).toBe(true);
    expect(seen.text).toContain(`event: message\ndata: ${JSON.stringify({ channel: 'news', data: 'hello 👋' })}\n\n`);
    expect(seen.text).toContain(`data: ${JSON.stringify({ channel: 'news', data: 'second' })}\n\n`);
    expect((await app.inject({ method: 'POST', url: '/publish/news', payload: {} })).statusCode).toBe(400);

    // The client leaves: the subscription ends and its connection goes back.
    await reader.cancel();
    expect(await eventually(async () => (await subscribers('news')) === 0)).toBe(true);
    expect(await eventually(() => lent(pool) === 0)).toBe(true);
    const clients = (await clientList(admin)).filter((c) => c.name === CLIENT_NAME);
    expect(clients.length).toBe(pool.stats().activeCount);
    expect(clients.every((c) => c.sub === '0')).toBe(true);
    // fetch (undici) opens a spare socket after the cancelled stream, which
    // sends no request and would hold server.close() for undici's 4 s
    // keep-alive timeout: not the app's doing, so drop it now.
    app.server.closeAllConnections();
  });

  it('an open event stream does not hold up app.close()', async () => {
    const app = await makeApp();
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${base}/events/closing`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const seen = { text: '' };
    expect(await readUntil(reader, (t) => t.includes(': subscribed'), seen)).toBe(true);
    const started = performance.now();
    const closed = await Promise.race([app.close().then(() => true), sleep(3_000).then(() => false)]);
    expect(closed).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000);
    // The stream ended for the client, and nothing is left subscribed.
    expect(await readUntil(reader, () => false, seen, 1_000)).toBe(false);
    expect(await eventually(async () => (await subscribers('closing')) === 0)).toBe(true);
    expect((app.redis.pool as Pool).stats().activeCount).toBe(0);
  });

  it('a hung Redis ends the event stream with an error event (health check), and the broken conn is not reused', async () => {
    const own = await startRedisServer();
    const ownAdmin = await dial(own.addr);
    try {
      const app = await makeApp({ redis: { addr: own.addr, readTimeoutMs: 300 }, sseHealthCheckMs: 200 });
      const pool = app.redis.pool as Pool;
      const base = await app.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`${base}/events/hang`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const seen = { text: '' };
      expect(await readUntil(reader, (t) => t.includes(': subscribed'), seen)).toBe(true);
      expect(await eventually(async () => ((await ownAdmin.do('PUBSUB', 'NUMSUB', 'hang')) as [Buffer, number])[1] === 1)).toBe(true);

      own.pause();
      const started = performance.now();
      // PING after 200 ms of silence, pong due within the read timeout (300 ms), plus slack.
      expect(await readUntil(reader, (t) => t.includes('event: error'), seen, 3_000)).toBe(true);
      expect(performance.now() - started).toBeLessThan(200 + 300 + 1_000);
      expect(seen.text).toContain(`event: error\ndata: ${JSON.stringify({ code: 'REDIS_TIMEOUT', message: 'subscription to Redis lost' })}\n\n`);
      // The stream ends (the client may reconnect) …
      const deadline = Date.now() + 2_000;
      let done = false;
      while (!done && Date.now() < deadline) {
        const chunk = await Promise.race([reader.read(), sleep(deadline - Date.now()).then(() => null)]);
        if (chunk === null || chunk.done) done = chunk !== null;
      }
      expect(done).toBe(true);
      // … and the broken connection is dropped, not lent again.
      expect(await eventually(() => lent(pool) === 0)).toBe(true);
      expect(pool.stats().activeCount).toBe(0);
      own.resume();
      expect((await app.inject({ method: 'POST', url: '/counter/after-hang' })).json()).toEqual({ name: 'after-hang', value: 1 });
      app.server.closeAllConnections();
    } finally {
      own.resume();
      await ownAdmin.close();
      await own.stop();
    }
  });

  it('a client that leaves while the SSE handler waits for a connection does not leak it', async () => {
    const app = await makeApp({ redis: { addr: server.addr, maxActive: 1 } });
    const pool = app.redis.pool as Pool;
    let socketsClosed = 0;
    app.server.on('connection', (socket: Socket) => socket.once('close', () => socketsClosed++));
    const base = new URL(await app.listen({ port: 0, host: '127.0.0.1' }));
    const held = await pool.get(); // exclusive: holds the only connection
    const req = http.get({ host: base.hostname, port: base.port, path: '/events/late' });
    req.on('error', () => {});
    // The handler is queued for the only connection.
    expect(await eventually(() => pool.stats().waitCount === 1)).toBe(true);
    req.destroy();
    // The server has seen the client leave (its request is aborted with the socket).
    expect(await eventually(() => socketsClosed === 1)).toBe(true);
    await held.close();
    // It gets the connection after the client left: it must give it back.
    expect(await eventually(() => lent(pool) === 0, 1_500)).toBe(true);
    expect(await subscribers('late')).toBe(0);
    // And the pool still serves.
    expect((await app.inject({ method: 'POST', url: '/counter/after' })).statusCode).toBe(200);
  });

  it('/metrics, /healthz and the admin route', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ logger: memoryLogger(lines) });
    await app.inject({ method: 'POST', url: '/counter/m' });
    const metrics = await app.inject('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    // The counter's INCR rode the shared connection (a lease, the default): one connection, in use.
    expect(metrics.body).toContain('redis_pool_connections{pool="default",state="in_use"} 1');
    expect(metrics.body).toContain('redis_pool_shared_commands_total{pool="default"} 1');
    expect(metrics.body).toContain('redis_pool_dials_total{pool="default",result="ok"} 1');

    const health = await app.inject('/healthz');
    expect(health.statusCode).toBe(200);
    expect(health.json()).toMatchObject({ status: 'ok' });

    expect(Number((await admin.do('DBSIZE')) as number)).toBe(1);
    const denied = await app.inject({ method: 'POST', url: '/admin/flushall', payload: {}, headers: { 'x-admin-token': 'nope' } });
    expect(denied.statusCode).toBe(403);
    expect(lines.some((line) => line.level === 40 && line.msg.includes('denied'))).toBe(true);
    expect(Number((await admin.do('DBSIZE')) as number)).toBe(1);
    const ok = await app.inject({ method: 'POST', url: '/admin/flushall', payload: { async: false }, headers: { 'x-admin-token': TOKEN } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ status: 'ok', async: false });
    expect(Number((await admin.do('DBSIZE')) as number)).toBe(0);
  });

  it('without an admin token the admin route always refuses', async () => {
    const app = await makeApp({ adminToken: undefined });
    await app.inject({ method: 'POST', url: '/counter/keep' });
    for (const headers of [{}, { 'x-admin-token': '' }, { 'x-admin-token': 'undefined' }]) {
      expect((await app.inject({ method: 'POST', url: '/admin/flushall', payload: {}, headers })).statusCode).toBe(403);
    }
    expect(Number((await admin.do('DBSIZE')) as number)).toBe(1);
  });
});

/**
 * Abort under load (issue 10): 50 concurrent clients for 10 s against a real
 * listener, a third of their requests aborted mid-command. No request may be
 * slowed by another's command (a busy socket handed to the next request), no
 * warning may be logged for handlers that close in `finally`, and the pool's
 * counts must equal the server's CLIENT LIST afterwards.
 */
import http from 'node:http';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import redisconn, { dial, type Conn, type Pool } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientList, eventually, guardProcessErrors, lent, memoryLogger, type LogLine } from './helpers.js';

guardProcessErrors();

const CLIENT_NAME = 'abort-load';
const SLOW_MS = 400;
/** A GET slower than this waited behind someone else's BLPOP. */
const SLOWED_MS = 250;
const DURATION_MS = 10_000;
const CLIENTS = 50;

let server: TestRedisServer;
let admin: Conn;

beforeAll(async () => {
  server = await startRedisServer();
  admin = await dial(server.addr);
});

afterAll(async () => {
  await admin?.close();
  await server?.stop();
});

/** One request on its own socket; aborted after `abortAfterMs` when given. */
function hit(port: number, path: string, abortAfterMs?: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(-1));
    });
    req.on('error', () => resolve(-1));
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs);
  });
}

describe.each([
  { mode: 'leases (default)', exclusiveConnections: false },
  { mode: 'exclusiveConnections', exclusiveConnections: true },
])('$mode', ({ exclusiveConnections }) => {
  it(`${CLIENTS} clients for ${DURATION_MS / 1000} s, a third aborted mid-command: nobody slowed, no false warning, stats = CLIENT LIST`, async () => {
    const lines: LogLine[] = [];
    const app = Fastify({ logger: memoryLogger(lines) });
    await app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: false, clientName: CLIENT_NAME, exclusiveConnections });
    const getLatencies: number[] = [];
    let slowDone = 0;
    app.get('/slow', async (request) => {
      const conn = await request.redis.get();
      try {
        await conn.do('BLPOP', 'abort-load:never', SLOW_MS / 1000);
        slowDone++;
        return { ok: true };
      } finally {
        await conn.close();
      }
    });
    app.get('/fast', async (request) => {
      const conn = await request.redis.get();
      try {
        const started = performance.now();
        await conn.do('GET', 'abort-load:key');
        getLatencies.push(performance.now() - started);
        return { ok: true };
      } finally {
        await conn.close();
      }
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;

    const end = Date.now() + DURATION_MS;
    let aborted = 0;
    let answered = 0;
    const client = async (id: number): Promise<void> => {
      for (let i = 0; Date.now() < end; i++) {
        if ((id + i) % 3 === 0) {
          aborted++;
          await hit(port, '/slow', 50 + ((id * 7 + i) % 100));
        } else {
          if ((await hit(port, '/fast')) === 200) answered++;
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => client(id)));
    const pool = app.redis.pool as Pool;
    // Handlers of aborted requests finish their BLPOP, then close in finally.
    expect(await eventually(() => lent(pool) === 0, SLOW_MS * 4)).toBe(true);

    const slowest = Math.max(...getLatencies);
    console.log(`abort-load: ${answered} fast answered, ${aborted} aborted, ${slowDone} slow handlers finished; GET on a borrowed conn: max ${slowest.toFixed(1)} ms, dials ${pool.stats().dials}`);
    expect(aborted).toBeGreaterThan(100);
    expect(answered).toBeGreaterThan(200);
    expect(getLatencies.filter((ms) => ms > SLOWED_MS)).toEqual([]);
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
    // The server drops a closed client a moment after the close.
    const named = async (): Promise<number> => (await clientList(admin)).filter((c) => c.name === CLIENT_NAME).length;
    await eventually(async () => (await named()) === pool.stats().activeCount);
    const listed = await named();
    expect(pool.stats().activeCount).toBe(listed);
    expect(lent(pool)).toBe(0);
    expect(pool.stats().idleCount + pool.stats().sharedCount).toBe(listed);
    await app.close();
    expect(await eventually(async () => (await clientList(admin)).every((c) => c.name !== CLIENT_NAME))).toBe(true);
  }, 40_000);
});

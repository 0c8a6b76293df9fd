/**
 * The fault test: the example app on a real listener under concurrent load
 * (20 fetch workers hitting POST /counter/x) while its redis-server is
 * SIGKILLed and restarted on the same port. Checks: no crash (no stray
 * process-level error, the app still serves), no hung request (each answers
 * within the connect timeout plus slack), 503s with a stable code during the
 * outage, 200s again within 2 s of the restart, no lost or doubled INCR after
 * the restart, pool stats back to the truth (and matching the server's CLIENT
 * LIST), and no forgotten-connection warning.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, expect, it } from 'vitest';
import { buildApp } from '../examples/app.js';
import { dial, type Conn, type Pool } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientList, guardProcessErrors, lent, sleep, type LogLine } from './helpers.js';

guardProcessErrors();

const CLIENT_NAME = 'fault-test';
const CONNECT_TIMEOUT_MS = 1_000;
const SLACK_MS = 1_000;
const WORKERS = 20;

interface Outcome {
  start: number;
  end: number;
  status: number;
  code?: string;
  value?: number;
  error?: string;
}

let server: TestRedisServer | undefined;
let app: FastifyInstance | undefined;
let admin: Conn | undefined;

async function post(url: string): Promise<Omit<Outcome, 'start' | 'end'>> {
  try {
    const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { value?: number; code?: string };
    return { status: res.status, value: body.value, code: body.code };
  } catch (err) {
    return { status: 0, error: String(err) };
  }
}

afterAll(async () => {
  await app?.close();
  await admin?.close();
  await server?.stop();
});

it('survives redis-server being killed and restarted under load', async () => {
  server = await startRedisServer();
  const port = server.port;
  const lines: LogLine[] = [];
  app = await buildApp({
    redis: { addr: server.addr, argv: [], env: {}, clientName: CLIENT_NAME, connectTimeoutMs: CONNECT_TIMEOUT_MS, getTimeoutMs: CONNECT_TIMEOUT_MS },
    logger: { level: 'warn', stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } },
    slowMs: 10,
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const pool = app.redis.pool as Pool;
  const url = `${base}/counter/x`;

  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const outcomes: Outcome[] = [];
  let stop = false;
  const workers = Array.from({ length: WORKERS }, async () => {
    while (!stop) {
      const start = now();
      const result = await post(url);
      outcomes.push({ start, end: now(), ...result });
      // Keep the 503 phase from becoming a busy loop.
      if (result.status !== 200) await sleep(5);
    }
  });

  await sleep(1_000);
  const killingAt = now();
  await server.kill();
  const killedAt = now();
  await sleep(1_000);
  // The new server serves before startRedisServer resolves (it polls PING).
  const restartingAt = now();
  server = await startRedisServer({ port });
  const restartedAt = now();
  await sleep(2_500);
  stop = true;
  await Promise.all(workers);

  // No hung request, no transport error.
  expect(outcomes.filter((o) => o.status === 0)).toEqual([]);
  const slowest = Math.max(...outcomes.map((o) => o.end - o.start));
  expect(slowest).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  // Only 200s and 503s.
  expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);

  const before = outcomes.filter((o) => o.end < killingAt);
  expect(before.length).toBeGreaterThan(100);
  expect(before.filter((o) => o.status !== 200)).toEqual([]);

  // The outage: requests started after the kill and finished before the restart are 503s with a stable code.
  const during = outcomes.filter((o) => o.start > killedAt && o.end < restartingAt);
  expect(during.length).toBeGreaterThan(20);
  expect(during.filter((o) => o.status !== 503)).toEqual([]);
  expect(new Set(during.map((o) => o.code))).toEqual(new Set(['REDIS_CONN_CLOSED']));

  // Recovery: a 200 soon after the restart; only 200s from 2 s after it.
  const firstOk = outcomes.filter((o) => o.start > restartedAt && o.status === 200).map((o) => o.end);
  expect(firstOk.length).toBeGreaterThan(100);
  expect(Math.min(...firstOk) - restartedAt).toBeLessThan(2_000);
  const settled = outcomes.filter((o) => o.start > restartedAt + 2_000);
  expect(settled.length).toBeGreaterThan(50);
  expect(settled.filter((o) => o.status !== 200)).toEqual([]);

  // Every INCR sent after the kill hit the new server exactly once.
  admin = await dial(server.addr);
  const final = Number(((await admin.do('GET', 'counter:x')) as Buffer).toString());
  const values = outcomes.filter((o) => o.start > killedAt && o.status === 200).map((o) => o.value as number).sort((a, b) => a - b);
  expect(values).toEqual(Array.from({ length: final }, (_, i) => i + 1));

  // Pool stats back to the truth, and the server agrees.
  await sleep(50);
  const stats = pool.stats();
  expect(lent(pool)).toBe(0);
  expect(stats.activeCount).toBe(stats.idleCount + stats.inUseCount);
  expect(stats.activeCount).toBeGreaterThan(0);
  const clients = (await clientList(admin)).filter((c) => c.name === CLIENT_NAME);
  expect(clients.length).toBe(stats.activeCount);
  expect(stats.dialErrors).toBeGreaterThan(0);

  // No connection was forgotten (the handler uses `await using`).
  expect(lines.filter((line) => line.msg.includes('did not close a Redis connection'))).toEqual([]);

  // Still serving, and closes cleanly.
  const after = await post(url);
  expect(after).toMatchObject({ status: 200, value: final + 1 });
  const closing = performance.now();
  await app.close();
  expect(performance.now() - closing).toBeLessThan(1_000);
  expect(pool.stats().activeCount).toBe(0);
}, 30_000);

/**
 * The fault test: the example app on a real listener under concurrent load
 * (20 fetch workers hitting POST /counter/x) while its redis-server is
 * SIGKILLed and restarted on the same port. Checks: no crash (no stray
 * process-level error, the app still serves), no hung request (each answers
 * within the connect timeout plus slack), 503s with a stable code during the
 * outage, 200s again within 2 s of the restart and only 200s once the
 * requests in flight at the first one are done, no lost or doubled INCR
 * after the restart, pool stats back to the truth (and matching the server's
 * CLIENT LIST), and no forgotten-connection warning.
 *
 * Each phase lasts until enough requests have shown its behaviour (counted,
 * with a deadline), not for a fixed time: a slow machine serves fewer
 * requests per second, not different ones.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, expect, it } from 'vitest';
import { buildApp } from '../examples/app.js';
import { dial, type Conn, type Pool } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientList, eventually, guardProcessErrors, lent, sleep, type LogLine } from './helpers.js';

guardProcessErrors();

const CLIENT_NAME = 'fault-test';
const CONNECT_TIMEOUT_MS = 1_000;
const SLACK_MS = 1_000;
const WORKERS = 20;
/** Outcomes each phase waits for: every worker several times over. */
const PER_PHASE = 3 * WORKERS;
/** How long a phase may take to show them before the test fails. */
const PHASE_DEADLINE_MS = 8_000;

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
  /** When each worker's request in flight started (undefined between requests). */
  const inFlight: (number | undefined)[] = Array(WORKERS).fill(undefined);
  let stop = false;
  const workers = Array.from({ length: WORKERS }, async (_, worker) => {
    while (!stop) {
      const start = now();
      inFlight[worker] = start;
      const result = await post(url);
      outcomes.push({ start, end: now(), ...result });
      inFlight[worker] = undefined;
      // Keep the 503 phase from becoming a busy loop.
      if (result.status !== 200) await sleep(5);
    }
  });
  /** Waits until `count()` reaches `atLeast`, failing the test (naming `phase`) after the phase deadline. */
  const phase = async (what: string, count: () => number, atLeast = PER_PHASE): Promise<void> => {
    const reached = await eventually(() => count() >= atLeast, PHASE_DEADLINE_MS);
    expect(reached, `${what}: ${count()} of ${atLeast} within ${PHASE_DEADLINE_MS} ms`).toBe(true);
  };

  await phase('served before the kill', () => outcomes.filter((o) => o.status === 200).length);
  const killingAt = now();
  await server.kill();
  const killedAt = now();
  await phase('answered during the outage', () => outcomes.filter((o) => o.start > killedAt).length);
  // The new server serves before startRedisServer resolves (it polls PING).
  const restartingAt = now();
  server = await startRedisServer({ port });
  const restartedAt = now();
  // Recovered: from the first 200 after the restart on, once the requests in
  // flight at that moment are done, every request is served.
  let firstOkAt: number | undefined;
  let settledAt: number | undefined;
  const settledCount = (): number => {
    firstOkAt ??= outcomes.find((o) => o.start > restartedAt && o.status === 200)?.end;
    if (firstOkAt !== undefined && settledAt === undefined && inFlight.every((start) => start === undefined || start > (firstOkAt as number))) {
      settledAt = Math.max(firstOkAt, ...outcomes.filter((o) => o.start < (firstOkAt as number)).map((o) => o.end));
    }
    return settledAt === undefined ? 0 : outcomes.filter((o) => o.start > (settledAt as number)).length;
  };
  await phase('answered after the recovery', settledCount);
  stop = true;
  await Promise.all(workers);

  // No hung request, no transport error.
  expect(outcomes.filter((o) => o.status === 0)).toEqual([]);
  const slowest = Math.max(...outcomes.map((o) => o.end - o.start));
  expect(slowest).toBeLessThan(CONNECT_TIMEOUT_MS + SLACK_MS);
  // Only 200s and 503s.
  expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);

  const before = outcomes.filter((o) => o.end < killingAt);
  expect(before.length).toBeGreaterThanOrEqual(PER_PHASE);
  expect(before.filter((o) => o.status !== 200)).toEqual([]);

  // The outage: requests started after the kill and finished before the restart are 503s with a stable code.
  const during = outcomes.filter((o) => o.start > killedAt && o.end < restartingAt);
  expect(during.length).toBeGreaterThanOrEqual(PER_PHASE);
  expect(during.filter((o) => o.status !== 503)).toEqual([]);
  expect(new Set(during.map((o) => o.code))).toEqual(new Set(['REDIS_CONN_CLOSED']));

  // Recovery: a 200 soon after the restart; only 200s once the requests in flight at it are done.
  expect((firstOkAt as number) - restartedAt).toBeLessThan(2_000);
  const settled = outcomes.filter((o) => o.start > (settledAt as number));
  expect(settled.length).toBeGreaterThanOrEqual(PER_PHASE);
  expect(settled.filter((o) => o.status !== 200)).toEqual([]);

  // Every INCR sent after the kill hit the new server exactly once.
  admin = await dial(server.addr);
  const final = Number(((await admin.do('GET', 'counter:x')) as Buffer).toString());
  const values = outcomes.filter((o) => o.start > killedAt && o.status === 200).map((o) => o.value as number).sort((a, b) => a - b);
  expect(values).toEqual(Array.from({ length: final }, (_, i) => i + 1));

  // Pool stats back to the truth (once the last responses' releases are in), and the server agrees.
  expect(await eventually(() => lent(pool) === 0)).toBe(true);
  const stats = pool.stats();
  expect(stats.activeCount).toBe(stats.idleCount + stats.inUseCount);
  expect(stats.activeCount).toBeGreaterThan(0);
  const named = async (): Promise<number> => (await clientList(admin as Conn)).filter((c) => c.name === CLIENT_NAME).length;
  // The server drops a closed client a moment after the close.
  await eventually(async () => (await named()) === stats.activeCount);
  expect(await named()).toBe(stats.activeCount);
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

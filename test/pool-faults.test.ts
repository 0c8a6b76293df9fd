/**
 * Pool under faults, against real redis-server processes: the server killed
 * while conns are idle, in use and waited for, then restarted on the same
 * port; a hung (SIGSTOPped) server with read and connect timeouts; and
 * 1,000,000 borrow/return cycles without growth in stats, sockets or heap.
 *
 * Heap figures are printed (console.log) so they can be reported.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial, type DialOptions } from '../src/dial.js';
import { ConnClosedError, TimeoutError } from '../src/errors.js';
import { newPool, Pool, type PoolOptions } from '../src/pool.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { borrowAndPing, clientList, countingPool, eventually, expectCloses, guardProcessErrors, rejection, settle, text, within, type CountingDialer } from './helpers.js';

guardProcessErrors();

/** A full GC, or null when it cannot be had. */
const gc: (() => void) | null = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
})();

function heapUsedAfterGc(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

const MiB = 1024 * 1024;

/** How long this file's `eventually` polls wait (longer than the shared default: servers restart here). */
const EVENTUALLY_MS = 3_000;

/** Servers started by this file; stopped in afterAll. */
const servers: TestRedisServer[] = [];
/** Pools of the running test; closed in afterEach. */
let pools: Pool[] = [];
/** Raw observer conns; closed in afterEach. */
let observers: Conn[] = [];

async function startServer(port?: number): Promise<TestRedisServer> {
  const server = await startRedisServer(port === undefined ? {} : { port });
  servers.push(server);
  return server;
}

async function observe(server: TestRedisServer): Promise<Conn> {
  const conn = await dial(server.addr);
  observers.push(conn);
  return conn;
}

/** A pool to `addr` whose dials are counted (1 s connect timeout unless given) and whose conns carry a unique client name. */
function makePool(addr: string, options: Partial<PoolOptions> = {}, dialOptions: DialOptions = {}): { pool: Pool; dialer: CountingDialer; name: string } {
  return countingPool(pools, 'faults', () => addr, options, { connectTimeoutMs: 1_000, ...dialOptions });
}

/** Counters consistent, and the server (through `observer`) sees exactly activeCount conns named `name`. */
async function expectTruth(pool: Pool, observer: Conn, name: string, expected: { active: number; idle: number }): Promise<void> {
  const stats = pool.stats();
  expect(stats.activeCount).toBe(stats.idleCount + stats.inUseCount);
  expect({ active: stats.activeCount, idle: stats.idleCount }).toEqual(expected);
  let seen = -1;
  await eventually(async () => (seen = (await clientList(observer)).filter((c) => c.name === name).length) === stats.activeCount, EVENTUALLY_MS);
  expect(seen).toBe(stats.activeCount);
}

afterEach(async () => {
  const closing = pools;
  pools = [];
  for (const pool of closing) {
    await expectCloses(pool);
    expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0 });
  }
  await Promise.all(observers.map((conn) => conn.close()));
  observers = [];
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

// ---------------------------------------------------------------------------

describe('server killed and restarted on the same port', () => {
  const connectTimeoutMs = 1_000;
  const slackMs = 500;

  it('dead idle and in-use conns are discarded, callers fail promptly, the pool serves again after restart', async () => {
    const first = await startServer();
    const { pool, name, dialer } = makePool(first.addr, {}, { connectTimeoutMs });
    const before = await observe(first);
    const borrowedConns = await Promise.all([pool.get(), pool.get(), pool.get()]);
    for (const borrowed of borrowedConns) expect(await borrowed.do('PING')).toBe('PONG');
    const held = borrowedConns[0] as Conn;
    await (borrowedConns[1] as Conn).close();
    await (borrowedConns[2] as Conn).close();
    await expectTruth(pool, before, name, { active: 3, idle: 2 });

    await first.kill();

    // In use: the next call fails at once with ConnClosedError.
    let started = performance.now();
    const inUse = await within(rejection(held.do('PING')), 3_000, 'PING on a dead conn');
    expect(inUse).toBeInstanceOf(ConnClosedError);
    expect(performance.now() - started).toBeLessThan(connectTimeoutMs + slackMs);
    // Idle: every conn notices the EOF by itself.
    expect(await eventually(() => dialer.conns.every((conn) => conn.err() !== null), EVENTUALLY_MS)).toBe(true);

    // Borrowing: the dead idle conns are discarded (not lent), the new dial is
    // refused, and the error names the address, well within the connect timeout.
    for (let attempt = 0; attempt < 3; attempt++) {
      started = performance.now();
      const err = await within(rejection(pool.get()), 3_000, 'get while down');
      expect(performance.now() - started).toBeLessThan(connectTimeoutMs + slackMs);
      expect(err).toBeInstanceOf(ConnClosedError);
      expect((err as Error).message).toContain(first.addr);
      expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0, inUseCount: 1 });
    }
    // Many callers at once while the server is down: all fail promptly, none hang.
    started = performance.now();
    const burst = await within(Promise.all(Array.from({ length: 20 }, () => settle(pool.get().then((c) => c.do('PING'))))), 3_000, 'burst of gets');
    expect(performance.now() - started).toBeLessThan(connectTimeoutMs + slackMs);
    expect(burst.every((r) => !r.ok && r.error instanceof ConnClosedError)).toBe(true);
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0, dials: 3 + 3 + 20, dialErrors: 3 + 20 });

    await held.close(); // broken: closed, not kept
    expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0, inUseCount: 0 });

    // Back on the same port: the pool serves again, and tells the truth.
    const second = await startServer(first.port);
    expect(second.addr).toBe(first.addr);
    const after = await observe(second);
    const fresh = await Promise.all([pool.get(), pool.get()]);
    for (const borrowed of fresh) expect(await borrowed.do('PING')).toBe('PONG');
    await expectTruth(pool, after, name, { active: 2, idle: 0 });
    await Promise.all(fresh.map((borrowed) => borrowed.close()));
    await expectTruth(pool, after, name, { active: 2, idle: 2 });
    expect(dialer.dials).toBe(pool.stats().dials);
    expect(pool.stats().dials).toBe(3 + 3 + 20 + 2);
  });

  it('a waiter queued behind a conn that dies gets the dial error, not a hang', async () => {
    const server = await startServer();
    const { pool } = makePool(server.addr, { maxActive: 1, wait: true }, { connectTimeoutMs });
    const held = await pool.get();
    const waiters = Array.from({ length: 3 }, () => settle(pool.get()));
    expect(await eventually(() => pool.stats().waitCount === 3)).toBe(true);
    expect(pool.stats()).toMatchObject({ waitCount: 3, activeCount: 1 });
    await server.kill();
    expect(await rejection(held.do('PING'))).toBeInstanceOf(ConnClosedError);
    const started = performance.now();
    await held.close(); // discarded: its slot goes to the first waiter, which dials
    const results = await within(Promise.all(waiters), 3_000, 'waiters');
    expect(performance.now() - started).toBeLessThan(connectTimeoutMs + slackMs);
    for (const result of results) {
      expect(result.ok).toBe(false);
      expect((result as { error: Error }).error.message).toContain(server.addr);
    }
    expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0, dials: 4, dialErrors: 3 });

    const back = await startServer(server.port);
    await borrowAndPing(pool);
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1 });
    const observer = await observe(back);
    expect((await clientList(observer)).length - 1).toBe(pool.activeCount);
  });

  it('a server killed in the middle of a reply breaks only the conns on it', async () => {
    const server = await startServer();
    const { pool, name } = makePool(server.addr, {}, { connectTimeoutMs });
    const borrowed = await pool.get();
    const k = 'faults:big';
    await borrowed.do('SET', k, Buffer.alloc(8 * MiB, 'x'));
    // A large GET in flight while the server dies.
    const inFlight = settle(borrowed.do('GET', k));
    await server.kill();
    const result = await inFlight;
    if (!result.ok) expect(result.error).toBeInstanceOf(ConnClosedError);
    else expect((result.value as Buffer).length).toBe(8 * MiB); // it may have won the race
    await borrowed.close();
    const back = await startServer(server.port);
    const observer = await observe(back);
    await borrowAndPing(pool);
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
  });
});

describe('hung server (SIGSTOP)', () => {
  it('readTimeoutMs: a call on a paused server times out and the conn is discarded', async () => {
    const server = await startServer();
    const { pool, name, dialer } = makePool(server.addr, {}, { readTimeoutMs: 200 });
    const observer = await observe(server);
    const borrowed = await pool.get();
    expect(await borrowed.do('PING')).toBe('PONG');
    const spare = await pool.get();
    await spare.close();
    server.pause();
    try {
      const started = performance.now();
      const err = await rejection(borrowed.do('PING'));
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(elapsed).toBeGreaterThanOrEqual(180);
      expect(elapsed).toBeLessThan(1_000);
      expect(borrowed.err()).toBeInstanceOf(TimeoutError);
      await borrowed.close();
      expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1 });
      // The idle spare is lent (nothing tells it apart yet) and times out too.
      const spareLent = await pool.get();
      expect(await rejection(spareLent.do('PING'))).toBeInstanceOf(TimeoutError);
      await spareLent.close();
      expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0 });
    } finally {
      server.resume();
    }
    await borrowAndPing(pool);
    expect(dialer.dials).toBe(3);
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
  });

  it('resetTimeoutMs: returning a subscribed or watching conn to a paused server discards it in time', async () => {
    const server = await startServer();
    const { pool, name } = makePool(server.addr, { resetTimeoutMs: 200 });
    const observer = await observe(server);
    const subscribed = await pool.get();
    await subscribed.do('SUBSCRIBE', 'faults-chan');
    const watching = await pool.get();
    await watching.do('WATCH', 'faults-key');
    const plain = await pool.get();
    server.pause();
    try {
      const started = performance.now();
      await within(Promise.all([subscribed.close(), watching.close(), plain.close()]), 7_000, 'returns to a paused server');
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(180);
      expect(elapsed).toBeLessThan(1_000);
      // The two that needed a reset are gone; the plain one went back idle.
      expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1 });
    } finally {
      server.resume();
    }
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
  });

  it('timeoutMs bounds the whole get, including the PING on borrow of a hung server (newPool)', async () => {
    const server = await startServer();
    const observer = await observe(server);
    let t = 1_000_000;
    const name = 'faults-newpool'; // the only pool of this name
    const pool = newPool(server.addr, 0, { clientName: name, readTimeoutMs: 2_000, maxActive: 1, now: () => t });
    pools.push(pool);
    const borrowed = await pool.get();
    await borrowed.close();
    t += 61_000; // idle over a minute: the next borrow PINGs first
    server.pause();
    try {
      const started = performance.now();
      const err = await within(rejection(pool.get({ timeoutMs: 150 })), 3_000, 'get on a hung server');
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(elapsed).toBeLessThan(150 + 350);
      // The conn under test still holds the only slot: this one waits, then gives up.
      const aborted = new AbortController();
      const waiting = settle(pool.get({ signal: aborted.signal }));
      expect(await eventually(() => pool.stats().waitCount === 1)).toBe(true);
      expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0, waitCount: 1 });
      aborted.abort(new Error('client went away'));
      expect(await within(waiting, 1_000, 'aborted get')).toMatchObject({ ok: false, error: { message: 'client went away' } });
    } finally {
      server.resume();
    }
    // The PING answered after all: the conn is kept and lent again, no new dial.
    expect(await eventually(() => pool.idleCount === 1, EVENTUALLY_MS)).toBe(true);
    await borrowAndPing(pool);
    expect(pool.stats().dials).toBe(1);
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
  });

  it('connectTimeoutMs: a dial to a paused server fails with TimeoutError in time, its slot is freed', async () => {
    const server = await startServer();
    // clientName makes the dial wait for a handshake reply, which never comes.
    const { pool, name } = makePool(server.addr, { maxActive: 1 }, { connectTimeoutMs: 300 });
    const observer = await observe(server);
    server.pause();
    try {
      const started = performance.now();
      const results = await within(Promise.all([settle(pool.get()), settle(pool.get())]), 3_000, 'gets on a paused server');
      const elapsed = performance.now() - started;
      // Two dials one after the other (maxActive 1), each bounded by the connect timeout.
      expect(elapsed).toBeGreaterThanOrEqual(580);
      expect(elapsed).toBeLessThan(2 * 300 + 500);
      for (const result of results) {
        expect(result.ok).toBe(false);
        const err = (result as { error: Error }).error;
        expect(err).toBeInstanceOf(TimeoutError);
        expect(err.message).toContain(server.addr);
      }
      expect(pool.stats()).toMatchObject({ activeCount: 0, dials: 2, dialErrors: 2 });
    } finally {
      server.resume();
    }
    await borrowAndPing(pool);
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
  });
});

describe('no growth over many cycles', () => {
  it('1,000,000 get/close cycles: stats, sockets and heap stay flat', async () => {
    const server = await startServer();
    const { pool, name, dialer } = makePool(server.addr);
    const observer = await observe(server);
    const connectedClients = async (): Promise<number> => Number(/connected_clients:(\d+)/.exec(text(await observer.do('INFO', 'clients')))?.[1]);
    await borrowAndPing(pool);
    const clientsBefore = await connectedClients();
    for (let i = 0; i < 10_000; i++) await (await pool.get()).close(); // warm up the JIT
    const heapBefore = heapUsedAfterGc();
    const cycles = 1_000_000;
    const started = performance.now();
    let maxActive = 0;
    for (let i = 1; i <= cycles; i++) {
      const borrowed = await pool.get();
      await borrowed.close();
      if (i % 100_000 === 0) {
        const stats = pool.stats();
        maxActive = Math.max(maxActive, stats.activeCount);
        expect(stats).toMatchObject({ activeCount: 1, idleCount: 1, inUseCount: 0 });
      }
    }
    const elapsedMs = performance.now() - started;
    const heapAfter = heapUsedAfterGc();
    const growthMiB = (heapAfter - heapBefore) / MiB;
    console.log(
      `pool: ${cycles} get/close cycles in ${(elapsedMs / 1000).toFixed(2)} s (${((elapsedMs * 1000) / cycles).toFixed(2)} µs/cycle); ` +
        `heapUsed ${(heapBefore / MiB).toFixed(1)} → ${(heapAfter / MiB).toFixed(1)} MiB (growth ${growthMiB.toFixed(2)} MiB, gc ${gc ? 'forced' : 'not available'}); ` +
        `dials ${dialer.dials}`,
    );
    expect(maxActive).toBe(1);
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1, inUseCount: 0, dials: 1, dialErrors: 0, waitCount: 0 });
    expect(dialer.dials).toBe(1);
    expect(await connectedClients()).toBe(clientsBefore);
    await expectTruth(pool, observer, name, { active: 1, idle: 1 });
    expect(growthMiB).toBeLessThan(20);
  }, 60_000);

  it('gets with timeoutMs (and a long-lived signal) leave no deadline timers or signals behind', async () => {
    const server = await startServer();
    const { pool } = makePool(server.addr, { maxActive: 1 });
    const appSignal = new AbortController().signal; // e.g. a server-wide shutdown signal
    await (await pool.get({ timeoutMs: 60_000, signal: appSignal })).close();
    const cycles = 25_000;
    for (const withSignal of [false, true]) {
      const options = withSignal ? { timeoutMs: 60_000, signal: appSignal } : { timeoutMs: 60_000 };
      const heapBefore = heapUsedAfterGc();
      const started = performance.now();
      for (let i = 0; i < cycles; i++) {
        const borrowed = await pool.get(options);
        await borrowed.close();
      }
      const elapsedMs = performance.now() - started;
      const growthMiB = (heapUsedAfterGc() - heapBefore) / MiB;
      console.log(
        `pool: ${cycles} get({ timeoutMs${withSignal ? ', signal' : ''} })/close cycles in ${elapsedMs.toFixed(0)} ms; heap growth ${growthMiB.toFixed(2)} MiB`,
      );
      // Each get used to leave a 60 s timer, its AbortController and (with a
      // signal) an AbortSignal.any() result alive: ~2.4 KiB a get, ~60 MiB here.
      expect(growthMiB).toBeLessThan(8);
    }
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1, dials: 1 });
    // The deadline still works when it is needed.
    const held = await pool.get();
    expect(await rejection(pool.get({ timeoutMs: 30, signal: appSignal }))).toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const waiting = settle(pool.get({ timeoutMs: 60_000, signal: controller.signal }));
    controller.abort(new Error('shutting down'));
    expect(await waiting).toMatchObject({ ok: false, error: { message: 'shutting down' } });
    await held.close();
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 1 });
  }, 30_000);
});

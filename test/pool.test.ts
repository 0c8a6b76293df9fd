/**
 * Pool against a real redis-server: redigo's pool_test.go scenarios (reuse,
 * LIFO, maxIdle, errored conns, close with conns in use, idle timeout and max
 * lifetime on an injected clock, testOnBorrow, maxActive with and without
 * wait, dial errors with waiters, aborts and timeouts), the reset a returned
 * conn gets (checked on the server with MONITOR), and newPool's LUCI defaults.
 *
 * After every test the pool's counters are checked against the server:
 * `activeCount = idleCount + inUseCount`, and the clients the server lists
 * (minus our observers) are exactly the pool's active connections.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial, type DialOptions } from '../src/dial.js';
import { ConnClosedError, PoolClosedError, PoolExhaustedError, RedisError, TimeoutError } from '../src/errors.js';
import { newPool, Pool, type PoolOptions } from '../src/pool.js';
import type { Reply } from '../src/resp/decode.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { borrowAndPing, clientInfo, clientList, countingPool, eventually, expectCloses, guardProcessErrors, rejection, settle, text, tick, uniqueKeys, within, type CountingDialer, type Settled } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
/** Our observer: CLIENT LIST, INFO, ECHO sync markers. Not part of any pool. */
let admin: Conn;
let monitor: Monitor;
/** Pools of the running test; closed (and checked) in afterEach. */
let pools: Pool[] = [];

// ---------------------------------------------------------------------------
// helpers

/** A promise with its state observable without awaiting it. */
interface Tracked<T> {
  readonly promise: Promise<Settled<T>>;
  settled: Settled<T> | null;
}

function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { promise: settle(promise), settled: null };
  void tracked.promise.then((result) => {
    tracked.settled = result;
  });
  return tracked;
}

/** A fake clock for `now`. */
class Clock {
  t = 1_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A pool over a counting dialer to the file's server whose conns carry a unique client name. */
function makePool(options: Partial<PoolOptions> = {}, dialOptions: DialOptions = {}): { pool: Pool; dialer: CountingDialer } {
  return countingPool(pools, 'pooltest', () => server.addr, options, dialOptions);
}

/** Clients the server lists, minus our observers (admin, monitor). */
async function serverClients(): Promise<Record<string, string>[]> {
  const observers = new Set([monitor.id, await adminId()]);
  return (await clientList(admin)).filter((client) => !observers.has(client.id ?? ''));
}

let adminIdCache = '';
async function adminId(): Promise<string> {
  if (adminIdCache === '') adminIdCache = String(await admin.do('CLIENT', 'ID'));
  return adminIdCache;
}

/**
 * The pool's counters are consistent, and (once closes have reached the
 * server) the server sees exactly `activeCount` connections besides ours.
 */
async function expectTruth(pool: Pool, expected?: { active?: number; idle?: number }): Promise<void> {
  const stats = pool.stats();
  expect(stats.activeCount).toBe(stats.idleCount + stats.inUseCount);
  expect(stats.inUseCount).toBeGreaterThanOrEqual(0);
  expect(pool.activeCount).toBe(stats.activeCount);
  expect(pool.idleCount).toBe(stats.idleCount);
  if (expected?.active !== undefined) expect(stats.activeCount).toBe(expected.active);
  if (expected?.idle !== undefined) expect(stats.idleCount).toBe(expected.idle);
  let seen = -1;
  await eventually(async () => (seen = (await serverClients()).length) === pool.activeCount);
  expect(seen).toBe(pool.activeCount);
}

/** The server's client id of a (borrowed) conn. */
async function idOf(conn: Conn): Promise<number> {
  return (await conn.do('CLIENT', 'ID')) as number;
}

/** `calls` of a command in INFO commandstats. */
async function commandCalls(name: string): Promise<number> {
  const info = text(await admin.do('INFO', 'commandstats'));
  const match = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
  return match ? Number(match[1]) : 0;
}

interface MonitorLine {
  addr: string;
  args: string[];
}

function unquote(arg: string): string {
  return arg.replace(/\\x([0-9a-f]{2})|\\(.)/g, (_, hex: string | undefined, ch: string | undefined) =>
    hex !== undefined ? String.fromCharCode(parseInt(hex, 16)) : ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch === 't' ? '\t' : (ch as string),
  );
}

/** Parses `1700000000.123456 [0 127.0.0.1:5000] "SET" "k" "v"`. */
function parseMonitorLine(line: string): MonitorLine | null {
  const match = /^\S+ \[\d+ (\S+)\] (.*)$/.exec(line);
  if (match === null) return null;
  const args = [...(match[2] as string).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unquote(m[1] as string));
  return { addr: match[1] as string, args };
}

/** A MONITOR connection recording every command the server runs. */
class Monitor {
  readonly lines: MonitorLine[] = [];
  private seq = 0;
  private constructor(
    private readonly conn: Conn,
    readonly id: string,
  ) {}

  static async start(addr: string): Promise<Monitor> {
    const conn = await dial(addr);
    const id = String(await conn.do('CLIENT', 'ID'));
    expect(await conn.do('MONITOR')).toBe('OK');
    const m = new Monitor(conn, id);
    void m.pump();
    return m;
  }

  private async pump(): Promise<void> {
    for (;;) {
      let reply: Reply;
      try {
        reply = await this.conn.receive();
      } catch {
        return; // closed
      }
      const line = parseMonitorLine(text(reply));
      if (line !== null) this.lines.push(line);
    }
  }

  /** Resolves once every command the server ran before now has been recorded. */
  async sync(): Promise<void> {
    const token = `monitor-sync-${++this.seq}`;
    await admin.do('ECHO', token);
    const seen = await eventually(() => this.lines.some((l) => l.args[0] === 'ECHO' && l.args[1] === token));
    expect(seen).toBe(true);
  }

  /**
   * The commands `addr` ran after its last `CLIENT INFO`, as strings, with
   * the pool's random ECHO marker replaced by `<marker>`.
   */
  commandsAfterInfo(addr: string): string[] {
    const mine = this.lines.filter((l) => l.addr === addr);
    let start = 0;
    for (let i = mine.length - 1; i >= 0; i--) {
      const args = (mine[i] as MonitorLine).args;
      if (args[0]?.toUpperCase() === 'CLIENT' && args[1]?.toUpperCase() === 'INFO') {
        start = i + 1;
        break;
      }
    }
    return mine.slice(start).map((l) => l.args.join(' ').replace(/redisconn-reset-[0-9a-f]+/, '<marker>'));
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

const key = uniqueKeys('pool-test');

// ---------------------------------------------------------------------------
// setup

beforeAll(async () => {
  server = await startRedisServer();
  admin = await dial(server.addr);
  monitor = await Monitor.start(server.addr);
});

afterEach(async () => {
  const closing = pools;
  pools = [];
  for (const pool of closing) {
    // Every test returns what it borrowed; a close that hangs is a failure.
    await expectCloses(pool);
    const stats = pool.stats();
    expect(stats).toMatchObject({ activeCount: 0, idleCount: 0, inUseCount: 0 });
  }
  // Nothing leaked onto the server. Leftovers are killed so that one failing
  // test does not fail every later one.
  let left: Record<string, string>[] = [];
  await eventually(async () => (left = await serverClients()).length === 0);
  for (const client of left) await admin.do('CLIENT', 'KILL', 'ID', client.id ?? '0');
  expect(left.map((client) => client.name)).toEqual([]);
});

afterAll(async () => {
  await monitor?.close();
  await admin?.close();
  await server?.stop();
});

// ---------------------------------------------------------------------------
// borrow and return

describe('borrow and return', () => {
  it('reuses conns: 10 rounds of borrowing 2 conns dial exactly twice', async () => {
    const { pool, dialer } = makePool();
    const ids = new Set<number>();
    for (let round = 0; round < 10; round++) {
      const a = await pool.get();
      const b = await pool.get();
      expect(await a.do('PING')).toBe('PONG');
      expect(await b.do('PING')).toBe('PONG');
      ids.add(await idOf(a));
      ids.add(await idOf(b));
      await a.close();
      await b.close();
      await expectTruth(pool, { active: 2, idle: 2 });
    }
    expect(dialer.dials).toBe(2);
    expect(ids.size).toBe(2);
    expect(pool.stats()).toMatchObject({ dials: 2, dialErrors: 0, waitCount: 0 });
  });

  it('lends the most recently returned conn first (LIFO)', async () => {
    const { pool } = makePool();
    const a = await pool.get();
    const b = await pool.get();
    const idA = await idOf(a);
    const idB = await idOf(b);
    await a.close();
    await b.close();
    const first = await pool.get();
    expect(await idOf(first)).toBe(idB);
    const second = await pool.get();
    expect(await idOf(second)).toBe(idA);
    await expectTruth(pool, { active: 2, idle: 0 });
    await first.close();
    await second.close();
    await expectTruth(pool, { active: 2, idle: 2 });
  });

  it('closes the oldest idle conn when more than maxIdle come back', async () => {
    const { pool, dialer } = makePool({ maxIdle: 2 });
    const borrowedConns = [await pool.get(), await pool.get(), await pool.get()];
    const ids = await Promise.all(borrowedConns.map(idOf));
    for (const borrowed of borrowedConns) await borrowed.close();
    await expectTruth(pool, { active: 2, idle: 2 });
    const left = (await serverClients()).map((c) => Number(c.id)).sort((x, y) => x - y);
    expect(left).toEqual([ids[1], ids[2]]);
    // redigo's TestPoolMaxIdle: rounds of 3 with maxIdle 2 dial one conn per round.
    for (let round = 0; round < 5; round++) {
      const more = [await pool.get(), await pool.get(), await pool.get()];
      for (const borrowed of more) await borrowed.close();
      await expectTruth(pool, { active: 2, idle: 2 });
    }
    expect(dialer.dials).toBe(3 + 5);
  });

  it('discards a conn that broke while borrowed and dials a new one', async () => {
    const { pool, dialer } = makePool();
    const borrowed = await pool.get();
    const id = await idOf(borrowed);
    expect(await admin.do('CLIENT', 'KILL', 'ID', id)).toBe(1);
    const err = await rejection(borrowed.do('PING'));
    expect(err).toBeInstanceOf(ConnClosedError);
    expect(borrowed.err()).toBeInstanceOf(ConnClosedError);
    await borrowed.close();
    await expectTruth(pool, { active: 0, idle: 0 });
    const next = await pool.get();
    expect(await idOf(next)).not.toBe(id);
    expect(dialer.dials).toBe(2);
    await next.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('discards a conn whose call timed out (the stream is lost)', async () => {
    const { pool, dialer } = makePool();
    const borrowed = await pool.get();
    const err = await rejection(borrowed.doWithTimeout(50, 'BLPOP', key('never'), 5));
    expect(err).toBeInstanceOf(TimeoutError);
    await borrowed.close();
    await expectTruth(pool, { active: 0, idle: 0 });
    await borrowAndPing(pool);
    expect(dialer.dials).toBe(2);
  });

  it('keeps a conn after an error reply (not fatal)', async () => {
    const { pool, dialer } = makePool();
    const borrowed = await pool.get();
    const k = key('wrongtype');
    await borrowed.do('SET', k, 'x');
    const err = await rejection(borrowed.do('LPUSH', k, 'y'));
    expect(err).toBeInstanceOf(RedisError);
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
    await borrowAndPing(pool);
    expect(dialer.dials).toBe(1);
  });

  it('double close is harmless and use after close rejects with ConnClosedError', async () => {
    const { pool } = makePool();
    const borrowed = await pool.get();
    await borrowed.close();
    await borrowed.close();
    await borrowed[Symbol.asyncDispose]();
    // Returned once, not three times.
    await expectTruth(pool, { active: 1, idle: 1 });
    expect(await rejection(borrowed.do('PING'))).toBeInstanceOf(ConnClosedError);
    expect(await rejection(borrowed.doWithTimeout(100, 'PING'))).toBeInstanceOf(ConnClosedError);
    expect(await rejection(borrowed.doWithSignal(new AbortController().signal, 'PING'))).toBeInstanceOf(ConnClosedError);
    expect(await rejection(borrowed.receive())).toBeInstanceOf(ConnClosedError);
    expect(await rejection(borrowed.receiveWithTimeout(100))).toBeInstanceOf(ConnClosedError);
    expect(await rejection(borrowed.flush())).toBeInstanceOf(ConnClosedError);
    expect(() => borrowed.send('PING')).toThrow(ConnClosedError);
    expect(borrowed.err()).toBeInstanceOf(ConnClosedError);
    expect((borrowed.err() as ConnClosedError).code).toBe('REDIS_CONN_CLOSED');
    // The conn itself is fine and lent again, to a new borrowed.
    const again = await pool.get();
    expect(again).not.toBe(borrowed);
    expect(await again.do('PING')).toBe('PONG');
    expect(await rejection(borrowed.do('PING'))).toBeInstanceOf(ConnClosedError);
    await again.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('await using returns the conn', async () => {
    const { pool } = makePool();
    {
      await using borrowed = await pool.get();
      expect(await borrowed.do('PING')).toBe('PONG');
      await expectTruth(pool, { active: 1, idle: 0 });
    }
    await expectTruth(pool, { active: 1, idle: 1 });
  });
});

// ---------------------------------------------------------------------------
// close

describe('close', () => {
  it('closes idle conns at once and in-use conns when they come back; close() resolves after', async () => {
    const { pool } = makePool();
    const kept = await pool.get();
    const returned = await pool.get();
    await returned.close();
    await expectTruth(pool, { active: 2, idle: 1 });
    const closing = track(pool.close());
    // The idle one is gone from the server (close got that far); the borrowed one still works.
    await expectTruth(pool, { active: 1, idle: 0 });
    expect(closing.settled).toBeNull();
    expect(await kept.do('PING')).toBe('PONG');
    expect(await rejection(pool.get())).toBeInstanceOf(PoolClosedError);
    await kept.close();
    const result = await within(closing.promise, 2_000, 'pool close');
    expect(result.ok).toBe(true);
    await expectTruth(pool, { active: 0, idle: 0 });
    // Closing again is harmless and resolves at once.
    await pool.close();
    const err = await rejection(pool.get());
    expect(err).toBeInstanceOf(PoolClosedError);
    expect((err as PoolClosedError).code).toBe('REDIS_POOL_CLOSED');
  });

  it('close wakes every waiter with PoolClosedError', async () => {
    const { pool, dialer } = makePool({ maxActive: 1, wait: true });
    const held = await pool.get();
    const waiters = Array.from({ length: 5 }, () => track(pool.get()));
    expect(await eventually(() => pool.stats().waitCount === 5)).toBe(true);
    expect(waiters.every((w) => w.settled === null)).toBe(true);
    const closing = track(pool.close());
    const results = await within(Promise.all(waiters.map((w) => w.promise)), 2_000, 'waiters after close');
    for (const result of results) {
      expect(result.ok).toBe(false);
      expect((result as { error: unknown }).error).toBeInstanceOf(PoolClosedError);
    }
    expect(closing.settled).toBeNull();
    await held.close();
    expect((await within(closing.promise, 2_000, 'pool close')).ok).toBe(true);
    expect(dialer.dials).toBe(1);
    await expectTruth(pool, { active: 0 });
  });

  it('close during a dial: the dialed conn is closed and the caller gets PoolClosedError', async () => {
    const { pool, dialer } = makePool();
    dialer.delayMs = 100;
    const getting = track(pool.get());
    expect(await eventually(() => dialer.dials === 1)).toBe(true); // the dial is under way
    const closing = track(pool.close());
    const result = await within(getting.promise, 2_000, 'get during close');
    expect(result.ok).toBe(false);
    expect((result as { error: unknown }).error).toBeInstanceOf(PoolClosedError);
    expect((await closing.promise).ok).toBe(true);
    expect(dialer.conns).toHaveLength(1);
    expect((dialer.conns[0] as Conn).err()).toBeInstanceOf(ConnClosedError);
    await expectTruth(pool, { active: 0 });
  });
});

// ---------------------------------------------------------------------------
// idle timeout, lifetime, testOnBorrow (injected clock, no sleeps)

describe('idle timeout, max lifetime and testOnBorrow on an injected clock', () => {
  it('closes an idle conn once idleTimeoutMs has passed, reuses it before', async () => {
    const clock = new Clock();
    const { pool, dialer } = makePool({ idleTimeoutMs: 1_000, now: clock.now });
    const first = await pool.get();
    const firstId = await idOf(first);
    await first.close();
    clock.advance(999);
    const again = await pool.get();
    expect(await idOf(again)).toBe(firstId);
    await again.close();
    expect(dialer.dials).toBe(1);
    clock.advance(1_000);
    const fresh = await pool.get();
    expect(await idOf(fresh)).not.toBe(firstId);
    expect(dialer.dials).toBe(2);
    await expectTruth(pool, { active: 1, idle: 0 });
    const ids = (await serverClients()).map((c) => Number(c.id));
    expect(ids).not.toContain(firstId);
    await fresh.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('closes conns past maxConnLifetimeMs on borrow and on return', async () => {
    const clock = new Clock();
    const { pool, dialer } = makePool({ maxConnLifetimeMs: 1_000, idleTimeoutMs: 0, now: clock.now });
    const a = await pool.get();
    const idA = await idOf(a);
    clock.advance(500);
    await a.close();
    clock.advance(100);
    const b = await pool.get(); // 600 ms old: reused
    expect(await idOf(b)).toBe(idA);
    clock.advance(400); // 1000 ms old when returned: closed
    await b.close();
    await expectTruth(pool, { active: 0, idle: 0 });
    const c = await pool.get();
    const idC = await idOf(c);
    expect(idC).not.toBe(idA);
    clock.advance(999);
    await c.close(); // 999 ms old: kept
    await expectTruth(pool, { active: 1, idle: 1 });
    clock.advance(1);
    const d = await pool.get(); // 1000 ms old on borrow: closed, a new one dialed
    expect(await idOf(d)).not.toBe(idC);
    expect(dialer.dials).toBe(3);
    await d.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('testOnBorrow failing: the conn is closed and a new one dialed; lastUsed grows', async () => {
    const clock = new Clock();
    const seen: number[] = [];
    const { pool, dialer } = makePool({
      now: clock.now,
      testOnBorrow: (_conn, lastUsed) => {
        seen.push(lastUsed);
        throw new Error('stale');
      },
    });
    const ids = new Set<number>();
    for (let round = 1; round <= 5; round++) {
      const borrowed = await pool.get();
      ids.add(await idOf(borrowed));
      clock.advance(10);
      await borrowed.close();
      await expectTruth(pool, { active: 1, idle: 1 });
    }
    expect(seen).toEqual([1_000_010, 1_000_020, 1_000_030, 1_000_040]);
    expect(dialer.dials).toBe(5);
    expect(ids.size).toBe(5);
  });

  it('testOnBorrow passing (also async): the same conn, lastUsed grows', async () => {
    const clock = new Clock();
    const seen: number[] = [];
    const { pool, dialer } = makePool({
      now: clock.now,
      testOnBorrow: async (conn, lastUsed) => {
        seen.push(lastUsed);
        expect(await conn.do('PING')).toBe('PONG');
      },
    });
    const ids = new Set<number>();
    for (let round = 1; round <= 5; round++) {
      const borrowed = await pool.get();
      ids.add(await idOf(borrowed));
      clock.advance(10);
      await borrowed.close();
    }
    expect(seen).toEqual([1_000_010, 1_000_020, 1_000_030, 1_000_040]);
    expect(dialer.dials).toBe(1);
    expect(ids.size).toBe(1);
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('testOnBorrow failing on one of several idle conns tries the next idle one before dialing', async () => {
    const bad = new Set<Conn>();
    const { pool, dialer } = makePool({
      testOnBorrow: (conn) => {
        if (bad.has(conn)) throw new Error('bad');
      },
    });
    const a = await pool.get();
    const b = await pool.get();
    const idA = await idOf(a);
    await a.close();
    await b.close(); // b is on top of the LIFO list
    bad.add(dialer.conns[1] as Conn);
    const borrowed = await pool.get();
    expect(await idOf(borrowed)).toBe(idA);
    expect(dialer.dials).toBe(2);
    await expectTruth(pool, { active: 1, idle: 0 });
    await borrowed.close();
  });

  it('timeoutMs and signal also bound a slow testOnBorrow; the conn is kept or closed when the check ends', async () => {
    let verdict = true;
    let checks = 0;
    const { pool, dialer } = makePool({
      testOnBorrow: async () => {
        checks++;
        await tick(300);
        if (!verdict) throw new Error('failed check');
      },
    });
    await (await pool.get()).close();
    // Check passes after the caller gave up: the conn goes back to idle.
    let started = performance.now();
    expect(await rejection(pool.get({ timeoutMs: 30 }))).toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeLessThan(250);
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0 });
    expect(await eventually(() => pool.idleCount === 1)).toBe(true);
    await expectTruth(pool, { active: 1, idle: 1 });
    // Check fails after the caller gave up: the conn is closed, its slot freed.
    verdict = false;
    const controller = new AbortController();
    started = performance.now();
    const checksBefore = checks;
    const aborted = settle(pool.get({ signal: controller.signal }));
    expect(await eventually(() => checks === checksBefore + 1)).toBe(true); // the check is under way
    controller.abort(new Error('gone'));
    expect(await within(aborted, 1_000, 'aborted get')).toMatchObject({ ok: false, error: { message: 'gone' } });
    expect(performance.now() - started).toBeLessThan(250);
    expect(await eventually(() => pool.activeCount === 0)).toBe(true);
    await expectTruth(pool, { active: 0, idle: 0 });
    expect(dialer.dials).toBe(1);
  });

  it('100 idle conns all failing testOnBorrow under 100 concurrent gets: exactly 200 dials', async () => {
    const old = new Set<Conn>();
    let tests = 0;
    const { pool, dialer } = makePool({
      maxIdle: 100,
      maxActive: 0,
      testOnBorrow: async (conn) => {
        tests++;
        await tick(1);
        if (old.has(conn)) throw new Error('stale');
      },
    });
    const first = await Promise.all(Array.from({ length: 100 }, () => pool.get()));
    await Promise.all(first.map((borrowed) => borrowed.close()));
    await expectTruth(pool, { active: 100, idle: 100 });
    for (const conn of dialer.conns) old.add(conn);
    const second = await Promise.all(Array.from({ length: 100 }, () => pool.get()));
    expect(dialer.dials).toBe(200);
    expect(pool.stats().dials).toBe(200);
    expect(tests).toBe(100);
    await expectTruth(pool, { active: 100, idle: 0 });
    const ids = new Set(await Promise.all(second.map(idOf)));
    expect(ids.size).toBe(100);
    await Promise.all(second.map((borrowed) => borrowed.close()));
    await expectTruth(pool, { active: 100, idle: 100 });
  });
});

// ---------------------------------------------------------------------------
// maxActive, waiting, dial errors

describe('maxActive and waiting', () => {
  it('maxActive without wait rejects with PoolExhaustedError', async () => {
    const { pool, dialer } = makePool({ maxActive: 2, wait: false });
    const a = await pool.get();
    const b = await pool.get();
    const err = await rejection(pool.get());
    expect(err).toBeInstanceOf(PoolExhaustedError);
    expect((err as PoolExhaustedError).code).toBe('REDIS_POOL_EXHAUSTED');
    expect(dialer.dials).toBe(2);
    await expectTruth(pool, { active: 2, idle: 0 });
    await a.close();
    const c = await pool.get();
    expect(await c.do('PING')).toBe('PONG');
    expect(dialer.dials).toBe(2);
    await b.close();
    await c.close();
    expect(pool.stats().waitCount).toBe(0);
    await expectTruth(pool, { active: 2, idle: 2 });
  });

  it('a failed dial frees its slot (maxActive without wait)', async () => {
    const { pool, dialer } = makePool({ maxActive: 1, wait: false });
    dialer.failing = true;
    for (let i = 1; i <= 3; i++) {
      const err = await rejection(pool.get());
      expect((err as Error).message).toBe(`dial #${i} refused`);
    }
    expect(pool.stats()).toMatchObject({ activeCount: 0, dials: 3, dialErrors: 3 });
    dialer.failing = false;
    await borrowAndPing(pool);
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('wait: 10 blocked callers are released one by one in FIFO order', async () => {
    const clock = new Clock();
    const { pool, dialer } = makePool({ maxActive: 1, wait: true, now: clock.now });
    let current = await pool.get();
    const id = await idOf(current);
    const order: number[] = [];
    const waiters = Array.from({ length: 10 }, (_, i) =>
      track(
        pool.get().then((borrowed) => {
          order.push(i);
          return borrowed;
        }),
      ),
    );
    expect(await eventually(() => pool.stats().waitCount === 10)).toBe(true);
    expect(order).toEqual([]);
    for (let i = 0; i < 10; i++) {
      clock.advance(5);
      await current.close();
      const result = await within((waiters[i] as Tracked<Conn>).promise, 2_000, `waiter ${i}`);
      expect(result.ok).toBe(true);
      current = (result as { value: Conn }).value;
      // Nothing to wait for: a second release would have come with this one.
      // One macrotask turn lets any such promise settle.
      await tick();
      // Exactly one more released, the oldest.
      expect(order).toEqual(Array.from({ length: i + 1 }, (_, j) => j));
      expect(waiters.filter((w) => w.settled !== null)).toHaveLength(i + 1);
      expect(await idOf(current)).toBe(id);
      await expectTruth(pool, { active: 1, idle: 0 });
    }
    await current.close();
    expect(dialer.dials).toBe(1);
    // Waiter i waited (i + 1) * 5 ms on the injected clock.
    expect(pool.stats()).toMatchObject({ waitCount: 10, waitDurationMs: 5 * 55, dials: 1 });
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('an aborted waiter leaves the line; the others keep their order', async () => {
    const { pool } = makePool({ maxActive: 1 });
    const held = await pool.get();
    const controller = new AbortController();
    const first = track(pool.get());
    const middle = track(pool.get({ signal: controller.signal }));
    const last = track(pool.get());
    const reason = new Error('caller gave up');
    controller.abort(reason);
    const aborted = await within(middle.promise, 2_000, 'aborted waiter');
    expect(aborted).toEqual({ ok: false, error: reason });
    await held.close();
    const a = await within(first.promise, 2_000, 'first waiter');
    expect(a.ok).toBe(true);
    // Nothing to wait for (the only conn is lent out): one macrotask turn
    // lets a wrong hand-off settle.
    await tick();
    expect(last.settled).toBeNull();
    await (a as { value: Conn }).value.close();
    const c = await within(last.promise, 2_000, 'last waiter');
    expect(c.ok).toBe(true);
    await (c as { value: Conn }).value.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('abort while waiting rejects with the reason and frees nothing twice', async () => {
    const { pool, dialer } = makePool({ maxActive: 1 });
    const held = await pool.get();
    const controller = new AbortController();
    const waiting = track(pool.get({ signal: controller.signal }));
    expect(await eventually(() => pool.stats().waitCount === 1)).toBe(true);
    expect(waiting.settled).toBeNull();
    controller.abort();
    const result = await within(waiting.promise, 2_000, 'aborted waiter');
    expect(result.ok).toBe(false);
    expect((result as { error: Error }).error.name).toBe('AbortError');
    await held.close();
    // The conn went idle, not to the abandoned waiter.
    await expectTruth(pool, { active: 1, idle: 1 });
    const borrowed = await pool.get();
    await borrowed.close();
    expect(dialer.dials).toBe(1);
    // An already aborted signal rejects at once, without dialing.
    const done = new AbortController();
    done.abort(new Error('already'));
    expect(((await rejection(pool.get({ signal: done.signal }))) as Error).message).toBe('already');
    expect(dialer.dials).toBe(1);
  });

  it('timeoutMs while waiting rejects with TimeoutError', async () => {
    const { pool } = makePool({ maxActive: 1 });
    const held = await pool.get();
    const started = performance.now();
    const err = await rejection(pool.get({ timeoutMs: 80 }));
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(70);
    expect(elapsed).toBeLessThan(1_000);
    await held.close();
    // The timed-out waiter is gone: the next get takes the idle conn at once.
    const borrowed = await pool.get({ timeoutMs: 80 });
    expect(await borrowed.do('PING')).toBe('PONG');
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
    expect(await rejection(pool.get({ timeoutMs: -1 }))).toBeInstanceOf(RangeError);
  });

  it('a get with timeoutMs that succeeds leaves no timer armed (fake timers)', async () => {
    const { pool } = makePool({ maxActive: 1 });
    const warm = await pool.get(); // dialed on real timers
    await warm.close();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      for (let i = 0; i < 100; i++) await (await pool.get({ timeoutMs: 60_000 })).close();
      expect(vi.getTimerCount()).toBe(0);
      // The deadline still fires while waiting.
      const held = await pool.get({ timeoutMs: 60_000 });
      const waiting = settle(pool.get({ timeoutMs: 50 }));
      expect(vi.getTimerCount()).toBe(1);
      vi.advanceTimersByTime(50);
      const result = await waiting;
      expect(result.ok).toBe(false);
      expect((result as { error: unknown }).error).toBeInstanceOf(TimeoutError);
      await held.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('dial errors with waiters: each waiter gets a dial turn, every error reaches its caller, no busy loop', async () => {
    const { pool, dialer } = makePool({ maxActive: 1, wait: true });
    dialer.failing = true;
    dialer.failAfterMs = 20;
    const gets = Array.from({ length: 6 }, () => track(pool.get()));
    const results = await Promise.race([Promise.all(gets.map((g) => g.promise)), tick(3_000).then(() => null)]);
    expect(results).not.toBeNull();
    const messages = (results as Settled<Conn>[]).map((r) => (r.ok ? 'ok' : (r.error as Error).message));
    // Dialed one after another, in FIFO order, each failing with its own error.
    expect(messages).toEqual([1, 2, 3, 4, 5, 6].map((n) => `dial #${n} refused`));
    // No busy loop: a dial that does not happen sends no event, so give a
    // looping pool five failing-dial times (20 ms each) to show itself.
    await tick(100);
    expect(dialer.dials).toBe(6);
    expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0, dials: 6, dialErrors: 6, waitCount: 5 });
    dialer.failing = false;
    await borrowAndPing(pool);
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('dial errors with a conn held: the freed slot goes to the next waiter, no waiter hangs', async () => {
    const { pool, dialer } = makePool({ maxActive: 2, wait: true });
    const held = await pool.get();
    dialer.failing = true;
    dialer.failAfterMs = 10;
    const gets = Array.from({ length: 4 }, () => track(pool.get({ timeoutMs: 2_000 })));
    const results = await within(Promise.all(gets.map((g) => g.promise)), 3_000, 'gets with failing dials');
    expect(results.map((r) => (r.ok ? 'ok' : (r.error as Error).message))).toEqual([2, 3, 4, 5].map((n) => `dial #${n} refused`));
    await expectTruth(pool, { active: 1, idle: 0 });
    dialer.failing = false;
    // With the held conn returned, a waiter gets it; no new dial.
    const blocked = await pool.get();
    const waitsBefore = pool.stats().waitCount;
    const waiter = track(pool.get());
    expect(await eventually(() => pool.stats().waitCount === waitsBefore + 1)).toBe(true);
    expect(waiter.settled).toBeNull();
    await held.close();
    const got = await within(waiter.promise, 2_000, 'waiter');
    expect(got.ok).toBe(true);
    await (got as { value: Conn }).value.close();
    await blocked.close();
    expect(dialer.dials).toBe(6);
    await expectTruth(pool, { active: 2, idle: 2 });
  });

  it('a real dial error names the address and reaches every waiter', async () => {
    const port = await freePort();
    const addr = `127.0.0.1:${port}`;
    let dials = 0;
    const pool = new Pool({
      dial: () => {
        dials++;
        return dial(addr, { connectTimeoutMs: 1_000 });
      },
      maxActive: 2,
    });
    pools.push(pool);
    const started = performance.now();
    const results = await within(Promise.all(Array.from({ length: 5 }, () => settle(pool.get()))), 3_000, 'gets with refused dials');
    expect(performance.now() - started).toBeLessThan(1_500);
    for (const result of results) {
      expect(result.ok).toBe(false);
      const err = (result as { error: Error }).error;
      expect(err).toBeInstanceOf(ConnClosedError);
      expect(err.message).toContain(addr);
    }
    // No dial after the last caller is answered: nothing to wait for but a little time.
    await tick(50);
    expect(dials).toBe(5);
    expect(pool.stats()).toMatchObject({ activeCount: 0, dials: 5, dialErrors: 5 });
  });

  it('abort during a slow dial: the caller is released, the late conn goes idle', async () => {
    const { pool, dialer } = makePool();
    dialer.delayMs = 300;
    const started = performance.now();
    const err = await rejection(pool.get({ timeoutMs: 30 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeLessThan(250);
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0 });
    const controller = new AbortController();
    const aborted = track(pool.get({ signal: controller.signal }));
    expect(await eventually(() => dialer.dials === 2)).toBe(true); // its dial is under way
    controller.abort(new Error('stop'));
    expect(await within(aborted.promise, 2_000, 'aborted get')).toMatchObject({ ok: false, error: { message: 'stop' } });
    // Both dials finish later and their conns become idle, counted exactly.
    expect(await eventually(() => pool.idleCount === 2)).toBe(true);
    await expectTruth(pool, { active: 2, idle: 2 });
    dialer.delayMs = 0;
    await borrowAndPing(pool);
    expect(dialer.dials).toBe(2);
  });

  it('abort during a slow dial that then fails frees the slot', async () => {
    const { pool, dialer } = makePool({ maxActive: 1 });
    dialer.failing = true;
    dialer.failAfterMs = 80;
    const err = await rejection(pool.get({ timeoutMs: 20 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(pool.activeCount).toBe(1); // still dialing
    expect(await eventually(() => pool.activeCount === 0)).toBe(true);
    expect(pool.stats()).toMatchObject({ dials: 1, dialErrors: 1 });
    dialer.failing = false;
    const borrowed = await pool.get({ timeoutMs: 1_000 });
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });
});

// ---------------------------------------------------------------------------
// reset on return, seen from the server

describe('reset of a returned conn (seen by MONITOR)', () => {
  /**
   * Borrows the pool's only conn, notes its address with CLIENT INFO, runs
   * `scenario`, returns the conn and answers the commands the server saw
   * from it after CLIENT INFO.
   */
  async function commandsAfter(pool: Pool, scenario: (conn: Conn) => Promise<void>): Promise<{ addr: string; commands: string[] }> {
    const borrowed = await pool.get();
    const { addr } = await clientInfo(borrowed);
    await scenario(borrowed);
    await borrowed.close();
    await monitor.sync();
    return { addr: addr as string, commands: monitor.commandsAfterInfo(addr as string) };
  }

  /** The next borrower gets the same, clean conn. */
  async function expectCleanReuse(pool: Pool, addr: string): Promise<Conn> {
    const borrowed = await pool.get();
    const info = await clientInfo(borrowed);
    expect(info.addr).toBe(addr);
    expect(info).toMatchObject({ flags: 'N', sub: '0', psub: '0', multi: '-1', db: '0' });
    expect(info.ssub ?? '0').toBe('0');
    expect(await borrowed.do('PING')).toBe('PONG');
    expect(text(await borrowed.do('ECHO', 'fresh'))).toBe('fresh');
    return borrowed;
  }

  it('SUBSCRIBE → UNSUBSCRIBE, PUNSUBSCRIBE, ECHO marker; the conn is reused clean', async () => {
    const { pool } = makePool();
    const channel = key('chan');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      const reply = (await conn.do('SUBSCRIBE', channel)) as Reply[];
      expect(text(reply[0])).toBe('subscribe');
      // Messages in flight when the conn is returned are drained too.
      for (let i = 0; i < 20; i++) await admin.do('PUBLISH', channel, `m${i}`);
    });
    expect(commands).toEqual([`SUBSCRIBE ${channel}`, 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'ECHO <marker>']);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('RESP3 with decodeStrings: SUBSCRIBE + PSUBSCRIBE with messages in flight → the same reset, clean reuse', async () => {
    const { pool } = makePool({}, { protocol: 3, decodeStrings: true });
    const channel = key('chan3');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      expect(conn.protocol).toBe(3);
      await conn.do('SUBSCRIBE', channel);
      await conn.do('PSUBSCRIBE', `${channel}*`);
      for (let i = 0; i < 20; i++) await admin.do('PUBLISH', channel, `m${i}`);
    });
    expect(commands).toEqual([`SUBSCRIBE ${channel}`, `PSUBSCRIBE ${channel}*`, 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'ECHO <marker>']);
    const borrowed = await pool.get();
    const info = await clientInfo(borrowed);
    expect(info).toMatchObject({ addr, sub: '0', psub: '0', resp: '3' });
    await admin.do('PUBLISH', channel, 'late');
    expect(await borrowed.do('ECHO', 'fresh')).toBe('fresh');
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('PSUBSCRIBE to several patterns, pipelined with send → the same reset', async () => {
    const { pool } = makePool();
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      conn.send('psubscribe', 'a.*');
      conn.send('PSUBSCRIBE', 'b.*', 'c.*');
      await conn.flush();
      expect(text(((await conn.receive()) as Reply[])[0])).toBe('psubscribe');
    });
    expect(commands).toEqual(['psubscribe a.*', 'PSUBSCRIBE b.* c.*', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'ECHO <marker>']);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
  });

  it('SSUBSCRIBE → UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE, ECHO marker', async () => {
    const { pool } = makePool();
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('SSUBSCRIBE', 'shard-chan');
    });
    expect(commands).toEqual(['SSUBSCRIBE shard-chan', 'UNSUBSCRIBE', 'PUNSUBSCRIBE', 'SUNSUBSCRIBE', 'ECHO <marker>']);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
  });

  it('WATCH → UNWATCH (and the next borrower is not watching)', async () => {
    const { pool } = makePool();
    const k = key('watched');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      expect(await conn.do('WATCH', k)).toBe('OK');
    });
    expect(commands).toEqual([`WATCH ${k}`, 'UNWATCH']);
    await admin.do('SET', k, 'changed');
    const borrowed = await expectCleanReuse(pool, addr);
    // Still watching would make this EXEC abort (null).
    await borrowed.do('MULTI');
    await borrowed.do('SET', k, 'mine');
    expect(await borrowed.do('EXEC')).toEqual(['OK']);
    await borrowed.close();
  });

  it('lowercase watch is tracked too', async () => {
    const { pool } = makePool();
    const k = key('watched-lc');
    const { commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('watch', k);
    });
    expect(commands).toEqual([`watch ${k}`, 'UNWATCH']);
  });

  it('WATCH + MULTI → DISCARD only', async () => {
    const { pool } = makePool();
    const k = key('multi');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('WATCH', k);
      await conn.do('MULTI');
      expect(await conn.do('SET', k, 'v')).toBe('QUEUED');
    });
    expect(commands).toEqual([`WATCH ${k}`, 'MULTI', 'DISCARD']);
    const borrowed = await expectCleanReuse(pool, addr);
    expect(await borrowed.do('GET', k)).toBeNull();
    await borrowed.close();
  });

  it('WATCH + MULTI + EXEC → nothing extra', async () => {
    const { pool } = makePool();
    const k = key('exec');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('WATCH', k);
      await conn.do('MULTI');
      await conn.do('SET', k, 'v');
      expect(await conn.do('EXEC')).toEqual(['OK']);
    });
    expect(commands.filter((c) => c !== `SET ${k} v`)).toEqual([`WATCH ${k}`, 'MULTI', 'EXEC']);
    expect(commands).toHaveLength(4);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
  });

  it('MULTI + DISCARD → nothing extra', async () => {
    const { pool } = makePool();
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('MULTI');
      await conn.do('PING');
      await conn.do('DISCARD');
    });
    expect(commands).toEqual(['MULTI', 'DISCARD']);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
  });

  it('MULTI/EXEC pipelined with send and never read: replies drained, the next borrower reads only its own', async () => {
    const { pool } = makePool();
    const k = key('pipelined');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      conn.send('MULTI');
      conn.send('INCR', k);
      conn.send('EXEC');
      conn.send('ECHO', 'stale');
      await conn.flush();
    });
    expect(commands.filter((c) => c !== `INCR ${k}`)).toEqual(['MULTI', 'EXEC', 'ECHO stale']);
    const next = await pool.get();
    // receive() claims the next reply on the wire: it must be ours, not 'OK' of the MULTI above.
    next.send('ECHO', 'mine');
    await next.flush();
    expect(text(await next.receive())).toBe('mine');
    await next.close();
    const borrowed = await expectCleanReuse(pool, addr);
    expect(text(await borrowed.do('GET', k))).toBe('1');
    await borrowed.close();
  });

  it('MONITOR → the conn is closed, not reused', async () => {
    const { pool, dialer } = makePool();
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      expect(await conn.do('MONITOR')).toBe('OK');
    });
    expect(commands).toEqual([]); // MONITOR itself is not shown to monitors
    await expectTruth(pool, { active: 0, idle: 0 });
    expect((await serverClients()).map((c) => c.addr)).not.toContain(addr);
    const borrowed = await pool.get();
    expect((await clientInfo(borrowed)).addr).not.toBe(addr);
    expect(dialer.dials).toBe(2);
    await borrowed.close();
  });

  it('SELECT → the conn is closed, not reused', async () => {
    const { pool, dialer } = makePool();
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      expect(await conn.do('SELECT', 2)).toBe('OK');
    });
    expect(commands).toEqual(['SELECT 2']);
    await expectTruth(pool, { active: 0, idle: 0 });
    expect((await serverClients()).map((c) => c.addr)).not.toContain(addr);
    const borrowed = await pool.get();
    expect((await clientInfo(borrowed)).db).toBe('0');
    expect(dialer.dials).toBe(2);
    await borrowed.close();
  });

  it('plain commands → nothing extra, same conn reused', async () => {
    const { pool } = makePool();
    const k = key('plain');
    const { addr, commands } = await commandsAfter(pool, async (conn) => {
      await conn.do('SET', k, '1');
      await conn.do('GET', k);
    });
    expect(commands).toEqual([`SET ${k} 1`, `GET ${k}`]);
    const borrowed = await expectCleanReuse(pool, addr);
    await borrowed.close();
  });
});

// ---------------------------------------------------------------------------
// newPool: LUCI's defaults

describe("newPool: LUCI's defaults", () => {
  function luciPool(overrides: Parameters<typeof newPool>[2] = {}, db = 0): Pool {
    const pool = newPool(server.addr, db, { clientName: key('luci'), ...overrides });
    pools.push(pool);
    return pool;
  }

  it('an option given as undefined keeps its default (db, timeouts, pool sizes)', async () => {
    const pool = luciPool({ db: undefined, readTimeoutMs: undefined, maxIdle: undefined, maxActive: undefined }, 3);
    const conn = await pool.get();
    try {
      expect((await clientInfo(conn)).db).toBe('3');
    } finally {
      await conn.close();
    }
    expect(pool.readTimeoutSeen).toBe(5_000);
  });

  it('keeps 64 idle conns (maxIdle 64)', async () => {
    const pool = luciPool();
    const borrowedConns = await Promise.all(Array.from({ length: 70 }, () => pool.get()));
    await expectTruth(pool, { active: 70, idle: 0 });
    await Promise.all(borrowedConns.map((borrowed) => borrowed.close()));
    await expectTruth(pool, { active: 64, idle: 64 });
    expect(pool.stats().dials).toBe(70);
  });

  it('lends 512 conns at once, the 513th waits (maxActive 512, wait true)', async () => {
    const pool = luciPool();
    const borrowedConns = await Promise.all(Array.from({ length: 512 }, () => pool.get()));
    await expectTruth(pool, { active: 512, idle: 0 });
    const err = await rejection(pool.get({ timeoutMs: 50 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(pool.stats()).toMatchObject({ waitCount: 1, dials: 512 });
    const waiting = track(pool.get());
    expect(await eventually(() => pool.stats().waitCount === 2)).toBe(true);
    expect(waiting.settled).toBeNull();
    await (borrowedConns[0] as Conn).close();
    const got = await within(waiting.promise, 2_000, 'waiter 513');
    expect(got.ok).toBe(true);
    borrowedConns[0] = (got as { value: Conn }).value;
    await Promise.all(borrowedConns.map((borrowed) => borrowed.close()));
    await expectTruth(pool, { active: 64, idle: 64 });
  });

  it('closes conns idle for 3 minutes; PINGs on borrow only after more than 1 minute idle', async () => {
    const clock = new Clock();
    const pool = luciPool({ now: clock.now });
    const first = await pool.get();
    const id = await idOf(first);
    await first.close();
    const pingsBefore = await commandCalls('ping');

    clock.advance(60_000); // exactly 1 min: no PING
    let borrowed = await pool.get();
    expect(await idOf(borrowed)).toBe(id);
    await borrowed.close();
    expect(await commandCalls('ping')).toBe(pingsBefore);

    clock.advance(60_001); // over 1 min: one PING, same conn
    borrowed = await pool.get();
    expect(await idOf(borrowed)).toBe(id);
    await borrowed.close();
    expect(await commandCalls('ping')).toBe(pingsBefore + 1);

    clock.advance(179_999); // just under 3 min: PING, reused
    borrowed = await pool.get();
    expect(await idOf(borrowed)).toBe(id);
    await borrowed.close();
    expect(await commandCalls('ping')).toBe(pingsBefore + 2);
    expect(pool.stats().dials).toBe(1);

    clock.advance(180_000); // 3 min: closed without a PING, a new conn dialed
    borrowed = await pool.get();
    expect(await idOf(borrowed)).not.toBe(id);
    expect(await commandCalls('ping')).toBe(pingsBefore + 2);
    expect(pool.stats().dials).toBe(2);
    await expectTruth(pool, { active: 1, idle: 0 });
    await borrowed.close();
  });

  it('a failing borrow PING closes the conn and dials a new one', async () => {
    const clock = new Clock();
    const pool = luciPool({ now: clock.now });
    const first = await pool.get();
    const id = await idOf(first);
    await first.close();
    await admin.do('CLIENT', 'KILL', 'ID', id);
    expect(await eventually(async () => !(await clientList(admin)).some((client) => client.id === String(id)))).toBe(true);
    clock.advance(61_000);
    const borrowed = await pool.get();
    expect(await idOf(borrowed)).not.toBe(id);
    expect(pool.stats().dials).toBe(2);
    await borrowed.close();
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('selects the db and passes dial options through', async () => {
    const pool = luciPool({ decodeStrings: true }, 3);
    const borrowed = await pool.get();
    const info = await clientInfo(borrowed);
    expect(info.db).toBe('3');
    await borrowed.do('SET', 'luci-db-key', 'é');
    expect(await borrowed.do('GET', 'luci-db-key')).toBe('é');
    await borrowed.close();
    expect(await admin.do('EXISTS', 'luci-db-key')).toBe(0); // admin is on db 0
    await expectTruth(pool, { active: 1, idle: 1 });
  });

  it('has 5 s read and connect timeouts (measured side by side)', async () => {
    const pool = luciPool();
    const borrowed = await pool.get();
    // A hung server: TCP connects (the kernel accepts), the handshake never
    // answers. readTimeoutMs 0 leaves the dial bounded by the connect timeout alone.
    const hung = await startRedisServer();
    const hungPool = newPool(hung.addr, 0, { clientName: 'luci-hung', readTimeoutMs: 0 });
    hung.pause();
    try {
      const started = performance.now();
      const timed = async (work: Promise<unknown>): Promise<{ err: unknown; ms: number }> => {
        const err = await rejection(work);
        return { err, ms: performance.now() - started };
      };
      const [read, connect] = await Promise.all([timed(borrowed.do('BLPOP', key('luci-never'), 0)), timed(hungPool.get())]);
      expect(read.err).toBeInstanceOf(TimeoutError);
      expect(read.ms).toBeGreaterThanOrEqual(4_900);
      expect(read.ms).toBeLessThan(5_600);
      expect(connect.err).toBeInstanceOf(TimeoutError);
      expect((connect.err as Error).message).toContain(hung.addr);
      expect(connect.ms).toBeGreaterThanOrEqual(4_900);
      expect(connect.ms).toBeLessThan(5_600);
      expect(hungPool.stats()).toMatchObject({ activeCount: 0, dials: 1, dialErrors: 1 });
    } finally {
      hung.resume();
      await hungPool.close();
      await hung.stop();
    }
    await borrowed.close();
    await expectTruth(pool, { active: 0, idle: 0 });
  }, 15_000);
});

/**
 * The Conn contract, run against every way this package hands out a Conn:
 * a plain `dial()`, `pool.get()` (PooledConn), `pool.lease()` (Lease), and a
 * request connection of the Fastify plugin, in its default (lease) mode and
 * with `exclusiveConnections: true`. Seen through the Conn interface, each of
 * them must behave like one exclusive connection: the same replies, the same
 * order, the same errors. Where a factory legitimately differs (what happens
 * to connection state after close), the test says so per factory.
 *
 * Every fixture is fresh per test (its own pool / app), against one real
 * redis-server started with DEBUG enabled.
 */
import Fastify from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import redisconn, { getPool } from '../plugin/index.js';
import type { Conn } from '../src/conn.js';
import { dial } from '../src/dial.js';
import { ConnClosedError, RedisError, TimeoutError } from '../src/errors.js';
import { newPool, type Pool } from '../src/pool.js';
import { PubSubConn } from '../src/pubsub.js';
import type { Reply } from '../src/resp/decode.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { clientInfo, clientList, eventually, guardProcessErrors, rejection, settle, someoneBlocked, text, thrownBy, uniqueKeys, useServerWithConn, within } from './helpers.js';

guardProcessErrors();

/** The read timeout every factory is configured with (distinct from every default). */
const READ_TIMEOUT_MS = 4321;
/** The pools' reset deadline: above the 1 s BLPOP of the close test, short enough that a stuck reset ends fast. */
const RESET_TIMEOUT_MS = 2_000;

let server: TestRedisServer;
/** "Another connection": a plain conn in db 0 the tests use to observe and interfere. */
let admin: Conn;

useServerWithConn((started) => ({ server, conn: admin } = started), { args: ['--enable-debug-command', 'yes'] });

/** Cleanups registered by the running test's fixture, run last-in first-out after it. */
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await within(cleanup(), 5_000, 'fixture cleanup');
    } catch (err) {
      failures.push(err);
    }
  }
  expect(failures).toEqual([]);
});

/** What a factory hands a test. */
interface Fixture {
  conn: Conn;
  /** The pool behind the conn; null for a plain dial. */
  pool: Pool | null;
  /** Another borrower from the same source (same pool / app); null for a plain dial. */
  nextBorrower: (() => Promise<Conn>) | null;
}

interface Factory {
  name: string;
  /** Backed by a pool: state is reset (or the conn closed) on close, other borrowers exist. */
  pooled: boolean;
  open(): Promise<Fixture>;
}

function poolFor(): Pool {
  const pool = newPool(server.addr, 0, { readTimeoutMs: READ_TIMEOUT_MS, resetTimeoutMs: RESET_TIMEOUT_MS });
  cleanups.push(() => pool.close());
  return pool;
}

/** Registers closing `conn` after the test (harmless when the test closed it already). */
function closeLater(conn: Conn): Conn {
  cleanups.push(() => conn.close());
  return conn;
}

/** A route handler waiting to hand its request connection to the test. */
interface Borrow {
  hand(conn: Conn): void;
  fail(err: unknown): void;
  /** Resolved by the test's cleanup: the handler then returns and the response ends. */
  done: Promise<void>;
}

/**
 * The plugin on a fresh app; the Conn is `request.redis.get()` taken inside a
 * route handler that stays in its handler until the test is over.
 */
async function pluginFixture(options: { exclusiveConnections?: boolean }): Promise<Fixture> {
  const app = Fastify({ logger: false });
  cleanups.push(() => app.close());
  await app.register(redisconn, {
    argv: [],
    env: {},
    metrics: false,
    addr: server.addr,
    readTimeoutMs: READ_TIMEOUT_MS,
    resetTimeoutMs: RESET_TIMEOUT_MS,
    ...options,
  });
  const borrows: Borrow[] = [];
  app.get('/borrow', async (request) => {
    const borrow = borrows.shift() as Borrow;
    try {
      borrow.hand(await request.redis.get());
    } catch (err) {
      borrow.fail(err);
      throw err;
    }
    await borrow.done;
    return { ok: true };
  });
  await app.ready();
  const requestConn = async (): Promise<Conn> => {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const conn = new Promise<Conn>((hand, fail) => borrows.push({ hand, fail, done }));
    const response = app.inject('/borrow');
    cleanups.push(async () => {
      finish();
      expect((await response).statusCode).toBe(200);
    });
    return conn;
  };
  return { conn: await requestConn(), pool: getPool(app) as Pool | null, nextBorrower: requestConn };
}

const FACTORIES: Factory[] = [
  {
    name: 'dial (NetConn)',
    pooled: false,
    open: async () => ({ conn: closeLater(await dial(server.addr, { readTimeoutMs: READ_TIMEOUT_MS })), pool: null, nextBorrower: null }),
  },
  {
    name: 'pool.get (PooledConn)',
    pooled: true,
    open: async () => {
      const pool = poolFor();
      return { conn: closeLater(await pool.get()), pool, nextBorrower: async () => closeLater(await pool.get()) };
    },
  },
  {
    name: 'pool.lease (Lease)',
    pooled: true,
    open: async () => {
      const pool = poolFor();
      return { conn: closeLater(pool.lease()), pool, nextBorrower: async () => closeLater(pool.lease()) };
    },
  },
  { name: 'plugin request conn (lease mode)', pooled: true, open: () => pluginFixture({}) },
  { name: 'plugin request conn (exclusiveConnections)', pooled: true, open: () => pluginFixture({ exclusiveConnections: true }) },
];

/** A key no other test uses. */
const key = uniqueKeys('contract');

/** The code of a RedisError (fails the test for anything else). */
function codeOf(err: unknown): string {
  expect(err).toBeInstanceOf(RedisError);
  return (err as RedisError).code;
}

/** Whether the server shows a client blocked in BLPOP. */
/** Whether a client of the server is blocked in BLPOP. */
const blocked = (): Promise<boolean> => someoneBlocked(admin);

/** Calls `call`, failing when it throws synchronously; returns its promise. */
function noSyncThrow(call: () => Promise<unknown>): Promise<unknown> {
  let promise: Promise<unknown> = Promise.resolve();
  const thrown = thrownBy(() => {
    promise = call();
  });
  expect(thrown, `threw synchronously: ${String(thrown)}`).toBeUndefined();
  return promise;
}

describe.each(FACTORIES)('Conn contract: $name', (factory) => {
  let fixture: Fixture;
  let conn: Conn;

  beforeEach(async () => {
    fixture = await factory.open();
    conn = fixture.conn;
  });

  describe('replies and errors', () => {
    it('PING, SET, GET and a nil GET', async () => {
      expect(await conn.do('PING')).toBe('PONG');
      const k = key('setget');
      expect(await conn.do('SET', k, 'héllo')).toBe('OK');
      const value = await conn.do('GET', k);
      expect(Buffer.isBuffer(value)).toBe(true);
      expect(text(value)).toBe('héllo');
      expect(await conn.do('GET', key('missing'))).toBeNull();
    });

    it('an error reply rejects with RedisError (WRONGTYPE); the conn stays usable', async () => {
      const k = key('str');
      await conn.do('SET', k, 'x');
      expect(codeOf(await rejection(conn.do('LPUSH', k, 'y')))).toBe('WRONGTYPE');
      expect(conn.err()).toBeNull();
      expect(await conn.do('PING')).toBe('PONG');
      expect(text(await conn.do('GET', k))).toBe('x');
    });

    it('do resolves the last reply and rejects with the first error among the owed replies', async () => {
      const n = key('n');
      const s = key('s');
      await conn.do('SET', s, 'text');
      conn.send('INCR', n);
      conn.send('INCR', n);
      expect(await conn.do('INCR', n)).toBe(3);

      conn.send('INCR', n); // 4
      conn.send('LPUSH', s, 'x'); // WRONGTYPE (the first error)
      conn.send('INCR', s); // ERR not an integer
      expect(codeOf(await rejection(conn.do('INCR', n)))).toBe('WRONGTYPE'); // its own reply, 5, is read too
      expect(await conn.do('')).toEqual([]); // the failed do claimed every owed reply
      expect(text(await conn.do('GET', n))).toBe('5');

      conn.send('INCR', n); // 6
      expect(codeOf(await rejection(conn.do('INCR', s)))).toBe('ERR'); // its own reply is the error
      expect(text(await conn.do('GET', n))).toBe('6');
      expect(conn.err()).toBeNull();
    });

    it('do("") flushes and resolves every owed reply as an array, error replies as RedisError values', async () => {
      const s = key('s');
      const n = key('n');
      expect(await conn.do('')).toEqual([]);
      conn.send('SET', s, 'v');
      conn.send('LPUSH', s, 'x');
      conn.send('INCR', n);
      const all = (await conn.do('')) as Reply[];
      expect(all).toHaveLength(3);
      expect(all[0]).toBe('OK');
      expect(codeOf(all[1])).toBe('WRONGTYPE');
      expect(all[2]).toBe(1);
      expect(await conn.do('')).toEqual([]);

      conn.send('PING');
      conn.send('ECHO', 'e');
      await conn.flush();
      expect(await conn.receive()).toBe('PONG');
      expect(((await conn.do('')) as Reply[]).map(text)).toEqual(['e']);
      expect(conn.err()).toBeNull();
    });
  });

  describe('pipelining', () => {
    it('send / flush / receive answer in order, also mixed with do', async () => {
      const a = key('a');
      const s = key('s');
      await conn.do('SET', s, 'text');
      conn.send('SET', a, '1');
      conn.send('INCR', a);
      conn.send('GET', a);
      await conn.flush();
      expect(await conn.receive()).toBe('OK');
      expect(await conn.receive()).toBe(2);
      expect(text(await conn.receive())).toBe('2');

      // An error reply through receive rejects; the next reply still comes.
      conn.send('LPUSH', s, 'x');
      conn.send('INCR', a); // 3
      await conn.flush();
      expect(codeOf(await rejection(conn.receive()))).toBe('WRONGTYPE');
      expect(await conn.receive()).toBe(3);

      // do after an unflushed send writes both and resolves its own reply.
      conn.send('INCR', a); // 4
      expect(await conn.do('INCR', a)).toBe(5);

      // A receive claimed before a do gets the reply owed before the do's.
      conn.send('INCR', a); // 6
      await conn.flush();
      const received = settle(conn.receive());
      const done = settle(conn.do('INCR', a)); // 7
      expect(await received).toEqual({ ok: true, value: 6 });
      expect(await done).toEqual({ ok: true, value: 7 });

      // A do after a flushed send claims that reply too.
      conn.send('INCR', a); // 8
      await conn.flush();
      expect(await conn.do('INCR', a)).toBe(9);
      expect(await conn.do('')).toEqual([]);
    });

    it('calls settle in the order they were made: receive, do, do, do("")', async () => {
      const a = key('a');
      conn.send('INCR', a);
      await conn.flush();
      const order: string[] = [];
      await Promise.all([
        conn.receive().then(() => order.push('receive')),
        conn.do('INCR', a).then(() => order.push('do INCR')),
        conn.do('GET', a).then(() => order.push('do GET')),
        conn.do('').then(() => order.push('do("")')),
      ]);
      expect(order).toEqual(['receive', 'do INCR', 'do GET', 'do("")']);
    });

    it('a later call sees the effect of an earlier do still unanswered (also when the later one needs its own connection)', async () => {
      const k = key('big');
      const big = Buffer.alloc(8 << 20, 0x78); // takes a while on the wire: a reordering would overtake it
      const set = settle(conn.do('SET', k, big));
      const length = settle(conn.doWithTimeout(2_000, 'STRLEN', k));
      expect(await set).toEqual({ ok: true, value: 'OK' });
      expect(await length).toEqual({ ok: true, value: big.length });
      const appended = settle(conn.do('APPEND', k, big));
      const blpop = settle(conn.do('BLPOP', key('q'), '0.01')); // blocking: exclusive in every factory
      const after = settle(conn.do('STRLEN', k));
      expect(await appended).toEqual({ ok: true, value: 2 * big.length });
      expect(await blpop).toEqual({ ok: true, value: null });
      expect(await after).toEqual({ ok: true, value: 2 * big.length });
    });

    it('200 pipelined INCRs answer in order (send + receive, and concurrent do)', async () => {
      const k = key('incr');
      for (let i = 0; i < 200; i++) conn.send('INCR', k);
      await conn.flush();
      const received = await Promise.all(Array.from({ length: 200 }, () => conn.receive()));
      expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const done = await Promise.all(Array.from({ length: 200 }, () => conn.do('INCR', k)));
      expect(done).toEqual(Array.from({ length: 200 }, (_, i) => i + 201));
      expect(conn.inFlight()).toBe(0);
    });
  });

  describe('transactions', () => {
    it('MULTI / EXEC: queued replies are QUEUED, EXEC the array of results (an error inside as a value)', async () => {
      const n = key('n');
      const s = key('s');
      expect(await conn.do('MULTI')).toBe('OK');
      expect(await conn.do('INCR', n)).toBe('QUEUED');
      expect(await conn.do('SET', s, 'v')).toBe('QUEUED');
      expect(await conn.do('EXEC')).toEqual([1, 'OK']);

      conn.send('MULTI');
      conn.send('INCR', n);
      conn.send('EXEC');
      expect(await conn.do('')).toEqual(['OK', 'QUEUED', [2]]);

      await conn.do('MULTI');
      await conn.do('LPUSH', s, 'x');
      await conn.do('INCR', n);
      const results = (await conn.do('EXEC')) as Reply[];
      expect(codeOf(results[0])).toBe('WRONGTYPE');
      expect(results[1]).toBe(3);
    });

    it('DISCARD drops the queued commands and leaves the transaction', async () => {
      const k = key('k');
      const n = key('n');
      expect(await conn.do('MULTI')).toBe('OK');
      expect(await conn.do('SET', k, 'v')).toBe('QUEUED');
      expect(await conn.do('DISCARD')).toBe('OK');
      expect(await conn.do('GET', k)).toBeNull();
      expect(await conn.do('INCR', n)).toBe(1); // not QUEUED: out of the transaction
    });

    it('WATCH + a change from another connection → EXEC answers null', async () => {
      const w = key('w');
      await conn.do('SET', w, '1');
      expect(await conn.do('WATCH', w)).toBe('OK');
      await admin.do('SET', w, '2');
      expect(await conn.do('MULTI')).toBe('OK');
      expect(await conn.do('SET', w, '3')).toBe('QUEUED');
      expect(await conn.do('EXEC')).toBeNull();
      expect(text(await admin.do('GET', w))).toBe('2');

      // Without interference the same transaction commits.
      expect(await conn.do('WATCH', w)).toBe('OK');
      await conn.do('MULTI');
      await conn.do('SET', w, '4');
      expect(await conn.do('EXEC')).toEqual(['OK']);
      expect(text(await admin.do('GET', w))).toBe('4');
    });
  });

  describe('blocking commands', () => {
    it('BLPOP with a timeout answers null after about that time', async () => {
      const started = performance.now();
      expect(await conn.do('BLPOP', key('empty'), '0.3')).toBeNull();
      const ms = performance.now() - started;
      expect(ms).toBeGreaterThanOrEqual(250);
      expect(ms).toBeLessThan(2_000);
      expect(await conn.do('PING')).toBe('PONG');
    });

    it('BLPOP is served by an LPUSH from another connection', async () => {
      const q = key('q');
      const popped = settle(conn.do('BLPOP', q, 5));
      expect(await eventually(blocked)).toBe(true);
      expect(await admin.do('LPUSH', q, 'job')).toBe(1);
      const result = await within(popped, 3_000, 'BLPOP');
      expect(result.ok).toBe(true);
      expect(((result as { value: Reply[] }).value).map(text)).toEqual([q, 'job']);
      expect(await conn.do('PING')).toBe('PONG');
    });
  });

  describe('connection state', () => {
    it('SELECT 1: SET/GET land in db 1; afterwards the state stays (plain conn) or never reaches the next borrower (pooled)', async () => {
      const k = key('db');
      expect(await conn.do('SELECT', 1)).toBe('OK');
      expect(await conn.do('SET', k, 'in-db1')).toBe('OK');
      expect(text(await conn.do('GET', k))).toBe('in-db1');
      expect((await clientInfo(conn)).db).toBe('1');
      // Seen from another connection: in db 1, not in db 0.
      expect(await admin.do('GET', k)).toBeNull();
      await admin.do('SELECT', 1);
      try {
        expect(text(await admin.do('GET', k))).toBe('in-db1');
      } finally {
        await admin.do('SELECT', 0);
      }

      if (!factory.pooled) {
        // A plain connection is the caller's: it stays in db 1.
        expect(text(await conn.do('GET', k))).toBe('in-db1');
        expect((await clientInfo(conn)).db).toBe('1');
        return;
      }
      await conn.close();
      // The tainted connection is closed, not reused: no client is left in db 1.
      expect(await eventually(async () => !(await clientList(admin)).some((client) => client.db === '1'))).toBe(true);
      const next = await (fixture.nextBorrower as () => Promise<Conn>)();
      expect(await next.do('GET', k)).toBeNull();
      expect((await clientInfo(next)).db).toBe('0'); // on an exclusive connection for every pooled factory
      expect(await next.do('MULTI')).toBe('OK');
      expect(await next.do('GET', k)).toBe('QUEUED');
      expect(await next.do('EXEC')).toEqual([null]);
    });

    it('CLIENT SETNAME then CLIENT GETNAME', async () => {
      const name = key('client-name');
      expect(await conn.do('CLIENT', 'SETNAME', name)).toBe('OK');
      expect(text(await conn.do('CLIENT', 'GETNAME'))).toBe(name);
      expect((await clientList(admin)).filter((client) => client.name === name)).toHaveLength(1);
    });
  });

  describe('deadlines and cancellation', () => {
    it('doWithTimeout: answers within the deadline; past it rejects TimeoutError and breaks the conn', async () => {
      expect(await conn.doWithTimeout(2_000, 'PING')).toBe('PONG');
      expect(await conn.doWithTimeout(2_000, 'DEBUG', 'SLEEP', '0')).toBe('OK');
      expect(conn.err()).toBeNull();

      const started = performance.now();
      const err = await rejection(conn.doWithTimeout(100, 'DEBUG', 'SLEEP', '0.4'));
      const ms = performance.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
      expect(ms).toBeLessThan(350);
      const fatal = conn.err();
      expect(fatal).not.toBeNull();
      expect(await rejection(conn.do('PING'))).toBe(fatal); // every later call fails with it, at once
      await admin.do('PING'); // waits out the server's sleep
    });

    it('doWithSignal: answers when not aborted; an abort (before or in flight) rejects with its reason', async () => {
      expect(await conn.doWithSignal(new AbortController().signal, 'PING')).toBe('PONG');

      const early = new Error('aborted before the call');
      expect(await rejection(conn.doWithSignal(AbortSignal.abort(early), 'PING'))).toBe(early);
      expect(conn.err()).toBeNull(); // nothing was sent: still usable
      expect(await conn.do('PING')).toBe('PONG');

      const controller = new AbortController();
      const reason = new Error('aborted in flight');
      const pending = settle(conn.doWithSignal(controller.signal, 'BLPOP', key('q'), 2));
      expect(await eventually(blocked)).toBe(true);
      controller.abort(reason);
      const result = await within(pending, 500, 'aborted BLPOP');
      expect(result).toEqual({ ok: false, error: reason });
      expect(conn.err()).not.toBeNull(); // its reply would be lost: the conn is broken
    });
  });

  describe('pub/sub', () => {
    it('a PubSubConn on it: subscribe, a message published by another conn, unsubscribe', async () => {
      const ch = key('ch');
      const pubsub = new PubSubConn(conn, { healthCheckMs: 0 });
      try {
        await pubsub.subscribe(ch);
        expect(await within(pubsub.receive(), 2_000, 'subscribe confirmation')).toEqual({ kind: 'subscribe', channel: ch, count: 1 });
        expect(await admin.do('PUBLISH', ch, 'hi')).toBe(1);
        const message = await within(pubsub.receive(), 2_000, 'message');
        expect(message).toMatchObject({ kind: 'message', channel: ch });
        expect(text((message as { data: Buffer }).data)).toBe('hi');
        await pubsub.unsubscribe(ch);
        expect(await within(pubsub.receive(), 2_000, 'unsubscribe confirmation')).toEqual({ kind: 'unsubscribe', channel: ch, count: 0 });
      } finally {
        await pubsub.close();
      }
      expect(await eventually(async () => !(await clientList(admin)).some((client) => client.sub !== '0'))).toBe(true);
    });
  });

  describe('lifecycle', () => {
    it('err() is null while the conn is usable (also after error replies and pipelines)', async () => {
      expect(conn.err()).toBeNull();
      await conn.do('PING');
      expect(conn.err()).toBeNull();
      const s = key('s');
      await conn.do('SET', s, 'x');
      await rejection(conn.do('LPUSH', s, 'y'));
      expect(conn.err()).toBeNull();
      conn.send('PING');
      expect(conn.err()).toBeNull();
      await conn.do('');
      expect(conn.err()).toBeNull();
    });

    it('after close(): every call rejects ConnClosedError (REDIS_CONN_CLOSED), send throws it; closing again is harmless', async () => {
      expect(await conn.do('PING')).toBe('PONG');
      await conn.close();
      await Promise.all([conn.close(), conn.close()]);
      const err = conn.err();
      expect(err).toBeInstanceOf(ConnClosedError);
      expect((err as ConnClosedError).code).toBe('REDIS_CONN_CLOSED');
      const calls: [string, () => Promise<unknown>][] = [
        ['do', () => conn.do('PING')],
        ['do("")', () => conn.do('')],
        ['doWithTimeout', () => conn.doWithTimeout(100, 'PING')],
        ['doWithSignal', () => conn.doWithSignal(new AbortController().signal, 'PING')],
        ['flush', () => conn.flush()],
        ['receive', () => conn.receive()],
        ['receiveWithTimeout', () => conn.receiveWithTimeout(100)],
        ['receiveWithSignal', () => conn.receiveWithSignal(new AbortController().signal)],
      ];
      for (const [name, call] of calls) {
        const reason = await within(rejection(noSyncThrow(call)), 1_000, name);
        expect(reason, name).toBeInstanceOf(ConnClosedError);
        expect((reason as ConnClosedError).code, name).toBe('REDIS_CONN_CLOSED');
      }
      expect(thrownBy(() => conn.send('PING'))).toBeInstanceOf(ConnClosedError);
      await conn.close();
    });

    it('inFlight() is 0 when idle and > 0 while a call or a sent command is outstanding', async () => {
      // Whether inFlight() > 0 at each point, compared at the end so a failure shows them all.
      const busy: Record<string, boolean> = {};
      const look = (when: string): void => void (busy[when] = conn.inFlight() > 0);
      look('fresh');
      const ping = settle(conn.do('PING'));
      look('stateless do in flight');
      expect(await ping).toEqual({ ok: true, value: 'PONG' });
      look('after it');

      conn.send('PING');
      look('after send');
      await conn.do('');
      look('after do("")');

      const popped = settle(conn.do('BLPOP', key('q'), '30'));
      look('BLPOP just called');
      expect(await eventually(blocked)).toBe(true);
      look('BLPOP blocked');
      // Ended as its timeout would end it: a null reply.
      for (const client of await clientList(admin)) {
        if (client.cmd === 'blpop') await admin.do('CLIENT', 'UNBLOCK', client.id as string, 'TIMEOUT');
      }
      expect(await popped).toEqual({ ok: true, value: null });
      look('after BLPOP');

      const again = settle(conn.do('PING'));
      look('do in flight (again)');
      expect(await again).toEqual({ ok: true, value: 'PONG' });
      look('idle again');
      expect(busy).toEqual({
        fresh: false,
        'stateless do in flight': true,
        'after it': false,
        'after send': true,
        'after do("")': false,
        'BLPOP just called': true,
        'BLPOP blocked': true,
        'after BLPOP': false,
        'do in flight (again)': true,
        'idle again': false,
      });
    });

    it('close() while a BLPOP (1 s) is in flight: pooled, the BLPOP still answers null and a next borrower is served at once; dialed, it is aborted', async () => {
      const popped = settle(conn.do('BLPOP', key('q'), 1));
      expect(await eventually(blocked)).toBe(true);
      const closing = settle(conn.close());
      if (!factory.pooled) {
        // A connection from dial() closes at once: the call in flight is aborted (documented on Conn.close).
        const aborted = await within(popped, 1_000, 'BLPOP');
        expect(aborted.ok).toBe(false);
        expect(aborted.ok ? null : aborted.error).toBeInstanceOf(ConnClosedError);
        expect(await within(closing, 1_000, 'close')).toEqual({ ok: true, value: undefined });
        return;
      }
      {
        const next = await (fixture.nextBorrower as () => Promise<Conn>)();
        const started = performance.now();
        // doWithTimeout needs an exclusive connection in every pooled factory.
        expect(await next.doWithTimeout(1_000, 'PING')).toBe('PONG');
        expect(performance.now() - started).toBeLessThan(300);
      }
      expect(await within(popped, 3_000, 'BLPOP')).toEqual({ ok: true, value: null });
      expect(await within(closing, 3_000, 'close')).toEqual({ ok: true, value: undefined });
    });
  });

  describe('bad input', () => {
    it('a bad command or argument rejects TypeError (no synchronous throw) and writes nothing', async () => {
      const k = key('k');
      const bad: [string, () => Promise<unknown>][] = [
        ['do(123)', () => conn.do(123 as never)],
        ['do(null)', () => conn.do(null as never)],
        ['do(undefined)', () => conn.do(undefined as never)],
        ['object argument', () => conn.do('SET', k, {} as never)],
        ['symbol argument', () => conn.do('SET', k, Symbol('x') as never)],
        ['array argument', () => conn.do('SET', k, [1] as never)],
        ['doWithTimeout(…, 123)', () => conn.doWithTimeout(1_000, 123 as never)],
        ['doWithSignal object argument', () => conn.doWithSignal(new AbortController().signal, 'SET', k, {} as never)],
      ];
      for (const [name, call] of bad) {
        const reason = await within(rejection(noSyncThrow(call)), 1_000, name);
        expect(reason, name).toBeInstanceOf(TypeError);
      }
      expect(thrownBy(() => conn.send('SET', k, {} as never))).toBeInstanceOf(TypeError);
      expect(conn.err()).toBeNull();
      expect(await conn.do('')).toEqual([]); // nothing buffered by the bad send
      expect(await conn.do('GET', k)).toBeNull(); // nothing written
      expect(await conn.do('PING')).toBe('PONG');
    });

    it('a do rejected for a bad argument claims nothing: the reply owed to an earlier send stays for receive', async () => {
      const n = key('n');
      conn.send('INCR', n);
      expect(await rejection(conn.do('SET', key('k'), {} as never))).toBeInstanceOf(TypeError);
      await conn.flush();
      expect(await within(conn.receive(), 1_000, 'the owed INCR reply')).toBe(1);
      expect(await conn.do('INCR', n)).toBe(2);
    });
  });

  describe('properties', () => {
    it('protocol is 2', async () => {
      expect(conn.protocol).toBe(2);
      await conn.do('PING');
      expect(conn.protocol).toBe(2);
    });

    it('readTimeoutMs reflects the dial option, from the start', async () => {
      const seen: Record<string, number> = { fresh: conn.readTimeoutMs };
      await conn.do('PING');
      seen['after a PING'] = conn.readTimeoutMs;
      await conn.do('MULTI'); // an exclusive connection in every factory
      await conn.do('DISCARD');
      seen['after MULTI/DISCARD'] = conn.readTimeoutMs;
      expect(seen).toEqual({ fresh: READ_TIMEOUT_MS, 'after a PING': READ_TIMEOUT_MS, 'after MULTI/DISCARD': READ_TIMEOUT_MS });
    });
  });
});

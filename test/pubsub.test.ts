/**
 * PubSubConn against a real redis-server, on RESP2 and RESP3: subscription
 * counts, message / pmessage / smessage delivery, binary payloads, PING,
 * timeouts, error replies, pooled reuse, async iteration and close; and the
 * health check against a second server that is SIGSTOPped (a hung Redis).
 */
import { createHook } from 'node:async_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial, type DialOptions } from '../src/dial.js';
import { ConnClosedError, ProtocolError, RedisError, TimeoutError } from '../src/errors.js';
import { Pool } from '../src/pool.js';
import { PubSubConn, type PubSubNotification } from '../src/pubsub.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientInfo, eventually, guardProcessErrors, rejection, settle, sleep, uniqueKeys, within } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let publisher: Conn;
/** A second server, paused (SIGSTOP) by the health-check tests, and a conn to it. */
let hung: TestRedisServer;
let hungPublisher: Conn;
const conns: Conn[] = [];

beforeAll(async () => {
  [server, hung] = await Promise.all([startRedisServer(), startRedisServer()]);
  publisher = await dial(server.addr);
  hungPublisher = await dial(hung.addr);
  conns.push(publisher, hungPublisher);
});

afterAll(async () => {
  hung?.resume();
  await Promise.all(conns.map((conn) => conn.close()));
  await Promise.all([server?.stop(), hung?.stop()]);
});

// A test that fails while `hung` is paused must not leave it paused for the next.
afterEach(() => hung?.resume());

/** A channel (or pattern prefix) no other test uses. */
const unique = uniqueKeys('pubsub-test');

/** Waits until the server has registered `count` subscribers on `channel`. */
async function subscribers(channel: string, count: number, via: Conn = publisher): Promise<void> {
  const reached = await eventually(async () => {
    const reply = await via.do('PUBSUB', 'NUMSUB', channel);
    return Array.isArray(reply) && reply[1] === count;
  });
  expect(reached, `${count} subscribers on ${channel}`).toBe(true);
}

/** Polls until `check` holds, failing the test (naming `what`) after 2 s. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  expect(await eventually(check), what).toBe(true);
}

/**
 * Records the PINGs sent on `conn` from now on: `health()` counts those of the
 * health check (every PING but the user's, whose payloads are given).
 */
function watchPings(conn: Conn, ...userPayloads: string[]): { health(): number } {
  const send = vi.spyOn(conn, 'send');
  return {
    health: () => send.mock.calls.filter(([command, payload]) => String(command).toUpperCase() === 'PING' && !userPayloads.includes(String(payload))).length,
  };
}

/** How many PING commands the server of `admin` has executed (INFO commandstats). */
async function pingCalls(admin: Conn = publisher): Promise<number> {
  const info = String(await admin.do('INFO', 'commandstats'));
  return Number(/^cmdstat_ping:calls=(\d+)/m.exec(info)?.[1] ?? 0);
}

/**
 * Records the unref'd timers created from now on that are still live (neither
 * fired nor cleared): the health check's timer is one; test and connection
 * timers are ref'd. Uses async_hooks, so it sees every Timeout made.
 * `live(expected)` polls (for up to 1 s) until the count is `expected`, as
 * destroy hooks are delivered asynchronously, and returns the last count.
 */
function trackUnrefTimers(): { live(expected: number): Promise<number>; stop(): void } {
  const timers = new Map<number, NodeJS.Timeout>();
  const hook = createHook({
    init(asyncId, type, _trigger, resource) {
      if (type === 'Timeout') timers.set(asyncId, resource as NodeJS.Timeout);
    },
    destroy(asyncId) {
      timers.delete(asyncId);
    },
  });
  hook.enable();
  return {
    live: async (expected) => {
      const count = (): number => [...timers.values()].filter((timer) => !timer.hasRef()).length;
      await eventually(() => count() === expected, 1_000);
      return count();
    },
    stop: () => void hook.disable(),
  };
}

describe.each([2, 3] as const)('RESP%i', (protocol) => {
  async function connect(options: DialOptions = {}): Promise<Conn> {
    const conn = await dial(server.addr, { protocol, ...options });
    conns.push(conn);
    return conn;
  }

  async function pubsub(options: DialOptions = {}): Promise<PubSubConn> {
    return new PubSubConn(await connect(options));
  }

  it('dials the protocol under test', async () => {
    const psc = await pubsub();
    expect(psc.conn.protocol).toBe(protocol);
    expect((await clientInfo(psc.conn)).resp).toBe(String(protocol));
  });

  it('counts subscriptions 1, 2, 3, 4 across channels and patterns, and counts them down', async () => {
    const psc = await pubsub();
    const [c1, c2, p1, p2] = [unique('c1'), unique('c2'), `${unique('p1')}*`, `${unique('p2')}*`];
    await psc.subscribe(c1);
    await psc.subscribe(c2);
    await psc.psubscribe(p1);
    await psc.psubscribe(p2);
    expect(await psc.receive()).toEqual({ kind: 'subscribe', channel: c1, count: 1 });
    expect(await psc.receive()).toEqual({ kind: 'subscribe', channel: c2, count: 2 });
    expect(await psc.receive()).toEqual({ kind: 'psubscribe', channel: p1, count: 3 });
    expect(await psc.receive()).toEqual({ kind: 'psubscribe', channel: p2, count: 4 });

    await psc.punsubscribe(p1);
    expect(await psc.receive()).toEqual({ kind: 'punsubscribe', channel: p1, count: 3 });
    await psc.punsubscribe();
    expect(await psc.receive()).toEqual({ kind: 'punsubscribe', channel: p2, count: 2 });
    await psc.unsubscribe();
    const last = [await psc.receive(), await psc.receive()];
    expect(last.map((n) => n.kind)).toEqual(['unsubscribe', 'unsubscribe']);
    expect(last.map((n) => (n.kind === 'unsubscribe' ? n.count : -1))).toEqual([1, 0]);
    expect(new Set(last.map((n) => (n.kind === 'unsubscribe' ? n.channel : '')))).toEqual(new Set([c1, c2]));

    // Unsubscribing from everything with nothing left: one confirmation, no channel.
    await psc.punsubscribe();
    expect(await psc.receive()).toEqual({ kind: 'punsubscribe', channel: '', count: 0 });
    expect(psc.conn.err()).toBeNull();
  });

  it('subscribes to several channels in one command', async () => {
    const psc = await pubsub();
    const [a, b, c] = [unique('a'), unique('b'), unique('c')];
    await psc.subscribe(a, b, c);
    expect([await psc.receive(), await psc.receive(), await psc.receive()]).toEqual([
      { kind: 'subscribe', channel: a, count: 1 },
      { kind: 'subscribe', channel: b, count: 2 },
      { kind: 'subscribe', channel: c, count: 3 },
    ]);
    await psc.unsubscribe(b);
    expect(await psc.receive()).toEqual({ kind: 'unsubscribe', channel: b, count: 2 });
  });

  it("delivers another conn's PUBLISH as message and pmessage", async () => {
    const psc = await pubsub();
    const prefix = unique('news');
    const channel = `${prefix}.sport`;
    await psc.subscribe(channel);
    await psc.psubscribe(`${prefix}.*`);
    expect((await psc.receive()).kind).toBe('subscribe');
    expect(await psc.receive()).toEqual({ kind: 'psubscribe', channel: `${prefix}.*`, count: 2 });

    expect(await publisher.do('PUBLISH', channel, 'goal')).toBe(2);
    expect(await publisher.do('PUBLISH', `${prefix}.weather`, 'rain')).toBe(1);
    expect(await psc.receive()).toEqual({ kind: 'message', channel, data: Buffer.from('goal') });
    expect(await psc.receive()).toEqual({ kind: 'message', channel, pattern: `${prefix}.*`, data: Buffer.from('goal') });
    expect(await psc.receive()).toEqual({ kind: 'message', channel: `${prefix}.weather`, pattern: `${prefix}.*`, data: Buffer.from('rain') });
  });

  it('delivers sharded messages (SSUBSCRIBE / SPUBLISH) as kind message', async () => {
    const psc = await pubsub();
    const channel = unique('shard');
    await psc.ssubscribe(channel);
    expect(await psc.receive()).toEqual({ kind: 'ssubscribe', channel, count: 1 });
    expect(await publisher.do('SPUBLISH', channel, 'sharded')).toBe(1);
    expect(await psc.receive()).toEqual({ kind: 'message', channel, data: Buffer.from('sharded') });
    await psc.sunsubscribe();
    expect(await psc.receive()).toEqual({ kind: 'sunsubscribe', channel, count: 0 });
  });

  it('round-trips binary payloads byte for byte, small and large', async () => {
    const psc = await pubsub();
    const channel = unique('binary');
    await psc.subscribe(channel);
    await psc.receive();
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const large = Buffer.alloc(300_000);
    for (let i = 0; i < large.length; i++) large[i] = (i * 131) & 0xff;
    for (const payload of [every, Buffer.from('\r\n$-1\r\n*3\r\n'), Buffer.alloc(0), large]) {
      await publisher.do('PUBLISH', channel, payload);
      const got = await psc.receive();
      expect(got.kind).toBe('message');
      expect(Buffer.isBuffer(got.kind === 'message' ? got.data : null)).toBe(true);
      expect(got.kind === 'message' && got.data.equals(payload)).toBe(true);
    }
  });

  it('gives Buffers (and channel strings) with decodeStrings too', async () => {
    const psc = await pubsub({ decodeStrings: true });
    const channel = unique('décodé');
    await psc.psubscribe(`${channel}*`);
    expect(await psc.receive()).toEqual({ kind: 'psubscribe', channel: `${channel}*`, count: 1 });
    await publisher.do('PUBLISH', channel, 'héllo ✓');
    expect(await psc.receive()).toEqual({ kind: 'message', channel, pattern: `${channel}*`, data: Buffer.from('héllo ✓') });
    await psc.ping('ok');
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.from('ok') });
  });

  it('answers ping with and without data, subscribed or not', async () => {
    const psc = await pubsub();
    await psc.ping();
    await psc.ping('before');
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.alloc(0) });
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.from('before') });

    await psc.subscribe(unique('ping'));
    await psc.ping();
    await psc.ping(Buffer.from([0, 255, 13, 10]));
    expect((await psc.receive()).kind).toBe('subscribe');
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.alloc(0) });
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.from([0, 255, 13, 10]) });
  });

  it('a receiveWithTimeout timeout breaks only that conn', async () => {
    const psc = await pubsub();
    const bystander = await pubsub();
    const channel = unique('timeout');
    await psc.subscribe(channel);
    await bystander.subscribe(channel);
    await psc.receive();
    await bystander.receive();

    const started = Date.now();
    const err = await rejection(psc.receiveWithTimeout(50));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(psc.conn.err()).not.toBeNull();
    await expect(psc.receive()).rejects.toBeInstanceOf(ConnClosedError);
    await expect(psc.ping()).rejects.toBeInstanceOf(ConnClosedError);

    await subscribers(channel, 1);
    expect(await publisher.do('PUBLISH', channel, 'still here')).toBe(1);
    expect(await bystander.receiveWithTimeout(5_000)).toEqual({ kind: 'message', channel, data: Buffer.from('still here') });
    expect(bystander.conn.err()).toBeNull();
    expect(await publisher.do('PING')).toBe('PONG');
  });

  it('a receive that gives up breaks the conn: the receives waiting beside it fail with its error, none hangs', async () => {
    const psc = await pubsub();
    await psc.subscribe(unique('give-up'));
    expect((await psc.receive()).kind).toBe('subscribe');
    const others = [settle(psc.receive()), settle(psc.receive())];
    const err = await rejection(psc.receiveWithTimeout(30));
    expect(err).toBeInstanceOf(TimeoutError);
    const results = await within(Promise.all(others), 1_000, 'the other receives');
    expect(psc.conn.err()).toBeInstanceOf(ConnClosedError);
    expect((psc.conn.err() as Error).cause).toBe(err);
    expect(results).toEqual([{ ok: false, error: psc.conn.err() }, { ok: false, error: psc.conn.err() }]);
  });

  it("waits for messages beyond the conn's read timeout, which guards only owed replies", async () => {
    const psc = await pubsub({ readTimeoutMs: 50 });
    const channel = unique('slow');
    await psc.subscribe(channel);
    expect((await psc.receive()).kind).toBe('subscribe');
    const first = psc.receive();
    const second = psc.receive();
    // Time itself is the condition: three read timeouts pass with no event to
    // wait for (a read timer, were one armed, would fire before this sleep ends).
    await sleep(150);
    await publisher.do('PUBLISH', channel, 'late');
    await publisher.do('PUBLISH', channel, 'later');
    expect(await first).toEqual({ kind: 'message', channel, data: Buffer.from('late') });
    expect(await second).toEqual({ kind: 'message', channel, data: Buffer.from('later') });
    expect(psc.conn.err()).toBeNull();
  });

  it('receiveWithTimeout resolves when a notification comes in time and rejects a bad timeout', async () => {
    const psc = await pubsub();
    await psc.ping('quick');
    expect(await psc.receiveWithTimeout(5_000)).toEqual({ kind: 'pong', data: Buffer.from('quick') });
    await expect(psc.receiveWithTimeout(-1)).rejects.toBeInstanceOf(RangeError);
    expect(psc.conn.err()).toBeNull();
  });

  it('receiveWithSignal rejects with the reason on abort and breaks the conn', async () => {
    const psc = await pubsub();
    const before = new AbortController();
    before.abort(new Error('already'));
    await expect(psc.receiveWithSignal(before.signal)).rejects.toThrow('already');
    expect(psc.conn.err()).toBeNull();

    const controller = new AbortController();
    const pending = settle(psc.receiveWithSignal(controller.signal));
    controller.abort(new Error('stop listening'));
    const result = await pending;
    expect(result.ok).toBe(false);
    expect(result.ok ? null : (result.error as Error).message).toBe('stop listening');
    expect(psc.conn.err()).not.toBeNull();
  });

  it('rejects an error reply with RedisError and stays usable', async () => {
    const psc = await pubsub();
    await psc.subscribe(unique('err'));
    await psc.receive();
    psc.conn.send('NOSUCHCOMMAND');
    await psc.conn.flush();
    const err = await rejection(psc.receive());
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('ERR');
    expect(psc.conn.err()).toBeNull();
    await psc.ping('alive');
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.from('alive') });
  });

  it('rejects a reply that is no notification with ProtocolError and closes the conn', async () => {
    const psc = await pubsub();
    psc.conn.send('INCR', unique('counter'));
    await psc.conn.flush();
    const err = await rejection(psc.receive());
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as Error).message).toContain('number');
    expect(psc.conn.err()).toBeInstanceOf(ConnClosedError);
  });

  it('rejects subscribe commands without channels, sending nothing', async () => {
    const psc = await pubsub();
    await expect(psc.subscribe()).rejects.toBeInstanceOf(TypeError);
    await expect(psc.psubscribe()).rejects.toBeInstanceOf(TypeError);
    await expect(psc.ssubscribe()).rejects.toBeInstanceOf(TypeError);
    await psc.ping('first');
    expect(await psc.receive()).toEqual({ kind: 'pong', data: Buffer.from('first') });
  });

  it('a subscribed pooled conn comes back clean for the next borrower', async () => {
    const pool = new Pool({ dial: () => dial(server.addr, { protocol }), maxIdle: 1, maxActive: 1 });
    try {
      const first = await pool.get();
      const id = await first.do('CLIENT', 'ID');
      const psc = new PubSubConn(first);
      const channel = unique('pooled');
      await psc.subscribe(channel);
      await psc.psubscribe(`${channel}*`);
      await psc.ssubscribe(unique('pooled-shard'));
      expect((await psc.receive()).kind).toBe('subscribe');
      // Unread confirmations and messages must be drained by the pool.
      await subscribers(channel, 1);
      await publisher.do('PUBLISH', channel, 'unread');
      await psc.close();
      await psc.close();

      const next = await pool.get();
      expect(await next.do('CLIENT', 'ID')).toBe(id);
      const key = unique('pooled-key');
      expect(await next.do('SET', key, 'v')).toBe('OK');
      expect(await next.do('GET', key)).toEqual(Buffer.from('v'));
      const info = await clientInfo(next);
      expect([info.sub, info.psub, info.ssub]).toEqual(['0', '0', '0']);
      expect(pool.stats().dials).toBe(1);
      await next.close();
    } finally {
      await pool.close();
    }
  });

  it('async iteration yields notifications in order and ends cleanly on close()', async () => {
    const psc = await pubsub();
    const channel = unique('iterate');
    await psc.subscribe(channel);
    const seen: PubSubNotification[] = [];
    let sawThree: () => void = () => {};
    const three = new Promise<void>((resolve) => (sawThree = resolve));
    const loop = settle(
      (async () => {
        for await (const notification of psc) {
          seen.push(notification);
          if (seen.length === 4) sawThree();
        }
      })(),
    );
    await subscribers(channel, 1);
    for (const data of ['one', 'two', 'three']) await publisher.do('PUBLISH', channel, data);
    await three;
    await psc.close(); // the loop is waiting in receive()
    expect(await loop).toEqual({ ok: true, value: undefined });
    expect(seen).toEqual([
      { kind: 'subscribe', channel, count: 1 },
      ...['one', 'two', 'three'].map((data) => ({ kind: 'message', channel, data: Buffer.from(data) })),
    ]);
    expect(psc.conn.err()).toBeInstanceOf(ConnClosedError);

    // Iterating a closed PubSubConn ends at once.
    const again: PubSubNotification[] = [];
    for await (const notification of psc) again.push(notification);
    expect(again).toEqual([]);
  });

  it('async iteration over a pooled conn ends on close() and the conn is not reused', async () => {
    const pool = new Pool({ dial: () => dial(server.addr, { protocol }), maxIdle: 1 });
    try {
      const psc = new PubSubConn(await pool.get());
      await psc.ping('p');
      const kinds: string[] = [];
      const loop = settle(
        (async () => {
          for await (const notification of psc) kinds.push(notification.kind);
          return kinds;
        })(),
      );
      // The pong is in; the loop waits in its next read.
      await until('the pong', () => kinds.length === 1);
      await psc.close();
      expect(await loop).toEqual({ ok: true, value: ['pong'] });
      // Its read was cancelled mid-wait, so the pool must not lend it again.
      expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0 });
    } finally {
      await pool.close();
    }
  });

  it('async iteration throws when the server drops the conn', async () => {
    const psc = await pubsub();
    const id = await psc.conn.do('CLIENT', 'ID');
    await psc.subscribe(unique('killed'));
    const loop = settle(
      (async () => {
        for await (const notification of psc) expect(notification.kind).toBe('subscribe');
      })(),
    );
    expect(await publisher.do('CLIENT', 'KILL', 'ID', id as number)).toBe(1);
    const result = await loop;
    expect(result.ok).toBe(false);
    expect(result.ok ? null : result.error).toBeInstanceOf(ConnClosedError);
  });

  it('Symbol.asyncDispose closes the connection', async () => {
    const conn = await connect();
    {
      const psc = new PubSubConn(conn);
      await psc.subscribe(unique('dispose'));
      await psc[Symbol.asyncDispose]();
    }
    expect(conn.err()).toBeInstanceOf(ConnClosedError);
  });

  describe('health check', () => {
    const HEALTH_MS = 200;
    const READ_TIMEOUT_MS = 300;
    /** When a hung server must have been noticed: PING after HEALTH_MS, pong deadline READ_TIMEOUT_MS, plus slack for a busy machine. */
    const NOTICED_MS = HEALTH_MS + READ_TIMEOUT_MS + 700;

    async function onHung(healthCheckMs: number | undefined, readTimeoutMs = READ_TIMEOUT_MS): Promise<PubSubConn> {
      const conn = await dial(hung.addr, { protocol, readTimeoutMs });
      conns.push(conn);
      return new PubSubConn(conn, healthCheckMs === undefined ? undefined : { healthCheckMs });
    }

    it('defaults to 30 s, 0 turns it off, and a bad period or receive timeout is a RangeError', async () => {
      const conn = await connect();
      expect(new PubSubConn(conn).healthCheckMs).toBe(30_000);
      expect(new PubSubConn(conn, {}).healthCheckMs).toBe(30_000);
      expect(new PubSubConn(conn, { healthCheckMs: 0 }).healthCheckMs).toBe(0);
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '100' as unknown as number]) {
        expect(() => new PubSubConn(conn, { healthCheckMs: bad })).toThrow(RangeError);
        expect(() => new PubSubConn(conn, { healthCheckMs: bad })).toThrow(/healthCheckMs/);
      }
      const psc = new PubSubConn(conn);
      for (const bad of [2 ** 31, 2 ** 40, Number.NaN]) {
        const err = await rejection(psc.receiveWithTimeout(bad));
        expect(err).toBeInstanceOf(RangeError);
        expect((err as Error).message).toContain('timeoutMs');
      }
      expect(conn.err()).toBeNull();
      await psc.ping('still fine');
      expect(await psc.receiveWithTimeout(2 ** 31 - 1)).toEqual({ kind: 'pong', data: Buffer.from('still fine') });
    });

    for (const subscribed of [true, false]) {
      it(`a hung server fails every waiting receive with TimeoutError (${subscribed ? 'subscribed' : 'not subscribed'})`, async () => {
        const psc = await onHung(HEALTH_MS);
        if (subscribed) {
          await psc.subscribe(unique('hung'));
          expect((await psc.receive()).kind).toBe('subscribe');
        }
        hung.pause();
        const started = performance.now();
        const controller = new AbortController();
        const waiting = [psc.receive(), psc.receiveWithSignal(controller.signal), psc.receiveWithTimeout(60_000)].map((p) => rejection(p));
        const errors = await within(Promise.all(waiting), NOTICED_MS + 2_000, 'receives on a hung server');
        const elapsed = performance.now() - started;
        for (const err of errors) {
          expect(err).toBeInstanceOf(TimeoutError);
          expect((err as Error).message).toMatch(/did not answer the health-check PING within 300 ms/);
        }
        expect(errors[1]).toBe(errors[0]);
        expect(elapsed).toBeGreaterThanOrEqual(HEALTH_MS + READ_TIMEOUT_MS - 20);
        expect(elapsed).toBeLessThan(NOTICED_MS);
        // The connection is broken, and says so at once from now on.
        expect(psc.conn.err()).not.toBeNull();
        await expect(psc.receive()).rejects.toBe(psc.conn.err());
        await psc.close();
      });
    }

    it('async iteration throws the TimeoutError when the server hangs', async () => {
      const psc = await onHung(HEALTH_MS);
      const channel = unique('hung-iterate');
      await psc.subscribe(channel);
      const seen: string[] = [];
      const loop = settle(
        (async () => {
          for await (const notification of psc) seen.push(notification.kind);
        })(),
      );
      await subscribers(channel, 1, hungPublisher);
      await hungPublisher.do('PUBLISH', channel, 'before');
      await until('the message before the hang', () => seen.length === 2);
      hung.pause();
      const started = performance.now();
      const result = await within(loop, NOTICED_MS + 2_000, 'iteration over a hung server');
      expect(performance.now() - started).toBeLessThan(NOTICED_MS);
      expect(result.ok).toBe(false);
      expect(result.ok ? null : result.error).toBeInstanceOf(TimeoutError);
      expect(seen).toEqual(['subscribe', 'message']);
      expect(psc.conn.err()).not.toBeNull();
      await psc.close();
    });

    it('healthCheckMs 0 waits through a hang (a checked conn beside it fails), then gets the message', async () => {
      const unchecked = await onHung(0);
      const checked = await onHung(HEALTH_MS);
      const channel = unique('hung-unchecked');
      await unchecked.subscribe(channel);
      await checked.subscribe(channel);
      expect((await unchecked.receive()).kind).toBe('subscribe');
      expect((await checked.receive()).kind).toBe('subscribe');
      hung.pause();
      let settled = false;
      const waiting = settle(unchecked.receive()).finally(() => (settled = true));
      const failed = rejection(checked.receive());
      // The checked conn noticing the hang is the event that shows the
      // unchecked one, on the same server, was not checked.
      expect(await within(failed, NOTICED_MS + 2_000, 'the checked receive')).toBeInstanceOf(TimeoutError);
      expect(settled).toBe(false);
      expect(unchecked.conn.err()).toBeNull();
      hung.resume();
      await hungPublisher.do('PUBLISH', channel, 'after the hang');
      expect(await within(waiting, 2_000, 'the unchecked receive')).toEqual({ ok: true, value: { kind: 'message', channel, data: Buffer.from('after the hang') } });
      expect(unchecked.conn.err()).toBeNull();
      await Promise.all([unchecked.close(), checked.close()]);
    });

    for (const subscribed of [true, false]) {
      it(`health pongs are never delivered; the user's own pong and every message are (${subscribed ? 'subscribed' : 'not subscribed'})`, async () => {
        const psc = new PubSubConn(await connect({ readTimeoutMs: 1_000 }), { healthCheckMs: 100 });
        const channel = unique('flowing');
        if (subscribed) await psc.subscribe(channel);
        const seen: PubSubNotification[] = [];
        const loop = settle(
          (async () => {
            for await (const notification of psc) seen.push(notification);
          })(),
        );
        if (subscribed) await subscribers(channel, 1);
        const before = await pingCalls();
        /** Publishes 10 messages and waits until the loop has them. */
        const publish = async (from: number): Promise<void> => {
          if (!subscribed) return;
          for (let i = from; i < from + 10; i++) await publisher.do('PUBLISH', channel, `m${i}`);
          await until(`messages to m${from + 9}`, () => seen.length >= 1 + from + 10 + (from > 0 ? 1 : 0));
        };
        await publish(0);
        // Silence: the health check PINGs, and the pong comes back.
        await until('a health PING', async () => (await pingCalls()) - before >= 1);
        await psc.ping('mine');
        await until('the user pong', () => seen.some((n) => n.kind === 'pong'));
        // Silence again: another health PING; its pong is on the wire before the next messages.
        await until('a second health PING', async () => (await pingCalls()) - before >= 3);
        await publish(10);
        const pings = (await pingCalls()) - before;
        await psc.close();
        expect(await loop).toEqual({ ok: true, value: undefined });
        // At least two health PINGs went out (besides the user's), all answered and swallowed.
        expect(pings).toBeGreaterThanOrEqual(3);
        const messages = subscribed ? Array.from({ length: 20 }, (_, i) => ({ kind: 'message', channel, data: Buffer.from(`m${i}`) })) : [];
        expect(seen).toEqual([
          ...(subscribed ? [{ kind: 'subscribe', channel, count: 1 }] : []),
          ...messages.slice(0, 10),
          { kind: 'pong', data: Buffer.from('mine') },
          ...messages.slice(10),
        ]);
        expect(psc.conn.err()).toBeInstanceOf(ConnClosedError);
      });
    }

    it('a health pong that arrives when no receive waits is swallowed by the next receive', async () => {
      const psc = await onHung(100, 1_000);
      const channel = unique('late-pong');
      await psc.subscribe(channel);
      expect((await psc.receive()).kind).toBe('subscribe');
      const before = await pingCalls(hungPublisher);
      const pings = watchPings(psc.conn, 'mine');
      hung.pause();
      const first = psc.receive();
      await psc.ping('mine'); // on the wire before the health PING, which goes out 100 ms after the receive
      await until('the health PING', () => pings.health() === 1);
      hung.resume();
      // The user's pong settles the only receive; the health pong behind it is read by nobody yet …
      expect(await within(first, 2_000, 'the first receive')).toEqual({ kind: 'pong', data: Buffer.from('mine') });
      expect((await pingCalls(hungPublisher)) - before).toBe(2);
      await hungPublisher.do('PUBLISH', channel, 'next');
      // … and the next receive skips it.
      expect(await psc.receiveWithTimeout(2_000)).toEqual({ kind: 'message', channel, data: Buffer.from('next') });
      expect(psc.conn.err()).toBeNull();
      await psc.close();
    });

    it('close() while a health PING awaits its pong leaves no timer and nothing fails later', async () => {
      const psc = await onHung(100, 1_000);
      await psc.subscribe(unique('hung-close'));
      expect((await psc.receive()).kind).toBe('subscribe');
      const timers = trackUnrefTimers();
      const pings = watchPings(psc.conn);
      try {
        hung.pause();
        const waiting = rejection(psc.receive());
        // The health timer runs while the receive waits (positive control) …
        expect(await timers.live(1)).toBe(1);
        // … and, once the PING is out, runs on to the pong deadline 1 s later.
        await until('the health PING', () => pings.health() === 1);
        const pongDue = performance.now() + 1_000;
        expect(await timers.live(1)).toBe(1);
        await psc.close();
        const err = await within(waiting, 500, 'the receive pending at close()');
        expect(err).toBeInstanceOf(ConnClosedError);
        // … and is gone once it is closed: no timer left to fire or hold anything.
        expect(await timers.live(0)).toBe(0);
        // A deadline that does not fire sends no event: wait until just past it.
        await sleep(Math.max(0, pongDue + 100 - performance.now()));
        expect(await timers.live(0)).toBe(0);
        expect(psc.conn.err()).toBeInstanceOf(ConnClosedError);
      } finally {
        timers.stop();
      }
    });

    it('the health timer runs only while a receive waits', async () => {
      const psc = new PubSubConn(await connect(), { healthCheckMs: 100 });
      const timers = trackUnrefTimers();
      try {
        expect(await timers.live(0)).toBe(0);
        const pending = psc.receive();
        expect(await timers.live(1)).toBe(1);
        await psc.ping('x');
        expect(await pending).toEqual({ kind: 'pong', data: Buffer.from('x') });
        expect(await timers.live(0)).toBe(0);
        // Many receives at once share one timer.
        const several = [psc.receive(), psc.receive(), psc.receive()];
        expect(await timers.live(1)).toBe(1);
        for (const data of ['a', 'b', 'c']) await psc.ping(data);
        expect(await Promise.all(several)).toEqual(['a', 'b', 'c'].map((data) => ({ kind: 'pong', data: Buffer.from(data) })));
        expect(await timers.live(0)).toBe(0);
        expect(psc.conn.err()).toBeNull();
      } finally {
        timers.stop();
        await psc.close();
      }
    });
  });
});

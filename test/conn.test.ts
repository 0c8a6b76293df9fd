/**
 * Conn against real redis-server processes: commands and reply types,
 * transactions, pipelining (do / send / flush / receive), large payloads,
 * timeouts, aborts, broken connections, bad arguments, RESP3 pushes, close.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial, type DialOptions } from '../src/dial.js';
import { ConnClosedError, RedisError, TimeoutError } from '../src/errors.js';
import type { Reply } from '../src/resp/decode.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { guardProcessErrors, rejection, settle, sleep, text, uniqueKeys } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
const conns: Conn[] = [];
/** Servers a single test kills or pauses; also stopped in afterAll should that test hang. */
const extraServers: TestRedisServer[] = [];

async function startExtraServer(): Promise<TestRedisServer> {
  const extra = await startRedisServer();
  extraServers.push(extra);
  return extra;
}

/** Dials the shared server; the conn is closed in afterAll. */
async function connect(options: DialOptions = {}, target: TestRedisServer = server): Promise<Conn> {
  const conn = await dial(target.addr, options);
  conns.push(conn);
  return conn;
}

/** A key no other test uses. */
const key = uniqueKeys('conn-test');

beforeAll(async () => {
  server = await startRedisServer({ args: ['--enable-debug-command', 'yes'] });
});

afterAll(async () => {
  await Promise.all(conns.map((conn) => conn.close()));
  for (const extra of extraServers) extra.resume();
  await Promise.all([server?.stop(), ...extraServers.map((extra) => extra.stop())]);
});

describe('commands and reply types', () => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect();
  });

  it('PING answers the simple string PONG', async () => {
    expect(await conn.do('PING')).toBe('PONG');
    expect(conn.protocol).toBe(2);
    expect(conn.err()).toBeNull();
  });

  it('SET then GET returns the value as a Buffer', async () => {
    const k = key('setget');
    expect(await conn.do('SET', k, 'héllo')).toBe('OK');
    const value = await conn.do('GET', k);
    expect(Buffer.isBuffer(value)).toBe(true);
    expect(text(value)).toBe('héllo');
  });

  it('GET of a missing key is null', async () => {
    expect(await conn.do('GET', key('missing'))).toBeNull();
  });

  it('MGET keeps nil elements as null in place', async () => {
    const a = key('mget-a');
    const c = key('mget-c');
    await conn.do('MSET', a, '1', c, '3');
    const reply = (await conn.do('MGET', a, key('mget-b'), c)) as Reply[];
    expect(reply).toHaveLength(3);
    expect(text(reply[0])).toBe('1');
    expect(reply[1]).toBeNull();
    expect(text(reply[2])).toBe('3');
  });

  it('INCR returns numbers', async () => {
    const k = key('incr');
    expect(await conn.do('INCR', k)).toBe(1);
    expect(await conn.do('INCRBY', k, 41)).toBe(42);
  });

  it('LPUSH / LRANGE round trip arguments of every primitive kind', async () => {
    const k = key('list');
    expect(await conn.do('LPUSH', k, 'a', 2, 3n, true, Buffer.from('b'), null)).toBe(6);
    const range = (await conn.do('LRANGE', k, 0, -1)) as Reply[];
    expect(range.map((item) => text(item))).toEqual(['', 'b', '1', '3', '2', 'a']);
  });

  it('an error reply rejects do with a RedisError and the conn stays usable', async () => {
    const k = key('wrongtype');
    await conn.do('SET', k, 'x');
    const err = await rejection(conn.do('LPUSH', k, 'y'));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('WRONGTYPE');
    expect(conn.err()).toBeNull();
    expect(await conn.do('PING')).toBe('PONG');
  });
});

describe('transactions', () => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect();
  });

  it('MULTI queues commands and EXEC returns their replies', async () => {
    const k = key('multi');
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('SET', k, '1')).toBe('QUEUED');
    expect(await conn.do('INCR', k)).toBe('QUEUED');
    const replies = await conn.do('EXEC');
    expect(replies).toEqual(['OK', 2]);
  });

  it('EXEC with a runtime error resolves, the error is a RedisError element', async () => {
    const k = key('exec-runtime');
    await conn.do('MULTI');
    await conn.do('SET', k, 'not a number');
    await conn.do('INCR', k);
    await conn.do('GET', k);
    const replies = (await conn.do('EXEC')) as Reply[];
    expect(replies).toHaveLength(3);
    expect(replies[0]).toBe('OK');
    expect(replies[1]).toBeInstanceOf(RedisError);
    expect((replies[1] as RedisError).code).toBe('ERR');
    expect(text(replies[2])).toBe('not a number');
    expect(conn.err()).toBeNull();
  });

  it('a syntax error while queueing makes EXEC reject with EXECABORT', async () => {
    const k = key('execabort');
    await conn.do('MULTI');
    await conn.do('SET', k, '1');
    const queued = await rejection(conn.do('SET', k)); // wrong number of arguments
    expect(queued).toBeInstanceOf(RedisError);
    const exec = await rejection(conn.do('EXEC'));
    expect(exec).toBeInstanceOf(RedisError);
    expect((exec as RedisError).code).toBe('EXECABORT');
    expect(await conn.do('EXISTS', k)).toBe(0);
    expect(await conn.do('PING')).toBe('PONG');
  });
});

describe('pipelining', () => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect();
  });

  it("do('') drains every pending reply, error replies included as values", async () => {
    const k = key('drain');
    conn.send('SET', k, 'abc');
    conn.send('INCR', k);
    conn.send('GET', k);
    const replies = (await conn.do('')) as Reply[];
    expect(replies).toHaveLength(3);
    expect(replies[0]).toBe('OK');
    expect(replies[1]).toBeInstanceOf(RedisError);
    expect(text(replies[2])).toBe('abc');
    // Nothing owed any more: an empty drain.
    expect(await conn.do('')).toEqual([]);
  });

  it('do resolves the last of the pending replies', async () => {
    const k = key('last');
    conn.send('SET', k, '1');
    conn.send('INCR', k);
    expect(text(await conn.do('GET', k))).toBe('2');
    // The earlier replies were consumed by do: a drain finds nothing.
    expect(await conn.do('')).toEqual([]);
  });

  it('do rejects with the FIRST error among the pending replies', async () => {
    const k = key('first-error');
    conn.send('SET', k, 'abc');
    conn.send('INCR', k); // ERR value is not an integer
    conn.send('LPUSH', k, 'x'); // WRONGTYPE
    const err = await rejection(conn.do('GET', k));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('ERR');
    expect((err as RedisError).message).toMatch(/not an integer/);
    expect(conn.err()).toBeNull();
    expect(await conn.do('')).toEqual([]);
    expect(await conn.do('PING')).toBe('PONG');
  });

  it('send / flush / receive return replies in order', async () => {
    for (const word of ['one', 'two', 'three']) conn.send('ECHO', word);
    await conn.flush();
    expect(text(await conn.receive())).toBe('one');
    expect(text(await conn.receive())).toBe('two');
    expect(text(await conn.receive())).toBe('three');
    expect(await conn.do('')).toEqual([]);
  });

  it('receive calls issued before the replies arrive are served in order', async () => {
    conn.send('ECHO', 'a');
    conn.send('ECHO', 'b');
    const first = conn.receive();
    const second = conn.receive();
    await conn.flush();
    expect([text(await first), text(await second)]).toEqual(['a', 'b']);
  });

  it('a receive already listening takes the reply of a later send, and nothing stays owed', async () => {
    const listener = conn.receive();
    conn.send('ECHO', 'late send');
    await conn.flush();
    expect(await listener).toEqual(Buffer.from('late send'));
    // The reply was settled by the listener: do waits for its own reply only.
    expect(await conn.doWithTimeout(2000, 'ECHO', 'next')).toEqual(Buffer.from('next'));
    expect(await conn.do('')).toEqual([]);
  });

  it('receive of an error reply rejects with RedisError and the conn stays usable', async () => {
    const k = key('receive-error');
    await conn.do('SET', k, 'abc');
    conn.send('INCR', k);
    conn.send('PING');
    await conn.flush();
    const err = await rejection(conn.receive());
    expect(err).toBeInstanceOf(RedisError);
    expect(await conn.receive()).toBe('PONG');
    expect(conn.err()).toBeNull();
    expect(await conn.do('ECHO', 'still fine')).toEqual(Buffer.from('still fine'));
  });

  it('100k commands pipelined in one flush come back complete and in order', async () => {
    const n = 100_000;
    const k = key('bulk-pipeline');
    for (let i = 0; i < n; i++) conn.send('RPUSH', k, i);
    await conn.flush();
    const replies = (await conn.do('')) as Reply[];
    expect(replies).toHaveLength(n);
    let ordered = true;
    for (let i = 0; i < n; i++) if (replies[i] !== i + 1) ordered = false;
    expect(ordered).toBe(true);
    const tail = (await conn.do('LRANGE', k, -2, -1)) as Reply[];
    expect(tail.map((item) => text(item))).toEqual([String(n - 2), String(n - 1)]);
    await conn.do('DEL', k);
  });

  it('16 MiB values round trip byte for byte', async () => {
    const k = key('big');
    const value = Buffer.allocUnsafe(16 * 1024 * 1024);
    for (let i = 0; i < value.length; i += 4) value.writeUInt32LE((i * 2654435761) >>> 0, i);
    expect(await conn.do('SET', k, value)).toBe('OK');
    expect(await conn.do('STRLEN', k)).toBe(value.length);
    const back = await conn.do('GET', k);
    expect(Buffer.isBuffer(back)).toBe(true);
    expect((back as Buffer).equals(value)).toBe(true);
    // A big string value (copied, not referenced) and a pipeline around it.
    const str = 'x'.repeat(16 * 1024 * 1024);
    conn.send('SET', k, str);
    conn.send('STRLEN', k);
    const strBack = await conn.do('GET', k);
    // Compare with Buffer#equals: a deep toEqual walks 16M indices.
    expect(Buffer.isBuffer(strBack) && strBack.equals(Buffer.from(str))).toBe(true);
    await conn.do('DEL', k);
  });
});

describe('bad arguments', () => {
  let conn: Conn;
  beforeAll(async () => {
    conn = await connect();
  });

  const badValues: [string, unknown][] = [
    ['a plain object', { a: 1 }],
    ['a symbol', Symbol('nope')],
    ['NaN', NaN],
    ['a function', () => 1],
  ];

  it.each(badValues)('do with %s rejects TypeError, writes nothing, conn usable', async (_name, bad) => {
    const k = key('badarg');
    const err = await rejection(conn.do('SET', k, bad as never));
    expect(err).toBeInstanceOf(TypeError);
    expect(conn.err()).toBeNull();
    // Nothing reached the server: the key is absent and no reply is owed.
    expect(await conn.do('')).toEqual([]);
    expect(await conn.do('EXISTS', k)).toBe(0);
  });

  it.each(badValues)('send with %s throws TypeError and buffers nothing', async (_name, bad) => {
    const k = key('badsend');
    conn.send('SET', k, 'good');
    expect(() => conn.send('SET', k, 'first', bad as never)).toThrow(TypeError);
    const replies = (await conn.do('')) as Reply[];
    expect(replies).toEqual(['OK']);
    expect(text(await conn.do('GET', k))).toBe('good');
  });

  it('an object with redisArg() is replaced by its result', async () => {
    const k = key('redisarg');
    await conn.do('SET', k, { redisArg: () => 'from-object' });
    expect(text(await conn.do('GET', k))).toBe('from-object');
  });
});

describe('timeouts', () => {
  it('read timeout (DEBUG SLEEP) rejects TimeoutError and breaks the conn for good', async () => {
    const conn = await connect({ readTimeoutMs: 150 });
    expect(await conn.do('PING')).toBe('PONG');
    const err = await rejection(conn.do('DEBUG', 'SLEEP', '0.5'));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
    expect(conn.err()).toBe(err);
    // Later calls fail at once with the same error, nothing is sent.
    expect(await rejection(conn.do('PING'))).toBe(err);
    expect(await rejection(conn.receive())).toBe(err);
    expect(await rejection(conn.flush())).toBe(err);
    expect(() => conn.send('PING')).toThrow(err);
  });

  it('the read timeout does not fire on an idle conn with nothing owed', async () => {
    const conn = await connect({ readTimeoutMs: 100 });
    // Time itself is the condition (a timer that does not fire sends no event): past two read timeouts.
    await sleep(250);
    expect(conn.err()).toBeNull();
    expect(await conn.do('PING')).toBe('PONG');
  });

  it('doWithTimeout resolves in time, and rejects TimeoutError (conn broken) when late', async () => {
    const conn = await connect();
    expect(await conn.doWithTimeout(2000, 'ECHO', 'quick')).toEqual(Buffer.from('quick'));
    const err = await rejection(conn.doWithTimeout(100, 'DEBUG', 'SLEEP', '0.4'));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(conn.err()).toBe(err);
    expect(await rejection(conn.do('PING'))).toBe(err);
  });

  it('doWithTimeout rejects a bad timeout with RangeError, nothing sent', async () => {
    const conn = await connect();
    expect(await rejection(conn.doWithTimeout(-1, 'PING'))).toBeInstanceOf(RangeError);
    expect(await rejection(conn.doWithTimeout(NaN, 'PING'))).toBeInstanceOf(RangeError);
    expect(conn.err()).toBeNull();
    expect(await conn.do('')).toEqual([]);
  });

  it('receiveWithTimeout resolves in time, and rejects TimeoutError (conn broken) when late', async () => {
    const conn = await connect();
    conn.send('ECHO', 'quick');
    await conn.flush();
    expect(await conn.receiveWithTimeout(2000)).toEqual(Buffer.from('quick'));
    conn.send('DEBUG', 'SLEEP', '0.4');
    await conn.flush();
    const err = await rejection(conn.receiveWithTimeout(100));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
    expect(conn.err()).toBe(err);
    expect(await rejection(conn.receive())).toBe(err);
  });

  it('receiveWithTimeout with nothing owed (listening) times out too', async () => {
    const conn = await connect();
    const err = await rejection(conn.receiveWithTimeout(100));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(conn.err()).toBe(err);
  });
});

describe('abort signals', () => {
  it('doWithSignal rejects with the abort reason and breaks the conn', async () => {
    const conn = await connect();
    const controller = new AbortController();
    expect(await conn.doWithSignal(controller.signal, 'PING')).toBe('PONG');
    const reason = new Error('caller gave up');
    const pending = settle(conn.doWithSignal(controller.signal, 'DEBUG', 'SLEEP', '0.3'));
    setTimeout(() => controller.abort(reason), 50);
    const result = await pending;
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toBe(reason);
    const fatal = conn.err();
    expect(fatal).toBeInstanceOf(ConnClosedError);
    expect((fatal as ConnClosedError).cause).toBe(reason);
    expect(await rejection(conn.do('PING'))).toBe(fatal);
  });

  it('receiveWithSignal rejects with the abort reason and breaks the conn', async () => {
    const conn = await connect();
    const controller = new AbortController();
    const pending = settle(conn.receiveWithSignal(controller.signal));
    controller.abort('stop listening');
    const result = await pending;
    expect(result).toEqual({ ok: false, error: 'stop listening' });
    expect(conn.err()).toBeInstanceOf(ConnClosedError);
    expect(await rejection(conn.do('PING'))).toBe(conn.err());
  });

  it('an already aborted signal rejects at once with its reason and sends nothing', async () => {
    const conn = await connect();
    const k = key('pre-aborted');
    const signal = AbortSignal.abort(new Error('too late'));
    const err = await rejection(conn.doWithSignal(signal, 'SET', k, '1'));
    expect((err as Error).message).toBe('too late');
    expect(await rejection(conn.receiveWithSignal(signal))).toBe(err);
    expect(await conn.do('EXISTS', k)).toBe(0);
  });

  it('a signal that never aborts leaves no listener behind once the call settles', async () => {
    const conn = await connect();
    const controller = new AbortController();
    for (let i = 0; i < 5; i++) await conn.doWithSignal(controller.signal, 'PING');
    controller.abort(new Error('after the fact'));
    expect(conn.err()).toBeNull();
    expect(await conn.do('PING')).toBe('PONG');
  });
});

describe('broken connections', () => {
  it('CLIENT KILL from another conn rejects the pending call with ConnClosedError', async () => {
    const victim = await connect();
    const killer = await connect();
    const id = await victim.do('CLIENT', 'ID');
    const pending = settle(victim.do('BLPOP', key('never'), 0));
    // Make sure the BLPOP is blocking on the server before killing.
    await expect.poll(async () => text(await killer.do('CLIENT', 'LIST', 'ID', id as number)), { timeout: 2000 }).toMatch(/cmd=blpop/);
    expect(await killer.do('CLIENT', 'KILL', 'ID', id as number)).toBe(1);
    const result = await pending;
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toBeInstanceOf(ConnClosedError);
    expect((!result.ok && (result.error as ConnClosedError).code) || '').toBe('REDIS_CONN_CLOSED');
    expect(victim.err()).toBe(!result.ok && result.error);
    expect(await rejection(victim.do('PING'))).toBe(victim.err());
  });

  it('a call after CLIENT KILL (nothing pending) rejects ConnClosedError', async () => {
    const victim = await connect();
    const killer = await connect();
    const id = await victim.do('CLIENT', 'ID');
    await killer.do('CLIENT', 'KILL', 'ID', id as number);
    const err = await rejection(victim.do('PING'));
    expect(err).toBeInstanceOf(ConnClosedError);
  });

  it('server killed: the pending call rejects ConnClosedError promptly', async () => {
    const doomed = await startExtraServer();
    try {
      const conn = await dial(doomed.addr);
      expect(await conn.do('PING')).toBe('PONG');
      const pending = settle(conn.do('BLPOP', 'nothing', 0));
      const started = Date.now();
      await doomed.kill();
      const result = await pending;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(result.ok).toBe(false);
      expect(!result.ok && result.error).toBeInstanceOf(ConnClosedError);
      expect((!result.ok && (result.error as Error).message) || '').toContain(doomed.addr);
      expect(conn.err()).toBe(!result.ok && result.error);
      await conn.close();
    } finally {
      await doomed.stop();
    }
  });

  it('server paused: readTimeoutMs turns the silence into TimeoutError', async () => {
    const frozen = await startExtraServer();
    try {
      const conn = await dial(frozen.addr, { readTimeoutMs: 200 });
      expect(await conn.do('PING')).toBe('PONG');
      frozen.pause();
      const err = await rejection(conn.do('PING'));
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toContain(frozen.addr);
      expect(conn.err()).toBe(err);
      await conn.close();
    } finally {
      frozen.resume();
      await frozen.stop();
    }
  });
});

describe('read timeout with a listener waiting', () => {
  it.each([2, 3] as const)('RESP%i: a do behind a listening receive still times out on a paused server', async (protocol) => {
    const frozen = await startExtraServer();
    try {
      const conn = await dial(frozen.addr, { readTimeoutMs: 200, protocol });
      const listener = settle(conn.receive());
      frozen.pause();
      const err = await rejection(conn.do('PING'));
      expect(err).toBeInstanceOf(TimeoutError);
      // The listener fails with the same fatal error.
      expect(await listener).toEqual({ ok: false, error: err });
      await conn.close();
    } finally {
      frozen.resume();
      await frozen.stop();
    }
  });
});

describe('close and dispose', () => {
  it('close twice is harmless; every later call rejects ConnClosedError', async () => {
    const conn = await dial(server.addr);
    expect(await conn.do('PING')).toBe('PONG');
    await conn.close();
    await conn.close();
    const err = conn.err();
    expect(err).toBeInstanceOf(ConnClosedError);
    expect(await rejection(conn.do('PING'))).toBe(err);
    expect(await rejection(conn.doWithTimeout(100, 'PING'))).toBe(err);
    expect(await rejection(conn.receive())).toBe(err);
    expect(await rejection(conn.flush())).toBe(err);
    expect(() => conn.send('PING')).toThrow(ConnClosedError);
  });

  it('close while a call is pending rejects it with ConnClosedError', async () => {
    const conn = await dial(server.addr);
    const pending = settle(conn.do('BLPOP', key('close-pending'), 0));
    await conn.close();
    const result = await pending;
    expect(!result.ok && result.error).toBeInstanceOf(ConnClosedError);
  });

  it('await using closes the conn at the end of the block', async () => {
    const watcher = await connect();
    let held: Conn | undefined;
    let id: Reply = null;
    {
      await using conn = await dial(server.addr, { clientName: 'disposable-conn' });
      held = conn;
      id = await conn.do('CLIENT', 'ID');
      expect(conn.err()).toBeNull();
    }
    expect(held.err()).toBeInstanceOf(ConnClosedError);
    await expect.poll(async () => text(await watcher.do('CLIENT', 'LIST', 'ID', id as number)), { timeout: 2000 }).toBe('');
  });
});

describe('RESP3', () => {
  it('HGETALL returns a Map', async () => {
    const conn = await connect({ protocol: 3 });
    expect(conn.protocol).toBe(3);
    const k = key('hash');
    await conn.do('HSET', k, 'f1', 'v1', 'f2', 'v2');
    const reply = await conn.do('HGETALL', k);
    expect(reply).toBeInstanceOf(Map);
    const map = reply as Map<Reply, Reply>;
    expect([...map.keys()].sort()).toEqual(['f1', 'f2']);
    expect(text(map.get('f1'))).toBe('v1');
    expect(text(map.get('f2'))).toBe('v2');
  });

  it('an invalidation push goes to receive() and leaves a concurrent do alone', async () => {
    const tracked = await connect({ protocol: 3 });
    const writer = await connect();
    const k = key('tracked');
    await writer.do('SET', k, 'v1');
    expect(await tracked.do('CLIENT', 'TRACKING', 'ON')).toBe('OK');
    expect(text(await tracked.do('GET', k))).toBe('v1');
    await writer.do('SET', k, 'v2');
    const push = tracked.receive();
    const pong = tracked.do('PING');
    expect(await pong).toBe('PONG');
    const message = (await push) as Reply[];
    expect(Array.isArray(message)).toBe(true);
    expect(text(message[0])).toBe('invalidate');
    expect((message[1] as Reply[]).map((item) => text(item))).toEqual([k]);
    expect(tracked.err()).toBeNull();
  });

  it('a push arriving during a do is parked for the next receive()', async () => {
    const tracked = await connect({ protocol: 3 });
    const writer = await connect();
    const k = key('tracked-parked');
    await tracked.do('CLIENT', 'TRACKING', 'ON');
    await tracked.do('GET', k);
    await writer.do('SET', k, 'v');
    // The push is already on its way; these replies must skip it.
    expect(await tracked.do('ECHO', 'after')).toEqual(Buffer.from('after'));
    expect(await tracked.do('')).toEqual([]);
    const message = (await tracked.receive()) as Reply[];
    expect(text(message[0])).toBe('invalidate');
    expect((message[1] as Reply[]).map((item) => text(item))).toEqual([k]);
  });

  it('a do issued while receive() is already listening still gets its own reply', async () => {
    const tracked = await connect({ protocol: 3 });
    const writer = await connect();
    const k = key('tracked-listening');
    await tracked.do('CLIENT', 'TRACKING', 'ON');
    await tracked.do('GET', k);
    const push = settle(tracked.receive());
    // PONG arrives before any push exists: it belongs to the do, not to receive.
    expect(await tracked.doWithTimeout(2000, 'PING')).toBe('PONG');
    await writer.do('SET', k, 'v');
    const result = await push;
    expect(result.ok).toBe(true);
    const message = (result.ok ? result.value : []) as Reply[];
    expect(text(message[0])).toBe('invalidate');
    expect(tracked.err()).toBeNull();
  });
});

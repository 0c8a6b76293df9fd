/**
 * The `node:diagnostics_channel` TracingChannels (src/diagnostics.ts):
 * `redisconn:command`, `redisconn:pool:get`, `redisconn:connect`: which
 * contexts are published, with what fields, in what order, and that every
 * context started gets its end, against a real redis-server.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnClosedError,
  Pool,
  PoolExhaustedError,
  RedisError,
  TimeoutError,
  commandChannel,
  connectChannel,
  dial,
  poolGetChannel,
  type CommandTraceContext,
  type Conn,
  type ConnectTraceContext,
  type PoolGetTraceContext,
} from '../src/index.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, sleep, useServerWithConn } from './helpers.js';

guardProcessErrors();

type EventName = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';
const EVENT_NAMES: EventName[] = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'];

/** What the caller's AsyncLocalStorage held when `start` fired, by context. */
const als = new AsyncLocalStorage<string>();

/** Records every event of one TracingChannel, in order, with a snapshot of the context at that moment. */
class Recorder<C extends object> {
  readonly events: { name: EventName; context: C; snapshot: Record<string, unknown> }[] = [];
  readonly storeAtStart = new Map<C, string | undefined>();
  private readonly handlers: Record<EventName, (context: C) => void>;
  private subscribed = false;

  constructor(
    private readonly channelName: string,
    private readonly keep: (context: C) => boolean = () => true,
  ) {
    const record = (name: EventName) => (context: C) => {
      if (!this.keep(context)) return;
      if (name === 'start') this.storeAtStart.set(context, als.getStore());
      this.events.push({ name, context, snapshot: { ...context } as Record<string, unknown> });
    };
    this.handlers = Object.fromEntries(EVENT_NAMES.map((name) => [name, record(name)])) as Record<EventName, (context: C) => void>;
    this.subscribe();
  }

  subscribe(): this {
    if (!this.subscribed) diagnostics.tracingChannel<C, C>(this.channelName).subscribe(this.handlers);
    this.subscribed = true;
    return this;
  }

  get isSubscribed(): boolean {
    return this.subscribed;
  }

  unsubscribe(): void {
    if (this.subscribed) diagnostics.tracingChannel<C, C>(this.channelName).unsubscribe(this.handlers);
    this.subscribed = false;
  }

  /** The contexts seen starting, in order. */
  contexts(): C[] {
    return this.events.filter((e) => e.name === 'start').map((e) => e.context);
  }

  /** The events of one context, in order. */
  eventsOf(context: C): EventName[] {
    return this.events.filter((e) => e.context === context).map((e) => e.name);
  }

  /** The contexts started and not yet ended (asyncEnd). */
  open(): C[] {
    return this.contexts().filter((c) => !this.eventsOf(c).includes('asyncEnd'));
  }

  clear(): void {
    this.events.length = 0;
    this.storeAtStart.clear();
  }
}

const OK_EVENTS: EventName[] = ['start', 'end', 'asyncStart', 'asyncEnd'];
const ERROR_EVENTS: EventName[] = ['start', 'end', 'error', 'asyncStart', 'asyncEnd'];

/** Every recorder made in a test; checked (nothing left open) and unsubscribed after it. */
const recorders: Recorder<object>[] = [];

function record<C extends object>(name: string, keep?: (context: C) => boolean): Recorder<C> {
  const recorder = new Recorder<C>(name, keep);
  recorders.push(recorder as unknown as Recorder<object>);
  return recorder;
}

/** Commands of the helper connection (killing, publishing) are left out of command recordings. */
const HELPER_COMMANDS = new Set(['PUBLISH', 'CLIENT']);
function commands(keep: (c: CommandTraceContext) => boolean = (c) => !HELPER_COMMANDS.has(c.command)): Recorder<CommandTraceContext> {
  return record<CommandTraceContext>('redisconn:command', keep);
}

afterEach(async () => {
  try {
    // (A recorder unsubscribed during its test cannot see the ends published after.)
    for (const recorder of recorders.filter((r) => r.isSubscribed)) {
      // Never a context left without its end.
      expect(await eventually(() => recorder.open().length === 0, 1000), `contexts left open: ${JSON.stringify(recorder.open())}`).toBe(true);
    }
  } finally {
    for (const recorder of recorders.splice(0)) recorder.unsubscribe();
  }
});

/** The tracer a NetConn keeps while it matches traced commands (white box: null = nothing kept). */
function tracerOf(conn: Conn): unknown {
  return (conn as unknown as { tracer: unknown }).tracer;
}

/** A TCP port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('tracing channels', () => {
  let server: TestRedisServer;
  let helper: Conn;
  useServerWithConn((started) => ({ server, conn: helper } = started));

  it('exports the three channels under their public names', () => {
    for (const [channel, name] of [
      [commandChannel, 'redisconn:command'],
      [poolGetChannel, 'redisconn:pool:get'],
      [connectChannel, 'redisconn:connect'],
    ] as const) {
      for (const event of EVENT_NAMES) expect(channel[event]).toBe(diagnostics.channel(`tracing:${name}:${event}`));
    }
  });

  describe('redisconn:command', () => {
    it('a single do: one context from the write to the reply, with the server and connection', async () => {
      const conn = await dial(server.addr);
      try {
        const recorder = commands();
        expect(await als.run('caller', () => conn.do('SET', 'trace:k', 'v'))).toBe('OK');
        expect(await conn.do('GET', 'trace:k')).toEqual(Buffer.from('v'));
        const [set, get] = recorder.contexts() as [CommandTraceContext, CommandTraceContext];
        expect(recorder.contexts()).toHaveLength(2);
        expect(set).toMatchObject({
          command: 'SET',
          argCount: 2,
          serverAddress: '127.0.0.1',
          serverPort: server.port,
          db: 0,
          connection: 'direct',
          source: undefined,
          batchSize: 1,
          reply: 'string',
          error: undefined,
          errorCode: undefined,
        });
        expect(recorder.eventsOf(set)).toEqual(OK_EVENTS);
        expect(get).toMatchObject({ command: 'GET', argCount: 1, reply: 'bulk' });
        // At `start` the reply is not in yet; `start` runs in the caller's async context.
        expect(recorder.events[0]?.snapshot).toMatchObject({ command: 'SET', batchSize: 1, reply: undefined });
        expect(recorder.storeAtStart.get(set)).toBe('caller');
        // Argument values are never part of a context.
        expect(JSON.stringify(recorder.contexts())).not.toContain('trace:k');
        expect(Object.keys(set).sort()).toEqual(['argCount', 'batchSize', 'command', 'connection', 'db', 'error', 'errorCode', 'reply', 'serverAddress', 'serverPort', 'source'].sort());
      } finally {
        await conn.close();
      }
    });

    it('upper-cases the command name', async () => {
      const conn = await dial(server.addr);
      try {
        const recorder = commands();
        await conn.do('ping');
        expect(recorder.contexts().map((c) => c.command)).toEqual(['PING']);
      } finally {
        await conn.close();
      }
    });

    it("a pipeline of three sends and do(''): three contexts in send order, batchSize 3, matched to their replies", async () => {
      const conn = await dial(server.addr);
      try {
        await conn.do('DEL', 'trace:p:missing', 'trace:p:n');
        const recorder = commands();
        conn.send('GET', 'trace:p:missing');
        conn.send('SET', 'trace:p:s', 'x');
        conn.send('INCR', 'trace:p:n');
        expect(await conn.do('')).toEqual([null, 'OK', 1]);
        // A do('') owed nothing and an empty-args receive path must not disturb the matching.
        expect(await conn.do('')).toEqual([]);
        expect(await conn.do('ECHO', 'after')).toEqual(Buffer.from('after'));
        const contexts = recorder.contexts();
        expect(contexts.map((c) => [c.command, c.argCount, c.batchSize, c.reply])).toEqual([
          ['GET', 1, 3, 'null'],
          ['SET', 2, 3, 'string'],
          ['INCR', 1, 3, 'integer'],
          ['ECHO', 1, 1, 'bulk'],
        ]);
        // All three written (start/end) before any reply (asyncStart/asyncEnd), replies in order.
        expect(recorder.events.slice(0, 12).map((e) => `${e.name}:${e.context.command}`)).toEqual([
          'start:GET',
          'end:GET',
          'start:SET',
          'end:SET',
          'start:INCR',
          'end:INCR',
          'asyncStart:GET',
          'asyncEnd:GET',
          'asyncStart:SET',
          'asyncEnd:SET',
          'asyncStart:INCR',
          'asyncEnd:INCR',
        ]);
      } finally {
        await conn.close();
      }
    });

    it('send / flush / receive: contexts end as the replies arrive, whoever reads them', async () => {
      const conn = await dial(server.addr);
      try {
        const recorder = commands();
        conn.send('PING');
        conn.send('ECHO', 'x');
        await conn.flush();
        expect(await conn.receive()).toBe('PONG');
        expect(await conn.receive()).toEqual(Buffer.from('x'));
        expect(recorder.contexts().map((c) => [c.command, c.batchSize, c.reply])).toEqual([
          ['PING', 2, 'string'],
          ['ECHO', 2, 'bulk'],
        ]);
      } finally {
        await conn.close();
      }
    });

    it('an error reply: error with errorCode, then asyncStart/asyncEnd; the commands around it are unaffected', async () => {
      const conn = await dial(server.addr);
      try {
        await conn.do('SET', 'trace:str', 'x');
        const recorder = commands();
        const err = await conn.do('LPUSH', 'trace:str', 'y').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RedisError);
        conn.send('PING');
        conn.send('HSET', 'trace:str', 'f', 'v');
        conn.send('ECHO', 'ok');
        const replies = (await conn.do('')) as unknown[];
        expect(replies[1]).toBeInstanceOf(RedisError);
        const [lpush, ping, hset, echo] = recorder.contexts() as [CommandTraceContext, CommandTraceContext, CommandTraceContext, CommandTraceContext];
        expect(lpush).toMatchObject({ command: 'LPUSH', errorCode: 'WRONGTYPE', batchSize: 1 });
        expect(hset).toMatchObject({ command: 'HSET', errorCode: 'WRONGTYPE', reply: undefined, batchSize: 3 });
        expect(hset.error).toBeInstanceOf(RedisError);
        expect(recorder.eventsOf(hset)).toEqual(ERROR_EVENTS);
        expect(recorder.eventsOf(ping)).toEqual(OK_EVENTS);
        expect(echo).toMatchObject({ reply: 'bulk', error: undefined });
      } finally {
        await conn.close();
      }
    });

    it('an error reply to a lone do: WRONGTYPE on the context', async () => {
      const conn = await dial(server.addr);
      try {
        await conn.do('SET', 'trace:str2', 'x');
        const recorder = commands(() => true);
        await expect(conn.do('LPUSH', 'trace:str2', 'y')).rejects.toBeInstanceOf(RedisError);
        const [lpush] = recorder.contexts();
        expect(lpush).toMatchObject({ command: 'LPUSH', errorCode: 'WRONGTYPE' });
        expect((lpush?.error as RedisError).code).toBe('WRONGTYPE');
        expect(recorder.eventsOf(lpush as CommandTraceContext)).toEqual(ERROR_EVENTS);
      } finally {
        await conn.close();
      }
    });

    it('a timeout (doWithTimeout on BLPOP): REDIS_TIMEOUT on that command and on the one owed behind it', async () => {
      const conn = await dial(server.addr);
      try {
        const recorder = commands();
        const blpop = conn.doWithTimeout(100, 'BLPOP', 'trace:empty', 0).catch((e: unknown) => e);
        const behind = conn.do('PING').catch((e: unknown) => e);
        expect(await blpop).toBeInstanceOf(TimeoutError);
        expect(await behind).toBeInstanceOf(TimeoutError);
        const contexts = recorder.contexts();
        expect(contexts.map((c) => [c.command, c.batchSize, c.errorCode])).toEqual([
          ['BLPOP', 2, 'REDIS_TIMEOUT'],
          ['PING', 2, 'REDIS_TIMEOUT'],
        ]);
        for (const context of contexts) {
          expect(context.error).toBeInstanceOf(TimeoutError);
          expect(recorder.eventsOf(context)).toEqual(ERROR_EVENTS);
        }
        expect(tracerOf(conn)).toBeNull();
      } finally {
        await conn.close();
      }
    });

    it('a paused server past the read timeout: REDIS_TIMEOUT on every command owed', async () => {
      const conn = await dial(server.addr, { readTimeoutMs: 100 });
      const recorder = commands();
      server.pause();
      try {
        conn.send('PING');
        conn.send('ECHO', 'x');
        await expect(conn.do('')).rejects.toBeInstanceOf(TimeoutError);
      } finally {
        server.resume();
        await conn.close();
      }
      expect(recorder.contexts().map((c) => [c.command, c.errorCode])).toEqual([
        ['PING', 'REDIS_TIMEOUT'],
        ['ECHO', 'REDIS_TIMEOUT'],
      ]);
    });

    it('a connection killed mid-pipeline (CLIENT KILL): the replies before it end their contexts, every one owed after gets the error', async () => {
      const conn = await dial(server.addr);
      const id = await conn.do('CLIENT', 'ID');
      const recorder = commands(() => true);
      conn.send('PING');
      conn.send('CLIENT', 'KILL', 'ID', id as number, 'SKIPME', 'no');
      conn.send('PING');
      conn.send('ECHO', 'never');
      const drained = await conn.do('').catch((e: unknown) => e);
      expect(drained).toBeInstanceOf(ConnClosedError);
      const contexts = recorder.contexts();
      expect(contexts.map((c) => [c.command, c.batchSize, c.reply, c.errorCode])).toEqual([
        ['PING', 4, 'string', undefined],
        ['CLIENT', 4, 'integer', undefined],
        ['PING', 4, undefined, 'REDIS_CONN_CLOSED'],
        ['ECHO', 4, undefined, 'REDIS_CONN_CLOSED'],
      ]);
      expect(recorder.eventsOf(contexts[3] as CommandTraceContext)).toEqual(ERROR_EVENTS);
      expect(contexts[3]?.error).toBeInstanceOf(ConnClosedError);
      await conn.close();
    });

    it('a connection killed by another client while a pipeline waits: every context owed gets the error', async () => {
      const conn = await dial(server.addr);
      const id = await conn.do('CLIENT', 'ID');
      const recorder = commands();
      conn.send('BLPOP', 'trace:never', 0);
      conn.send('PING');
      conn.send('ECHO', 'x');
      const drained = conn.do('').catch((e: unknown) => e);
      expect(await eventually(async () => String(await helper.do('CLIENT', 'LIST')).includes('cmd=blpop'))).toBe(true);
      await helper.do('CLIENT', 'KILL', 'ID', id as number);
      expect(await drained).toBeInstanceOf(ConnClosedError);
      expect(recorder.contexts().map((c) => [c.command, c.errorCode])).toEqual([
        ['BLPOP', 'REDIS_CONN_CLOSED'],
        ['PING', 'REDIS_CONN_CLOSED'],
        ['ECHO', 'REDIS_CONN_CLOSED'],
      ]);
      await conn.close();
    });

    it('close() with commands owed ends their contexts with the close error', async () => {
      const conn = await dial(server.addr);
      const recorder = commands();
      const blpop = conn.do('BLPOP', 'trace:never', 0).catch((e: unknown) => e);
      await eventually(() => recorder.contexts().length === 1);
      await conn.close();
      expect(await blpop).toBeInstanceOf(ConnClosedError);
      expect(recorder.contexts().map((c) => [c.command, c.errorCode])).toEqual([['BLPOP', 'REDIS_CONN_CLOSED']]);
    });

    it('RESP2 SUBSCRIBE a b, then messages: contexts end with their first confirmation, messages and extra confirmations take none', async () => {
      const sub = await dial(server.addr);
      try {
        const recorder = commands();
        sub.send('SUBSCRIBE', 'trace:a', 'trace:b');
        sub.send('SUBSCRIBE', 'trace:c');
        sub.send('PING');
        await sub.flush();
        const confirmations = [await sub.receive(), await sub.receive(), await sub.receive()];
        expect(confirmations.map((r) => String((r as Buffer[])[1]))).toEqual(['trace:a', 'trace:b', 'trace:c']);
        expect(await sub.receive()).toEqual([Buffer.from('pong'), Buffer.from('')]);
        // Messages published while a PING is owed: they take no context.
        await helper.do('PUBLISH', 'trace:a', 'm1');
        sub.send('PING', 'p2');
        await sub.flush();
        await helper.do('PUBLISH', 'trace:c', 'm2');
        const rest = [await sub.receive(), await sub.receive(), await sub.receive()];
        // (The server may run the second PUBLISH before or after the PING.)
        expect(rest.map((r) => String((r as Buffer[])[0])).sort()).toEqual(['message', 'message', 'pong']);
        // Unsubscribe from all (three confirmations), then a PING answered outside subscribed mode.
        sub.send('UNSUBSCRIBE');
        sub.send('PING');
        await sub.flush();
        for (let i = 0; i < 3; i++) expect(String(((await sub.receive()) as Buffer[])[0])).toBe('unsubscribe');
        expect(await sub.receive()).toBe('PONG');
        expect(recorder.contexts().map((c) => [c.command, c.argCount, c.batchSize, c.reply])).toEqual([
          ['SUBSCRIBE', 2, 3, 'array'],
          ['SUBSCRIBE', 1, 3, 'array'],
          ['PING', 0, 3, 'array'],
          ['PING', 1, 1, 'array'],
          ['UNSUBSCRIBE', 0, 2, 'array'],
          ['PING', 0, 2, 'string'],
        ]);
        // The SUBSCRIBE a b context ended before the second SUBSCRIBE's (with 'subscribe a', not 'b').
        const ends = recorder.events.filter((e) => e.name === 'asyncEnd').map((e) => e.context.command);
        expect(ends.slice(0, 3)).toEqual(['SUBSCRIBE', 'SUBSCRIBE', 'PING']);
        expect(tracerOf(sub)).not.toBeNull(); // still subscribed to: kept
      } finally {
        await sub.close();
      }
    });

    it('RESP3: subscription confirmations end subscribe contexts as pushes; messages and other pushes take none', async () => {
      const sub = await dial(server.addr, { protocol: 3 });
      try {
        const recorder = commands(() => true);
        sub.send('SUBSCRIBE', 'trace:r3a', 'trace:r3b');
        // Published by this very connection: its message arrives while the PUBLISH is owed.
        sub.send('PUBLISH', 'trace:r3a', 'hello');
        sub.send('PING');
        await sub.flush();
        const got = [];
        for (let i = 0; i < 5; i++) got.push(await sub.receive());
        expect(got[2]).toEqual([Buffer.from('message'), Buffer.from('trace:r3a'), Buffer.from('hello')]);
        expect(got[3]).toBe(1);
        expect(got[4]).toBe('PONG');
        // Client-side caching invalidations are pushes too.
        await sub.do('CLIENT', 'TRACKING', 'on');
        await sub.do('GET', 'trace:tracked');
        await helper.do('SET', 'trace:tracked', 'changed');
        const invalidation = await sub.receiveWithTimeout(2000);
        expect(String((invalidation as Buffer[])[0])).toBe('invalidate');
        expect(await sub.do('ECHO', 'last')).toEqual(Buffer.from('last'));
        expect(recorder.contexts().map((c) => [c.command, c.batchSize, c.reply])).toEqual([
          ['SUBSCRIBE', 3, 'push'],
          ['PUBLISH', 3, 'integer'],
          ['PING', 3, 'string'],
          ['CLIENT', 1, 'string'],
          ['GET', 1, 'null'],
          ['SET', 1, 'string'], // the helper's
          ['ECHO', 1, 'bulk'],
        ]);
      } finally {
        await sub.close();
      }
    });

    it('a MULTI / INCR / EXEC transaction on a pool.get() connection: kind exclusive, EXEC reply array', async () => {
      const pool = new Pool({ dial: () => dial(server.addr) });
      try {
        const recorder = commands();
        const conn = await pool.get();
        conn.send('MULTI');
        conn.send('INCR', 'trace:tx');
        const exec = await conn.do('EXEC');
        expect(Array.isArray(exec)).toBe(true);
        await conn.close();
        expect(recorder.contexts().map((c) => [c.command, c.connection, c.batchSize, c.reply, c.source === pool])).toEqual([
          ['MULTI', 'exclusive', 3, 'string', true],
          ['INCR', 'exclusive', 3, 'string', true],
          ['EXEC', 'exclusive', 3, 'array', true],
        ]);
      } finally {
        await pool.close();
      }
    });

    it('pool.do runs on the shared connection; a lease is shared until MULTI moves it, then lease; the connection lent again reports exclusive', async () => {
      const pool = new Pool({ dial: () => dial(server.addr), maxIdle: 1 });
      try {
        const recorder = commands();
        // Two callers in one turn: one write, each context started in its own caller's async context.
        await Promise.all([als.run('one', () => pool.do('SET', 'trace:shared', '1')), als.run('two', () => pool.do('GET', 'trace:shared'))]);
        const [set, get] = recorder.contexts() as [CommandTraceContext, CommandTraceContext];
        expect([set.connection, get.connection, set.batchSize, get.batchSize, set.source === pool]).toEqual(['shared', 'shared', 2, 2, true]);
        expect([recorder.storeAtStart.get(set), recorder.storeAtStart.get(get)]).toEqual(['one', 'two']);
        recorder.clear();

        const lease = pool.lease();
        expect(await lease.do('GET', 'trace:shared')).toEqual(Buffer.from('1'));
        lease.send('MULTI');
        lease.send('INCR', 'trace:shared');
        expect(await lease.do('EXEC')).toEqual([2]);
        await lease.close();
        expect(recorder.contexts().map((c) => [c.command, c.connection])).toEqual([
          ['GET', 'shared'],
          ['MULTI', 'lease'],
          ['INCR', 'lease'],
          ['EXEC', 'lease'],
        ]);
        recorder.clear();

        // The same connection (the one idle), now an exclusive borrow.
        const conn = await pool.get();
        await conn.do('PING');
        await conn.close();
        expect(pool.stats().dials).toBe(2); // the shared one and the lease's, nothing more
        expect(recorder.contexts().map((c) => [c.command, c.connection])).toEqual([['PING', 'exclusive']]);
      } finally {
        await pool.close();
      }
    });

    it('handshake commands are not traced as commands (the connect context covers them)', async () => {
      const recorder = commands(() => true);
      const connects = record<ConnectTraceContext>('redisconn:connect');
      const conn = await dial(server.addr, { db: 3, clientName: 'trace-handshake', protocol: 3 });
      try {
        expect(recorder.contexts()).toEqual([]);
        await conn.do('PING');
        expect(recorder.contexts().map((c) => [c.command, c.db])).toEqual([['PING', 3]]);
        expect(connects.contexts()).toHaveLength(1);
        expect(connects.contexts()[0]).toMatchObject({ db: 3, protocol: 3, tls: false, outcome: 'ok' });
      } finally {
        await conn.close();
      }
    });

    it('nothing is published without a subscriber; one arriving mid-pipeline sees only later commands, matched past the earlier replies', async () => {
      const conn = await dial(server.addr);
      try {
        await conn.do('DEL', 'trace:late', 'trace:late:list');
        // Owed when the subscriber comes: two untraced replies (nil after 100 ms, then 1) ahead of the traced one.
        conn.send('BLPOP', 'trace:late:list', 0.1);
        conn.send('INCR', 'trace:late');
        await conn.flush();
        expect(tracerOf(conn)).toBeNull();
        const recorder = commands();
        expect(await conn.do('ECHO', 'traced')).toEqual(Buffer.from('traced'));
        expect(recorder.contexts().map((c) => [c.command, c.batchSize, c.reply])).toEqual([['ECHO', 1, 'bulk']]);
        expect(recorder.open()).toEqual([]);
      } finally {
        await conn.close();
      }
    });

    it('unsubscribing with contexts owed leaks nothing; resubscribing matches past untraced commands sent meanwhile', async () => {
      const conn = await dial(server.addr);
      try {
        await conn.do('DEL', 'trace:gap', 'trace:gap:list');
        const first = commands();
        conn.send('BLPOP', 'trace:gap:list', 0.1); // traced, written, owed (100 ms) when the subscriber leaves
        await conn.flush();
        first.unsubscribe();
        conn.send('INCR', 'trace:gap'); // untraced, behind it
        const second = commands();
        conn.send('ECHO', 'b'); // traced again
        await conn.flush();
        expect(await conn.receive()).toBeNull();
        expect(await conn.receive()).toBe(1);
        expect(await conn.receive()).toEqual(Buffer.from('b'));
        expect(first.events.map((e) => `${e.name}:${e.context.command}`)).toEqual(['start:BLPOP', 'end:BLPOP']);
        expect(second.contexts().map((c) => [c.command, c.batchSize, c.reply])).toEqual([['ECHO', 2, 'bulk']]);
        // The BLPOP's context ended (its asyncEnd reached the second recorder, which saw no start).
        expect(second.events.filter((e) => e.context.command === 'BLPOP').map((e) => e.name)).toEqual(['asyncStart', 'asyncEnd']);
        expect(second.events.find((e) => e.context.command === 'BLPOP')?.context.reply).toBe('null');
        second.unsubscribe();
        // Nobody subscribed, nothing owed: the connection keeps no tracing state.
        await conn.do('PING');
        expect(tracerOf(conn)).toBeNull();
      } finally {
        await conn.close();
      }
    });
  });

  describe('redisconn:pool:get', () => {
    it('waited false on the fast path, true when it dials or waits for a slot; durationMs and outcome set before asyncEnd', async () => {
      const pool = new Pool({ dial: () => dial(server.addr), maxActive: 1 });
      try {
        const recorder = record<PoolGetTraceContext>('redisconn:pool:get');
        const first = await pool.get(); // dials
        await first.close();
        const holder = await pool.get(); // the idle one, at once
        const waiting = pool.get();
        expect(await eventually(() => pool.stats().waitCount === 1)).toBe(true);
        const waitSeen = performance.now();
        // Held a little longer, so the wait has a length worth measuring (a
        // duration, not a wait for anything): it lasts at least from when it
        // was seen to the release.
        await sleep(15);
        const heldMs = performance.now() - waitSeen;
        await holder.close();
        await (await waiting).close();
        const contexts = recorder.contexts();
        expect(contexts.map((c) => [c.waited, c.outcome, c.source === pool])).toEqual([
          [true, 'ok', true],
          [false, 'ok', true],
          [true, 'ok', true],
        ]);
        for (const context of contexts) expect(recorder.eventsOf(context)).toEqual(OK_EVENTS);
        expect(contexts[2]?.durationMs).toBeGreaterThanOrEqual(heldMs);
        // Set by the time asyncStart fires (and not before the get settled).
        const asyncStarts = recorder.events.filter((e) => e.name === 'asyncStart');
        expect(asyncStarts.every((e) => typeof e.snapshot.durationMs === 'number' && e.snapshot.outcome === 'ok')).toBe(true);
        expect(recorder.events.filter((e) => e.name === 'start').every((e) => e.snapshot.outcome === undefined)).toBe(true);
      } finally {
        await pool.close();
      }
    });

    it('a failed get: error set, outcome error, then asyncStart/asyncEnd', async () => {
      const pool = new Pool({ dial: () => dial(server.addr), maxActive: 1, wait: false });
      try {
        const recorder = record<PoolGetTraceContext>('redisconn:pool:get');
        const holder = await pool.get();
        await expect(pool.get()).rejects.toBeInstanceOf(PoolExhaustedError);
        await holder.close();
        const failed = recorder.contexts()[1] as PoolGetTraceContext;
        expect(failed).toMatchObject({ outcome: 'error', waited: false });
        expect(failed.error).toBeInstanceOf(PoolExhaustedError);
        expect(recorder.eventsOf(failed)).toEqual(ERROR_EVENTS);
        const atError = recorder.events.find((e) => e.name === 'error')?.snapshot;
        expect(atError).toMatchObject({ outcome: 'error' });
        expect(typeof atError?.durationMs).toBe('number');
      } finally {
        await pool.close();
      }
    });

    it("a lease moving borrows through the pool: one pool:get context; none published without a subscriber", async () => {
      const pool = new Pool({ dial: () => dial(server.addr) });
      try {
        await (await pool.get()).close(); // untraced
        const recorder = record<PoolGetTraceContext>('redisconn:pool:get');
        const lease = pool.lease();
        await lease.doWithTimeout(1000, 'PING');
        await lease.close();
        expect(recorder.contexts().map((c) => [c.waited, c.outcome])).toEqual([[false, 'ok']]);
      } finally {
        await pool.close();
      }
    });
  });

  describe('redisconn:connect', () => {
    it('a dial that connects: the server, durationMs and outcome ok', async () => {
      const recorder = record<ConnectTraceContext>('redisconn:connect');
      const conn = await dial(server.addr, { db: 1 });
      await conn.close();
      const [context] = recorder.contexts();
      expect(context).toMatchObject({ serverAddress: '127.0.0.1', serverPort: server.port, db: 1, tls: false, protocol: 2, outcome: 'ok', error: undefined });
      expect(context?.durationMs).toBeGreaterThan(0);
      expect(recorder.eventsOf(context as ConnectTraceContext)).toEqual(OK_EVENTS);
    });

    it('a dial to a closed port: outcome error with the error', async () => {
      const port = await closedPort();
      const recorder = record<ConnectTraceContext>('redisconn:connect');
      const err = await dial(`127.0.0.1:${port}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnClosedError);
      const [context] = recorder.contexts();
      expect(context).toMatchObject({ serverAddress: '127.0.0.1', serverPort: port, outcome: 'error' });
      expect(context?.error).toBe(err);
      expect(recorder.eventsOf(context as ConnectTraceContext)).toEqual(ERROR_EVENTS);
    });

    it('a failed handshake: outcome error with the server error', async () => {
      const recorder = record<ConnectTraceContext>('redisconn:connect');
      const err = await dial(server.addr, { db: 999_999 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RedisError);
      expect(recorder.contexts()[0]).toMatchObject({ db: 999_999, outcome: 'error', error: err });
    });
  });
});

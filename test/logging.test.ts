/**
 * newLoggingConn against a real redis-server, logging through pino into an
 * in-memory stream: commands with replies and errors, cut values, redacted
 * credentials, the filter, and every Conn method forwarded.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial } from '../src/dial.js';
import { ConnClosedError, RedisError, TimeoutError } from '../src/errors.js';
import { newLoggingConn, type LoggingConnOptions } from '../src/logging.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { guardProcessErrors, rejection, uniqueKeys } from './helpers.js';

guardProcessErrors();

const PASSWORD = 's3cret-Pa55word-xyzzy';

let server: TestRedisServer;
const conns: Conn[] = [];
let lines: string[] = [];

beforeAll(async () => {
  server = await startRedisServer({ password: PASSWORD });
});

afterAll(async () => {
  await Promise.all(conns.map((conn) => conn.close()));
  await server?.stop();
});

beforeEach(() => {
  lines = [];
});

/** A pino logger at `level` whose output lands in `lines`. */
function memoryLogger(level = 'debug'): pino.Logger {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  return pino({ level }, destination);
}

interface LogEntry {
  level: number;
  msg: string;
  op: string;
  conn?: string;
  cmd?: string;
  args?: unknown[];
  reply?: unknown;
  err?: { type: string; message: string; code?: string };
  ms: number;
}

function entries(): LogEntry[] {
  return lines.map((line) => JSON.parse(line) as LogEntry);
}

/** A raw conn (logged in with the password at dial) wrapped for logging. */
async function logged(options?: LoggingConnOptions, level = 'debug'): Promise<{ conn: Conn; raw: Conn }> {
  const raw = await dial(server.addr, { password: PASSWORD });
  conns.push(raw);
  return { conn: newLoggingConn(raw, memoryLogger(level), options), raw };
}

const key = uniqueKeys('logging-test');

describe('newLoggingConn', () => {
  it('logs each command with its arguments and reply at debug level', async () => {
    const { conn } = await logged();
    const k = key('setget');
    expect(await conn.do('SET', k, 'value', 'EX', 60)).toBe('OK');
    expect(await conn.do('GET', k)).toEqual(Buffer.from('value'));
    expect(await conn.do('EXISTS', k)).toBe(1);
    const [set, get, exists] = entries();
    expect(set).toMatchObject({ level: 20, msg: 'redis do SET', op: 'do', cmd: 'SET', args: [k, 'value', 'EX', 60], reply: 'OK' });
    expect(get).toMatchObject({ op: 'do', cmd: 'GET', args: [k], reply: 'value' });
    expect(exists).toMatchObject({ cmd: 'EXISTS', reply: 1 });
    expect(typeof set?.ms).toBe('number');
    expect(entries()).toHaveLength(3);
  });

  it('logs error replies and passes the same error through', async () => {
    const { conn } = await logged();
    const k = key('wrongtype');
    await conn.do('SET', k, 'text');
    const err = await rejection(conn.do('INCR', k));
    expect(err).toBeInstanceOf(RedisError);
    const entry = entries()[1];
    expect(entry).toMatchObject({ op: 'do', cmd: 'INCR', args: [k] });
    expect(entry?.reply).toBeUndefined();
    expect(entry?.err?.message).toBe((err as RedisError).message);
    expect(entry?.err?.code).toBe('ERR');
    expect(conn.err()).toBeNull();
  });

  it('cuts long strings and byte strings at 32 characters with an ellipsis and the length', async () => {
    const { conn } = await logged();
    const k = key('long');
    const value = 'abcdefghij'.repeat(10);
    await conn.do('SET', k, value);
    await conn.do('GET', k);
    await conn.do('ECHO', Buffer.from('x'.repeat(32)));
    const [set, get, echo] = entries();
    const expected = `${value.slice(0, 32)}…(100 chars)`;
    expect(set?.args?.[1]).toBe(expected);
    expect(get?.reply).toBe(`${value.slice(0, 32)}…(100 bytes)`);
    expect((get?.reply as string).startsWith(value.slice(0, 32))).toBe(true);
    // Exactly 32 is not cut.
    expect(echo?.args).toEqual(['x'.repeat(32)]);
    expect(echo?.reply).toBe('x'.repeat(32));
    expect(lines.join('\n')).not.toContain(value.slice(0, 33));
  });

  it('cuts arrays at 32 elements, in arguments and replies', async () => {
    const { conn } = await logged();
    const k = key('list');
    const items = Array.from({ length: 40 }, (_, i) => `item${i}`);
    expect(await conn.do('RPUSH', k, ...items)).toBe(40);
    const range = await conn.do('LRANGE', k, 0, -1);
    expect(range).toHaveLength(40);
    const [push, lrange] = entries();
    expect(push?.args).toHaveLength(33);
    expect(push?.args?.slice(0, 2)).toEqual([k, 'item0']);
    expect(push?.args?.[32]).toBe('…(41 elements)');
    expect(lrange?.reply).toHaveLength(33);
    expect((lrange?.reply as unknown[]).slice(0, 32)).toEqual(items.slice(0, 32));
    expect((lrange?.reply as unknown[])[32]).toBe('…(40 elements)');
  });

  it('never logs AUTH or HELLO AUTH credentials, even on failure', async () => {
    const { conn } = await logged();
    expect(await conn.do('AUTH', PASSWORD)).toBe('OK');
    expect(await conn.do('AUTH', 'default', PASSWORD)).toBe('OK');
    expect(await rejection(conn.do('auth', `${PASSWORD}-wrong`))).toBeInstanceOf(RedisError);
    expect(await conn.do('HELLO', 2, 'AUTH', 'default', PASSWORD, 'SETNAME', 'logged')).toBeInstanceOf(Array);
    conn.send('AUTH', Buffer.from(PASSWORD));
    expect(await conn.do('CLIENT', 'GETNAME')).toEqual(Buffer.from('logged'));
    const all = lines.join('\n');
    expect(all).not.toContain(PASSWORD);
    expect(all).not.toContain('s3cret');
    const [auth1, auth2, auth3, hello, send] = entries();
    expect(auth1?.args).toEqual(['[redacted]']);
    expect(auth2?.args).toEqual(['[redacted]', '[redacted]']);
    expect(auth3?.args).toEqual(['[redacted]']);
    expect(auth3?.err?.code).toBe('WRONGPASS');
    expect(hello?.args).toEqual([2, 'AUTH', '[redacted]', '[redacted]', 'SETNAME', 'logged']);
    expect(send).toMatchObject({ op: 'send', cmd: 'AUTH', args: ['[redacted]'] });
  });

  it('redacts passwords in CONFIG SET, ACL SETUSER and MIGRATE', async () => {
    const { conn } = await logged();
    expect(await conn.do('CONFIG', 'SET', 'masterauth', `${PASSWORD}-m`, 'maxmemory-policy', 'noeviction')).toBe('OK');
    expect(await conn.do('ACL', 'SETUSER', 'logging-user', 'on', `>${PASSWORD}-u`, '~*', '+get')).toBe('OK');
    const migrate = await conn.do('MIGRATE', server.host, server.port, '', 0, 1000, 'AUTH2', 'default', `${PASSWORD}-x`, 'KEYS', key('absent'));
    expect(migrate).toBe('NOKEY');
    expect(lines.join('\n')).not.toContain(PASSWORD);
    const [config, acl, mig] = entries();
    expect(config?.args).toEqual(['SET', 'masterauth', '[redacted]', 'maxmemory-policy', 'noeviction']);
    expect(acl?.args).toEqual(['SETUSER', 'logging-user', 'on', '[redacted]', '~*', '+get']);
    expect(mig?.args?.slice(5, 9)).toEqual(['AUTH2', '[redacted]', '[redacted]', 'KEYS']);
  });

  it('skips the commands the filter rejects and passes it the arguments', async () => {
    const seen: [string, unknown[]][] = [];
    const { conn } = await logged({
      filter: (cmd, args) => {
        seen.push([cmd, [...args]]);
        return cmd.toUpperCase() !== 'PING';
      },
    });
    expect(await conn.do('PING')).toBe('PONG');
    expect(await conn.do('ECHO', 'kept')).toEqual(Buffer.from('kept'));
    conn.send('PING');
    expect(await conn.do('ping')).toBe('PONG');
    expect(entries().map((e) => e.cmd)).toEqual(['ECHO']);
    expect(seen).toEqual([['PING', []], ['ECHO', ['kept']], ['PING', []], ['ping', []]]);
  });

  it('adds the name to every entry', async () => {
    const { conn } = await logged({ name: 'cache-7' });
    await conn.do('PING');
    conn.send('PING');
    await conn.flush();
    await conn.receive();
    expect(entries().map((e) => [e.op, e.conn])).toEqual([
      ['do', 'cache-7'],
      ['send', 'cache-7'],
      ['flush', 'cache-7'],
      ['receive', 'cache-7'],
    ]);
  });

  it('logs send, flush and receive with the received replies', async () => {
    const { conn } = await logged();
    const k = key('pipeline');
    conn.send('SET', k, 'piped');
    conn.send('GET', k);
    await conn.flush();
    expect(await conn.receive()).toBe('OK');
    expect(await conn.receiveWithTimeout(5_000)).toEqual(Buffer.from('piped'));
    expect(entries().map((e) => ({ op: e.op, cmd: e.cmd, reply: e.reply }))).toEqual([
      { op: 'send', cmd: 'SET', reply: undefined },
      { op: 'send', cmd: 'GET', reply: undefined },
      { op: 'flush', cmd: undefined, reply: undefined },
      { op: 'receive', cmd: undefined, reply: 'OK' },
      { op: 'receiveWithTimeout', cmd: undefined, reply: 'piped' },
    ]);
    expect(() => conn.send('SET', k, {} as never)).toThrow(TypeError);
    expect(entries()[5]).toMatchObject({ op: 'send', cmd: 'SET', err: { type: 'TypeError' } });
  });

  it('formats RESP3 maps, sets and doubles', async () => {
    const raw = await dial(server.addr, { password: PASSWORD, protocol: 3 });
    conns.push(raw);
    const conn = newLoggingConn(raw, memoryLogger());
    const [h, set, zset] = [key('hash'), key('set'), key('zset')];
    await conn.do('HSET', h, 'f1', 'v1', 'f2', 'x'.repeat(40));
    expect(await conn.do('HGETALL', h)).toBeInstanceOf(Map);
    await conn.do('SADD', set, 'only');
    expect(await conn.do('SMEMBERS', set)).toBeInstanceOf(Set);
    await conn.do('ZADD', zset, 1.5, 'm');
    expect(await conn.do('ZSCORE', zset, 'm')).toBe(1.5);
    const [, hgetall, , smembers, , zscore] = entries();
    expect(hgetall?.reply).toEqual({ f1: 'v1', f2: `${'x'.repeat(32)}…(40 bytes)` });
    expect(smembers?.reply).toEqual(['only']);
    expect(zscore?.reply).toBe(1.5);
  });

  it('forwards every Conn method', async () => {
    const { conn, raw } = await logged();
    expect(conn.protocol).toBe(2);
    expect(conn.err()).toBeNull();
    expect(await conn.doWithTimeout(5_000, 'ECHO', 'timed')).toEqual(Buffer.from('timed'));
    expect(await conn.doWithSignal(new AbortController().signal, 'ECHO', 'signalled')).toEqual(Buffer.from('signalled'));
    conn.send('ECHO', 'by signal');
    await conn.flush();
    expect(await conn.receiveWithSignal(new AbortController().signal)).toEqual(Buffer.from('by signal'));
    conn.send('PING');
    expect(await conn.do('')).toEqual(['PONG']);
    expect(entries().map((e) => e.op)).toEqual(['doWithTimeout', 'doWithSignal', 'send', 'flush', 'receiveWithSignal', 'send', 'do']);
    expect(entries()[6]).toMatchObject({ cmd: '', args: [], reply: ['PONG'] });

    // A timeout breaks the conn; the wrapper reports it and logs the error.
    expect(await rejection(conn.receiveWithTimeout(30))).toBeInstanceOf(TimeoutError);
    expect(conn.err()).toBe(raw.err());
    expect(entries()[7]).toMatchObject({ op: 'receiveWithTimeout', err: { type: 'TimeoutError' } });
    await conn[Symbol.asyncDispose]();
    expect(entries()[8]).toMatchObject({ op: 'close' });
    expect(raw.err()).not.toBeNull();
  });

  it('close() closes the wrapped conn', async () => {
    const { conn, raw } = await logged();
    await conn.close();
    expect(raw.err()).toBeInstanceOf(ConnClosedError);
    await expect(conn.do('PING')).rejects.toBeInstanceOf(ConnClosedError);
    expect(entries().map((e) => e.op)).toEqual(['close', 'do']);
  });

  it('logs nothing, and formats nothing, when debug is disabled', async () => {
    const { conn } = await logged({}, 'info');
    let formatted = 0;
    const arg = {
      redisArg: () => {
        formatted++;
        return 'lazy';
      },
    };
    expect(await conn.do('ECHO', arg)).toEqual(Buffer.from('lazy'));
    conn.send('PING');
    await conn.flush();
    expect(await conn.receive()).toBe('PONG');
    expect(lines).toEqual([]);
    expect(formatted).toBe(1); // only the encoder called it
  });
});

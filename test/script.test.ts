/**
 * Script against a real redis-server: the SHA-1 digest, EVALSHA with the EVAL
 * fallback after SCRIPT FLUSH (checked in INFO commandstats), send / sendHash
 * pipelines, SCRIPT LOAD, key-count validation and script errors.
 */
import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { RedisError } from '../src/errors.js';
import type { Reply } from '../src/resp/decode.js';
import { Script } from '../src/script.js';
import { guardProcessErrors, rejection, text, useServerWithConn } from './helpers.js';

guardProcessErrors();

let conn: Conn;

useServerWithConn((started) => ({ conn } = started));

beforeEach(async () => {
  await conn.do('SCRIPT', 'FLUSH');
  await conn.do('CONFIG', 'RESETSTAT');
});

/** Calls of `command` since the last CONFIG RESETSTAT, from INFO commandstats. */
async function calls(command: string): Promise<number> {
  const info = text(await conn.do('INFO', 'commandstats'));
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
  return match === null ? 0 : Number(match[1]);
}

/** Calls of `command` the server refused before running it (e.g. NOSCRIPT) or that failed. */
async function failures(command: string): Promise<number> {
  const info = text(await conn.do('INFO', 'commandstats'));
  const match = new RegExp(`^cmdstat_${command}:.*rejected_calls=(\\d+),failed_calls=(\\d+)`, 'm').exec(info);
  return match === null ? 0 : Number(match[1]) + Number(match[2]);
}

/** Returns its keys and args back, so a test sees what the server got. */
const echo = new Script(2, 'return {KEYS[1], KEYS[2], ARGV[1]}');

const texts = (reply: Reply): string[] => (reply as Reply[]).map((item) => text(item));

describe('Script', () => {
  it('hash is the hex SHA-1 of the source, the digest the server computes', async () => {
    expect(echo.hash).toBe(createHash('sha1').update(echo.src).digest('hex'));
    expect(echo.hash).toMatch(/^[0-9a-f]{40}$/);
    expect(text(await conn.do('SCRIPT', 'LOAD', echo.src))).toBe(echo.hash);
    const unicode = new Script(0, "return 'héllo ✓'");
    expect(unicode.hash).toBe(createHash('sha1').update(Buffer.from("return 'héllo ✓'", 'utf8')).digest('hex'));
    expect(text(await conn.do('SCRIPT', 'LOAD', unicode.src))).toBe(unicode.hash);
  });

  it('do() runs a cached script with EVALSHA only', async () => {
    await echo.load(conn);
    expect(texts(await echo.do(conn, 'k1', 'k2', 'a1'))).toEqual(['k1', 'k2', 'a1']);
    expect(await calls('evalsha')).toBe(1);
    expect(await calls('eval')).toBe(0);
  });

  it('do() falls back to EVAL after SCRIPT FLUSH, which caches the script again', async () => {
    await echo.load(conn);
    await conn.do('SCRIPT', 'FLUSH');
    expect(await conn.do('SCRIPT', 'EXISTS', echo.hash)).toEqual([0]);
    expect(texts(await echo.do(conn, 'x', 'y', 'z'))).toEqual(['x', 'y', 'z']);
    expect(await calls('evalsha')).toBe(1);
    expect(await failures('evalsha')).toBe(1);
    expect(await calls('eval')).toBe(1);
    expect(await conn.do('SCRIPT', 'EXISTS', echo.hash)).toEqual([1]);

    // Now cached: EVALSHA again, no second EVAL.
    expect(texts(await echo.do(conn, 'x', 'y', 'z'))).toEqual(['x', 'y', 'z']);
    expect(await calls('evalsha')).toBe(2);
    expect(await calls('eval')).toBe(1);
  });

  it('send() pipelines EVAL and sendHash() EVALSHA; replies come through receive', async () => {
    echo.send(conn, 'a', 'b', 'c');
    echo.sendHash(conn, 'd', 'e', 'f');
    await conn.flush();
    expect(texts(await conn.receive())).toEqual(['a', 'b', 'c']);
    expect(texts(await conn.receive())).toEqual(['d', 'e', 'f']);
    expect(await calls('eval')).toBe(1);
    expect(await calls('evalsha')).toBe(1);
  });

  it('sendHash() of a script the server lacks gets NOSCRIPT through receive', async () => {
    echo.sendHash(conn, 'a', 'b', 'c');
    await conn.flush();
    const err = await rejection(conn.receive());
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('NOSCRIPT');
    expect(conn.err()).toBeNull();
  });

  it('load() makes EVALSHA work', async () => {
    await echo.load(conn);
    expect(await conn.do('SCRIPT', 'EXISTS', echo.hash)).toEqual([1]);
    expect(texts(await conn.do('EVALSHA', echo.hash, 2, 'k', 'l', 'm'))).toEqual(['k', 'l', 'm']);
    expect(await calls('eval')).toBe(0);
  });

  it('keyCount 0 passes every argument as ARGV', async () => {
    const script = new Script(0, 'return {#KEYS, ARGV[1], ARGV[2]}');
    const reply = (await script.do(conn, 'one', 2)) as Reply[];
    expect(reply[0]).toBe(0);
    expect(texts(reply.slice(1))).toEqual(['one', '2']);
  });

  it('keyCount -1 takes the key count from the first argument', async () => {
    const script = new Script(-1, 'return {#KEYS, #ARGV}');
    expect(await script.do(conn, 2, 'k1', 'k2', 'a1')).toEqual([2, 1]);
    expect(await script.do(conn, '0', 'a1', 'a2')).toEqual([0, 2]);
    expect(await script.do(conn, 3n, 'k1', 'k2', 'k3')).toEqual([3, 0]);
    for (const bad of [[], [3, 'k1'], ['x', 'k1'], [-1], [1.5, 'k'], [null, 'k']]) {
      await expect(script.do(conn, ...bad)).rejects.toBeInstanceOf(TypeError);
    }
    expect(() => script.send(conn, 2, 'k1')).toThrow(TypeError);
  });

  it('too few arguments for keyCount is a TypeError and nothing is sent', async () => {
    await expect(echo.do(conn, 'only-one')).rejects.toThrow(/takes 2 keys, got 1/);
    expect(() => echo.send(conn, 'only-one')).toThrow(TypeError);
    expect(() => echo.sendHash(conn)).toThrow(TypeError);
    expect(await calls('eval')).toBe(0);
    expect(await calls('evalsha')).toBe(0);
    // Nothing was buffered either: the next command's reply is its own.
    expect(await conn.do('PING')).toBe('PONG');
  });

  it('rejects a bad keyCount at construction', () => {
    for (const bad of [-2, 1.5, Number.NaN, Infinity]) {
      expect(() => new Script(bad, 'return 1')).toThrow(RangeError);
    }
  });

  it('a script error rejects with RedisError and the conn stays usable', async () => {
    const raising = new Script(0, "return redis.error_reply('MYERR it broke')");
    const err = await rejection(raising.do(conn));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('MYERR');

    const wrongType = new Script(1, "return redis.call('INCR', KEYS[1])");
    await conn.do('SET', 'script-test:string', 'not a number');
    const typeErr = await rejection(wrongType.do(conn, 'script-test:string'));
    expect(typeErr).toBeInstanceOf(RedisError);
    expect((typeErr as RedisError).message).toMatch(/not an integer/);

    const syntax = new Script(0, 'this is not lua');
    expect(await rejection(syntax.do(conn))).toBeInstanceOf(RedisError);
    expect(conn.err()).toBeNull();
    expect(await conn.do('PING')).toBe('PONG');
  });
});

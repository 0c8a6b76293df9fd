/**
 * The blob cache against a real redis-server: get/set/delete, the key layout
 * (checked with a raw connection), custom prefix, TTLs as seen by the server
 * (PTTL), input validation that writes nothing, binary safety, and the
 * abstract-cache adapter driven by the real `@fastify/caching` (ETag → 304,
 * expiry → 200), through inject and a real listener.
 */
import caching from '@fastify/caching';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { describe, expect, it } from 'vitest';
import { BlobCache, ErrBadOption, toAbstractCache, type Conn, type RedisconnOptions } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, makeApp as newApp, memoryLogger, rejection, text, useApps, useServerWithConn, type LogLine } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let raw: Conn;
const apps = useApps(() => raw.do('FLUSHALL'));

function makeApp(options: RedisconnOptions = {}, fastifyOptions?: FastifyServerOptions): Promise<FastifyInstance> {
  return newApp(apps, { addr: server.addr, ...options }, fastifyOptions);
}

/** Polls until `key` is gone from the server (expired), failing the test after 3 s. */
async function expectExpires(key: string): Promise<void> {
  expect(await eventually(async () => (await raw.do('EXISTS', key)) === 0, 3_000)).toBe(true);
}

async function cacheOf(namespace: string, options: RedisconnOptions = {}): Promise<BlobCache> {
  const app = await makeApp(options);
  const cache = app.redis.blobCache(namespace);
  if (cache === null) throw new Error('blob cache unexpectedly null');
  return cache;
}

async function keys(pattern = '*'): Promise<string[]> {
  return ((await raw.do('KEYS', pattern)) as Buffer[]).map((key) => key.toString()).sort();
}

useServerWithConn((started) => ({ server, conn: raw } = started));

describe('BlobCache', () => {
  it('get / set / delete, with the key layout redisconn.blobcache.<ns>:<key>', async () => {
    const cache = await cacheOf('users');
    expect(cache.namespace).toBe('users');
    expect(await cache.get('u1')).toBeNull();
    await cache.set('u1', 'alice');
    await cache.set('u2', Buffer.from('bob'));
    expect(await cache.get('u1')).toEqual(Buffer.from('alice'));
    expect(Buffer.isBuffer(await cache.get('u2'))).toBe(true);
    expect(await keys()).toEqual(['redisconn.blobcache.users:u1', 'redisconn.blobcache.users:u2']);
    expect(text(await raw.do('GET', 'redisconn.blobcache.users:u1'))).toBe('alice');
    expect(cache.redisKey('u1')).toBe('redisconn.blobcache.users:u1');
    expect(await cache.has('u1')).toBe(true);

    await cache.set('u1', 'alice v2');
    expect((await cache.get('u1'))?.toString()).toBe('alice v2');
    await cache.delete('u1');
    await cache.delete('never-set');
    expect(await cache.get('u1')).toBeNull();
    expect(await cache.has('u1')).toBe(false);
    expect(await keys()).toEqual(['redisconn.blobcache.users:u2']);
  });

  it('namespaces do not see each other; keys with colons stay inside their namespace', async () => {
    const app = await makeApp();
    const a = app.redis.blobCache('a') as BlobCache;
    const b = app.redis.blobCache('b') as BlobCache;
    await a.set('k', 'from a');
    await a.set('x:y', 'colon');
    expect(await b.get('k')).toBeNull();
    expect((await a.get('x:y'))?.toString()).toBe('colon');
    expect(await keys()).toEqual(['redisconn.blobcache.a:k', 'redisconn.blobcache.a:x:y']);
  });

  it('a custom prefix', async () => {
    const cache = await cacheOf('ns', { blobCache: { prefix: 'myapp.cache' } });
    await cache.set('k', 'v');
    expect(await keys()).toEqual(['myapp.cache.ns:k']);
    expect((await cache.get('k'))?.toString()).toBe('v');
  });

  it('ttl → PTTL on the server within range; 0 and the default → no expiry', async () => {
    const cache = await cacheOf('ttl');
    const setAt = performance.now();
    await cache.set('short', 'v', 5_000);
    await cache.set('forever', 'v', 0);
    await cache.set('default', 'v');
    const pttl = (await raw.do('PTTL', 'redisconn.blobcache.ttl:short')) as number;
    // 5 s less (at most) the time since the set.
    expect(pttl).toBeGreaterThanOrEqual(5_000 - Math.ceil(performance.now() - setAt));
    expect(pttl).toBeLessThanOrEqual(5_000);
    expect(await raw.do('PTTL', 'redisconn.blobcache.ttl:forever')).toBe(-1);
    expect(await raw.do('PTTL', 'redisconn.blobcache.ttl:default')).toBe(-1);
    // Overwriting without a ttl drops the old expiry (SET semantics).
    await cache.set('short', 'v2');
    expect(await raw.do('PTTL', 'redisconn.blobcache.ttl:short')).toBe(-1);
  });

  it('an entry expires after its ttl', async () => {
    const cache = await cacheOf('exp');
    await cache.set('k', 'v', 150);
    expect((await cache.get('k'))?.toString()).toBe('v');
    const pttl = (await raw.do('PTTL', 'redisconn.blobcache.exp:k')) as number;
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(150);
    await expectExpires('redisconn.blobcache.exp:k');
    expect(await cache.get('k')).toBeNull();
  });

  it.each([
    ['negative', -1],
    ['fractional', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '100' as unknown as number],
  ])('an invalid ttl (%s) → RangeError, nothing written', async (_name, ttl) => {
    const cache = await cacheOf('bad');
    await cache.set('k', 'old');
    const err = await rejection(cache.set('k', 'new', ttl));
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/ttl/);
    expect(text(await raw.do('GET', 'redisconn.blobcache.bad:k'))).toBe('old');
    expect(await raw.do('PTTL', 'redisconn.blobcache.bad:k')).toBe(-1);
    await cache.set('fresh', 'x', ttl).catch(() => {});
    expect(await raw.do('EXISTS', 'redisconn.blobcache.bad:fresh')).toBe(0);
  });

  it('a value over the size limit → RangeError, nothing written (default 1 MiB and custom)', async () => {
    const cache = await cacheOf('big');
    const limit = 1024 * 1024;
    expect(cache.maxValueBytes).toBe(limit);
    await cache.set('exact', Buffer.alloc(limit, 7));
    expect((await cache.get('exact'))?.length).toBe(limit);
    const err = await rejection(cache.set('over', Buffer.alloc(limit + 1)));
    expect(err).toBeInstanceOf(RangeError);
    expect(await raw.do('EXISTS', 'redisconn.blobcache.big:over')).toBe(0);
    // Strings count in UTF-8 bytes, not characters.
    const small = await cacheOf('small', { blobCache: { maxValueBytes: 4 } });
    await small.set('ok', 'abcd');
    await expect(small.set('utf8', 'ééé')).rejects.toBeInstanceOf(RangeError);
    await expect(small.set('abcde', 'abcde')).rejects.toBeInstanceOf(RangeError);
    expect(await keys('redisconn.blobcache.small:*')).toEqual(['redisconn.blobcache.small:ok']);
  });

  it('an empty namespace or key → error, nothing sent', async () => {
    const app = await makeApp();
    expect(() => app.redis.blobCache('')).toThrow(/namespace/);
    const cache = app.redis.blobCache('ns') as BlobCache;
    await expect(cache.get('')).rejects.toThrow(/key/);
    await expect(cache.set('', 'v')).rejects.toThrow(/key/);
    await expect(cache.delete('')).rejects.toThrow(/key/);
    await expect(cache.set(undefined as unknown as string, 'v')).rejects.toThrow(/key/);
    await expect(cache.set('k', 42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    expect(await keys()).toEqual([]);
  });

  it('is binary-safe: all 256 byte values, and invalid UTF-8, round-trip', async () => {
    const cache = await cacheOf('bin');
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const twice = Buffer.concat([all, Buffer.from(all).reverse(), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x00, 0x0d, 0x0a])]);
    await cache.set('all', all);
    await cache.set('twice', new Uint8Array(twice));
    await cache.set('empty', Buffer.alloc(0));
    expect((await cache.get('all'))?.equals(all)).toBe(true);
    expect((await cache.get('twice'))?.equals(twice)).toBe(true);
    expect((await cache.get('empty'))?.length).toBe(0);
    // What the server holds is exactly those bytes.
    expect(((await raw.do('GET', 'redisconn.blobcache.bin:all')) as Buffer).equals(all)).toBe(true);
  });

  it('is off when blobCache: false, and null when unconfigured', async () => {
    const off = await makeApp({ blobCache: false });
    expect(off.redis.blobCache('ns')).toBeNull();
    expect(() => off.redis.abstractCache('ns')).toThrow(ErrBadOption);
    const unconfigured = await makeApp({ addr: '' });
    expect(unconfigured.redis.blobCache('ns')).toBeNull();
  });

  it('rejects with an HTTP-mapped error when Redis is down', async () => {
    const doomed = await startRedisServer();
    try {
      const app = await makeApp({ addr: doomed.addr, connectTimeoutMs: 500 });
      const cache = app.redis.blobCache('down') as BlobCache;
      await cache.set('k', 'v');
      await doomed.kill();
      const err = await rejection(cache.get('k'));
      expect(err).toMatchObject({ code: 'REDIS_CONN_CLOSED', statusCode: 503 });
    } finally {
      await doomed.stop();
    }
  });
});

describe('abstract-cache adapter', () => {
  it('speaks both callbacks and promises, with { id, segment } keys', async () => {
    const app = await makeApp();
    const cache = app.redis.abstractCache('ac');
    if (cache === null) throw new Error('null adapter');
    await cache.set({ id: 'a', segment: 'seg' }, { n: 1 }, 1_000);
    const entry = await cache.get<{ n: number }>({ id: 'a', segment: 'seg' });
    expect(entry?.item).toEqual({ n: 1 });
    expect(entry?.ttl).toBe(1_000);
    expect(entry?.stored).toBeTypeOf('number');
    expect(await keys()).toEqual(['redisconn.blobcache.ac:seg:a']);
    const viaCallback = await new Promise<boolean | undefined>((resolve, reject) =>
      cache.has('seg:a', (err, value) => (err ? reject(err) : resolve(value))),
    );
    expect(viaCallback).toBe(true);
    await new Promise<void>((resolve, reject) => cache.delete({ id: 'a', segment: 'seg' }, (err) => (err ? reject(err) : resolve())));
    expect(await cache.get('seg:a')).toBeNull();
    const cbError = await new Promise<Error | null>((resolve) => cache.set('k', 'v', -5, (err) => resolve(err)));
    expect(cbError).toBeInstanceOf(RangeError);
    expect(await keys()).toEqual([]);
  });

  it('a stored value that is not an entry (not JSON, or not { item, stored, ttl }) is a miss, logged at debug', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({}, { logger: { ...(memoryLogger(lines) as object), level: 'debug' } });
    const adapter = toAbstractCache(app.redis.blobCache('garbage') as BlobCache, app.log);
    const garbage: [string, string | Buffer][] = [
      ['not-json', '{"item": 1, "stored": 17'],
      ['binary', Buffer.from([0xff, 0x00, 0xfe])],
      ['a-number', '42'],
      ['no-item', '{"stored": 1, "ttl": 0}'],
      ['bad-stored', '{"item": 1, "stored": "yesterday", "ttl": 0}'],
      ['json-null', 'null'],
    ];
    for (const [key, value] of garbage) await raw.do('SET', `redisconn.blobcache.garbage:${key}`, value);
    for (const [key] of garbage) {
      expect(await adapter.get(key)).toBeNull();
      const viaCallback = await new Promise<unknown>((resolve, reject) => adapter.get(key, (err, entry) => (err ? reject(err) : resolve(entry))));
      expect(viaCallback).toBeNull();
    }
    const debug = lines.filter((line) => line.level === 20 && line.msg.includes('not an abstract-cache entry'));
    expect(debug.map((line) => line.key)).toEqual(['not-json', 'not-json', 'binary', 'binary', 'a-number', 'a-number', 'no-item', 'no-item', 'bad-stored', 'bad-stored', 'json-null', 'json-null']);
    expect(debug[0]).toMatchObject({ namespace: 'garbage', bytes: 24 });
    expect(JSON.stringify(debug)).not.toContain('"stored": 17');
    // Nothing is rewritten on a read; the next set replaces the bad value.
    expect(text(await raw.do('GET', 'redisconn.blobcache.garbage:not-json'))).toBe('{"item": 1, "stored": 17');
    await adapter.set('not-json', { ok: true }, 0);
    expect((await adapter.get('not-json'))?.item).toEqual({ ok: true });
    // Without a logger: a miss all the same.
    expect(await toAbstractCache(app.redis.blobCache('garbage') as BlobCache).get('binary')).toBeNull();
  });

  it('@fastify/caching treats a garbage entry as a miss: 200, not 500', async () => {
    const app = await makeApp();
    const cache = app.redis.abstractCache('http');
    if (cache === null) throw new Error('null adapter');
    await app.register(caching, { cache });
    app.get('/doc', async (_request, reply) => {
      reply.etag('v1');
      return { doc: 1 };
    });
    await raw.do('SET', 'redisconn.blobcache.http:fastify-caching:v1', 'garbage{');
    const res = await app.inject({ url: '/doc', headers: { 'if-none-match': 'v1' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ doc: 1 });
  });

  it('toAbstractCache wraps any BlobCache', async () => {
    const app = await makeApp();
    const adapter = toAbstractCache(app.redis.blobCache('wrapped') as BlobCache);
    await adapter.set('k', [1, 2], 0);
    expect((await adapter.get('k'))?.item).toEqual([1, 2]);
    expect(await raw.do('PTTL', 'redisconn.blobcache.wrapped:k')).toBe(-1);
  });

  it('drives @fastify/caching: ETag → 304 while cached, 200 again after the etag lifetime', async () => {
    /** The short etag lifetime: long enough to see a 304 first on a busy machine. */
    const SHORT_MS = 300;
    const app = await makeApp();
    const cache = app.redis.abstractCache('http');
    if (cache === null) throw new Error('null adapter');
    await app.register(caching, { cache });
    let served = 0;
    app.get('/long', async (_request, reply) => {
      served++;
      reply.etag('abc');
      return { hello: 'world' };
    });
    app.get('/short', async (_request, reply) => {
      served++;
      reply.etag('x', SHORT_MS);
      return { short: true };
    });

    const first = await app.inject('/long');
    expect(first.statusCode).toBe(200);
    expect(first.headers.etag).toBe('abc');
    expect(first.json()).toEqual({ hello: 'world' });
    // Stored by @fastify/caching through the adapter, with the default 1 h lifetime.
    expect(await keys()).toEqual(['redisconn.blobcache.http:fastify-caching:abc']);
    const pttl = (await raw.do('PTTL', 'redisconn.blobcache.http:fastify-caching:abc')) as number;
    expect(pttl).toBeGreaterThan(3_500_000);
    expect(pttl).toBeLessThanOrEqual(3_600_000);

    const notModified = await app.inject({ url: '/long', headers: { 'if-none-match': 'abc' } });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBe('');
    expect((await app.inject({ url: '/long', headers: { 'if-none-match': 'other' } })).statusCode).toBe(200);
    expect(served).toBe(2);

    // Through a real listener, with the short-lived etag.
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const short = await fetch(`${base}/short`);
    expect(short.status).toBe(200);
    expect(short.headers.get('etag')).toBe('x');
    await short.arrayBuffer();
    const cached = await fetch(`${base}/short`, { headers: { 'if-none-match': 'x' } });
    expect(cached.status).toBe(304);
    const shortPttl = (await raw.do('PTTL', 'redisconn.blobcache.http:fastify-caching:x')) as number;
    expect(shortPttl).toBeGreaterThan(0);
    expect(shortPttl).toBeLessThanOrEqual(SHORT_MS);
    await expectExpires('redisconn.blobcache.http:fastify-caching:x');
    const expired = await fetch(`${base}/short`, { headers: { 'if-none-match': 'x' } });
    expect(expired.status).toBe(200);
    expect(await expired.json()).toEqual({ short: true });
    expect(served).toBe(4);
  });
});

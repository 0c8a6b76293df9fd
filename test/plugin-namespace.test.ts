/**
 * Several Redis per app (option `namespace`): `app.redis[ns]` and
 * `request.redis[ns]` beside the default registration, each with its own
 * source (a pool, a Cluster, a pool you built), metrics label, blob cache,
 * health and admin routes; registration order either way; clashes and
 * misuse refused with the name at fault; namespaced registrations never read
 * flags or environment; forgotten connections of every namespace released
 * with the request; every pool closed with the app.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import redisconn, { ErrAlreadyRegistered, ErrBadOption, ErrNotConfigured, PoolClosedError, dial, getPool, newPool, usePool, type Conn, type RedisconnOptions } from '../plugin/index.js';
import { startRedisCluster, startRedisServer, type TestRedisCluster, type TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, lent, memoryLogger, rejection, text, useApps, type LogLine } from './helpers.js';

// The namespaces these tests register, typed without `| undefined` (the project checks with noUncheckedIndexedAccess).
declare module '../plugin/index.js' {
  interface RedisNamespaces {
    cache: true;
    shards: true;
    mine: true;
    other: true;
    plain: true;
  }
}

guardProcessErrors();

let main: TestRedisServer;
let cache: TestRedisServer;
let cluster: TestRedisCluster;
const apps = useApps();

beforeAll(async () => {
  [main, cache, cluster] = await Promise.all([startRedisServer(), startRedisServer(), startRedisCluster({ masters: 3, replicasPerMaster: 0 })]);
}, 30_000);

afterAll(async () => {
  await Promise.all([main?.stop(), cache?.stop(), cluster?.stop()]);
});

/** A new app (closed after the test), with a memory logger when `lines` is given. */
function newApp(lines?: LogLine[]): FastifyInstance {
  const app = Fastify({ logger: lines === undefined ? false : memoryLogger(lines) });
  apps.push(app);
  return app;
}

/** The plugin's options for a test registration: no flags, no env for the default one, no metrics unless given. */
function registration(options: RedisconnOptions): RedisconnOptions {
  return options.namespace === undefined ? { argv: [], env: {}, metrics: false, ...options } : { metrics: false, ...options };
}

/** GET `key` on `addr` directly, not through the plugin. */
async function valueOn(addr: string, key: string): Promise<string | null> {
  const conn = await dial(addr);
  try {
    const reply = await conn.do('GET', key);
    return reply === null ? null : text(reply);
  } finally {
    await conn.close();
  }
}

/** SET through `conn`, then close it. */
async function setAndClose(conn: Conn, key: string, value: string): Promise<void> {
  try {
    await conn.do('SET', key, value);
  } finally {
    await conn.close();
  }
}

describe('namespaces beside the default registration', () => {
  it('routes reach each namespace through request.redis[ns] and app.redis[ns], the default through request.redis', async () => {
    const app = newApp();
    await app.register(redisconn, registration({ addr: main.addr }));
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    await app.register(redisconn, registration({ namespace: 'shards', cluster: cluster.seeds }));
    app.post<{ Params: { key: string } }>('/:key', async (request) => {
      const { key } = request.params;
      await setAndClose(await request.redis.get(), key, 'main');
      await setAndClose(await request.redis.cache.get(), key, 'cache');
      await setAndClose(await request.redis.shards.get(), `{${key}}`, 'shards');
      return 'ok';
    });
    await app.ready();

    const response = await app.inject({ method: 'POST', url: '/k-request' });
    expect(response.statusCode).toBe(200);
    expect(await valueOn(main.addr, 'k-request')).toBe('main');
    expect(await valueOn(cache.addr, 'k-request')).toBe('cache');
    const shards = app.redis.shards.pool;
    expect(shards?.constructor.name).toBe('Cluster');
    expect(text(await shards?.do('GET', '{k-request}'))).toBe('shards');
    expect(await valueOn(main.addr, '{k-request}')).toBeNull();

    await setAndClose(await app.redis.cache.get(), 'k-app', 'from-app');
    expect(await valueOn(cache.addr, 'k-app')).toBe('from-app');
    expect(await valueOn(main.addr, 'k-app')).toBeNull();
    expect(getPool(app, 'cache')).toBe(app.redis.cache.pool);
    expect(getPool(app)).toBe(app.redis.pool);
    expect(getPool(app, 'nope')).toBeNull();
  });

  it('works in either order, and with only namespaced registrations app.redis.get() rejects ErrNotConfigured', async () => {
    const app = newApp();
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    app.get('/default', async (request) => (await request.redis.get()).do('PING'));
    await app.ready();
    expect(await rejection(app.redis.get())).toBeInstanceOf(ErrNotConfigured);
    expect(app.redis.pool).toBeNull();
    const response = await app.inject('/default');
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED' });
    expect(text(await (await app.redis.cache.get()).do('PING'))).toBe('PONG');

    const later = newApp();
    await later.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    await later.register(redisconn, registration({ addr: main.addr }));
    await later.ready();
    await setAndClose(await later.redis.get(), 'order', 'default-after');
    expect(await valueOn(main.addr, 'order')).toBe('default-after');
    expect(await valueOn(cache.addr, 'order')).toBeNull();
  });

  it('a namespace can be a source you built (option pool): it stays yours to close', async () => {
    const pool = newPool(cache.addr, 0);
    try {
      const app = newApp();
      await app.register(redisconn, registration({ namespace: 'mine', pool }));
      await app.ready();
      expect(app.redis.mine.pool).toBe(pool);
      await app.close();
      expect(text(await pool.do('PING'))).toBe('PONG');
    } finally {
      await pool.close();
    }
  });

  it('usePool fills the default registration beside namespaces', async () => {
    const pool = newPool(main.addr, 0);
    try {
      const app = newApp();
      await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
      usePool(app, pool);
      await app.ready();
      expect(app.redis.pool).toBe(pool);
      expect(app.redis.cache.pool).not.toBe(pool);
    } finally {
      await pool.close();
    }
  });
});

describe('misuse is refused, naming what is wrong', () => {
  it('the same namespace twice', async () => {
    const app = newApp();
    app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    app.register(redisconn, registration({ namespace: 'cache', addr: main.addr }));
    const twice = await rejection(Promise.resolve(app.ready()));
    expect(twice).toBeInstanceOf(ErrBadOption);
    expect((twice as Error).message).toMatch(/namespace "cache" is already registered/);
  });

  it('the default registration twice is still ErrAlreadyRegistered', async () => {
    const app = newApp();
    app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    app.register(redisconn, registration({ addr: main.addr }));
    app.register(redisconn, registration({ addr: main.addr }));
    expect(await rejection(Promise.resolve(app.ready()))).toBeInstanceOf(ErrAlreadyRegistered);
  });

  it.each(['get', 'pool', 'blobCache', 'abstractCache', 'conns', 'constructor', '__proto__', 'toString'])('namespace %j clashes with a name app.redis or request.redis has', async (namespace) => {
    const app = newApp();
    app.register(redisconn, registration({ namespace, addr: cache.addr }));
    const err = await rejection(Promise.resolve(app.ready()));
    expect(err).toBeInstanceOf(ErrBadOption);
    expect((err as Error).message).toContain(`namespace ${JSON.stringify(namespace)}`);
  });

  it.each([
    [{ namespace: '' }, /option namespace/],
    [{ namespace: 7 }, /option namespace/],
    [{ namespace: 'cache', argv: ['--redis-addr', '127.0.0.1:1'] }, /option argv is not read with option namespace/],
    [{ namespace: 'cache', env: { REDIS_ADDR: '127.0.0.1:1' } }, /option env is not read with option namespace/],
  ])('%j is refused', async (options, message) => {
    const app = newApp();
    app.register(redisconn, { metrics: false, ...(options as RedisconnOptions) });
    const err = await rejection(Promise.resolve(app.ready()));
    expect(err).toBeInstanceOf(ErrBadOption);
    expect((err as Error).message).toMatch(message);
  });

  it('a namespaced registration never reads flags or environment: without options it is not configured', async () => {
    const saved = process.env.REDIS_ADDR;
    process.env.REDIS_ADDR = main.addr;
    try {
      const app = newApp();
      await app.register(redisconn, { namespace: 'cache', metrics: false });
      await app.ready();
      expect(app.redis.cache.pool).toBeNull();
      expect(await rejection(app.redis.cache.get())).toBeInstanceOf(ErrNotConfigured);
    } finally {
      if (saved === undefined) delete process.env.REDIS_ADDR;
      else process.env.REDIS_ADDR = saved;
    }
  });

  it('abstractCache throws ErrNotConfigured when unconfigured and ErrBadOption when the blob cache is off', async () => {
    const app = newApp();
    await app.register(redisconn, registration({ addr: '' }));
    await app.register(redisconn, registration({ namespace: 'plain', addr: cache.addr, blobCache: false }));
    await app.ready();
    expect(() => app.redis.abstractCache('http')).toThrow(ErrNotConfigured);
    expect(() => app.redis.plain.abstractCache('http')).toThrow(/option blobCache is false/);
    expect(app.redis.plain.blobCache('http')).toBeNull();
  });
});

describe('each namespace has its own blob cache, metrics, health and admin routes', () => {
  it('blob caches write to their own Redis', async () => {
    const app = newApp();
    await app.register(redisconn, registration({ addr: main.addr }));
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    await app.ready();
    await app.redis.cache.blobCache('pages')?.set('home', Buffer.from('cached'));
    expect((await app.redis.cache.blobCache('pages')?.get('home'))?.toString()).toBe('cached');
    expect(await app.redis.blobCache('pages')?.get('home')).toBeNull();
    expect(await valueOn(cache.addr, 'redisconn.blobcache.pages:home')).toBe('cached');
    const abstract = app.redis.cache.abstractCache('http');
    await new Promise<void>((resolve, reject) => abstract.set('k', 'v', 60_000, (err) => (err ? reject(err) : resolve())));
    expect(await valueOn(main.addr, 'redisconn.blobcache.http:k')).toBeNull();
  });

  it('metrics: one pool label per namespace (the namespace by default), one shared route', async () => {
    const registry = new Registry();
    const app = newApp();
    await app.register(redisconn, registration({ addr: main.addr, metrics: { registry, route: '/metrics' } }));
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr, metrics: { registry, route: '/metrics' } }));
    await app.register(redisconn, registration({ namespace: 'queue', name: 'jobs', addr: cache.addr, metrics: { registry } }));
    await app.ready();
    await app.redis.cache.pool?.do('PING');
    const body = (await app.inject('/metrics')).body;
    for (const pool of ['default', 'cache', 'jobs']) expect(body).toContain(`redis_pool_connections{pool="${pool}"`);
    expect(body).toMatch(/redis_pool_dials_total\{pool="cache",[^}]*result="ok"[^}]*\} 1/);

    const clash = newApp();
    clash.register(redisconn, registration({ addr: main.addr, metrics: { registry: new Registry(), route: '/metrics' } }));
    clash.register(redisconn, registration({ namespace: 'cache', addr: cache.addr, metrics: { registry: new Registry(), route: '/metrics' } }));
    const err = await rejection(Promise.resolve(clash.ready()));
    expect(err).toBeInstanceOf(ErrBadOption);
    expect((err as Error).message).toMatch(/metrics.route "\/metrics" already serves another registry/);
  });

  it('health and admin routes default to a path under the namespace', async () => {
    const other = await startRedisServer();
    try {
      const app = newApp();
      const authorize = (): boolean => true;
      await app.register(redisconn, registration({ addr: main.addr, health: true, admin: { authorize } }));
      await app.register(redisconn, registration({ namespace: 'other', addr: other.addr, health: true, admin: { authorize }, readTimeoutMs: 500, connectTimeoutMs: 500 }));
      await app.ready();
      await setAndClose(await app.redis.get(), 'keep', 'me');
      await setAndClose(await app.redis.other.get(), 'drop', 'me');

      expect((await app.inject({ method: 'POST', url: '/admin/redis/other/flushall', payload: {} })).statusCode).toBe(200);
      expect(await valueOn(other.addr, 'drop')).toBeNull();
      expect(await valueOn(main.addr, 'keep')).toBe('me');

      expect((await app.inject('/healthz/redis/other')).statusCode).toBe(200);
      await other.stop();
      expect((await app.inject('/healthz/redis/other')).statusCode).toBe(503);
      expect((await app.inject('/healthz/redis')).statusCode).toBe(200);
    } finally {
      await other.stop();
    }
  });
});

describe('connections and pools of namespaces end with the request and the app', () => {
  it('a namespace connection a handler forgot is released with the response, with a warning', async () => {
    const lines: LogLine[] = [];
    const app = newApp(lines);
    await app.register(redisconn, registration({ addr: main.addr }));
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr, exclusiveConnections: true }));
    app.get('/forget', async (request) => {
      const conn = await request.redis.cache.get();
      return text(await conn.do('PING'));
    });
    await app.ready();
    expect((await app.inject('/forget')).body).toBe('PONG');
    expect(await eventually(() => lent(app.redis.cache.pool) === 0)).toBe(true);
    expect(lines.some((line) => line.level === 40 && /did not close a Redis connection/.test(line.msg))).toBe(true);
  });

  it('app.close() closes every namespace pool the plugin built', async () => {
    const app = newApp();
    await app.register(redisconn, registration({ addr: main.addr }));
    await app.register(redisconn, registration({ namespace: 'cache', addr: cache.addr }));
    await app.ready();
    const pools = [app.redis.pool, app.redis.cache.pool];
    await app.close();
    for (const pool of pools) expect(await rejection(pool!.get())).toBeInstanceOf(PoolClosedError);
  });
});

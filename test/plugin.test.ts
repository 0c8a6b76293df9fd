/**
 * The Fastify plugin against real redis-server processes: registration from
 * options, flags and environment; option validation; the unconfigured mode;
 * connectOnStart; double registration; onClose; connections borrowed through
 * requests (released when forgotten, with a warning naming the route, once
 * the handler is done, also after a client abort; when validation fails
 * before the handler); the mapping of
 * client errors to HTTP; getConn / getPool / usePool.
 *
 * Every behaviour is driven through `app.inject()` and, where the transport
 * matters, through a real listening server and fetch / node:http.
 */
import http from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import redisconn, {
  ErrNotConfigured,
  asInt,
  getConn,
  getPool,
  newPool,
  optionsFromFlags,
  Pool,
  usePool,
  type Conn,
  type RedisconnOptions,
} from '../plugin/index.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientList, eventually, guardProcessErrors, lent, makeApp as newApp, memoryLogger, rejection, text, uniqueKeys, useApps, useServerWithConn, type LogLine } from './helpers.js';

guardProcessErrors();

const CLIENT_NAME = 'plugin-test';
const FORGOT = 'did not close a Redis connection';

let server: TestRedisServer;
/** Our observer connection (CLIENT LIST, SELECT, key checks). Not in any pool. */
let admin: Conn;
/** Extra pools / servers a test made, closed in afterEach. */
let cleanups: (() => Promise<void> | void)[] = [];
/** Apps of the running test, closed in afterEach (then the cleanups run). */
const apps = useApps(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  cleanups = [];
  await admin.do('SELECT', 0);
});

function warnings(lines: LogLine[], containing: string): LogLine[] {
  return lines.filter((line) => line.level === 40 && line.msg.includes(containing));
}

/** An app with the plugin; hermetic (no flags/env) and without metrics unless asked. */
function makeApp(options: RedisconnOptions = {}, fastifyOptions?: FastifyServerOptions): Promise<FastifyInstance> {
  return newApp(apps, { clientName: CLIENT_NAME, ...options }, fastifyOptions);
}

/**
 * Counts the requests that have passed `hook` on `app`. Added after the
 * plugin's own hook of that name, it runs after it; `reached(n)` waits for
 * n runs and one macrotask turn more (for what the plugin's hook deferred
 * with setImmediate): whatever the plugin does at that point has been done.
 */
function hookRuns(app: FastifyInstance, hook: 'onSend' | 'onResponse' | 'onRequestAbort'): { reached(n: number): Promise<void> } {
  let runs = 0;
  if (hook === 'onSend') {
    app.addHook('onSend', async (_request, _reply, payload) => {
      runs++;
      return payload;
    });
  } else if (hook === 'onResponse') {
    app.addHook('onResponse', async () => void runs++);
  } else {
    app.addHook('onRequestAbort', (_request, done) => {
      runs++;
      done();
    });
  }
  return {
    async reached(n) {
      expect(await eventually(() => runs >= n), `${n} runs of ${hook}`).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/** The two ways `get()` hands out connections; request-connection behaviour must not differ. */
const MODES = [
  { name: 'lease (default)', exclusive: false, modeOptions: {} },
  { name: 'exclusiveConnections', exclusive: true, modeOptions: { exclusiveConnections: true } },
] as const;

/** Clients the server lists under our pools' client name. */
async function poolClients(): Promise<number> {
  return (await clientList(admin)).filter((client) => client.name === CLIENT_NAME).length;
}

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/** One request on its own connection (no keep-alive), through node:http. */
function request(base: string, options: http.RequestOptions): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, agent: false, ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The rejection of `app.ready()`, with how long it took. */
async function readyFailure(app: FastifyInstance): Promise<{ error: Error & { code?: string }; ms: number }> {
  const started = performance.now();
  const error = (await rejection(Promise.resolve(app.ready()))) as Error & { code?: string };
  return { error, ms: performance.now() - started };
}

const key = uniqueKeys('plugin-test');

useServerWithConn((started) => ({ server, conn: admin } = started));

// ---------------------------------------------------------------------------

describe('optionsFromFlags', () => {
  it('reads --redis-addr X, --redis-addr=X and --redis-db N', () => {
    expect(optionsFromFlags(['node', 'app', '--redis-addr', 'h:1', '--redis-db', '3'], {})).toEqual({ addr: 'h:1', db: 3 });
    expect(optionsFromFlags(['--redis-addr=h:2', '--redis-db=4'], {})).toEqual({ addr: 'h:2', db: 4 });
    expect(optionsFromFlags(['--port', '80'], {})).toEqual({});
  });

  it('reads REDIS_ADDR and REDIS_DB; flags win', () => {
    expect(optionsFromFlags([], { REDIS_ADDR: 'e:1', REDIS_DB: '5' })).toEqual({ addr: 'e:1', db: 5 });
    expect(optionsFromFlags(['--redis-addr', 'f:1', '--redis-db=6'], { REDIS_ADDR: 'e:1', REDIS_DB: '5' })).toEqual({ addr: 'f:1', db: 6 });
    // A flag that wins also saves a bad variable from being read.
    expect(optionsFromFlags(['--redis-db', '1'], { REDIS_DB: 'nope' })).toEqual({ db: 1 });
    expect(optionsFromFlags([], { REDIS_DB: '' })).toEqual({});
  });

  it('names the flag or variable holding a bad db', () => {
    for (const bad of ['-1', 'x', '1.5', '']) {
      expect(() => optionsFromFlags(['--redis-db', bad], {})).toThrow(/--redis-db/);
      expect(() => optionsFromFlags([`--redis-db=${bad}`], {})).toThrow(/--redis-db/);
    }
    for (const bad of ['-1', 'two', '0x1']) expect(() => optionsFromFlags([], { REDIS_DB: bad })).toThrow(/REDIS_DB/);
    expect(() => optionsFromFlags(['--redis-addr'], {})).toThrow(/--redis-addr/);
  });
});

describe('registration', () => {
  it('uses addr and db from the options', async () => {
    const app = await makeApp({ addr: server.addr, db: 3 });
    const k = key('db3');
    app.post('/set', async (request) => {
      await using conn = await request.redis.get();
      await conn.do('SET', k, 'in-db-3');
      return { ok: true };
    });
    expect(app.redis.pool).toBeInstanceOf(Pool);
    expect((await app.inject({ method: 'POST', url: '/set' })).statusCode).toBe(200);
    expect(await admin.do('EXISTS', k)).toBe(0);
    await admin.do('SELECT', 3);
    expect(text(await admin.do('GET', k))).toBe('in-db-3');
  });

  it.each([
    ['--redis-addr X --redis-db N', (addr: string) => ({ argv: ['node', 'app', '--redis-addr', addr, '--redis-db', '2'], env: {} }), 2],
    ['--redis-addr=X with REDIS_DB', (addr: string) => ({ argv: [`--redis-addr=${addr}`], env: { REDIS_DB: '4' } }), 4],
    ['REDIS_ADDR and REDIS_DB', (addr: string) => ({ argv: [], env: { REDIS_ADDR: addr, REDIS_DB: '5' } }), 5],
    // The variable points at a dead port: the flag must win, or the dial fails.
    ['flags over env', (addr: string) => ({ argv: ['--redis-addr', addr, '--redis-db', '6'], env: { REDIS_ADDR: '127.0.0.1:1', REDIS_DB: '7' } }), 6],
  ])('reads %s through the argv/env options', async (_name, options, db) => {
    const app = await makeApp(options(server.addr));
    app.get('/db', async (request) => {
      await using conn = await request.redis.get();
      const info = text(await conn.do('CLIENT', 'INFO'));
      return { db: Number(/ db=(\d+)/.exec(info)?.[1]) };
    });
    const res = await app.inject('/db');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ db });
  });

  it('explicit options win over flags and env', async () => {
    const app = await makeApp({ addr: server.addr, db: 1, argv: ['--redis-addr', '127.0.0.1:1', '--redis-db', '9'], env: { REDIS_DB: 'bad' } });
    await using conn = await app.redis.get();
    expect(text(await conn.do('CLIENT', 'INFO'))).toMatch(/ db=1 /);
  });

  it.each([
    [{ argv: ['--redis-addr', 'x:1', '--redis-db', 'two'] }, '--redis-db'],
    [{ argv: ['--redis-addr=x:1', '--redis-db=-3'] }, '--redis-db'],
    [{ env: { REDIS_ADDR: 'x:1', REDIS_DB: '1.5' } }, 'REDIS_DB'],
    [{ env: { REDIS_ADDR: 'x:1:2' } }, 'REDIS_ADDR'],
    [{ argv: ['--redis-addr', 'h:99999'] }, '--redis-addr'],
  ])('a bad flag or variable fails ready() naming it (%j)', async (options, name) => {
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { argv: [], env: {}, metrics: false, ...options });
    const { error } = await readyFailure(app);
    expect(error.code).toBe('FST_REDIS_BAD_OPTION');
    expect(error.message).toContain(name);
  });

  it.each([
    [{ db: -1 }, 'db'],
    [{ db: 1.5 }, 'db'],
    [{ db: '2' as unknown as number }, 'db'],
    [{ addr: 'localhost:99999' }, 'addr'],
    [{ addr: '::1' }, 'addr'],
    [{ addr: 'redis://h:port/0' }, 'addr'],
    [{ maxIdle: -1 }, 'maxIdle'],
    [{ maxActive: -5 }, 'maxActive'],
    [{ idleTimeoutMs: -1 }, 'idleTimeoutMs'],
    [{ connectTimeoutMs: -1 }, 'connectTimeoutMs'],
    [{ getTimeoutMs: Number.NaN }, 'getTimeoutMs'],
    [{ closeTimeoutMs: -1 }, 'closeTimeoutMs'],
    [{ readTimeoutMs: -10 }, 'readTimeoutMs'],
    [{ protocol: 4 as 2 }, 'protocol'],
    [{ name: '' }, 'name'],
    [{ blobCache: { maxValueBytes: -1 } }, 'blobCache.maxValueBytes'],
    [{ metrics: { intervalMs: 0 } }, 'metrics.intervalMs'],
    [{ admin: { authorize: 'yes' as unknown as () => boolean } }, 'admin.authorize'],
    [{ maxIdel: 3 } as RedisconnOptions, 'maxIdel'],
    [{ decodeStrings: true }, 'decodeStrings'],
    [{ exclusiveConnections: 'yes' as unknown as boolean }, 'exclusiveConnections'],
  ])('invalid option %j fails ready() naming %s', async (options, name) => {
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: false, ...options });
    const { error } = await readyFailure(app);
    expect(error.code).toBe('FST_REDIS_BAD_OPTION');
    expect(error.message).toContain(name);
  });

  it('an invalid option leaves no pool behind', async () => {
    const registry = new Registry();
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: { registry }, maxIdle: -1 });
    await readyFailure(app);
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });
});

describe('no address configured', () => {
  it('registers, dials nothing, and answers 503 FST_REDIS_NOT_CONFIGURED', async () => {
    const registry = new Registry();
    const app = await makeApp({ metrics: { registry, route: '/metrics' } });
    app.get('/use', async (request) => {
      await using conn = await request.redis.get();
      return { pong: text(await conn.do('PING')) };
    });
    await app.ready();
    expect(app.redis.pool).toBeNull();
    expect(getPool(app)).toBeNull();
    expect(app.redis.blobCache('ns')).toBeNull();
    expect(() => app.redis.abstractCache('ns')).toThrow(ErrNotConfigured);
    const err = await rejection(app.redis.get());
    expect(err).toBeInstanceOf(ErrNotConfigured);
    expect(err).toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED', statusCode: 503, message: 'Redis connection pool is not configured' });
    await expect(getConn(app)).rejects.toBeInstanceOf(ErrNotConfigured);

    const res = await app.inject('/use');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED', message: 'Redis connection pool is not configured' });
    // Metrics are not registered, and so no metrics route either.
    expect(await registry.getMetricsAsJSON()).toEqual([]);
    expect((await app.inject('/metrics')).statusCode).toBe(404);
    expect(await poolClients()).toBe(0);
  });

  it('an explicit empty addr is unconfigured even when REDIS_ADDR is set', async () => {
    const app = await makeApp({ addr: '', env: { REDIS_ADDR: server.addr } });
    await app.ready();
    expect(app.redis.pool).toBeNull();
    await expect(app.redis.get()).rejects.toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED' });
  });

  it('answers 503 through a real listener too', async () => {
    const app = await makeApp();
    app.get('/use', async (request) => {
      await using conn = await request.redis.get();
      return conn.do('PING');
    });
    const base = await listen(app);
    const res = await fetch(`${base}/use`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'FST_REDIS_NOT_CONFIGURED' });
  });
});

describe('startup', () => {
  it('connectOnStart against a dead port fails ready() promptly with FST_REDIS_UNREACHABLE', async () => {
    const port = await freePort();
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { addr: `127.0.0.1:${port}`, argv: [], env: {}, metrics: false, connectOnStart: true });
    const { error, ms } = await readyFailure(app);
    expect(error.code).toBe('FST_REDIS_UNREACHABLE');
    expect(error.message).toContain(`127.0.0.1:${port}`);
    // Said once: no doubled prefix, no address repeated by the cause.
    expect(error.message).toBe(`redisconn: Redis at 127.0.0.1:${port} is unreachable: connect ECONNREFUSED`);
    expect(ms).toBeLessThan(2_000);
  });

  it('connectOnStart against a hung server fails ready() within the connect timeout', async () => {
    const hung = await startRedisServer();
    cleanups.push(() => hung.stop());
    hung.pause();
    cleanups.push(() => hung.resume());
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { addr: hung.addr, argv: [], env: {}, metrics: false, connectOnStart: true, connectTimeoutMs: 300 });
    const { error, ms } = await readyFailure(app);
    expect(error.code).toBe('FST_REDIS_UNREACHABLE');
    expect(ms).toBeLessThan(1_500);
  });

  it('connectOnStart against a live server starts, with one connection dialed', async () => {
    const app = await makeApp({ addr: server.addr, connectOnStart: true });
    await app.ready();
    expect(app.redis.pool?.stats()).toMatchObject({ dials: 1, dialErrors: 0, activeCount: 1, idleCount: 1 });
  });

  it('by default a dead address neither blocks startup nor hangs requests', async () => {
    const port = await freePort();
    const app = await makeApp({ addr: `127.0.0.1:${port}` });
    app.get('/use', async (request) => {
      await using conn = await request.redis.get();
      return conn.do('PING');
    });
    const started = performance.now();
    await app.ready();
    expect(performance.now() - started).toBeLessThan(500);
    expect(app.redis.pool?.stats().dials).toBe(0);
    const res = await app.inject('/use');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'REDIS_CONN_CLOSED' });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('registering twice on one instance fails with a clear error', async () => {
    const app = Fastify({ logger: false });
    apps.push(app);
    app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: false });
    app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: false });
    const { error } = await readyFailure(app);
    expect(error.code).toBe('FST_REDIS_ALREADY_REGISTERED');
    expect(error.message).toMatch(/already registered/);
  });

  it('separate encapsulated contexts may each register it', async () => {
    const registry = new Registry();
    const app = Fastify({ logger: false });
    apps.push(app);
    for (const db of [1, 2]) {
      app.register(async (child) => {
        await child.register(redisconn, { addr: server.addr, db, name: `db${db}`, argv: [], env: {}, metrics: { registry }, clientName: CLIENT_NAME });
        child.get(`/db${db}`, async (request) => {
          await using conn = await request.redis.get();
          return { db: Number(/ db=(\d+)/.exec(text(await conn.do('CLIENT', 'INFO')))?.[1]) };
        });
      });
    }
    expect((await app.inject('/db1')).json()).toEqual({ db: 1 });
    expect((await app.inject('/db2')).json()).toEqual({ db: 2 });
    expect(await registry.metrics()).toMatch(/pool="db1"[\s\S]*pool="db2"|pool="db2"[\s\S]*pool="db1"/);
  });

  it('onClose closes the pool: no connections left, on the server either', async () => {
    const app = await makeApp({ addr: server.addr, exclusiveConnections: true });
    app.get('/hold', async (request) => {
      const conns = await Promise.all([request.redis.get(), request.redis.get(), request.redis.get()]);
      for (const conn of conns) await conn.do('PING');
      await Promise.all(conns.map((conn) => conn.close()));
      return { ok: true };
    });
    expect((await app.inject('/hold')).statusCode).toBe(200);
    const pool = app.redis.pool as Pool;
    expect(pool.stats()).toMatchObject({ activeCount: 3, idleCount: 3, inUseCount: 0 });
    expect(await poolClients()).toBe(3);
    await app.close();
    expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0, inUseCount: 0 });
    expect(await eventually(async () => (await poolClients()) === 0)).toBe(true);
  });

  it('a connection taken with app.redis.get() and never returned does not hold app.close() past closeTimeoutMs', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, closeTimeoutMs: 200 }, { logger: memoryLogger(lines) });
    await app.ready();
    const forgotten = await app.redis.get();
    await forgotten.do('MULTI'); // a lease holds a connection of its own from here on
    await forgotten.do('DISCARD');
    expect(await forgotten.do('PING')).toBe('PONG');
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(lines.some((line) => line.level === 40 && line.msg.includes('still lent out'))).toBe(true);
    // Returned late, it is closed rather than kept: nothing stays open.
    await forgotten.close();
    const pool = app.redis.pool as Pool;
    expect(await eventually(() => pool.stats().activeCount === 0)).toBe(true);
    expect(await eventually(async () => (await poolClients()) === 0)).toBe(true);
  });

  it('onClose lets in-flight requests finish before closing the pool (real listener)', async () => {
    const app = await makeApp({ addr: server.addr });
    const k = key('inflight');
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    app.post('/slow', async (request) => {
      entered();
      await released;
      await using conn = await request.redis.get();
      return { value: asInt(await conn.do('INCR', k)) };
    });
    const base = await listen(app);
    // `agent: false` sends `connection: close`: a keep-alive client would hold
    // Node's server.close() (and so app.close()) until its keep-alive timeout.
    const response = request(base, { method: 'POST', path: '/slow' });
    await inHandler;
    const closing = app.close();
    // The handler goes on once close() is under way (the server stopped listening).
    expect(await eventually(() => !app.server.listening)).toBe(true);
    release();
    const res = await response;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ value: 1 });
    await closing;
    expect(app.redis.pool?.stats().activeCount).toBe(0);
  });

  it('a pool passed in stays open on close (it is the caller’s)', async () => {
    const pool = newPool(server.addr, 0, { clientName: CLIENT_NAME });
    cleanups.push(() => pool.close());
    const app = await makeApp({ pool });
    expect(app.redis.pool).toBe(pool);
    await using conn = await app.redis.get();
    expect(text(await conn.do('PING'))).toBe('PONG');
    await conn.close();
    await app.close();
    await using again = await pool.get();
    expect(text(await again.do('PING'))).toBe('PONG');
  });
});

describe.each(MODES)('connections borrowed through a request ($name)', ({ exclusive, modeOptions }) => {
  it('req.redis.get() in handlers, through inject and a real listener', async () => {
    const app = await makeApp({ addr: server.addr, ...modeOptions });
    const k = key('count');
    app.post('/count', async (request) => {
      await using conn = await request.redis.get();
      return { value: asInt(await conn.do('INCR', k)) };
    });
    expect((await app.inject({ method: 'POST', url: '/count' })).json()).toEqual({ value: 1 });
    const base = await listen(app);
    const res = await fetch(`${base}/count`, { method: 'POST' });
    expect(await res.json()).toEqual({ value: 2 });
    expect(lent(app.redis.pool)).toBe(0);
  });

  it('a forgotten connection is released when the response ends, with a warning naming the route', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    app.get('/items/:id', async (request) => {
      const conn = await request.redis.get();
      await conn.do('PING');
      return { ok: true };
    });
    const pool = (): Pool => app.redis.pool as Pool;

    expect((await app.inject('/items/1')).statusCode).toBe(200);
    expect(await eventually(() => lent(pool()) === 0)).toBe(true);
    // Exclusive: the borrowed connection went back idle; lease: the PING rode the shared connection.
    expect(pool().stats()).toMatchObject(exclusive ? { activeCount: 1, idleCount: 1 } : { activeCount: 1, sharedCount: 1, idleCount: 0 });
    const warned = warnings(lines, FORGOT);
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ route: '/items/:id', method: 'GET' });

    const base = await listen(app);
    expect((await fetch(`${base}/items/2`)).status).toBe(200);
    expect(await eventually(() => lent(pool()) === 0 && warnings(lines, FORGOT).length === 2)).toBe(true);
    expect(warnings(lines, FORGOT)[1]).toMatchObject({ route: '/items/:id' });
    // Released connections went back to the pool and are reused.
    expect(pool().stats().dials).toBe(1);
  });

  it('a forgotten connection is released when the handler throws', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    app.get('/boom', async (request) => {
      const conn = await request.redis.get();
      await conn.do('PING');
      throw Object.assign(new Error('handler failed'), { statusCode: 418 });
    });
    expect((await app.inject('/boom')).statusCode).toBe(418);
    expect(await eventually(() => lent(app.redis.pool) === 0)).toBe(true);
    expect(warnings(lines, FORGOT)).toHaveLength(1);
    expect(warnings(lines, FORGOT)[0]).toMatchObject({ route: '/boom' });
  });

  it('no warning when the handler closes the connection (close() or await using)', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    app.get('/close', async (request) => {
      const conn = await request.redis.get();
      try {
        return { pong: text(await conn.do('PING')) };
      } finally {
        await conn.close();
      }
    });
    app.get('/using', async (request) => {
      await using conn = await request.redis.get();
      await using second = await getConn(request);
      return { pong: text(await conn.do('PING')), echo: text(await second.do('ECHO', 'x')) };
    });
    app.get('/using-throws', async (request) => {
      await using conn = await request.redis.get();
      await conn.do('PING');
      throw new Error('after using');
    });
    const responses = hookRuns(app, 'onResponse');
    const base = await listen(app);
    for (let i = 0; i < 3; i++) {
      expect((await app.inject('/close')).json()).toEqual({ pong: 'PONG' });
      expect((await app.inject('/using')).json()).toEqual({ pong: 'PONG', echo: 'x' });
      expect((await fetch(`${base}/using`)).status).toBe(200);
      expect((await fetch(`${base}/using-throws`)).status).toBe(500);
    }
    // The plugin warns (if at all) by the end of onResponse: wait for all 12.
    await responses.reached(12);
    expect(warnings(lines, FORGOT)).toEqual([]);
    expect(lent(app.redis.pool)).toBe(0);
    expect(app.redis.pool?.stats().activeCount).toBe(exclusive ? 2 : 1);
  });

  it('a client abort leaves the handler its connection; a forgotten one is released once the handler is done', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    let finished!: (outcome: string) => void;
    const handlerDone = new Promise<string>((resolve) => (finished = resolve));
    const queue = key('abort-q');
    app.get('/long', async (request) => {
      const conn = await request.redis.get(); // forgotten on purpose
      const blpop = conn.do('BLPOP', queue, 0); // answered when the test pushes
      entered();
      // The client goes away while the handler awaits Redis: the reply still
      // reaches the handler, and the connection stays the handler's.
      finished(String(await blpop));
      finished(text(await conn.do('ECHO', 'after abort')));
      return { ok: true };
    });
    const aborts = hookRuns(app, 'onRequestAbort');
    const base = new URL(await listen(app));
    const req = http.get({ host: base.hostname, port: base.port, path: '/long' });
    req.on('error', () => {});
    await inHandler;
    const pool = app.redis.pool as Pool;
    req.destroy();
    await aborts.reached(1);
    // Still the handler's: not handed to anyone while its BLPOP is owed.
    expect(lent(pool)).toBe(1);
    expect(pool.stats().idleCount).toBe(0);
    expect(warnings(lines, FORGOT)).toEqual([]);
    await admin.do('RPUSH', queue, 'after the abort');
    expect(await handlerDone).toBe(`${queue},after the abort`);
    expect(await eventually(() => lent(pool) === 0)).toBe(true);
    expect(warnings(lines, FORGOT)).toHaveLength(1);
    expect(warnings(lines, FORGOT)[0]).toMatchObject({ route: '/long' });
    // Returned clean: the next borrower is answered at once.
    const next = await app.redis.get();
    const started = performance.now();
    expect(await next.do('PING')).toBe('PONG');
    expect(performance.now() - started).toBeLessThan(100);
    await next.close();
    expect(pool.stats().dials).toBe(exclusive ? 1 : 2); // a lease's PING dials the shared connection
  });

  it('a handler that closes in finally after the client aborted logs no warning', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    let closed!: () => void;
    const handlerClosed = new Promise<void>((resolve) => (closed = resolve));
    const queue = key('tidy-q');
    app.get('/tidy', async (request) => {
      const conn = await request.redis.get();
      try {
        entered();
        await conn.do('BLPOP', queue, 0); // answered when the test pushes, after the abort
        return { ok: true };
      } finally {
        await conn.close();
        closed();
      }
    });
    const aborts = hookRuns(app, 'onRequestAbort');
    const sends = hookRuns(app, 'onSend');
    const base = new URL(await listen(app));
    const req = http.get({ host: base.hostname, port: base.port, path: '/tidy' });
    req.on('error', () => {});
    await inHandler;
    req.destroy();
    await aborts.reached(1);
    await admin.do('RPUSH', queue, 'go');
    await handlerClosed;
    // For an aborted request the plugin releases (and warns) after onSend.
    await sends.reached(1);
    expect(warnings(lines, FORGOT)).toEqual([]);
    expect(lent(app.redis.pool)).toBe(0);
    expect(app.redis.pool?.stats().idleCount).toBe(1);
  });

  it('a hijacked reply whose client leaves: a forgotten connection is released when the socket closes', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    let handlerDone!: () => void;
    const done = new Promise<void>((resolve) => (handlerDone = resolve));
    app.get('/stream', async (request, reply) => {
      const conn = await request.redis.get(); // forgotten on purpose
      await conn.do('MULTI'); // holds a connection of its own in both modes
      await conn.do('DISCARD');
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/plain' });
      reply.raw.write('streaming\n');
      await new Promise((resolve) => reply.raw.once('close', resolve));
      handlerDone();
    });
    const base = new URL(await listen(app));
    const req = http.get({ host: base.hostname, port: base.port, path: '/stream' });
    req.on('error', () => {});
    await new Promise<void>((resolve) => req.once('response', (res) => res.once('data', () => resolve())));
    expect(lent(app.redis.pool)).toBe(1);
    req.destroy();
    await done;
    expect(await eventually(() => lent(app.redis.pool) === 0)).toBe(true);
    expect(warnings(lines, FORGOT)[0]).toMatchObject({ route: '/stream' });
  });

  it('a request failing body validation (handler never ran) does not crash', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, ...modeOptions }, { logger: memoryLogger(lines) });
    let ran = 0;
    const schema = { body: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false } };
    app.post('/typed', { schema }, async (request) => {
      ran++;
      await using conn = await request.redis.get();
      return { echo: text(await conn.do('ECHO', String((request.body as { n: number }).n))) };
    });
    // A hook that borrows before validation: the handler never runs, the hook's conn is released.
    app.post('/typed-hook', {
      schema,
      onRequest: async (request) => {
        await request.redis.get();
      },
    }, async () => ({ ran: true }));
    for (const body of [{ n: 'x' }, { m: 1 }, 'not json']) {
      const res = await app.inject({ method: 'POST', url: '/typed', payload: body, headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
    }
    expect((await app.inject({ method: 'POST', url: '/typed', payload: { n: 7 } })).json()).toEqual({ echo: '7' });
    expect(ran).toBe(1);
    const base = await listen(app);
    const res = await fetch(`${base}/typed-hook`, { method: 'POST', body: '{"n":"x"}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(await eventually(() => lent(app.redis.pool) === 0)).toBe(true);
    expect(warnings(lines, FORGOT).map((line) => line.route)).toEqual(['/typed-hook']);
  });
});

describe('leases (the default): stateless commands on the shared connection', () => {
  it('50 concurrent stateless requests cost one connection, not 50', async () => {
    const app = await makeApp({ addr: server.addr });
    app.post('/count', async (request) => {
      await using conn = await request.redis.get();
      return { value: asInt(await conn.do('INCR', 'lazy:count')) };
    });
    await admin.do('DEL', 'lazy:count');
    const responses = await Promise.all(Array.from({ length: 50 }, () => app.inject({ method: 'POST', url: '/count' })));
    expect(responses.map((res) => res.statusCode)).toEqual(Array(50).fill(200));
    expect(responses.map((res) => res.json<{ value: number }>().value).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((app.redis.pool as Pool).stats()).toMatchObject({ dials: 1, activeCount: 1, idleCount: 0 });
    expect(await poolClients()).toBe(1);
  });

  it('a handler needing its own connection (MULTI) gets one, and a forgotten one is released with a warning', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr }, { logger: memoryLogger(lines) });
    app.post('/tx', async (request) => {
      const conn = await request.redis.get(); // never closed: the plugin must release it
      await conn.do('MULTI');
      await conn.do('SET', 'lazy:tx', 'v');
      return { result: await conn.do('EXEC') };
    });
    const res = await app.inject({ method: 'POST', url: '/tx' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: ['OK'] });
    const pool = app.redis.pool as Pool;
    expect(await eventually(() => pool.stats().idleCount === 1)).toBe(true);
    expect(pool.stats()).toMatchObject({ activeCount: 1, inUseCount: 0, dials: 1, leaseMoves: 1, sharedCommands: 0 }); // MULTI came first: the shared connection was never needed
    expect(warnings(lines, FORGOT)).toHaveLength(1);
  });

  it('a move that finds the pool exhausted answers 503 REDIS_POOL_EXHAUSTED', async () => {
    const app = await makeApp({ addr: server.addr, maxActive: 1, wait: false });
    const holder = await (app.redis.pool as Pool).get();
    app.post('/tx', async (request) => {
      await using conn = await request.redis.get();
      await conn.do('PING'); // shared: fine
      await conn.do('MULTI'); // needs a connection of its own
      return conn.do('EXEC');
    });
    const res = await app.inject({ method: 'POST', url: '/tx' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'REDIS_POOL_EXHAUSTED' });
    await holder.close();
  });
});

describe('client errors map to HTTP', () => {
  it('PoolExhaustedError → 503 REDIS_POOL_EXHAUSTED (maxActive 1, wait false, two requests at once)', async () => {
    const app = await makeApp({ addr: server.addr, maxActive: 1, wait: false, exclusiveConnections: true });
    let refusals = 0;
    app.addHook('onSend', async (_request, reply, payload) => {
      if (reply.statusCode === 503) refusals++;
      return payload;
    });
    app.get('/hold', async (request) => {
      const before = refusals;
      await using conn = await request.redis.get();
      await conn.do('PING');
      // Held until the other request is refused (bounded; without a refusal the statuses below differ).
      await eventually(() => refusals > before, 5_000);
      return { ok: true };
    });
    const both = await Promise.all([app.inject('/hold'), app.inject('/hold')]);
    expect(both.map((res) => res.statusCode).sort()).toEqual([200, 503]);
    const refused = both.find((res) => res.statusCode === 503);
    expect(refused?.json()).toMatchObject({ code: 'REDIS_POOL_EXHAUSTED', statusCode: 503 });

    const base = await listen(app);
    const statuses = await Promise.all([fetch(`${base}/hold`), fetch(`${base}/hold`)]);
    expect(statuses.map((res) => res.status).sort()).toEqual([200, 503]);
    for (const res of statuses) await res.arrayBuffer();
    expect(app.redis.pool?.stats()).toMatchObject({ activeCount: 1, inUseCount: 0 });
  });

  it('a killed server → 503 with a stable code; a live one again → 200', async () => {
    const doomed = await startRedisServer();
    cleanups.push(() => doomed.stop());
    const app = await makeApp({ addr: doomed.addr, connectTimeoutMs: 500 });
    app.get('/ping', async (request) => {
      await using conn = await request.redis.get();
      return { pong: text(await conn.do('PING')) };
    });
    expect((await app.inject('/ping')).statusCode).toBe(200);
    await doomed.kill();
    // The idle connection is dead (EOF) and dialing is refused.
    for (let i = 0; i < 2; i++) {
      const res = await app.inject('/ping');
      expect(res.statusCode).toBe(503);
      expect(['REDIS_CONN_CLOSED', 'REDIS_TIMEOUT']).toContain(res.json().code);
    }
    const base = await listen(app);
    const res = await fetch(`${base}/ping`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('REDIS_CONN_CLOSED');
    expect(app.redis.pool?.stats()).toMatchObject({ activeCount: 0 });
  });

  it('a timeout → 503 REDIS_TIMEOUT; a RedisError (WRONGTYPE) → 500 with its code', async () => {
    const app = await makeApp({ addr: server.addr });
    const list = key('list');
    app.get('/wrongtype', async (request) => {
      await using conn = await request.redis.get();
      await conn.do('SET', list, 'a string');
      return conn.do('LPUSH', list, 'x');
    });
    app.get('/timeout', async (request) => {
      await using conn = await request.redis.get();
      return conn.doWithTimeout(50, 'BLPOP', key('empty'), 0);
    });
    app.get('/plain', async () => {
      throw new Error('not ours');
    });
    const wrong = await app.inject('/wrongtype');
    expect(wrong.statusCode).toBe(500);
    expect(wrong.json()).toMatchObject({ code: 'WRONGTYPE', statusCode: 500 });
    const timeout = await app.inject('/timeout');
    expect(timeout.statusCode).toBe(503);
    expect(timeout.json()).toMatchObject({ code: 'REDIS_TIMEOUT' });
    // Errors that are not the client's are left alone.
    expect((await app.inject('/plain')).statusCode).toBe(500);
    expect(lent(app.redis.pool)).toBe(0);
  });
});

describe('getConn / getPool / usePool', () => {
  it('getConn(request) is tracked with the request; getConn(app) is not', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ addr: server.addr, exclusiveConnections: true }, { logger: memoryLogger(lines) });
    let appConn: Conn | undefined;
    app.get('/both', async (request) => {
      const tracked = await getConn(request);
      appConn = await getConn(app);
      expect(getPool(request)).toBe(app.redis.pool);
      return { a: text(await tracked.do('PING')), b: text(await appConn.do('PING')) };
    });
    expect((await app.inject('/both')).json()).toEqual({ a: 'PONG', b: 'PONG' });
    expect(await eventually(() => warnings(lines, FORGOT).length === 1)).toBe(true);
    // The app-level conn is the caller's: still lent until closed.
    expect(app.redis.pool?.stats().inUseCount).toBe(1);
    await appConn?.close();
    expect(app.redis.pool?.stats().inUseCount).toBe(0);
  });

  it('getPool returns the pool, or null without the plugin; getConn rejects ErrNotConfigured without it', async () => {
    const app = await makeApp({ addr: server.addr });
    expect(getPool(app)).toBe(app.redis.pool);
    const bare = Fastify({ logger: false });
    apps.push(bare);
    expect(getPool(bare)).toBeNull();
    await expect(getConn(bare)).rejects.toBeInstanceOf(ErrNotConfigured);
  });

  it('usePool decorates an app without the plugin, tracked requests included', async () => {
    const pool = newPool(server.addr, 0, { clientName: CLIENT_NAME });
    cleanups.push(() => pool.close());
    const lines: LogLine[] = [];
    const app = Fastify({ logger: memoryLogger(lines) });
    apps.push(app);
    usePool(app, pool);
    const k = key('usepool');
    app.post('/n', async (request) => {
      const conn = await request.redis.get(); // forgotten on purpose
      return { n: asInt(await conn.do('INCR', k)) };
    });
    expect(getPool(app)).toBe(pool);
    expect(app.redis.pool).toBe(pool);
    expect((await app.inject({ method: 'POST', url: '/n' })).json()).toEqual({ n: 1 });
    expect(await eventually(() => lent(pool) === 0)).toBe(true);
    expect(warnings(lines, FORGOT)).toHaveLength(1);
    await app.close();
    // usePool's pool is not closed with the app.
    await using conn = await pool.get();
    expect(asInt(await conn.do('GET', k))).toBe(1);
  });

  it('usePool swaps the pool of a registered plugin (unconfigured before)', async () => {
    const app = await makeApp();
    app.get('/ping', async (request) => {
      await using conn = await request.redis.get();
      return { pong: text(await conn.do('PING')) };
    });
    expect((await app.inject('/ping')).statusCode).toBe(503);
    const pool = newPool(server.addr, 0, { clientName: CLIENT_NAME });
    cleanups.push(() => pool.close());
    usePool(app, pool);
    expect(getPool(app)).toBe(pool);
    expect((await app.inject('/ping')).json()).toEqual({ pong: 'PONG' });
    expect(app.redis.blobCache('ns')).not.toBeNull();
  });
});

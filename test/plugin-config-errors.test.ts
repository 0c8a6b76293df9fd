/**
 * A configuration error seen through the plugin, against a real
 * redis-server: `REDIS_DB=99` (the server has 16 databases) without
 * `connectOnStart`. The app starts (nothing dials at startup); every route
 * that reaches Redis then answers 503 with the stable code REDIS_HANDSHAKE
 * and a message naming the db — not 500 with the server's bare
 * `ERR DB index is out of range`, which would read as a failed request —
 * through the lease, an exclusive borrow, `app.redis.get()` and the health
 * route alike; and no refused dial leaves a socket open. With
 * `connectOnStart`, `app.ready()` fails with FST_REDIS_BAD_OPTION naming the
 * db and where it came from (REDIS_DB, --redis-db, option db), or the
 * refused step (AUTH) without the password.
 */
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { HandshakeError, type RedisconnOptions } from '../plugin/index.js';
import type { Conn } from '../src/conn.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { clientList, errorTexts, guardProcessErrors, makeApp, readyError, useApps, useServerWithConn } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
/** Our observer connection (CLIENT LIST), on db 0. Not in any pool. */
let admin: Conn;
useServerWithConn((started) => ({ server, conn: admin } = started));
const apps = useApps();

/** What the server refuses, as the message must say it (the db and the option to check). */
const REFUSAL = 'SELECT 99 refused: ERR DB index is out of range (check the db option)';

/** An app configured from the environment with a db the server lacks, plus `options`. */
function misconfiguredApp(options: RedisconnOptions = {}): Promise<FastifyInstance> {
  return makeApp(apps, { env: { REDIS_ADDR: server.addr, REDIS_DB: '99' }, ...options });
}

/** Adds `GET /get`: a connection from `request.redis.get()` and a GET on it. */
function addGetRoute(app: FastifyInstance): void {
  app.get('/get', async (request) => {
    await using conn = await request.redis.get();
    return { value: await conn.do('GET', 'k') };
  });
}

/** Expects the 503 REDIS_HANDSHAKE answer, naming the db, from `url`. */
async function expectHandshake503(app: FastifyInstance, url: string): Promise<void> {
  const res = await app.inject(url);
  expect(res.statusCode).toBe(503);
  const body = res.json() as { statusCode: number; code: string; message: string };
  expect(body).toMatchObject({ statusCode: 503, code: 'REDIS_HANDSHAKE' });
  expect(body.message).toContain(`dial ${server.addr}: ${REFUSAL}`);
}

/** Waits until only our observer connection is left on the server: no refused dial kept its socket. */
async function expectNoSocketLeft(): Promise<void> {
  await expect.poll(async () => (await clientList(admin)).length, { timeout: 3_000, interval: 20 }).toBe(1);
}

describe('REDIS_DB=99 without connectOnStart', () => {
  it('the app starts; request.redis.get() + GET answers 503 REDIS_HANDSHAKE naming the db (lease, the default)', async () => {
    const app = await misconfiguredApp();
    addGetRoute(app);
    await app.ready();
    for (let i = 0; i < 2; i++) await expectHandshake503(app, '/get');
    await expectNoSocketLeft();
  });

  it('the same through an exclusive borrow (exclusiveConnections)', async () => {
    const app = await misconfiguredApp({ exclusiveConnections: true });
    addGetRoute(app);
    await app.ready();
    await expectHandshake503(app, '/get');
    expect(app.redis.pool?.stats()).toMatchObject({ activeCount: 0, dialErrors: 1 });
    await expectNoSocketLeft();
  });

  it('the same through app.redis.get()', async () => {
    const app = await misconfiguredApp();
    app.get('/app', async () => {
      await using conn = await app.redis.get();
      return { value: await conn.do('GET', 'k') };
    });
    await app.ready();
    await expectHandshake503(app, '/app');
    await expectNoSocketLeft();
  });

  it('the health route answers 503 naming the db', async () => {
    const app = await misconfiguredApp({ health: true });
    await app.ready();
    const res = await app.inject('/healthz/redis');
    expect(res.statusCode).toBe(503);
    const body = res.json() as { status: string; error: string };
    expect(body.status).toBe('unavailable');
    expect(body.error).toContain(REFUSAL);
    await expectNoSocketLeft();
  });

  it('a db the server has (the control): the same route answers 200', async () => {
    const app = await makeApp(apps, { env: { REDIS_ADDR: server.addr, REDIS_DB: '15' } });
    addGetRoute(app);
    const res = await app.inject('/get');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ value: null });
  });
});

describe('a refused handshake with connectOnStart fails startup, naming the input to fix', () => {
  it.each([
    [{ env: { REDIS_ADDR: '', REDIS_DB: '99' } }, 'db 99 (from REDIS_DB)'],
    [{ argv: ['--redis-db', '99'], env: {} }, 'db 99 (from --redis-db)'],
    [{ db: 99 }, 'db 99 (from option db)'],
  ])('%j → FST_REDIS_BAD_OPTION', async (options, source) => {
    const withAddr: RedisconnOptions = 'db' in options ? { addr: server.addr, ...options } : { ...options, env: { ...options.env, REDIS_ADDR: server.addr } };
    const err = await readyError(apps, { ...withAddr, connectOnStart: true });
    expect(err).toMatchObject({ code: 'FST_REDIS_BAD_OPTION' });
    expect(err.message).toBe(`redisconn: Redis at ${server.addr} refused ${source}: ERR DB index is out of range`);
    expect((err as Error & { cause?: unknown }).cause).toBeInstanceOf(HandshakeError);
    await expectNoSocketLeft();
  });

  it('a wrong password names the refused step, never the password', async () => {
    const err = await readyError(apps, { addr: server.addr, password: 'not-the-password-xyz', connectOnStart: true });
    expect(err).toMatchObject({ code: 'FST_REDIS_BAD_OPTION' });
    expect(err.message).toMatch(new RegExp(`^redisconn: Redis at ${server.addr} refused the connection's AUTH: `));
    expect(errorTexts(err).join('\n')).not.toContain('not-the-password-xyz');
  });
});

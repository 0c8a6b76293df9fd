/**
 * Types of the plugin entry (`redisconn`) as a strict user sees them:
 * registration options, the `app.redis` / `request.redis` declaration
 * merging (and namespaces), `getConn` / `getPool` / `usePool`, the blob and
 * abstract caches (with @fastify/caching), and the plugin's errors. Compiled
 * only, never run.
 */
import fastifyCaching from '@fastify/caching';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import redisconn, {
  asInt,
  ErrAlreadyRegistered,
  ErrBadOption,
  ErrNotConfigured,
  ErrUnreachable,
  getConn,
  getPool,
  newCluster,
  newPool,
  optionsFromFlags,
  usePool,
  type AbstractCache,
  type AbstractCacheEntry,
  type AppRedis,
  type BlobCache,
  type Conn,
  type ConnSource,
  type FlagOptions,
  type GetOptions,
  type RedisconnOptions,
  type Reply,
  type RequestRedis,
} from 'redisconn';
import { expectAssignable, expectType } from './expect.js';

const app = Fastify();

// --- Registration: what the options accept.
await app.register(redisconn); // flags / env
await app.register(redisconn, { addr: '127.0.0.1:6379', db: 0 });
await app.register(redisconn, { addr: 'redis://:secret@127.0.0.1:6379/2', connectOnStart: true, exclusiveConnections: true });
await app.register(redisconn, { cluster: ['10.0.0.1:6379', '10.0.0.2:6379'], maxActive: 100, readTimeoutMs: 1_000 });
await app.register(redisconn, { sentinel: { sentinels: ['10.0.0.1:26379'], masterName: 'mymaster', password: 'p' }, password: 'q', db: 2 });
await app.register(redisconn, { pool: newPool('127.0.0.1:6379', 0) });
await app.register(redisconn, {
  addr: '127.0.0.1:6379',
  name: 'main',
  getTimeoutMs: 1_000,
  closeTimeoutMs: 1_000,
  resetTimeoutMs: 1_000,
  slowCommandMs: 20,
  protocol: 3,
  tls: { rejectUnauthorized: false },
  blobCache: { prefix: 'app.cache', maxValueBytes: 1024 },
  metrics: { route: '/metrics', intervalMs: 10_000, commandDuration: true },
  admin: { authorize: (request) => request.headers['x-admin-token'] === 's3cret', prefix: '/admin' },
  health: { route: '/healthz', timeoutMs: 500 },
  argv: [],
  env: {},
});
await app.register(redisconn, { blobCache: false, metrics: false, health: true });
await app.register(redisconn, { namespace: 'cache', addr: '127.0.0.1:6380' });

// Values read from the environment (`string | undefined`) go in as they are,
// also under exactOptionalPropertyTypes (tsc --init's default): undefined is unset.
await app.register(redisconn, { addr: process.env.REDIS_ADDR, username: process.env.REDIS_USER, password: process.env.REDIS_PASSWORD });
await app.register(redisconn, { sentinel: { sentinels: ['10.0.0.1:26379'], masterName: 'mymaster', password: process.env.SENTINEL_PASSWORD }, db: undefined });

// @ts-expect-error db is a number
await app.register(redisconn, { addr: '127.0.0.1:6379', db: '2' });
// @ts-expect-error addr is a string
await app.register(redisconn, { addr: 6379 });
// @ts-expect-error an unknown option (misspelt addr)
await app.register(redisconn, { adress: '127.0.0.1:6379' });
// @ts-expect-error an unknown option
await app.register(redisconn, { addr: '127.0.0.1:6379', poolSize: 10 });
// @ts-expect-error blobCache is settings or false
await app.register(redisconn, { blobCache: true });
// @ts-expect-error a sentinel target needs its masterName
await app.register(redisconn, { sentinel: { sentinels: ['10.0.0.1:26379'] } });
// @ts-expect-error cluster seeds are a list
await app.register(redisconn, { cluster: '10.0.0.1:6379' });
// @ts-expect-error protocol is 2 or 3
await app.register(redisconn, { protocol: 4 });
// @ts-expect-error authorize takes the request and answers a boolean
await app.register(redisconn, { admin: { authorize: () => 'yes' } });
// @ts-expect-error namespace is a string
await app.register(redisconn, { namespace: 1 });

const asValue: RedisconnOptions = { addr: '127.0.0.1:6379', maxIdle: 8 };
await app.register(redisconn, asValue);

expectType(optionsFromFlags()).is<FlagOptions>();
expectType(optionsFromFlags(['--redis-addr', 'x'], { REDIS_DB: '1' }).db).is<number | undefined>();

// --- Declaration merging: app.redis.
expectType(app.redis.get()).is<Promise<Conn>>();
expectType(app.redis.get({ timeoutMs: 100 })).is<Promise<Conn>>();
expectType(app.redis.pool).is<ConnSource | null>();
expectType(app.redis.blobCache('pages')).is<BlobCache | null>();
expectType(app.redis.abstractCache('http')).is<AbstractCache>();
expectAssignable<AppRedis>(app.redis);
// @ts-expect-error get() is a promise: await it before use
await app.redis.get().do('PING');
// @ts-expect-error blobCache() may be null (not configured, or blobCache: false)
await app.redis.blobCache('pages').get('k');
// @ts-expect-error a misspelt method is not callable (it reads as a namespace)
app.redis.blobcache('pages');

// The abstract cache is @fastify/caching's `cache` under strict, as the README prints it.
await app.register(fastifyCaching, { cache: app.redis.abstractCache('http') });
const cacheEntry = await app.redis.abstractCache('http').get<{ html: string }>('k');
expectType(cacheEntry).is<AbstractCacheEntry<{ html: string }> | null>();
// @ts-expect-error blobCache() is not an abstract cache (and may be null)
await app.register(fastifyCaching, { cache: app.redis.blobCache('http') });

// Namespaces: app.redis.<ns> is an AppRedis (undefined under noUncheckedIndexedAccess,
// as for any index signature); the declared members keep their own types.
expectType(app.redis.cache).is<AppRedis | undefined>();
expectType(app.redis['queue']).is<AppRedis | undefined>();
const cache: AppRedis | undefined = app.redis.cache;
if (cache) {
  expectType(cache.get()).is<Promise<Conn>>();
  expectType(cache.pool).is<ConnSource | null>();
  expectType(cache.abstractCache('http')).is<AbstractCache>();
}
expectType(app.redis.get).is<(options?: GetOptions) => Promise<Conn>>();
expectType(app.redis.blobCache).is<(namespace: string) => BlobCache | null>();

// --- Declaration merging: request.redis.
app.get('/counter/:name', async (request) => {
  expectType(request.redis.get()).is<Promise<Conn>>();
  expectAssignable<RequestRedis>(request.redis);
  await using conn = await request.redis.get();
  expectType(conn).is<Conn>();
  const reply = await conn.do('INCR', `counter:${(request.params as { name: string }).name}`);
  expectType(reply).is<Reply>();
  expectType(asInt(reply)).is<number | null>();
  expectType(request.redis.cache).is<RequestRedis | undefined>();
  expectType(request.redis.get).is<(options?: GetOptions) => Promise<Conn>>();
  // @ts-expect-error the request has no pool (that is app.redis.pool): `pool` reads as a namespace
  request.redis.pool.stats();
  // @ts-expect-error get() is a promise: await it before use
  request.redis.get().send('PING');
  // @ts-expect-error a reply is not a promise: await conn.do() first
  asInt(conn.do('GET', 'k'));
  return { ok: true };
});

// Every instance and request has them (the plugin is registered with fastify-plugin).
function onInstance(instance: FastifyInstance, request: FastifyRequest): void {
  expectType(instance.redis.get()).is<Promise<Conn>>();
  expectType(request.redis.get()).is<Promise<Conn>>();
  expectType(request.server.redis.pool).is<ConnSource | null>();
}
void onInstance;

// --- getConn / getPool / usePool (LUCI's Get, GetPool, UsePool).
declare const request: FastifyRequest;
expectType(getConn(app)).is<Promise<Conn>>();
expectType(getConn(request)).is<Promise<Conn>>();
expectType(getConn(request, { timeoutMs: 100 })).is<Promise<Conn>>();
expectType(getPool(app)).is<ConnSource | null>();
expectType(getPool(request)).is<ConnSource | null>();
usePool(app, newPool('127.0.0.1:6379', 0));
usePool(app, newCluster(['127.0.0.1:7000']));
// @ts-expect-error getConn takes an app or a request
void getConn({ redis: app.redis });
// @ts-expect-error usePool takes a source of connections, not an address
usePool(app, '127.0.0.1:6379');

// --- The plugin's errors: @fastify/error classes with literal codes.
const notConfigured = new ErrNotConfigured();
expectType(notConfigured.code).is<'FST_REDIS_NOT_CONFIGURED'>();
expectType(notConfigured.statusCode).is<503>();
expectAssignable<Error>(notConfigured);
expectType(new ErrAlreadyRegistered().code).is<'FST_REDIS_ALREADY_REGISTERED'>();
expectType(new ErrBadOption('option db is bad').code).is<'FST_REDIS_BAD_OPTION'>();
expectType(new ErrUnreachable('127.0.0.1:6379', 'connection refused').code).is<'FST_REDIS_UNREACHABLE'>();
function isNotConfigured(err: unknown): boolean {
  return err instanceof ErrNotConfigured && err.code === 'FST_REDIS_NOT_CONFIGURED';
}
void isNotConfigured;
// @ts-expect-error the code is a literal type: a typo is caught
if (notConfigured.code === 'FST_REDIS_NOT_CONFIGURD') void 0;

// --- Namespaces listed once (RedisNamespaces) are typed without `| undefined`.
declare module 'redisconn' {
  interface RedisNamespaces {
    sessions: true;
  }
}
expectType(app.redis.sessions).is<AppRedis>();
expectType(app.redis.sessions.get()).is<Promise<Conn>>();
app.get('/session', async (request) => {
  expectType(request.redis.sessions).is<RequestRedis>();
  await using conn = await request.redis.sessions.get();
  return asInt(await conn.do('GET', 'session'));
});
expectType(getPool(app, 'sessions')).is<ConnSource | null>();
// @ts-expect-error a namespace name is a string
getPool(app, 1);

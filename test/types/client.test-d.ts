/**
 * Types of the client entries (`redisconn/client`, the same client
 * `redisconn` re-exports, and `redisconn/testing`) as a strict user sees
 * them: Conn, dial, Pool, leases, reply and struct helpers, pub/sub,
 * scripts, cluster and sentinel pools, errors' codes. Compiled only, never
 * run.
 */
import * as fromPlugin from 'redisconn';
import {
  asBigInt,
  asBool,
  asBytes,
  asFloat,
  asFloats,
  asInt,
  asIntMap,
  asInts,
  asString,
  asStringMap,
  asStrings,
  asValues,
  Cluster,
  ClusterError,
  ConnClosedError,
  CrossSlotError,
  dial,
  dialURL,
  flattenArgs,
  newCluster,
  newPool,
  newSentinelPool,
  Pool,
  PoolClosedError,
  PoolExhaustedError,
  ProtocolError,
  PubSubConn,
  RedisConnError,
  RedisError,
  Script,
  SentinelError,
  SentinelPool,
  slotOf,
  TimeoutError,
  type Conn,
  type ConnSource,
  type PoolStats,
  type PubSubNotification,
  type Reply,
} from 'redisconn/client';
import { startRedisServer, type TestRedisServer } from 'redisconn/testing';
import { expectAssignable, expectType } from './expect.js';

// --- Connections.
expectType(dial('127.0.0.1:6379')).is<Promise<Conn>>();
expectType(dialURL('redis://127.0.0.1:6379/1')).is<Promise<Conn>>();
const conn = await dial('127.0.0.1:6379', { db: 1, readTimeoutMs: 5_000, protocol: 3, clientName: 'app', decodeStrings: true });
expectType(conn.do('GET', 'k')).is<Promise<Reply>>();
expectType(conn.doWithTimeout(100, 'BLPOP', 'q', 0)).is<Promise<Reply>>();
expectType(conn.send('INCR', 'a')).is<void>();
expectType(conn.flush()).is<Promise<void>>();
expectType(conn.receive()).is<Promise<Reply>>();
expectType(conn.err()).is<Error | null>();
expectType(conn.close()).is<Promise<void>>();
await conn.do('SET', 'k', 'v', 'PX', 1_000, Buffer.from('x'), 1n, true, null, undefined, { redisArg: () => 'x' });
// Values read from the environment go in as they are (exactOptionalPropertyTypes too).
await dial('127.0.0.1:6379', { username: process.env.REDIS_USER, password: process.env.REDIS_PASSWORD });
newPool('127.0.0.1:6379', 0, { password: process.env.REDIS_PASSWORD, maxActive: undefined });
// @ts-expect-error an object is not an argument (flatten it, or give it redisArg())
await conn.do('HSET', 'h', { field: 'value' });
// @ts-expect-error the command name comes first, as a string
await conn.do(['GET', 'k']);
// @ts-expect-error dial options are checked
await dial('127.0.0.1:6379', { readTimeout: 5_000 });
// @ts-expect-error protocol is 2 or 3
await dial('127.0.0.1:6379', { protocol: 1 });
{
  await using scoped = await dial('127.0.0.1:6379');
  expectType(scoped).is<Conn>();
}

// --- Reply helpers: a typed value, null for nil.
declare const reply: Reply;
expectType(asString(reply)).is<string | null>();
expectType(asBytes(reply)).is<Buffer | null>();
expectType(asInt(reply)).is<number | null>();
expectType(asBigInt(reply)).is<bigint | null>();
expectType(asFloat(reply)).is<number | null>();
expectType(asBool(reply)).is<boolean | null>();
expectType(asValues(reply)).is<Reply[] | null>();
expectType(asStrings(reply)).is<(string | null)[] | null>();
expectType(asInts(reply)).is<(number | null)[] | null>();
expectType(asFloats(reply)).is<(number | null)[] | null>();
expectType(asStringMap(reply)).is<Record<string, string> | null>();
expectType(asIntMap(reply)).is<Record<string, number> | null>();
// @ts-expect-error a helper takes a reply, not the promise of one
asString(conn.do('GET', 'k'));
// @ts-expect-error the result may be null (nil)
asString(reply).toUpperCase();
expectAssignable<unknown[]>(flattenArgs({ a: 1, b: 'x' }));

// --- Pools and leases.
const pool = newPool('127.0.0.1:6379', 0, { maxActive: 10, readTimeoutMs: 1_000 });
expectType(pool).is<Pool>();
expectType(pool.get()).is<Promise<Conn>>();
expectType(pool.get({ timeoutMs: 100, signal: AbortSignal.timeout(100) })).is<Promise<Conn>>();
expectType(pool.do('GET', 'k')).is<Promise<Reply>>();
expectType(pool.lease()).is<Conn>();
expectType(pool.stats()).is<PoolStats>();
expectType(pool.stats().inUseCount).is<number>();
expectAssignable<ConnSource>(pool);
{
  await using borrowed = await pool.get();
  expectType(borrowed).is<Conn>();
}
const custom = new Pool({ dial: () => dial('127.0.0.1:6379'), maxIdle: 2, maxActive: 4, wait: true, testOnBorrow: async (c) => void (await c.do('PING')) });
expectAssignable<ConnSource>(custom);
// @ts-expect-error wait is a boolean
new Pool({ dial: () => dial('127.0.0.1:6379'), wait: 'no' });
// @ts-expect-error get() options are checked
await pool.get({ timeout: 100 });

// --- Cluster and Sentinel: sources of connections too.
const cluster = newCluster(['127.0.0.1:7000'], { readFrom: 'replica' });
expectType(cluster).is<Cluster>();
expectAssignable<ConnSource>(cluster);
expectType(cluster.get()).is<Promise<Conn>>();
expectType(slotOf('user:1')).is<number>();
// @ts-expect-error readFrom is 'master', 'replica' or 'preferReplica'
newCluster(['127.0.0.1:7000'], { readFrom: 'any' });
const sentinelPool = newSentinelPool({ sentinels: ['127.0.0.1:26379'], masterName: 'mymaster' });
expectType(sentinelPool).is<SentinelPool>();
expectAssignable<ConnSource>(sentinelPool);
// @ts-expect-error masterName is required
newSentinelPool({ sentinels: ['127.0.0.1:26379'] });

// --- Pub/sub and scripts.
const pubsub = new PubSubConn(await pool.get(), { healthCheckMs: 15_000 });
await pubsub.subscribe('news');
const notification = await pubsub.receive();
expectType(notification).is<PubSubNotification>();
if (notification.kind === 'message') expectType(notification.data).is<Buffer>();
for await (const message of pubsub) expectType(message).is<PubSubNotification>();
const script = new Script(1, 'return redis.call("GET", KEYS[1])');
expectType(script.do(conn, 'k')).is<Promise<Reply>>();
expectType(script.do(pool, 'k')).is<Promise<Reply>>();

// --- Errors: a stable `code`, a literal where it is fixed.
expectType(new ProtocolError('x').code).is<'REDIS_PROTOCOL'>();
expectType(new TimeoutError('x').code).is<'REDIS_TIMEOUT'>();
expectType(new ConnClosedError('x').code).is<'REDIS_CONN_CLOSED'>();
expectType(new PoolExhaustedError('x').code).is<'REDIS_POOL_EXHAUSTED'>();
expectType(new PoolClosedError('x').code).is<'REDIS_POOL_CLOSED'>();
expectType(new CrossSlotError('x').code).is<'REDIS_CROSSSLOT'>();
expectType(new ClusterError('x', []).code).is<'REDIS_CLUSTER'>();
expectType(new SentinelError('x', []).code).is<'REDIS_SENTINEL'>();
expectType(new RedisError('WRONGTYPE Operation against a key').code).is<string>();
function codeOf(err: unknown): string | undefined {
  if (err instanceof RedisConnError) return err.code;
  return undefined;
}
void codeOf;
// @ts-expect-error RedisConnError is abstract
new RedisConnError('x');

// --- The plugin entry re-exports the same client.
expectType(fromPlugin.dial).is<typeof dial>();
expectType(fromPlugin.Pool).is<typeof Pool>();
// @ts-expect-error the client entry has no plugin (import it from 'redisconn')
import('redisconn/client').then((m) => m.default);

// --- redisconn/testing.
const server = await startRedisServer();
expectType(server).is<TestRedisServer>();
expectType(server.addr).is<string>();
expectType(server.stop()).is<Promise<void>>();

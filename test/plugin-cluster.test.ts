/**
 * The plugin on a Redis Cluster (option `cluster`, `--redis-cluster`,
 * `REDIS_CLUSTER`), against one real local cluster (3 masters, 3 replicas):
 * request and app connections (leases and exclusive) over keys on every
 * master, the blob cache, admin FLUSHALL on every master, health (PING on
 * every master plus cluster_state), per-node metrics and the cluster's
 * redirect/refresh counters, option/flag/env parsing and its conflicts, and
 * connectOnStart against unreachable seeds. The node-killing test runs last.
 */
import { spawnSync } from 'node:child_process';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import redisconn, { Cluster, ErrBadOption, Pool, asInt, dial, getPool, newCluster, optionsFromFlags, slotOf, usePool, type Conn, type RedisconnOptions } from '../plugin/index.js';
import { freePort, startRedisCluster, type TestClusterNode, type TestRedisCluster } from '../src/testing/index.js';
import { errorTexts, eventually, guardProcessErrors, readyError, text, useApps } from './helpers.js';

guardProcessErrors();

let cluster: TestRedisCluster;
const apps = useApps();

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(async () => {
  await cluster.flushAll();
});


/** An app on the test cluster (no flags or env unless given), not yet ready. */
function clusterApp(options: RedisconnOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false });
  apps.push(app);
  app.register(redisconn, { cluster: cluster.seeds, argv: [], env: {}, metrics: false, ...options });
  return app;
}


/** Runs one command on `addr` directly (not through the cluster client). */
async function on(addr: string, cmd: string, ...args: string[]): Promise<unknown> {
  const conn = await dial(addr);
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

function liveMasters(): TestClusterNode[] {
  return cluster.masters().filter((node) => node.alive);
}

/** DBSIZE of every live master, asked directly. */
async function dbsizes(): Promise<number[]> {
  return Promise.all(liveMasters().map(async (node) => asInt((await on(node.addr, 'DBSIZE')) as number) ?? -1));
}

/** Keys spread so that every master serves at least two of them (checked against the cluster). */
async function keysOnEveryMaster(prefix: string): Promise<string[]> {
  const byMaster = new Map<string, string[]>();
  for (let i = 0; i < 200 && (byMaster.size < liveMasters().length || [...byMaster.values()].some((keys) => keys.length < 2)); i++) {
    const key = `${prefix}:${i}`;
    const master = await cluster.masterOf(slotOf(key));
    const keys = byMaster.get(master.addr) ?? [];
    if (keys.length < 2) byMaster.set(master.addr, [...keys, key]);
  }
  expect(byMaster.size).toBe(liveMasters().length);
  return [...byMaster.values()].flat();
}

const TOKEN = 'cluster-admin';
const byToken = (request: FastifyRequest): boolean => request.headers['x-admin-token'] === TOKEN;

describe('connections on a cluster', () => {
  /** Routes writing and reading keys through `request.redis.get()` and `app.redis.get()`. */
  function withRoutes(app: FastifyInstance): FastifyInstance {
    const roundTrip = async (conn: Conn, keys: string[]): Promise<string[]> => {
      for (const key of keys) await conn.do('SET', key, `v-${key}`);
      const values = (await conn.do('MGET', ...keys)) as Buffer[];
      return values.map((value) => text(value));
    };
    app.post<{ Body: { keys: string[] } }>('/request', async (request) => {
      await using conn = await request.redis.get();
      return await roundTrip(conn, request.body.keys);
    });
    app.post<{ Body: { keys: string[] } }>('/app', async (request) => {
      await using conn = await app.redis.get();
      return await roundTrip(conn, request.body.keys);
    });
    return app;
  }

  for (const exclusiveConnections of [false, true]) {
    it(`SET / GET / MGET over keys on every master, request and app connections (${exclusiveConnections ? 'exclusive' : 'leases'})`, async () => {
      const app = withRoutes(clusterApp({ exclusiveConnections }));
      await app.ready();
      expect(app.redis.pool).toBeInstanceOf(Cluster);
      expect(getPool(app)).toBe(app.redis.pool);
      for (const route of ['/request', '/app']) {
        const keys = await keysOnEveryMaster(`conn:${route}:${exclusiveConnections}`);
        const res = await app.inject({ method: 'POST', url: route, payload: { keys } });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual(keys.map((key) => `v-${key}`));
        // Each key is on the master serving its slot.
        for (const key of keys) expect(text((await on((await cluster.masterOf(slotOf(key))).addr, 'GET', key)) as Buffer)).toBe(`v-${key}`);
      }
      for (const size of await dbsizes()) expect(size).toBeGreaterThanOrEqual(4);
      // Nothing left lent out.
      expect(app.redis.pool?.stats().nodes?.every((node) => node.stats.inUseCount - node.stats.sharedCount === 0)).toBe(true);
    });
  }

  it('client errors a handler lets through: CrossSlotError → 500, ClusterError (no node answers) → 503, with their codes', async () => {
    const app = clusterApp();
    app.get('/cross', async (request) => {
      await using conn = await request.redis.get();
      return await conn.do('SUNION', '{a}set', '{b}set');
    });
    const down = clusterApp({ cluster: [`127.0.0.1:${await freePort()}`], connectTimeoutMs: 200 });
    down.get('/down', async (request) => {
      await using conn = await request.redis.get();
      return await conn.do('GET', 'k');
    });
    const cross = await app.inject('/cross');
    expect(cross.statusCode).toBe(500);
    expect(cross.json()).toMatchObject({ code: 'REDIS_CROSSSLOT' });
    const unreachable = await down.inject('/down');
    expect(unreachable.statusCode).toBe(503);
    expect(unreachable.json()).toMatchObject({ code: 'REDIS_CLUSTER' });
  });

  it('a Cluster you built, through option pool or usePool (yours to close); option pool refuses what is not a source', async () => {
    const mine = newCluster(cluster.seeds);
    try {
      const viaOption = clusterApp({ cluster: undefined, pool: mine, blobCache: false });
      await viaOption.ready();
      expect(viaOption.redis.pool).toBe(mine);
      await using conn = await viaOption.redis.get();
      expect(await conn.do('SET', 'mine', '1')).toBe('OK');
      const bare = Fastify({ logger: false });
      apps.push(bare);
      usePool(bare, mine);
      expect(getPool(bare)).toBe(mine);
      await using again = await bare.redis.get();
      expect(text((await again.do('GET', 'mine')) as Buffer)).toBe('1');
    } finally {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await mine.close();
    }
    const error = await readyError(apps, { pool: { get: () => Promise.resolve() } as unknown as Cluster });
    expect(error.message).toBe('redisconn: option pool must be a source of connections (a Pool, a Cluster...), got an object');
  });

  it('REDIS_CLUSTER builds the cluster; explicit options win over flags and env, flags over env', async () => {
    const fromEnv = clusterApp({ cluster: undefined, env: { REDIS_CLUSTER: cluster.seeds.join(', ') } });
    await fromEnv.ready();
    expect(fromEnv.redis.pool).toBeInstanceOf(Cluster);
    await using conn = await fromEnv.redis.get();
    expect(await conn.do('SET', 'env:key', '1')).toBe('OK');

    // An explicit addr wins over REDIS_CLUSTER and --redis-cluster: a plain pool (nothing dialed).
    const explicitAddr = clusterApp({ cluster: undefined, addr: '127.0.0.1:1', argv: ['--redis-cluster', '127.0.0.1:2'], env: { REDIS_CLUSTER: '127.0.0.1:3' } });
    await explicitAddr.ready();
    expect(explicitAddr.redis.pool).toBeInstanceOf(Pool);
    // An explicit cluster wins over --redis-addr and REDIS_ADDR.
    const explicitCluster = clusterApp({ argv: ['--redis-addr', '127.0.0.1:1'], env: { REDIS_ADDR: '127.0.0.1:2' } });
    await explicitCluster.ready();
    expect(explicitCluster.redis.pool).toBeInstanceOf(Cluster);
    // --redis-addr wins over REDIS_CLUSTER (flags over variables, as one choice).
    const flagAddr = clusterApp({ cluster: undefined, argv: ['--redis-addr=127.0.0.1:1'], env: { REDIS_CLUSTER: cluster.seeds.join(',') } });
    await flagAddr.ready();
    expect(flagAddr.redis.pool).toBeInstanceOf(Pool);
    // Seeds as redis:// URLs (no credentials here) work too.
    const urls = clusterApp({ cluster: cluster.seeds.slice(0, 2).map((seed) => `redis://${seed}/0`) });
    await urls.ready();
    await using viaUrls = await urls.redis.get();
    expect(text((await viaUrls.do('GET', 'env:key')) as Buffer)).toBe('1');
  });
});

describe('blob cache, admin and health on a cluster', () => {
  it('blob cache get / set / delete, each key on the master of its slot', async () => {
    const app = clusterApp();
    await app.ready();
    const cache = app.redis.blobCache('pages');
    expect(cache).not.toBeNull();
    const keys = (await keysOnEveryMaster('blob')).map((key) => key.replace(/^blob:/, ''));
    for (const key of keys) await cache?.set(key, Buffer.from(`page ${key}`), key.endsWith('1') ? 60_000 : 0);
    for (const key of keys) {
      expect((await cache?.get(key))?.toString()).toBe(`page ${key}`);
      const redisKey = cache?.redisKey(key) ?? '';
      expect(text((await on((await cluster.masterOf(slotOf(redisKey))).addr, 'GET', redisKey)) as Buffer)).toBe(`page ${key}`);
    }
    for (const key of keys) await cache?.delete(key);
    for (const key of keys) expect(await cache?.get(key)).toBeNull();
    expect(await dbsizes()).toEqual(liveMasters().map(() => 0));
  });

  for (const async of [false, true]) {
    it(`admin FLUSHALL${async ? ' ASYNC' : ''} empties every master`, async () => {
      const app = clusterApp({ admin: { authorize: byToken } });
      await app.ready();
      await using conn = await app.redis.get();
      for (const key of await keysOnEveryMaster('flush')) await conn.do('SET', key, '1');
      for (const size of await dbsizes()) expect(size).toBeGreaterThan(0);
      const denied = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: { async } });
      expect(denied.statusCode).toBe(403);
      const res = await app.inject({ method: 'POST', url: '/admin/redis/flushall', payload: { async }, headers: { 'x-admin-token': TOKEN } });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ status: 'ok', async });
      expect(await eventually(async () => (await dbsizes()).every((size) => size === 0))).toBe(true);
    });
  }

  it('health: 200 when every master answers and cluster_state is ok; 503 naming the state when it is not', async () => {
    const app = clusterApp({ health: { route: '/hz', timeoutMs: 1_000 } });
    await app.ready();
    const ok = await app.inject('/hz');
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'ok' });

    // Slot 0 unassigned on every node: each says cluster_state:fail (full coverage required).
    const owner = await cluster.masterOf(0);
    const live = cluster.nodes.filter((node) => node.alive);
    await Promise.all(live.map((node) => on(node.addr, 'CLUSTER', 'DELSLOTS', '0')));
    try {
      expect(await eventually(async () => (await app.inject('/hz')).statusCode === 503)).toBe(true);
      const down = await app.inject('/hz');
      expect(down.json()).toEqual({ status: 'unavailable', error: 'redisconn: the Redis Cluster is not serving: CLUSTER INFO says cluster_state:fail' });
    } finally {
      await on(owner.addr, 'CLUSTER', 'ADDSLOTS', '0');
      await cluster.waitForState();
    }
    expect(await eventually(async () => (await app.inject('/hz')).statusCode === 200, 5_000)).toBe(true);
  });
});

describe('metrics on a cluster', () => {
  /** What the registry exposes with a cluster and a plain pool on it (set by the test that builds both). */
  let combinedExposition = '';

  /** `name{labels} value` lines of the exposition for pool `pool`. */
  function series(exposition: string, pool: string): string[] {
    return exposition.split('\n').filter((line) => !line.startsWith('#') && line.includes(`pool="${pool}"`));
  }

  it('pool series per node with node and role labels; redirects, refreshes and slot coverage', async () => {
    const registry = new Registry();
    const app = clusterApp({ name: 'ring', metrics: { registry, route: '/metrics' } });
    await app.ready();
    await using conn = await app.redis.get();
    const keys = await keysOnEveryMaster('metrics');
    for (const key of keys) await conn.do('SET', key, '1');

    let lines = series((await app.inject('/metrics')).body, 'ring');
    for (const node of cluster.nodes) {
      const role = node.role === 'master' ? 'master' : 'replica';
      expect(lines).toContain(`redis_pool_connections{pool="ring",node="${node.addr}",role="${role}",state="idle"} 0`);
    }
    // Every pool series carries a node; the totals are not reported beside them.
    for (const line of lines.filter((l) => l.startsWith('redis_pool_'))) expect(line).toMatch(/node="127\.0\.0\.1:\d+",role="(master|replica)"/);
    // Each master ran some of the SETs on its shared connection.
    const shared = lines.filter((l) => l.startsWith('redis_pool_shared_commands_total') && l.includes('role="master"'));
    expect(shared).toHaveLength(liveMasters().length);
    for (const line of shared) expect(Number(line.split(' ').pop())).toBeGreaterThan(0);
    expect(lines).toContain('redis_cluster_refreshes_total{pool="ring",trigger="start",result="ok"} 1');
    expect(lines).toContain('redis_cluster_redirects_total{pool="ring",kind="moved"} 0');
    expect(lines).toContain('redis_cluster_slots_covered{pool="ring"} 16384');

    // Move the slot of one key to another master: the next command on it is redirected (MOVED) and the map re-read.
    const key = keys[0] as string;
    const slot = slotOf(key);
    const from = await cluster.masterOf(slot);
    const to = liveMasters().find((node) => node.addr !== from.addr) as TestClusterNode;
    await cluster.moveSlot(slot, to);
    expect(text((await conn.do('GET', key)) as Buffer)).toBe('1');
    expect(
      await eventually(async () => {
        lines = series((await app.inject('/metrics')).body, 'ring');
        return lines.includes('redis_cluster_refreshes_total{pool="ring",trigger="moved",result="ok"} 1');
      }),
    ).toBe(true);
    expect(lines).toContain('redis_cluster_redirects_total{pool="ring",kind="moved"} 1');

    // A plain pool beside it on the same registry: its series keep their labels, and the exposition is valid.
    const plain = Fastify({ logger: false });
    apps.push(plain);
    await plain.register(redisconn, { addr: cluster.seeds[0], name: 'plain', argv: [], env: {}, metrics: { registry } });
    const both = await registry.metrics();
    expect(series(both, 'plain')).toContain('redis_pool_connections{pool="plain",state="idle"} 0');
    expect(series(both, 'plain').some((line) => line.startsWith('redis_cluster_'))).toBe(false);
    combinedExposition = both;
  });

  const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!promtool)(
    promtool ? 'the cluster and pool series together pass `promtool check metrics`' : 'SKIPPED: promtool is not on PATH (install Debian package `prometheus`) — combined cluster exposition not validated',
    () => {
      expect(combinedExposition, 'the test before this one makes the exposition').not.toBe('');
      const result = spawnSync('promtool', ['check', 'metrics'], { input: combinedExposition, encoding: 'utf8' });
      expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({ status: 0, output: '' });
    },
  );
});

describe('cluster options', () => {
  it('optionsFromFlags reads --redis-cluster and REDIS_CLUSTER (flags win); addr with cluster is refused naming both', () => {
    expect(optionsFromFlags(['node', 'app', '--redis-cluster', 'a:1,b:2'], {})).toEqual({ cluster: ['a:1', 'b:2'] });
    expect(optionsFromFlags(['--redis-cluster=a:1, b:2,'], {})).toEqual({ cluster: ['a:1', 'b:2'] });
    expect(optionsFromFlags([], { REDIS_CLUSTER: 'e:1,e:2', REDIS_DB: '0' })).toEqual({ cluster: ['e:1', 'e:2'], db: 0 });
    expect(optionsFromFlags(['--redis-cluster', 'f:1'], { REDIS_CLUSTER: 'e:1' })).toEqual({ cluster: ['f:1'] });
    // The target comes whole from the flags when one is given: REDIS_CLUSTER does not join --redis-addr.
    expect(optionsFromFlags(['--redis-addr', 'h:1'], { REDIS_CLUSTER: 'e:1' })).toEqual({ addr: 'h:1' });
    expect(optionsFromFlags([], { REDIS_CLUSTER: '' })).toEqual({});
    expect(() => optionsFromFlags(['--redis-addr', 'h:1', '--redis-cluster', 'a:1'], {})).toThrow(/--redis-addr and --redis-cluster are both set/);
    expect(() => optionsFromFlags([], { REDIS_ADDR: 'h:1', REDIS_CLUSTER: 'a:1' })).toThrow(/REDIS_ADDR and REDIS_CLUSTER are both set/);
    expect(() => optionsFromFlags(['--redis-cluster'], {})).toThrow(/--redis-cluster needs a value/);
  });

  it('addr with cluster → FST_REDIS_BAD_OPTION naming both (options, flags, env)', async () => {
    const cases: [RedisconnOptions, RegExp][] = [
      [{ addr: '127.0.0.1:1', cluster: cluster.seeds }, /option addr and option cluster are both set/],
      [{ argv: ['--redis-addr', '127.0.0.1:1', `--redis-cluster=${cluster.seeds.join(',')}`] }, /--redis-addr and --redis-cluster are both set/],
      [{ env: { REDIS_ADDR: '127.0.0.1:1', REDIS_CLUSTER: cluster.seeds.join(',') } }, /REDIS_ADDR and REDIS_CLUSTER are both set/],
    ];
    for (const [options, named] of cases) {
      const error = await readyError(apps, options);
      expect(error).toBeInstanceOf(ErrBadOption);
      expect(error.code).toBe('FST_REDIS_BAD_OPTION');
      expect(error.message).toMatch(named);
    }
    // An explicit empty addr says nothing: the cluster is used.
    const app = clusterApp({ addr: '' });
    await app.ready();
    expect(app.redis.pool).toBeInstanceOf(Cluster);
  });

  it('db other than 0 with a cluster fails ready() naming what set it', async () => {
    const seeds = cluster.seeds.join(',');
    const cases: [RedisconnOptions, string][] = [
      [{ cluster: cluster.seeds, db: 2 }, 'option db is 2'],
      [{ cluster: cluster.seeds, argv: ['--redis-db', '3'] }, '--redis-db is 3'],
      [{ cluster: cluster.seeds, env: { REDIS_DB: '4' } }, 'REDIS_DB is 4'],
      [{ argv: [`--redis-cluster=${seeds}`], env: { REDIS_DB: '5' } }, 'REDIS_DB is 5'],
      [{ env: { REDIS_CLUSTER: seeds, REDIS_DB: '6' } }, 'REDIS_DB is 6'],
      [{ cluster: [`redis://${cluster.seeds[0]}/7`] }, "option cluster (a URL's db) is 7"],
      [{ argv: ['--redis-cluster', `redis://${cluster.seeds[0]}/8`] }, "--redis-cluster (a URL's db) is 8"],
    ];
    for (const [options, named] of cases) {
      const error = await readyError(apps, options);
      expect(error.code, named).toBe('FST_REDIS_BAD_OPTION');
      expect(error.message).toBe(`redisconn: ${named}, but a Redis Cluster has only db 0`);
    }
    // db 0, said any way, is fine.
    const app = clusterApp({ db: 0, env: { REDIS_DB: '0' } });
    await app.ready();
    expect(app.redis.pool).toBeInstanceOf(Cluster);
  });

  it('bad seeds fail ready() naming the option, flag or variable, never showing a password', async () => {
    const secret = 'Sup3r-s3cret:pw';
    const cases: [RedisconnOptions, RegExp][] = [
      [{ cluster: [] }, /^redisconn: option cluster is invalid: it lists no seeds/],
      [{ cluster: ['127.0.0.1:7000', ' '] }, /^redisconn: option cluster is invalid: a seed is empty/],
      [{ argv: ['--redis-cluster='] }, /^redisconn: --redis-cluster is invalid: it lists no seeds/],
      [{ argv: ['--redis-cluster', ' , '] }, /^redisconn: --redis-cluster is invalid: it lists no seeds/],
      [{ env: { REDIS_CLUSTER: '127.0.0.1:7000,127.0.0.1:99999' } }, /^redisconn: REDIS_CLUSTER is invalid: .*port 99999 out of range/],
      [{ cluster: ['/tmp/redis.sock'] }, /^redisconn: option cluster is invalid: "\/tmp\/redis.sock": a cluster seed must be host:port/],
      [{ cluster: [`app:${secret}@127.0.0.1:7000`] }, /^redisconn: option cluster is invalid: "\*\*\*@127.0.0.1:7000": a user name or password needs a URL/],
      [{ argv: ['--redis-cluster', `127.0.0.1:7000,redis://:${secret}@127.0.0.1:70000`] }, /^redisconn: --redis-cluster is invalid: bad Redis URL "redis:\/\/\*\*\*@127.0.0.1:70000"/],
      [{ env: { REDIS_CLUSTER: `redis://:${secret}@127.0.0.1:7000,redis://127.0.0.1:7001` } }, /^redisconn: REDIS_CLUSTER is invalid: its URLs differ/],
      [{ cluster: 'a:1,b:2' as unknown as string[] }, /^redisconn: option cluster must be an array of strings, got a string/],
    ];
    for (const [options, named] of cases) {
      const error = await readyError(apps, options);
      expect(error.code, String(named)).toBe('FST_REDIS_BAD_OPTION');
      expect(error.message).toMatch(named);
      for (const shown of errorTexts(error)) expect(shown).not.toContain('s3cret');
    }
  });

  it('connectOnStart with unreachable seeds fails ready() fast, naming the seeds and each node error', async () => {
    const seeds = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const started = performance.now();
    const error = await readyError(apps, { cluster: seeds, connectOnStart: true, connectTimeoutMs: 200 });
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error.code).toBe('FST_REDIS_UNREACHABLE');
    expect(error.message).toMatch(new RegExp(`^redisconn: Redis at cluster ${seeds.join(',')} is unreachable: no cluster node answered CLUSTER SLOTS`));
    for (const seed of seeds) expect(error.message).toMatch(new RegExp(`${seed}: .*ECONNREFUSED`));
  });

  it('connectOnStart against the live cluster starts, with every master answering', async () => {
    const app = clusterApp({ connectOnStart: true, connectTimeoutMs: 1_000 });
    await app.ready();
    const stats = app.redis.pool?.stats();
    expect(stats?.nodes?.filter((node) => node.role === 'master' && node.stats.dials > 0)).toHaveLength(liveMasters().length);
  });
});

// Last: it kills a master for good.
describe('a master down', () => {
  it('health answers 503 at once after a master is killed (before any failover)', async () => {
    const app = clusterApp({ health: { route: '/hz', timeoutMs: 500 } });
    await app.ready();
    expect((await app.inject('/hz')).statusCode).toBe(200);
    const victim = liveMasters()[0] as TestClusterNode;
    await cluster.killNode(victim);
    const started = performance.now();
    const res = await app.inject('/hz');
    expect(performance.now() - started).toBeLessThan(600);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'unavailable' });
  });
});

/**
 * The plugin on a Redis Sentinel deployment (option `sentinel`,
 * `--redis-sentinel` + `--redis-master-name`, `REDIS_SENTINEL` +
 * `REDIS_MASTER_NAME`), against one real local deployment (a master, a
 * replica, three sentinels): request and app connections (leases and
 * exclusive) on the master, `db`, the blob cache, health (naming the
 * master), the sentinel metrics, option/flag/env parsing and its conflicts,
 * a master name no sentinel knows (503 REDIS_SENTINEL, connectOnStart
 * failing promptly). The graceful failover runs last.
 */
import { spawnSync } from 'node:child_process';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import redisconn, { ErrBadOption, Pool, SentinelPool, dial, getPool, optionsFromFlags, type Conn, type RedisconnOptions } from '../plugin/index.js';
import { startRedisSentinel, startRedisServer, type TestRedisSentinel } from '../src/testing/index.js';
import { errorTexts, guardProcessErrors, lent, readyError, type ReadyError, rejection, sleep, text, useApps } from './helpers.js';

guardProcessErrors();

let deployment: TestRedisSentinel;
const apps = useApps();

beforeAll(async () => {
  deployment = await startRedisSentinel({ replicas: 1, sentinels: 3 });
}, 30_000);

afterAll(async () => {
  await deployment?.stop();
});


/** The plugin's sentinel option for the test deployment. */
function sentinelOption(overrides: Partial<NonNullable<RedisconnOptions['sentinel']>> = {}): NonNullable<RedisconnOptions['sentinel']> {
  return { sentinels: deployment.sentinels, masterName: deployment.masterName, ...overrides };
}

/** An app on the test deployment (no flags or env unless given), not yet ready. */
function sentinelApp(options: RedisconnOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false });
  apps.push(app);
  app.register(redisconn, { sentinel: sentinelOption(), argv: [], env: {}, metrics: false, connectTimeoutMs: 500, readTimeoutMs: 1_000, ...options });
  return app;
}


/** Runs one command on `addr` directly (not through the plugin). */
async function on(addr: string, db: number, cmd: string, ...args: string[]): Promise<unknown> {
  const conn = await dial(addr, { db });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** Routes writing and reading a key through `request.redis.get()` and `app.redis.get()`. */
function withRoutes(app: FastifyInstance): FastifyInstance {
  const roundTrip = async (conn: Conn, key: string): Promise<string> => {
    await conn.do('SET', key, `v-${key}`);
    return text((await conn.do('GET', key)) as Buffer);
  };
  app.post<{ Params: { key: string } }>('/request/:key', async (request) => {
    await using conn = await request.redis.get();
    return { value: await roundTrip(conn, request.params.key) };
  });
  app.post<{ Params: { key: string } }>('/app/:key', async (request) => {
    await using conn = await app.redis.get();
    return { value: await roundTrip(conn, request.params.key) };
  });
  return app;
}

describe('connections through the sentinels', () => {
  for (const exclusiveConnections of [false, true]) {
    it(`SET / GET on the master, request and app connections (${exclusiveConnections ? 'exclusive' : 'leases'})`, async () => {
      const app = withRoutes(sentinelApp({ exclusiveConnections }));
      await app.ready();
      expect(app.redis.pool).toBeInstanceOf(SentinelPool);
      expect(getPool(app)).toBe(app.redis.pool);
      const master = await deployment.currentMaster();
      for (const route of ['request', 'app']) {
        const key = `conn:${route}:${exclusiveConnections}`;
        const res = await app.inject({ method: 'POST', url: `/${route}/${key}` });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json()).toEqual({ value: `v-${key}` });
        expect(text((await on(master, 0, 'GET', key)) as Buffer)).toBe(`v-${key}`);
      }
      const stats = (app.redis.pool as SentinelPool).stats();
      expect(stats.master).toBe(master);
      expect(stats.nodes).toEqual([{ addr: master, role: 'master', stats: expect.any(Object) }]);
      expect(lent(app.redis.pool)).toBe(0);
    });
  }

  it('db passes to the data-node connections (option db, and REDIS_DB beside REDIS_SENTINEL)', async () => {
    const master = await deployment.currentMaster();
    const viaOption = withRoutes(sentinelApp({ db: 3 }));
    expect((await viaOption.inject({ method: 'POST', url: '/request/db:option' })).statusCode).toBe(200);
    const viaEnv = withRoutes(
      sentinelApp({ sentinel: undefined, env: { REDIS_SENTINEL: deployment.sentinels.join(','), REDIS_MASTER_NAME: deployment.masterName, REDIS_DB: '4' } }),
    );
    expect((await viaEnv.inject({ method: 'POST', url: '/app/db:env' })).statusCode).toBe(200);
    expect(text((await on(master, 3, 'GET', 'db:option')) as Buffer)).toBe('v-db:option');
    expect(text((await on(master, 4, 'GET', 'db:env')) as Buffer)).toBe('v-db:env');
    expect(await on(master, 0, 'EXISTS', 'db:option', 'db:env')).toBe(0);
  });

  it('blob cache get / set / delete on the master', async () => {
    const app = sentinelApp();
    await app.ready();
    const cache = app.redis.blobCache('pages');
    expect(cache).not.toBeNull();
    await cache?.set('home', Buffer.from('<html>'), 60_000);
    expect((await cache?.get('home'))?.toString()).toBe('<html>');
    const master = await deployment.currentMaster();
    expect(text((await on(master, 0, 'GET', cache?.redisKey('home') ?? '')) as Buffer)).toBe('<html>');
    const ttl = (await on(master, 0, 'PTTL', cache?.redisKey('home') ?? '')) as number;
    expect(ttl).toBeGreaterThan(0);
    await cache?.delete('home');
    expect(await cache?.get('home')).toBeNull();
  });

  it('health: 200 naming the current master; connectOnStart starts against the live deployment', async () => {
    const app = sentinelApp({ health: { route: '/hz', timeoutMs: 1_000 }, connectOnStart: true });
    await app.ready();
    const res = await app.inject('/hz');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { status: string; latencyMs: number; master: string };
    expect(Object.keys(body).sort()).toEqual(['latencyMs', 'master', 'status']);
    expect(body).toMatchObject({ status: 'ok', master: await deployment.currentMaster() });
  });
});

describe('a master name no sentinel knows', () => {
  it('requests answer 503 with REDIS_SENTINEL naming the master name; health 503 likewise', async () => {
    const app = sentinelApp({ sentinel: sentinelOption({ masterName: 'no-such-master' }), health: { route: '/hz', timeoutMs: 1_000 } });
    app.get('/k', async (request) => {
      await using conn = await request.redis.get();
      return await conn.do('GET', 'k');
    });
    const started = performance.now();
    const res = await app.inject('/k');
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'REDIS_SENTINEL' });
    expect(res.json().message).toContain('"no-such-master"');
    const health = await app.inject('/hz');
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ status: 'unavailable', error: expect.stringContaining('"no-such-master"') });
  });

  it('connectOnStart fails ready() promptly, naming the master name and the sentinels', async () => {
    const started = performance.now();
    const error = await readyError(apps, { sentinel: sentinelOption({ masterName: 'no-such-master' }), connectOnStart: true, connectTimeoutMs: 1_000 });
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(error.code).toBe('FST_REDIS_UNREACHABLE');
    expect(error.message).toBe(
      `redisconn: Redis at master "no-such-master" of sentinels ${deployment.sentinels.join(',')} is unreachable: no sentinel knows a master named "no-such-master" (asked ${deployment.sentinels.join(', ')})`,
    );
  });

  it('sentinel credentials reach the sentinels (a URL password they do not expect fails), never shown', async () => {
    const secret = 'Sentinel-s3cret';
    const urls = deployment.sentinels.map((addr) => `redis://:${secret}@${addr}`).join(',');
    for (const options of [
      { sentinel: undefined, env: { REDIS_SENTINEL: urls, REDIS_MASTER_NAME: deployment.masterName } },
      { sentinel: sentinelOption({ password: secret }) },
    ] satisfies RedisconnOptions[]) {
      const app = sentinelApp({ ...options, connectOnStart: true });
      const error = (await rejection(Promise.resolve(app.ready()))) as ReadyError;
      expect(error.code).toBe('FST_REDIS_UNREACHABLE');
      expect(error.message).toMatch(/AUTH/);
      for (const shown of errorTexts(error)) expect(shown).not.toContain('s3cret');
    }
  });
});

describe('sentinel options', () => {
  it('optionsFromFlags reads --redis-sentinel / --redis-master-name and their variables (flags win); half a target names the missing half', () => {
    const both = { sentinel: { sentinels: ['a:1', 'b:2'], masterName: 'm' } };
    expect(optionsFromFlags(['node', 'app', '--redis-sentinel', 'a:1,b:2', '--redis-master-name', 'm'], {})).toEqual(both);
    expect(optionsFromFlags(['--redis-sentinel=a:1, b:2,', '--redis-master-name=m'], {})).toEqual(both);
    expect(optionsFromFlags([], { REDIS_SENTINEL: 'a:1,b:2', REDIS_MASTER_NAME: 'm', REDIS_DB: '2' })).toEqual({ ...both, db: 2 });
    expect(optionsFromFlags(['--redis-sentinel', 'a:1,b:2', '--redis-master-name', 'm'], { REDIS_SENTINEL: 'e:1', REDIS_MASTER_NAME: 'e' })).toEqual(both);
    // The target comes whole from the flags when one is given.
    expect(optionsFromFlags(['--redis-addr', 'h:1'], { REDIS_SENTINEL: 'e:1', REDIS_MASTER_NAME: 'e' })).toEqual({ addr: 'h:1' });
    expect(optionsFromFlags([], { REDIS_SENTINEL: ' ', REDIS_MASTER_NAME: '' })).toEqual({});
    expect(() => optionsFromFlags(['--redis-sentinel', 'a:1'], {})).toThrow('redisconn: --redis-master-name is not set, but --redis-sentinel is: a Sentinel deployment needs the name the sentinels monitor the master under too');
    expect(() => optionsFromFlags(['--redis-master-name', 'm'], {})).toThrow('redisconn: --redis-sentinel is not set, but --redis-master-name is: a Sentinel deployment needs the addresses of the sentinels too');
    expect(() => optionsFromFlags([], { REDIS_MASTER_NAME: 'm' })).toThrow(/^redisconn: REDIS_SENTINEL is not set, but REDIS_MASTER_NAME is/);
    expect(() => optionsFromFlags(['--redis-sentinel', 'a:1'], { REDIS_MASTER_NAME: 'm' })).toThrow(/--redis-master-name is not set, but --redis-sentinel is: .*\(REDIS_MASTER_NAME is not read: with a --redis-\* target flag given, the target comes from the flags alone\)/);
    expect(() => optionsFromFlags(['--redis-addr', 'h:1', '--redis-sentinel', 'a:1', '--redis-master-name', 'm'], {})).toThrow(/--redis-addr and --redis-sentinel are both set/);
    expect(() => optionsFromFlags(['--redis-cluster', 'c:1', '--redis-master-name', 'm'], {})).toThrow(/--redis-cluster and --redis-master-name are both set/);
    expect(() => optionsFromFlags([], { REDIS_ADDR: 'h:1', REDIS_SENTINEL: 'a:1', REDIS_MASTER_NAME: 'm' })).toThrow(/REDIS_ADDR and REDIS_SENTINEL are both set/);
    expect(() => optionsFromFlags(['--redis-sentinel'], {})).toThrow(/--redis-sentinel needs a value/);
  });

  it('flags and variables build the sentinel pool; explicit options win over flags and env, flags over env', async () => {
    const list = deployment.sentinels.join(',');
    const name = deployment.masterName;
    const cases: [RedisconnOptions, typeof Pool | typeof SentinelPool][] = [
      [{ sentinel: undefined, argv: ['--redis-sentinel', list, `--redis-master-name=${name}`] }, SentinelPool],
      [{ sentinel: undefined, env: { REDIS_SENTINEL: list, REDIS_MASTER_NAME: name } }, SentinelPool],
      // An explicit addr wins over the sentinel flags and variables: a plain pool (nothing dialed).
      [{ sentinel: undefined, addr: '127.0.0.1:1', argv: ['--redis-sentinel', list, '--redis-master-name', name], env: { REDIS_SENTINEL: list, REDIS_MASTER_NAME: name } }, Pool],
      // An explicit sentinel wins over --redis-addr and REDIS_ADDR.
      [{ argv: ['--redis-addr', '127.0.0.1:1'], env: { REDIS_ADDR: '127.0.0.1:2' } }, SentinelPool],
      // --redis-addr wins over REDIS_SENTINEL (flags over variables, as one choice).
      [{ sentinel: undefined, argv: ['--redis-addr=127.0.0.1:1'], env: { REDIS_SENTINEL: list, REDIS_MASTER_NAME: name } }, Pool],
      // An explicit empty addr says nothing: the sentinels are used.
      [{ addr: '' }, SentinelPool],
    ];
    for (const [options, kind] of cases) {
      const app = sentinelApp(options);
      await app.ready();
      expect(app.redis.pool, JSON.stringify(options)).toBeInstanceOf(kind);
      if (kind === SentinelPool) {
        await using conn = await app.redis.get();
        expect(await conn.do('PING')).toBe('PONG');
      }
    }
  });

  it('half a sentinel target, or one given with addr or cluster, fails ready() naming both sources', async () => {
    const list = deployment.sentinels.join(',');
    const cases: [RedisconnOptions, string | RegExp][] = [
      [{ sentinel: { sentinels: deployment.sentinels } as unknown as RedisconnOptions['sentinel'] }, /^redisconn: option sentinel\.masterName is not set, but option sentinel\.sentinels is/],
      [{ sentinel: { masterName: 'mymaster' } as unknown as RedisconnOptions['sentinel'] }, /^redisconn: option sentinel\.sentinels is not set, but option sentinel\.masterName is/],
      [{ sentinel: {} as unknown as RedisconnOptions['sentinel'] }, /^redisconn: option sentinel needs sentinels .* and masterName/],
      [{ argv: ['--redis-sentinel', list] }, /^redisconn: --redis-master-name is not set, but --redis-sentinel is/],
      [{ env: { REDIS_MASTER_NAME: 'mymaster' } }, /^redisconn: REDIS_SENTINEL is not set, but REDIS_MASTER_NAME is/],
      [{ argv: ['--redis-master-name', 'mymaster'], env: { REDIS_SENTINEL: list } }, /^redisconn: --redis-sentinel is not set, but --redis-master-name is: .*\(REDIS_SENTINEL is not read/],
      [{ addr: '127.0.0.1:1', sentinel: sentinelOption() }, /^redisconn: option addr and option sentinel are both set/],
      [{ cluster: ['127.0.0.1:1'], sentinel: sentinelOption() }, /^redisconn: option cluster and option sentinel are both set/],
      [{ argv: ['--redis-addr', '127.0.0.1:1', '--redis-sentinel', list, '--redis-master-name', 'mymaster'] }, /^redisconn: --redis-addr and --redis-sentinel are both set/],
      [{ argv: [`--redis-cluster=${list}`, '--redis-master-name=mymaster'] }, /^redisconn: --redis-cluster and --redis-master-name are both set/],
      [{ env: { REDIS_CLUSTER: list, REDIS_SENTINEL: list, REDIS_MASTER_NAME: 'mymaster' } }, /^redisconn: REDIS_CLUSTER and REDIS_SENTINEL are both set/],
      [{ env: { REDIS_ADDR: '127.0.0.1:1', REDIS_SENTINEL: list, REDIS_MASTER_NAME: 'mymaster' } }, /^redisconn: REDIS_ADDR and REDIS_SENTINEL are both set/],
    ];
    for (const [options, named] of cases) {
      const error = await readyError(apps, options);
      expect(error, String(named)).toBeInstanceOf(ErrBadOption);
      expect(error.code).toBe('FST_REDIS_BAD_OPTION');
      expect(error.message).toMatch(named);
    }
  });

  it('bad sentinel addresses, master names and sentinel options fail ready() naming the source, never showing a password', async () => {
    const secret = 'Sup3r-s3cret:pw';
    const cases: [RedisconnOptions, RegExp][] = [
      [{ sentinel: sentinelOption({ sentinels: [] }) }, /^redisconn: option sentinel\.sentinels is invalid: it lists no sentinels; give host:port of at least one sentinel$/],
      [{ sentinel: sentinelOption({ sentinels: ['127.0.0.1:26379', ' '] }) }, /^redisconn: option sentinel\.sentinels is invalid: a sentinel address is empty/],
      [{ argv: ['--redis-sentinel=', '--redis-master-name', 'm'] }, /^redisconn: --redis-sentinel is invalid: it lists no sentinels/],
      [{ env: { REDIS_SENTINEL: '127.0.0.1:26379,127.0.0.1:99999', REDIS_MASTER_NAME: 'm' } }, /^redisconn: REDIS_SENTINEL is invalid: .*port 99999 out of range/],
      [{ sentinel: sentinelOption({ sentinels: ['/tmp/sentinel.sock'] }) }, /^redisconn: option sentinel\.sentinels is invalid: "\/tmp\/sentinel.sock": a sentinel address must be host:port/],
      [{ sentinel: sentinelOption({ sentinels: [`app:${secret}@127.0.0.1:26379`] }) }, /^redisconn: option sentinel\.sentinels is invalid: "\*\*\*@127.0.0.1:26379": a user name or password needs a URL/],
      [{ argv: ['--redis-sentinel', `127.0.0.1:26379,redis://:${secret}@127.0.0.1:70000`, '--redis-master-name', 'm'] }, /^redisconn: --redis-sentinel is invalid: bad Redis URL "redis:\/\/\*\*\*@127.0.0.1:70000"/],
      [{ env: { REDIS_SENTINEL: `redis://:${secret}@127.0.0.1:26379,redis://127.0.0.1:26380`, REDIS_MASTER_NAME: 'm' } }, /^redisconn: REDIS_SENTINEL is invalid: its URLs differ in user name, password, TLS or db; every sentinel is dialed alike$/],
      [{ env: { REDIS_SENTINEL: `redis://:${secret}@127.0.0.1:26379/2`, REDIS_MASTER_NAME: 'm' } }, /^redisconn: REDIS_SENTINEL is invalid: a sentinel URL says db 2, but sentinels have no db/],
      [{ argv: ['--redis-sentinel', '127.0.0.1:26379', '--redis-master-name='] }, /^redisconn: --redis-master-name is empty/],
      [{ sentinel: sentinelOption({ masterName: ' ' }) }, /^redisconn: option sentinel\.masterName is empty/],
      [{ sentinel: sentinelOption({ masterName: '' }) }, /^redisconn: option sentinel\.masterName must be a non-empty string, got an empty string$/],
      [{ sentinel: sentinelOption({ sentinels: '127.0.0.1:26379' as unknown as string[] }) }, /^redisconn: option sentinel\.sentinels must be an array of strings, got a string$/],
      [{ sentinel: { ...sentinelOption(), pasword: secret } as RedisconnOptions['sentinel'] }, /^redisconn: unknown option "sentinel\.pasword"$/],
      [{ sentinel: sentinelOption({ tls: 'yes' as unknown as boolean }) }, /^redisconn: option sentinel\.tls must be an object, got a string$/],
      [{ sentinel: 'a:1' as unknown as RedisconnOptions['sentinel'] }, /^redisconn: option sentinel must be an object, got a string$/],
    ];
    for (const [options, named] of cases) {
      const error = await readyError(apps, options);
      expect(error.code, String(named)).toBe('FST_REDIS_BAD_OPTION');
      expect(error.message).toMatch(named);
      for (const shown of errorTexts(error)) expect(shown).not.toContain('s3cret');
    }
  });
});

/** `name{labels} value` lines of the exposition for pool `pool`. */
function series(exposition: string, pool: string): string[] {
  return exposition.split('\n').filter((line) => !line.startsWith('#') && line.includes(`pool="${pool}"`));
}

// Last: it moves the master.
describe('metrics and a failover', () => {
  it('redis_sentinel_master and failovers_total; pool series labelled with the master; a graceful failover is followed', async () => {
    const registry = new Registry();
    const app = withRoutes(sentinelApp({ name: 'ha', metrics: { registry, route: '/metrics' }, health: { route: '/hz' } }));
    app.post('/incr', async (request) => {
      await using conn = await request.redis.get();
      return { value: await conn.do('INCR', 'failover:n') };
    });
    // A plain pool beside it on the same registry keeps exactly its series.
    const server = await startRedisServer();
    try {
      const plain = Fastify({ logger: false });
      apps.push(plain);
      await plain.register(redisconn, { addr: server.addr, name: 'plain', argv: [], env: {}, metrics: { registry } });

      expect((await app.inject({ method: 'POST', url: '/request/metrics' })).statusCode).toBe(200);
      const before = await deployment.currentMaster();
      let lines = series((await app.inject('/metrics')).body, 'ha');
      expect(lines).toContain(`redis_sentinel_master{pool="ha",addr="${before}"} 1`);
      expect(lines).toContain('redis_sentinel_failovers_total{pool="ha"} 0');
      expect(lines).toContain(`redis_pool_connections{pool="ha",node="${before}",role="master",state="idle"} 0`);
      for (const line of lines.filter((l) => l.startsWith('redis_pool_'))) expect(line).toContain(`node="${before}",role="master"`);
      const plainLines = series(await registry.metrics(), 'plain');
      expect(plainLines).toContain('redis_pool_connections{pool="plain",state="idle"} 0');
      expect(plainLines.some((line) => line.startsWith('redis_sentinel_') || line.includes('node='))).toBe(false);

      // Writers during the failover: what they see (typed errors only, never a hang).
      let stop = false;
      const statuses = new Map<string, number>();
      const writer = (async () => {
        while (!stop) {
          const res = await app.inject({ method: 'POST', url: '/incr' });
          const key = res.statusCode === 200 ? '200' : `${res.statusCode} ${(res.json() as { code?: string }).code}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          await sleep(5);
        }
      })();
      const failoverStarted = performance.now();
      const { old, newMaster, ms } = await deployment.failover();
      const resolved = performance.now();
      // From failover() resolving to the first successful route response.
      let firstOk = Infinity;
      for (let i = 0; i < 500 && firstOk === Infinity; i++) {
        const res = await app.inject({ method: 'POST', url: '/request/after-failover' });
        if (res.statusCode === 200) firstOk = performance.now();
        else await sleep(5);
      }
      stop = true;
      await writer;
      const firstOkMs = firstOk - resolved;
      console.log(
        `plugin sentinel failover: sentinels agreed on ${newMaster} ${ms} ms after SENTINEL FAILOVER; failover() resolved after ${Math.round(resolved - failoverStarted)} ms; first route 200 ${firstOkMs.toFixed(1)} ms after that; writer responses during it: ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      expect(old).toBe(before);
      expect(firstOkMs).toBeLessThan(1_000);
      // During the switch: 200, or 503 with a typed code, or 500 READONLY from the demoted master.
      for (const key of statuses.keys()) expect(key).toMatch(/^(200|503 REDIS_(CONN_CLOSED|TIMEOUT|SENTINEL)|500 (READONLY|LOADING|MASTERDOWN))$/);
      expect(text((await on(newMaster, 0, 'GET', 'after-failover')) as Buffer)).toBe('v-after-failover');

      lines = series((await app.inject('/metrics')).body, 'ha');
      expect(lines).toContain(`redis_sentinel_master{pool="ha",addr="${newMaster}"} 1`);
      expect(lines.some((line) => line.includes(`addr="${old}"`) || line.includes(`node="${old}"`))).toBe(false);
      expect(lines).toContain('redis_sentinel_failovers_total{pool="ha"} 1');
      expect(lines).toContain(`redis_pool_connections{pool="ha",node="${newMaster}",role="master",state="idle"} 0`);
      const health = await app.inject('/hz');
      expect(health.statusCode).toBe(200);
      expect(health.json()).toMatchObject({ status: 'ok', master: newMaster });
      for (const route of ['request', 'app']) expect((await app.inject({ method: 'POST', url: `/${route}/again` })).statusCode).toBe(200);
      // The sentinel pool beside a plain pool: a valid exposition.
      if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0) {
        const result = spawnSync('promtool', ['check', 'metrics'], { input: await registry.metrics(), encoding: 'utf8' });
        expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({ status: 0, output: '' });
      }
    } finally {
      await Promise.all(apps.splice(0).map((each) => each.close()));
      await server.stop();
    }
  }, 30_000);
});

/**
 * Pool metrics through prom-client against a real redis-server: the four
 * metric families and their labels, values equal to `pool.stats()` at scrape
 * time, the metrics route and its content type, the `intervalMs` refresher
 * (runs, then stops on close), several apps on one registry, duplicate pool
 * names, `metrics: false`, the global registry default, and the exposition
 * checked by `promtool check metrics`.
 */
import { spawnSync } from 'node:child_process';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, register as globalRegistry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import redisconn, { type Pool, type PoolStats, type RedisconnOptions } from '../plugin/index.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, makeApp as newApp, rejection, sleep, useApps } from './helpers.js';

guardProcessErrors();

const NAMES = ['redis_pool_connections', 'redis_pool_wait_total', 'redis_pool_wait_duration_seconds_total', 'redis_pool_dials_total', 'redis_pool_shared_commands_total', 'redis_pool_lease_moves_total'];

let server: TestRedisServer;
const apps = useApps(() => vi.restoreAllMocks());

/** A ready app with exclusive borrows, so each get() moves the gauges (leases have their own test). */
async function makeApp(options: RedisconnOptions): Promise<FastifyInstance> {
  const app = await newApp(apps, { addr: server.addr, exclusiveConnections: true, ...options });
  await app.ready();
  return app;
}

/** `metric{labels} value` samples of the text exposition, keyed by `name{sorted labels}`. */
function samples(exposition: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`unparsable sample line: ${line}`);
    const labels = (match[2] ?? '').split(',').filter(Boolean).sort().join(',');
    out.set(`${match[1]}{${labels}}`, Number(match[3]));
  }
  return out;
}

/** What the samples of pool `name` must be for these stats. */
function expected(name: string, stats: PoolStats): Record<string, number> {
  return {
    [`redis_pool_connections{pool="${name}",state="idle"}`]: stats.idleCount,
    [`redis_pool_connections{pool="${name}",state="in_use"}`]: stats.inUseCount,
    [`redis_pool_wait_total{pool="${name}"}`]: stats.waitCount,
    [`redis_pool_wait_duration_seconds_total{pool="${name}"}`]: stats.waitDurationMs / 1000,
    [`redis_pool_dials_total{pool="${name}",result="ok"}`]: stats.dials - stats.dialErrors,
    [`redis_pool_dials_total{pool="${name}",result="error"}`]: stats.dialErrors,
    [`redis_pool_shared_commands_total{pool="${name}"}`]: stats.sharedCommands,
    [`redis_pool_lease_moves_total{pool="${name}"}`]: stats.leaseMoves,
  };
}

function poolSamples(exposition: string, name: string): Record<string, number> {
  return Object.fromEntries([...samples(exposition)].filter(([key]) => key.includes(`pool="${name}"`)));
}

beforeAll(async () => {
  server = await startRedisServer();
});

afterAll(async () => {
  await server?.stop();
});

describe('metrics', () => {
  it('every metric family with its labels, equal to pool.stats() at scrape time', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'main', metrics: { registry }, maxActive: 1 });
    const pool = app.redis.pool as Pool;

    // Empty pool first.
    expect(poolSamples(await registry.metrics(), 'main')).toEqual(expected('main', pool.stats()));
    expect(pool.stats().dials).toBe(0);

    // One borrowed, a second get waits for it: in_use 1, a wait counted.
    const first = await app.redis.get();
    const waiting = app.redis.get();
    expect(await eventually(() => pool.stats().waitCount === 1)).toBe(true);
    const waitSeen = performance.now();
    const during = poolSamples(await registry.metrics(), 'main');
    expect(during['redis_pool_connections{pool="main",state="in_use"}']).toBe(1);
    expect(during['redis_pool_wait_total{pool="main"}']).toBe(1);
    // Held a few ms more, so the wait has a length the pool's ms clock can see
    // (a duration to measure, not a wait for anything): it lasts at least from
    // when it was seen to the release.
    await sleep(5);
    const heldMs = performance.now() - waitSeen;
    await first.close();
    const second = await waiting;
    await second.close();

    const stats = pool.stats();
    expect(stats).toMatchObject({ activeCount: 1, idleCount: 1, waitCount: 1, dials: 1 });
    expect(stats.waitDurationMs).toBeGreaterThanOrEqual(Math.floor(heldMs));
    const after = await registry.metrics();
    expect(poolSamples(after, 'main')).toEqual(expected('main', stats));
    for (const name of NAMES) expect(after).toContain(`# TYPE ${name} ${name === 'redis_pool_connections' ? 'gauge' : 'counter'}`);
    // Reading one metric alone is just as current.
    const single = await registry.getSingleMetric('redis_pool_connections')?.get();
    expect(single?.values.find((v) => v.labels.state === 'idle')?.value).toBe(1);
  });

  it('leases (the default): commands on the shared connection and moves to an exclusive one are counted', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'leases', metrics: { registry }, exclusiveConnections: false });
    const pool = app.redis.pool as Pool;
    const lease = await app.redis.get();
    await lease.do('SET', 'metrics:lease', '1');
    await lease.do('GET', 'metrics:lease');
    await lease.do('MULTI');
    await lease.do('INCR', 'metrics:lease');
    await lease.do('EXEC');
    await lease.close();
    const values = poolSamples(await registry.metrics(), 'leases');
    expect(values['redis_pool_shared_commands_total{pool="leases"}']).toBe(2);
    expect(values['redis_pool_lease_moves_total{pool="leases"}']).toBe(1);
    // The shared connection is open and counted in use; the moved-to connection went back idle.
    expect(pool.stats()).toMatchObject({ activeCount: 2, sharedCount: 1, idleCount: 1, inUseCount: 1 });
    expect(values).toEqual(expected('leases', pool.stats()));
  });

  it('dial errors are counted with result="error"', async () => {
    const registry = new Registry();
    const app = await makeApp({ addr: `127.0.0.1:${await freePort()}`, name: 'dead', metrics: { registry } });
    await rejection(app.redis.get());
    await rejection(app.redis.get());
    const values = poolSamples(await registry.metrics(), 'dead');
    expect(values['redis_pool_dials_total{pool="dead",result="error"}']).toBe(2);
    expect(values['redis_pool_dials_total{pool="dead",result="ok"}']).toBe(0);
    expect(values).toEqual(expected('dead', (app.redis.pool as Pool).stats()));
  });

  it('the metrics route serves the registry with its content type (inject and a real listener)', async () => {
    const registry = new Registry();
    const app = await makeApp({ metrics: { registry, route: '/metrics' } });
    await (await app.redis.get()).close();
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(registry.contentType);
    expect(res.body).toContain('redis_pool_connections{pool="default",state="idle"} 1');

    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    const real = await fetch(`${base}/metrics`);
    expect(real.status).toBe(200);
    expect(real.headers.get('content-type')).toBe(registry.contentType);
    const body = await real.text();
    for (const name of NAMES) expect(body).toContain(`# HELP ${name} `);
  });

  it('intervalMs refreshes without scrapes, and stops on close', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'push', metrics: { registry, intervalMs: 20 } });
    const pool = app.redis.pool as Pool;
    const stats = vi.spyOn(pool, 'stats');
    expect(await eventually(() => stats.mock.calls.length >= 3)).toBe(true);
    // The refreshed values are visible to a push-style reader without collect().
    const conn = await app.redis.get();
    const gauge = registry.getSingleMetric('redis_pool_connections') as unknown as { hashMap: Record<string, { value: number; labels: Record<string, string> }> };
    const inUse = (): number | undefined => Object.values(gauge.hashMap).find((entry) => entry.labels.state === 'in_use')?.value;
    expect(await eventually(() => inUse() === 1)).toBe(true);
    await conn.close();

    const started = performance.now();
    await app.close();
    expect(performance.now() - started).toBeLessThan(500);
    const atClose = stats.mock.calls.length;
    // No event tells of a refresh that does not happen. Node runs timers of
    // one duration in the order they are due, so had the 20 ms interval
    // survived close(), it would fire before each of these 20 ms sleeps ends.
    await sleep(20);
    await sleep(20);
    expect(stats.mock.calls.length).toBe(atClose);
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });

  it('two apps with different names share one registry without colliding', async () => {
    const registry = new Registry();
    const a = await makeApp({ name: 'alpha', metrics: { registry, route: '/metrics' } });
    const b = await makeApp({ name: 'beta', metrics: { registry }, maxIdle: 2 });
    await Promise.all([a.redis.get(), a.redis.get()].map(async (p) => (await p).close()));
    await (await b.redis.get()).close();
    const text = (await a.inject('/metrics')).body;
    expect(poolSamples(text, 'alpha')).toEqual(expected('alpha', (a.redis.pool as Pool).stats()));
    expect(poolSamples(text, 'beta')).toEqual(expected('beta', (b.redis.pool as Pool).stats()));
    expect(poolSamples(text, 'alpha')['redis_pool_connections{pool="alpha",state="idle"}']).toBe(2);
    expect(poolSamples(text, 'beta')['redis_pool_connections{pool="beta",state="idle"}']).toBe(1);
    // Each family appears once (one HELP/TYPE), not once per app.
    for (const name of NAMES) expect(text.split(`# TYPE ${name} `).length - 1).toBe(1);

    // Closing one app drops its series only.
    await b.close();
    const left = await registry.metrics();
    expect(left).toContain('pool="alpha"');
    expect(left).not.toContain('pool="beta"');
    await a.close();
    expect(await registry.getMetricsAsJSON()).toEqual([]);
  });

  it('the same name twice on one registry → a clear error; the first keeps reporting', async () => {
    const registry = new Registry();
    const first = await makeApp({ name: 'dup', metrics: { registry } });
    const second = Fastify({ logger: false });
    apps.push(second);
    second.register(redisconn, { addr: server.addr, argv: [], env: {}, name: 'dup', metrics: { registry } });
    const err = (await rejection(Promise.resolve(second.ready()))) as Error & { code?: string };
    expect(err.code).toBe('FST_REDIS_BAD_OPTION');
    expect(err.message).toContain('"dup"');
    await (await first.redis.get()).close();
    expect(poolSamples(await registry.metrics(), 'dup')).toEqual(expected('dup', (first.redis.pool as Pool).stats()));
  });

  it('metrics: false registers nothing; the default is the global registry, cleaned up on close', async () => {
    const off = await makeApp({ metrics: false });
    expect(globalRegistry.getSingleMetric('redis_pool_connections')).toBeUndefined();
    await off.close();

    const byDefault = await makeApp({ name: 'global', metrics: undefined }); // the plugin's default
    expect(globalRegistry.getSingleMetric('redis_pool_connections')).toBeDefined();
    expect(await globalRegistry.metrics()).toContain('redis_pool_connections{pool="global",state="idle"} 0');
    await byDefault.close();
    for (const name of NAMES) expect(globalRegistry.getSingleMetric(name)).toBeUndefined();
  });

  const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!promtool)(
    promtool ? 'the exposition passes `promtool check metrics`' : 'SKIPPED: promtool is not on PATH (install Debian package `prometheus`) — exposition not validated',
    async () => {
      const registry = new Registry();
      const a = await makeApp({ name: 'alpha', metrics: { registry } });
      await makeApp({ name: 'beta', metrics: { registry }, addr: `127.0.0.1:${await freePort()}` });
      await (await a.redis.get()).close();
      const exposition = await registry.metrics();
      expect(exposition).toContain('redis_pool_dials_total');
      const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
      expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({ status: 0, output: '' });
      // And promtool does catch a broken exposition (the check can fail).
      const broken = spawnSync('promtool', ['check', 'metrics'], { input: exposition.replace(/# HELP redis_pool_wait_total .*\n/, ''), encoding: 'utf8' });
      expect(broken.status).not.toBe(0);
    },
  );
});

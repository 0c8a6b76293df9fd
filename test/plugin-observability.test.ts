/**
 * The plugin's observability options against a real redis-server (debug
 * commands enabled): `metrics.commandDuration` (the histogram
 * `redis_command_duration_seconds{pool,command}` exists only with it, counts
 * every command of the app's source by known name or `other`, attributes
 * commands to the right registration when several apps share one server and
 * one registry, counts a cluster's commands on every node under the
 * cluster's registration, ignores directly dialed connections, drops a
 * registration's series when it closes, unsubscribes from the channel when
 * the last one closes, passes `promtool check metrics`), `slowCommandMs` (one warn line
 * per slow command with where it ran and how long it took, none for fast
 * commands or without the option, never argument values), and the option
 * checks of both.
 */
import { spawnSync } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ErrBadOption, RedisError, dial, type Conn, type RedisconnOptions } from '../plugin/index.js';
import { startRedisCluster, type TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, type LogLine, makeApp as newApp, memoryLogger, readyError, useApps, useServerWithConn } from './helpers.js';

guardProcessErrors();

const HISTOGRAM = 'redis_command_duration_seconds';
const BUCKETS = ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '+Inf'];
/** The channel the plugin listens on, by its public name. */
const commandChannel = diagnostics.tracingChannel('redisconn:command');

let server: TestRedisServer;
let admin: Conn;
const apps = useApps(() => admin.do('FLUSHALL'));

useServerWithConn((started) => ({ server, conn: admin } = started), { args: ['--enable-debug-command', 'yes'] });

/**
 * An app on the test server with routes that run commands through
 * `request.redis`: GET, SET, a module-like command the client does not
 * know, and DEBUG SLEEP.
 */
async function makeApp(options: RedisconnOptions, lines?: LogLine[]): Promise<FastifyInstance> {
  const app = await newApp(apps, { addr: server.addr, ...options }, { logger: lines === undefined ? false : memoryLogger(lines) });
  app.get<{ Params: { key: string } }>('/get/:key', async (request) => {
    await using conn = await request.redis.get();
    const value = await conn.do('GET', request.params.key);
    return { value: value === null ? null : String(value) };
  });
  app.put<{ Params: { key: string }; Body: string }>('/set/:key', async (request) => {
    await using conn = await request.redis.get();
    return { reply: await conn.do('SET', request.params.key, request.body) };
  });
  app.post('/module', async (request) => {
    await using conn = await request.redis.get();
    try {
      await conn.do('MYMODULE.QUERY', 'some-key', 'secret-arg');
      return { error: null };
    } catch (err) {
      return { error: (err as RedisError).code };
    }
  });
  app.post<{ Querystring: { seconds: string } }>('/sleep', async (request) => {
    await using conn = await request.redis.get();
    return { reply: await conn.do('DEBUG', 'SLEEP', request.query.seconds) };
  });
  await app.ready();
  return app;
}

async function inject(app: FastifyInstance, method: 'GET' | 'PUT' | 'POST', url: string, payload?: string): Promise<unknown> {
  const response = await app.inject({ method, url, payload, headers: payload === undefined ? {} : { 'content-type': 'text/plain' } });
  expect(response.statusCode, response.body).toBe(200);
  return response.json();
}

/** The histogram's `_count` samples of `exposition`, keyed `pool/command`. */
function counts(exposition: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const match of exposition.matchAll(/^redis_command_duration_seconds_count\{pool="([^"]*)",command="([^"]*)"\} (\S+)$/gm)) {
    out[`${match[1]}/${match[2]}`] = Number(match[3]);
  }
  return out;
}

/** Waits until the counts of `registry` equal `expected` (a command's asyncEnd may trail its reply by a tick). */
async function expectCounts(registry: Registry, expected: Record<string, number>): Promise<void> {
  let last: Record<string, number> = {};
  await eventually(async () => {
    last = counts(await registry.metrics());
    return JSON.stringify(Object.entries(last).sort()) === JSON.stringify(Object.entries(expected).sort());
  });
  expect(last).toEqual(expected);
}

function slowLines(lines: LogLine[]): LogLine[] {
  return lines.filter((line) => line.msg.includes('slow command'));
}

describe('metrics.commandDuration', () => {
  it('is off by default: no histogram, and nobody listens on the channel', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'plain', metrics: { registry } });
    expect(commandChannel.start.hasSubscribers).toBe(false);
    await inject(app, 'PUT', '/set/k', 'v');
    await inject(app, 'GET', '/get/k');
    const exposition = await registry.metrics();
    expect(exposition).toContain('redis_pool_connections');
    expect(exposition).not.toContain(HISTOGRAM);
    expect(registry.getSingleMetric(HISTOGRAM)).toBeUndefined();
  });

  it('times every command of the app by name, `other` for one the client does not know', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'main', metrics: { registry, commandDuration: true } });
    expect(commandChannel.start.hasSubscribers).toBe(true);
    expect(await inject(app, 'PUT', '/set/a', '1')).toEqual({ reply: 'OK' });
    expect(await inject(app, 'PUT', '/set/b', '2')).toEqual({ reply: 'OK' });
    for (const key of ['a', 'b', 'missing']) await inject(app, 'GET', `/get/${key}`);
    // An error reply is a command too, under `other` (no label holds what a caller sent).
    expect(await inject(app, 'POST', '/module')).toEqual({ error: 'ERR' });
    await expectCounts(registry, { 'main/SET': 2, 'main/GET': 3, 'main/other': 1 });

    const exposition = await registry.metrics();
    expect(exposition).toContain(`# TYPE ${HISTOGRAM} histogram`);
    expect(exposition).not.toContain('MYMODULE');
    const les = [...exposition.matchAll(/^redis_command_duration_seconds_bucket\{le="([^"]+)",pool="main",command="GET"\} (\d+)$/gm)];
    expect(les.map((match) => match[1])).toEqual(BUCKETS);
    // Cumulative, ending at the count; loopback GETs finish well within 5 s.
    const values = les.map((match) => Number(match[2]));
    expect(values).toEqual([...values].sort((x, y) => x - y));
    expect(values.at(-1)).toBe(3);
    expect(values.at(-2)).toBe(3);
    const sum = Number(/^redis_command_duration_seconds_sum\{pool="main",command="GET"\} (\S+)$/m.exec(exposition)?.[1]);
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(3);
  });

  it('a slow command lands in its bucket', async () => {
    const registry = new Registry();
    const app = await makeApp({ name: 'slow', metrics: { registry, commandDuration: true } });
    await inject(app, 'POST', '/sleep?seconds=0.03');
    await expectCounts(registry, { 'slow/DEBUG': 1 });
    const exposition = await registry.metrics();
    const bucket = (le: string): number => Number(new RegExp(`^redis_command_duration_seconds_bucket\\{le="${le.replace('+', '\\+')}",pool="slow",command="DEBUG"\\} (\\d+)$`, 'm').exec(exposition)?.[1]);
    expect(bucket('0.025')).toBe(0);
    expect(bucket('1')).toBe(1);
  });

  it('attributes each command to its own registration: two apps on one server and one registry, and a dialed conn beside them', async () => {
    const registry = new Registry();
    const alpha = await makeApp({ name: 'alpha', metrics: { registry, commandDuration: true } });
    const beta = await makeApp({ name: 'beta', metrics: { registry, commandDuration: true }, exclusiveConnections: true });
    // Same server, same db: only the source can tell their commands apart.
    const gamma = await makeApp({ name: 'gamma', metrics: { registry } });
    const direct = await dial(server.addr);
    try {
      await Promise.all([
        inject(alpha, 'GET', '/get/x'),
        inject(beta, 'GET', '/get/x'),
        inject(beta, 'GET', '/get/y'),
        inject(beta, 'PUT', '/set/y', '1'),
        inject(gamma, 'GET', '/get/x'),
        direct.do('GET', 'x'),
        direct.do('SET', 'x', '1'),
        // The pool's own auto-pipelined path (app.redis.pool.do) belongs to the app too.
        alpha.redis.pool?.do('SET', 'z', '1'),
      ]);
      await expectCounts(registry, { 'alpha/GET': 1, 'alpha/SET': 1, 'beta/GET': 2, 'beta/SET': 1 });

      // One closing takes its series with it; the other keeps counting.
      await beta.close();
      await expectCounts(registry, { 'alpha/GET': 1, 'alpha/SET': 1 });
      await inject(alpha, 'GET', '/get/x');
      await expectCounts(registry, { 'alpha/GET': 2, 'alpha/SET': 1 });
      expect(commandChannel.start.hasSubscribers).toBe(true);

      // The last one closing removes the histogram and unsubscribes.
      await alpha.close();
      expect(registry.getSingleMetric(HISTOGRAM)).toBeUndefined();
      expect(commandChannel.start.hasSubscribers).toBe(false);
      expect(await registry.metrics()).toContain('redis_pool_connections{pool="gamma"');
    } finally {
      await direct.close();
    }
  });

  it('separate registries: each app counts only its own commands', async () => {
    const one = new Registry();
    const two = new Registry();
    const first = await makeApp({ name: 'default', metrics: { registry: one, commandDuration: true } });
    const second = await makeApp({ name: 'default', metrics: { registry: two, commandDuration: true } });
    await inject(first, 'GET', '/get/k');
    await inject(second, 'PUT', '/set/k', 'v');
    await inject(second, 'PUT', '/set/k', 'w');
    await expectCounts(one, { 'default/GET': 1 });
    await expectCounts(two, { 'default/SET': 2 });
  });

  it('a cluster registration counts the commands on all its nodes under its own name', async () => {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
    try {
      const registry = new Registry();
      const app = await makeApp({ addr: undefined, cluster: cluster.seeds, name: 'cluster', metrics: { registry, commandDuration: true } });
      const single = await makeApp({ name: 'single', metrics: { registry, commandDuration: true } });
      // Keys on different masters: {a}, {b}, {c} hash to slots owned by different nodes.
      for (const key of ['{a}k', '{b}k', '{c}k']) await inject(app, 'PUT', `/set/${encodeURIComponent(key)}`, 'v');
      for (const key of ['{a}k', '{b}k']) await inject(app, 'GET', `/get/${encodeURIComponent(key)}`);
      await inject(single, 'GET', '/get/k');
      // The cluster's own commands (CLUSTER SLOTS, COMMAND) are on its connections too: counted, not checked here.
      const dataCommands = (all: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(all).filter(([key]) => /\/(GET|SET)$/.test(key)));
      let last: Record<string, number> = {};
      await eventually(async () => {
        last = dataCommands(counts(await registry.metrics()));
        return Object.keys(last).length === 3;
      });
      expect(last).toEqual({ 'cluster/SET': 3, 'cluster/GET': 2, 'single/GET': 1 });
      expect(Object.keys(counts(await registry.metrics())).filter((key) => !key.startsWith('cluster/') && !key.startsWith('single/'))).toEqual([]);
    } finally {
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await cluster.stop();
    }
  });

  const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!promtool)(
    promtool ? 'the exposition passes `promtool check metrics`' : 'SKIPPED: promtool is not on PATH (install Debian package `prometheus`) — exposition not validated',
    async () => {
      const registry = new Registry();
      const app = await makeApp({ name: 'checked', metrics: { registry, commandDuration: true } });
      await inject(app, 'PUT', '/set/k', 'v');
      await inject(app, 'GET', '/get/k');
      await inject(app, 'POST', '/module');
      await expectCounts(registry, { 'checked/SET': 1, 'checked/GET': 1, 'checked/other': 1 });
      const exposition = await registry.metrics();
      const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
      expect({ status: result.status, output: `${result.stdout}${result.stderr}`.trim() }).toEqual({ status: 0, output: '' });
    },
  );
});

describe('slowCommandMs', () => {
  it('a command slower than the threshold is logged once at warn, with where it ran and no argument values', async () => {
    const lines: LogLine[] = [];
    const app = await makeApp({ name: 'slowlog', metrics: false, slowCommandMs: 20 }, lines);
    expect(await inject(app, 'POST', '/sleep?seconds=0.05')).toEqual({ reply: 'OK' });
    await inject(app, 'GET', '/get/k');
    expect(await eventually(() => slowLines(lines).length > 0)).toBe(true);
    await app.close();
    const slow = slowLines(lines);
    expect(slow).toHaveLength(1);
    const [line] = slow as [LogLine];
    expect(line.level).toBe(40);
    expect(line).toMatchObject({ pool: 'slowlog', command: 'DEBUG', serverAddress: '127.0.0.1', serverPort: server.port, db: 0 });
    expect(['shared', 'lease', 'exclusive']).toContain(line.connection);
    expect(line.durationMs).toBeGreaterThanOrEqual(45);
    expect(line.durationMs).toBeLessThan(5_000);
    expect(line.msg).toMatch(/^redisconn: slow command DEBUG took \d+ ms \(slowCommandMs 20\)$/);
    // The command's name, never its arguments.
    expect(JSON.stringify(line)).not.toMatch(/SLEEP|0\.05/i);
  });

  it('fast commands log nothing; without the option nothing is logged and nobody listens', async () => {
    const lines: LogLine[] = [];
    const fast = await makeApp({ name: 'fast', metrics: false, slowCommandMs: 1_000 }, lines);
    await inject(fast, 'PUT', '/set/k', 'v');
    await inject(fast, 'GET', '/get/k');
    await inject(fast, 'POST', '/sleep?seconds=0.03');
    await fast.close();
    expect(commandChannel.start.hasSubscribers).toBe(false);

    const quiet = await makeApp({ name: 'quiet', metrics: false }, lines);
    expect(commandChannel.start.hasSubscribers).toBe(false);
    await inject(quiet, 'POST', '/sleep?seconds=0.05');
    await quiet.close();
    expect(slowLines(lines)).toEqual([]);
    expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  });

  it('logs the commands of its own app only', async () => {
    const lines: LogLine[] = [];
    const other: LogLine[] = [];
    await makeApp({ name: 'watched', metrics: false, slowCommandMs: 20 }, lines);
    const neighbour = await makeApp({ name: 'neighbour', metrics: false }, other);
    await inject(neighbour, 'POST', '/sleep?seconds=0.05');
    await admin.do('DEBUG', 'SLEEP', '0.05');
    expect(slowLines(lines)).toEqual([]);
    expect(slowLines(other)).toEqual([]);
  });
});

describe('option checks', () => {

  it.each([
    [{ slowCommandMs: 0 }, 'slowCommandMs'],
    [{ slowCommandMs: -5 }, 'slowCommandMs'],
    [{ slowCommandMs: Number.NaN }, 'slowCommandMs'],
    [{ slowCommandMs: Number.POSITIVE_INFINITY }, 'slowCommandMs'],
    [{ slowCommandMs: 3e9 }, 'slowCommandMs'],
    [{ slowCommandMs: '20' as unknown as number }, 'slowCommandMs'],
    [{ metrics: { commandDuration: 'yes' as unknown as boolean } }, 'metrics.commandDuration'],
    [{ metrics: { commandDuration: 1 as unknown as boolean } }, 'metrics.commandDuration'],
  ] as [RedisconnOptions, string][])('%j fails ready() naming option %s', async (options, name) => {
    const err = await readyError(apps, { addr: server.addr, ...options });
    expect(err).toBeInstanceOf(ErrBadOption);
    expect(err.code).toBe('FST_REDIS_BAD_OPTION');
    expect(err.message).toMatch(new RegExp(`^redisconn: option ${name.replace('.', '\\.')} must be `));
  });

  it('a fractional threshold is fine, and a failed start leaves nobody listening', async () => {
    const app = await makeApp({ name: 'fraction', metrics: { registry: new Registry(), commandDuration: true }, slowCommandMs: 0.5 });
    expect(commandChannel.start.hasSubscribers).toBe(true);
    await app.close();
    expect(commandChannel.start.hasSubscribers).toBe(false);

    await readyError(apps, {
      addr: '127.0.0.1:1',
      connectOnStart: true,
      connectTimeoutMs: 500,
      slowCommandMs: 10,
      metrics: { registry: new Registry(), commandDuration: true },
    });
    expect(commandChannel.start.hasSubscribers).toBe(false);
  });
});

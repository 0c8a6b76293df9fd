/**
 * fastify-get, fastify-get-incr-expire, fastify-multi: autocannon -c 50
 * against one route shape (see ../fastify/server.ts) per scenario, each app in
 * its own process: the redisconn plugin with its defaults (`req.redis.get()`,
 * a lease), the same with `exclusiveConnections: true` (for reference, not a
 * peer), @fastify/redis, and no Redis at all (the ceiling, to show what the
 * Redis calls cost). req/s and p99 latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CONCURRENCY, QUICK, VALUE_BYTES } from '../config.js';
import type { Client, Contender, Sample, Scenario, ScenarioResult } from '../harness.js';
import type { RouteShape, ServerKind } from '../fastify/server.js';

const SERVER_SCRIPT = fileURLToPath(new URL('../fastify/server.js', import.meta.url));
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon');

/** Starts a server process (with this process's node flags, so `--cpu-prof` reaches it). */
async function startServer(kind: ServerKind, shape: RouteShape, addr: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, SERVER_SCRIPT, kind, shape, addr], { stdio: ['pipe', 'pipe', 'inherit'] });
  const stopWaiting = new AbortController();
  const { signal } = stopWaiting;
  try {
    const [line] = (await Promise.race([
      once(child.stdout!, 'data', { signal }),
      once(child, 'exit', { signal }).then(([code]) => Promise.reject(new Error(`bench: the ${kind} app exited (${code}) before listening`))),
    ])) as [Buffer];
    const { port } = JSON.parse(line.toString()) as { port: number };
    return { url: `http://127.0.0.1:${port}/`, child };
  } finally {
    stopWaiting.abort();
  }
}

interface AutocannonResult {
  requests: { average: number };
  latency: { p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/** autocannon's CLI in its own process: req/s and p99 (ms) over `seconds`. */
async function autocannon(url: string, seconds: number): Promise<Sample> {
  const child = spawn(process.execPath, [AUTOCANNON, '-c', String(CONCURRENCY), '-d', String(seconds), '-j', url], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`bench: autocannon exited ${code} against ${url}`);
  const result = JSON.parse(out) as AutocannonResult;
  const failed = result.errors + result.timeouts + result.non2xx;
  if (failed > 0) throw new Error(`bench: ${url}: ${failed} failed requests under autocannon`);
  return { value: result.requests.average, extras: { p99Ms: result.latency.p99 } };
}

/** Fails loudly when an app does not answer its route shape as expected (wrong key, wrong reply). */
async function expectAnswer(url: string, shape: RouteShape, who: string): Promise<void> {
  const response = await fetch(url);
  const body = Buffer.from(await response.arrayBuffer());
  const ok = response.status === 200 && (shape === 'multi' ? /^[1-9][0-9]*$/.test(body.toString()) : body.length === VALUE_BYTES);
  if (!ok) throw new Error(`bench: ${who} answered ${response.status} ${JSON.stringify(body.subarray(0, 40).toString())} to the ${shape} route`);
}

function route(client: Client, variant: string, kind: ServerKind, shape: RouteShape): Contender {
  return {
    client,
    variant,
    async open(server) {
      const { url, child } = await startServer(kind, shape, server.addr);
      const close = async (): Promise<void> => {
        child.stdin?.end();
        if (child.exitCode === null) await once(child, 'exit');
      };
      try {
        await expectAnswer(url, shape, variant);
      } catch (error) {
        await close();
        throw error;
      }
      return { run: (seconds) => autocannon(url, seconds), close };
    },
  };
}

const LEASE = 'req.redis.get()';
const EXCLUSIVE = 'exclusive';
const FASTIFY_REDIS = '@fastify/redis';
const NO_REDIS = 'no Redis';

function byVariant(result: ScenarioResult, variant: string) {
  return result.contenders.find((c) => c.variant === variant);
}

function overheadPercent(result: ScenarioResult, variant: string): number {
  const none = byVariant(result, NO_REDIS)?.median ?? NaN;
  return (1 - (byVariant(result, variant)?.median ?? NaN) / none) * 100;
}

const p99 = (result: ScenarioResult, variant: string): number => byVariant(result, variant)?.extras.p99Ms ?? NaN;

/**
 * One route shape's scenario. Target: `req.redis.get()` at least `minRatio`
 * times @fastify/redis's req/s (the harness's best peer: `exclusive` and
 * `no Redis` are reference clients, not peers), p99 no worse, and when
 * `maxOverhead` is given, at most that many percent below the no-Redis route.
 */
function fastifyScenario(shape: RouteShape, minRatio: number, maxOverhead?: number): Scenario {
  const text = [`>=${minRatio.toFixed(1)}x @fastify/redis`, 'p99 <=', ...(maxOverhead === undefined ? [] : [`overhead <=${maxOverhead}%`])].join(', ');
  return {
    name: `fastify-${shape}`,
    unit: 'req/s',
    warmup: QUICK ? 1 : 2,
    work: QUICK ? 2 : 10,
    contenders: [
      // First `redisconn`: the one the harness compares and bench/profile.ts runs.
      route('redisconn', LEASE, 'redisconn', shape),
      route('redisconn-exclusive', EXCLUSIVE, 'redisconn-exclusive', shape),
      route('ioredis', FASTIFY_REDIS, 'fastify-redis', shape),
      route('none', NO_REDIS, 'none', shape),
    ],
    target: {
      text,
      met: (r) =>
        r.bestPeer?.variant === FASTIFY_REDIS &&
        (r.vsBestPeer ?? 0) >= minRatio &&
        p99(r, LEASE) <= p99(r, FASTIFY_REDIS) &&
        (maxOverhead === undefined || overheadPercent(r, LEASE) <= maxOverhead),
    },
    note: (r) => {
      const variants = [LEASE, EXCLUSIVE, FASTIFY_REDIS];
      return (
        `p99 ${[...variants, NO_REDIS].map((v) => `${v} ${p99(r, v)} ms`).join(', ')}; ` +
        `${EXCLUSIVE} ${Math.round(byVariant(r, EXCLUSIVE)?.median ?? 0)} req/s; ` +
        `no-Redis route ${Math.round(byVariant(r, NO_REDIS)?.median ?? 0)} req/s; ` +
        `overhead ${variants.map((v) => `${v} ${overheadPercent(r, v).toFixed(1)}%`).join(', ')}`
      );
    },
  };
}

export const fastifyScenarios: Scenario[] = [fastifyScenario('get', 1.1, 15), fastifyScenario('get-incr-expire', 1.1), fastifyScenario('multi', 1.0)];

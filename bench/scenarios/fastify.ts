/**
 * fastify: autocannon -c 50 against one GET route per app, each app in its
 * own process: the redisconn plugin, @fastify/redis, and no Redis at all (the
 * ceiling, to show what the Redis call costs). req/s and p99 latency.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CONCURRENCY, QUICK } from '../config.js';
import type { Client, Contender, Sample, Scenario, ScenarioResult } from '../harness.js';
import type { ServerKind } from '../fastify/server.js';

const SERVER_SCRIPT = fileURLToPath(new URL('../fastify/server.js', import.meta.url));
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon');

/** Starts a server process (with this process's node flags, so `--cpu-prof` reaches it). */
async function startServer(kind: ServerKind, addr: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, SERVER_SCRIPT, kind, addr], { stdio: ['pipe', 'pipe', 'inherit'] });
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

function route(client: Client, variant: string, kind: ServerKind): Contender {
  return {
    client,
    variant,
    async open(server) {
      const { url, child } = await startServer(kind, server.addr);
      return {
        run: (seconds) => autocannon(url, seconds),
        close: async () => {
          child.stdin?.end();
          if (child.exitCode === null) await once(child, 'exit');
        },
      };
    },
  };
}

const NO_REDIS = 'no Redis';

function byVariant(result: ScenarioResult, variant: string) {
  return result.contenders.find((c) => c.variant === variant);
}

function overheadPercent(result: ScenarioResult, variant: string): number {
  const none = byVariant(result, NO_REDIS)?.median ?? NaN;
  return (1 - (byVariant(result, variant)?.median ?? NaN) / none) * 100;
}

const p99 = (result: ScenarioResult, variant: string): number => byVariant(result, variant)?.extras.p99Ms ?? NaN;

export const fastify: Scenario = {
  name: 'fastify',
  unit: 'req/s',
  warmup: QUICK ? 1 : 2,
  work: QUICK ? 2 : 10,
  contenders: [route('redisconn', 'req.redis.get()', 'redisconn'), route('ioredis', '@fastify/redis', 'fastify-redis'), route('none', NO_REDIS, 'none')],
  target: {
    text: '>=1.1x @fastify/redis, p99 <=, overhead <=15%',
    met: (r) =>
      (r.vsBestPeer ?? 0) >= 1.1 &&
      p99(r, 'req.redis.get()') <= p99(r, '@fastify/redis') &&
      overheadPercent(r, 'req.redis.get()') <= 15,
  },
  note: (r) =>
    `p99 ${p99(r, 'req.redis.get()')} ms vs ${p99(r, '@fastify/redis')} ms (no Redis ${p99(r, NO_REDIS)} ms); ` +
    `no-Redis route ${Math.round(byVariant(r, NO_REDIS)?.median ?? 0)} req/s; ` +
    `overhead redisconn ${overheadPercent(r, 'req.redis.get()').toFixed(1)}%, @fastify/redis ${overheadPercent(r, '@fastify/redis').toFixed(1)}%`,
};

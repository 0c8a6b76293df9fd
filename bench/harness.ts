/**
 * What a scenario is, and how it is run: every contender is opened once, then
 * rounds run them in turn (A B C, A B C, …) so machine noise hits all of them
 * alike. Round 0 warms up and is dropped; the median of the rest is reported.
 * No GC is forced between runs: a forced full GC shrinks V8's young
 * generation and slowed the next run by ~10%. So a run may pay for collecting
 * the previous contender's garbage, and every contender is in that spot alike.
 */
import type { TestRedisServer } from '../src/testing/index.js';
import { ROUNDS } from './config.js';

/**
 * Reference runs, in no table column and counted neither as `redisconn` nor as
 * a peer: `none`, without any Redis client (the fastify-* no-Redis route);
 * `redisconn-exclusive`, redisconn in a non-default mode (the fastify-*
 * `exclusiveConnections: true` route).
 */
export type Client = 'redisconn' | 'ioredis' | 'node-redis' | 'redis-benchmark' | 'none' | 'redisconn-exclusive';

/** One run's result: `value` in the scenario's unit (higher is better), plus side measures. */
export interface Sample {
  value: number;
  extras?: Record<string, number>;
}

/** An opened contender. `run(work)` does `work` units (ops, seconds…) and measures them. */
export interface Runner {
  run(work: number): Promise<Sample>;
  close(): Promise<void>;
}

export interface Contender {
  client: Client;
  /** How this client is used here, e.g. `auto-pipelining`; '' for its plain API. */
  variant: string;
  open(server: TestRedisServer): Promise<Runner>;
}

export interface Scenario {
  name: string;
  unit: string;
  /** Work of the warm-up run and of each measured run, in the contenders' units. */
  warmup: number;
  work: number;
  /** Measured rounds; default ROUNDS. Short, noise-prone scenarios take more. */
  rounds?: number;
  contenders: Contender[];
  /**
   * Starts what the contenders use instead of the bench server (the cluster
   * scenario's own Redis Cluster) and resolves the function that stops it.
   * Runs before the first contender opens; the stop runs after the last one
   * closed, also when the scenario failed.
   */
  setup?(): Promise<() => Promise<void>>;
  /** The target, judged on the medians. */
  target?: { text: string; met(result: ScenarioResult): boolean };
  /** Extra facts for the table (p99, overhead, heap growth), from the medians. */
  note?(result: ScenarioResult): string;
}

export interface ContenderResult {
  client: Client;
  variant: string;
  samples: Sample[];
  median: number;
  /** Median of each extra measure. */
  extras: Record<string, number>;
}

export interface ScenarioResult {
  name: string;
  unit: string;
  contenders: ContenderResult[];
  /** The fastest redisconn contender (scenarios may run several variants). */
  redisconn: ContenderResult | undefined;
  /** The fastest ioredis / node-redis contender. */
  bestPeer: ContenderResult | undefined;
  redisBenchmark: ContenderResult | undefined;
  vsBestPeer: number | null;
  vsRedisBenchmark: number | null;
  target: { text: string; met: boolean } | null;
  note: string;
  seconds: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function summarize(client: Client, variant: string, samples: Sample[]): ContenderResult {
  const extras: Record<string, number> = {};
  for (const name of Object.keys(samples[0]?.extras ?? {})) {
    extras[name] = median(samples.map((sample) => sample.extras?.[name] ?? NaN));
  }
  return { client, variant, samples, median: median(samples.map((sample) => sample.value)), extras };
}

function ratio(a: ContenderResult | undefined, b: ContenderResult | undefined): number | null {
  return a === undefined || b === undefined || b.median === 0 ? null : a.median / b.median;
}

/** Opens every contender, runs the interleaved rounds, closes them, and derives the ratios. */
export async function runScenario(scenario: Scenario, server: TestRedisServer): Promise<ScenarioResult> {
  const started = Date.now();
  const runners: Runner[] = [];
  const samples: Sample[][] = scenario.contenders.map(() => []);
  const stop = await scenario.setup?.();
  try {
    for (const contender of scenario.contenders) runners.push(await contender.open(server));
    const rounds = scenario.rounds ?? ROUNDS;
    for (let round = 0; round <= rounds; round++) {
      for (let i = 0; i < runners.length; i++) {
        const sample = await (runners[i] as Runner).run(round === 0 ? scenario.warmup : scenario.work);
        if (round > 0) (samples[i] as Sample[]).push(sample);
      }
    }
  } finally {
    // Every runner closes, and the setup stops, whatever failed before.
    const closed = await Promise.allSettled(runners.map((runner) => runner.close()));
    await stop?.();
    const failed = closed.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
  const contenders = scenario.contenders.map((c, i) => summarize(c.client, c.variant, samples[i] as Sample[]));
  const fastest = (client: Client) =>
    contenders.filter((c) => c.client === client).reduce<ContenderResult | undefined>((best, c) => (best === undefined || c.median > best.median ? c : best), undefined);
  const redisconn = fastest('redisconn');
  const redisBenchmark = contenders.find((c) => c.client === 'redis-benchmark');
  const peers = contenders.filter((c) => c.client === 'ioredis' || c.client === 'node-redis');
  const bestPeer = peers.reduce<ContenderResult | undefined>((best, c) => (best === undefined || c.median > best.median ? c : best), undefined);
  const result: ScenarioResult = {
    name: scenario.name,
    unit: scenario.unit,
    contenders,
    redisconn,
    bestPeer,
    redisBenchmark,
    vsBestPeer: ratio(redisconn, bestPeer),
    vsRedisBenchmark: ratio(redisconn, redisBenchmark),
    target: null,
    note: '',
    seconds: (Date.now() - started) / 1000,
  };
  if (scenario.target !== undefined) result.target = { text: scenario.target.text, met: scenario.target.met(result) };
  result.note = scenario.note?.(result) ?? '';
  return result;
}

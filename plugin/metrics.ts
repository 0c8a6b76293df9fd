/**
 * Pool statistics as Prometheus metrics (LUCI's redis/pool/* metrics), read
 * from `pool.stats()` when the registry is scraped. Every metric is one row
 * of {@link POOL_METRICS}; several pools (several apps) share one set of
 * metrics per registry, told apart by the `pool` label.
 */
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';
import { checkTimeoutMs, type PoolStats } from '../src/index.js';
import { ErrBadOption } from './errors.js';

/** Something with stats: a Pool. */
export interface StatsSource {
  stats(): PoolStats;
}

/** One sample of a metric: its labels besides `pool`, and its value. */
type Sample = [labels: Record<string, string>, value: number];

/** A metric of the pool: how it is declared and how its samples come from the stats. */
interface PoolMetricDescriptor {
  name: string;
  help: string;
  /** A gauge is set; a counter is reset then raised to the pool's running total. */
  kind: 'gauge' | 'counter';
  /** Labels besides `pool`. */
  labels: readonly string[];
  samples(stats: PoolStats): Sample[];
}

/** The pool's metrics: the one place to add one. */
const POOL_METRICS: readonly PoolMetricDescriptor[] = [
  {
    name: 'redis_pool_connections',
    help: 'Connections of the Redis pool by state (idle, in_use); their sum is the open connections.',
    kind: 'gauge',
    labels: ['state'],
    samples: (s) => [
      [{ state: 'idle' }, s.idleCount],
      [{ state: 'in_use' }, s.inUseCount],
    ],
  },
  {
    name: 'redis_pool_wait_total',
    help: 'Times a caller waited for a Redis connection from the pool.',
    kind: 'counter',
    labels: [],
    samples: (s) => [[{}, s.waitCount]],
  },
  {
    name: 'redis_pool_wait_duration_seconds_total',
    help: 'Total time callers waited for a Redis connection from the pool, in seconds.',
    kind: 'counter',
    labels: [],
    samples: (s) => [[{}, s.waitDurationMs / 1000]],
  },
  {
    name: 'redis_pool_dials_total',
    help: 'Connections the Redis pool dialed, by result (ok, error).',
    kind: 'counter',
    labels: ['result'],
    samples: (s) => [
      [{ result: 'ok' }, s.dials - s.dialErrors],
      [{ result: 'error' }, s.dialErrors],
    ],
  },
  {
    name: 'redis_pool_shared_commands_total',
    help: 'Commands run on the pool\'s shared, auto-pipelined connection (pool.do, and leases before they move).',
    kind: 'counter',
    labels: [],
    samples: (s) => [[{}, s.sharedCommands]],
  },
  {
    name: 'redis_pool_lease_moves_total',
    help: 'Leases that moved to an exclusive connection of the pool (MULTI, WATCH, blocking commands, subscriptions, per-call timeouts).',
    kind: 'counter',
    labels: [],
    samples: (s) => [[{}, s.leaseMoves]],
  },
];

/** The metrics of one registry and the pools reporting into it. */
class PoolMetrics {
  readonly sources = new Map<string, StatsSource>();
  private readonly refreshers: (() => void)[] = [];

  constructor(private readonly registry: Registry) {
    // Each metric reads the stats itself at collect time, so any way of
    // scraping (whole registry or a single metric) sees current values.
    for (const descriptor of POOL_METRICS) {
      const config = { name: descriptor.name, help: descriptor.help, labelNames: ['pool', ...descriptor.labels], registers: [registry] };
      const refresh: () => void =
        descriptor.kind === 'gauge'
          ? this.refresher(descriptor, new Gauge({ ...config, collect: (): void => refresh() }), (metric, labels, value) => metric.set(labels, value))
          : this.refresher(descriptor, new Counter({ ...config, collect: (): void => refresh() }), (metric, labels, value) => metric.inc(labels, value));
      this.refreshers.push(refresh);
    }
  }

  /** Copies every source's stats into the metrics (what a scrape does). */
  refresh(): void {
    for (const refresh of this.refreshers) refresh();
  }

  /** Resets `metric` and writes each pool's samples with `write`. */
  private refresher<M extends Gauge | Counter>(descriptor: PoolMetricDescriptor, metric: M, write: (metric: M, labels: Record<string, string>, value: number) => void): () => void {
    return () => {
      metric.reset();
      for (const [pool, source] of this.sources) {
        for (const [labels, value] of descriptor.samples(source.stats())) write(metric, { pool, ...labels }, value);
      }
    };
  }

  remove(): void {
    for (const { name } of POOL_METRICS) this.registry.removeSingleMetric(name);
  }
}

const byRegistry = new WeakMap<Registry, PoolMetrics>();

/** A pool's registration; `close()` removes it (and the metrics with the last pool). */
export interface MetricsHandle {
  readonly registry: Registry;
  /** Refreshes the metrics now (what a scrape does). */
  refresh(): void;
  close(): void;
}

/**
 * Reports `source` under the label `pool` on `registry` (default: the global
 * one). Throws ErrBadOption when that pool name already reports there.
 * With `intervalMs`, also refreshes periodically (timer unref'd).
 */
export function registerPoolMetrics(pool: string, source: StatsSource, registry: Registry = globalRegistry, intervalMs?: number): MetricsHandle {
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new PoolMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  if (metrics.sources.has(pool)) {
    throw new ErrBadOption(`a pool named ${JSON.stringify(pool)} already reports metrics on this registry; give each app a distinct option name`);
  }
  metrics.sources.set(pool, source);
  const shared = metrics;
  const timer = intervalMs === undefined ? null : setInterval(() => shared.refresh(), checkTimeoutMs('metrics intervalMs', intervalMs, true));
  timer?.unref();
  let closed = false;
  return {
    registry,
    refresh: () => shared.refresh(),
    close() {
      if (closed) return;
      closed = true;
      if (timer !== null) clearInterval(timer);
      shared.sources.delete(pool);
      if (shared.sources.size === 0) {
        shared.remove();
        byRegistry.delete(registry);
      }
    },
  };
}

/**
 * Pool statistics as Prometheus metrics (LUCI's redis/pool/* metrics), read
 * from `pool.stats()` when the registry is scraped:
 * - `redis_pool_connections{pool,state="idle"|"in_use"}` gauge (sum = active)
 * - `redis_pool_wait_total{pool}` counter
 * - `redis_pool_wait_duration_seconds_total{pool}` counter
 * - `redis_pool_dials_total{pool,result="ok"|"error"}` counter
 * Several pools (several apps) share one set of metrics per registry, told
 * apart by the `pool` label.
 */
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';
import { checkTimeoutMs, type PoolStats } from '../src/index.js';
import { ErrBadOption } from './errors.js';

/** Something with stats: a Pool. */
export interface StatsSource {
  stats(): PoolStats;
}

const METRIC_NAMES = ['redis_pool_connections', 'redis_pool_wait_total', 'redis_pool_wait_duration_seconds_total', 'redis_pool_dials_total'];

/** The metrics of one registry and the pools reporting into it. */
class PoolMetrics {
  readonly sources = new Map<string, StatsSource>();
  private readonly connections: Gauge<'pool' | 'state'>;
  private readonly waits: Counter<'pool'>;
  private readonly waitSeconds: Counter<'pool'>;
  private readonly dials: Counter<'pool' | 'result'>;

  constructor(private readonly registry: Registry) {
    // Each metric reads the stats itself at collect time, so any way of
    // scraping (whole registry or a single metric) sees current values.
    const metrics = this;
    const registers = [registry];
    this.connections = new Gauge({
      name: 'redis_pool_connections',
      help: 'Connections of the Redis pool by state (idle, in_use); their sum is the open connections.',
      labelNames: ['pool', 'state'],
      registers,
      collect() {
        metrics.refreshConnections();
      },
    });
    this.waits = new Counter({
      name: 'redis_pool_wait_total',
      help: 'Times a caller waited for a Redis connection from the pool.',
      labelNames: ['pool'],
      registers,
      collect() {
        metrics.refreshWaits();
      },
    });
    this.waitSeconds = new Counter({
      name: 'redis_pool_wait_duration_seconds_total',
      help: 'Total time callers waited for a Redis connection from the pool, in seconds.',
      labelNames: ['pool'],
      registers,
      collect() {
        metrics.refreshWaitSeconds();
      },
    });
    this.dials = new Counter({
      name: 'redis_pool_dials_total',
      help: 'Connections the Redis pool dialed, by result (ok, error).',
      labelNames: ['pool', 'result'],
      registers,
      collect() {
        metrics.refreshDials();
      },
    });
  }

  /** Copies every source's stats into the metrics (what a scrape does). */
  refresh(): void {
    this.refreshConnections();
    this.refreshWaits();
    this.refreshWaitSeconds();
    this.refreshDials();
  }

  private refreshConnections(): void {
    this.connections.reset();
    for (const [pool, source] of this.sources) {
      const stats = source.stats();
      this.connections.set({ pool, state: 'idle' }, stats.idleCount);
      this.connections.set({ pool, state: 'in_use' }, stats.inUseCount);
    }
  }

  // Counters cannot be set; reset then increment to the pool's running total.
  private refreshWaits(): void {
    this.waits.reset();
    for (const [pool, source] of this.sources) this.waits.inc({ pool }, source.stats().waitCount);
  }

  private refreshWaitSeconds(): void {
    this.waitSeconds.reset();
    for (const [pool, source] of this.sources) this.waitSeconds.inc({ pool }, source.stats().waitDurationMs / 1000);
  }

  private refreshDials(): void {
    this.dials.reset();
    for (const [pool, source] of this.sources) {
      const stats = source.stats();
      this.dials.inc({ pool, result: 'ok' }, stats.dials - stats.dialErrors);
      this.dials.inc({ pool, result: 'error' }, stats.dialErrors);
    }
  }

  remove(): void {
    for (const name of METRIC_NAMES) this.registry.removeSingleMetric(name);
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

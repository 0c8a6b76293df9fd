/**
 * Source statistics as Prometheus metrics (LUCI's redis/pool/* metrics),
 * read from `source.stats()` when the registry is scraped. Every metric is
 * one row of {@link METRICS}; several sources (several apps) share one set of
 * metrics per registry, told apart by the `pool` label.
 *
 * A source that names its servers (a cluster, a sentinel pool:
 * `stats().nodes`) reports the per-pool rows once per server, labelled
 * `node` and `role` (a sentinel pool's node is the current master); a plain
 * pool reports them once, without. Per-source rows (the cluster's redirects,
 * refreshes, slot coverage; the sentinel pool's failovers and master) appear
 * only for sources whose stats have them. Every metric is reset before each
 * refresh, so a series whose labels no longer apply (an old master's
 * address) disappears.
 *
 * One row is observed rather than read: `redis_command_duration_seconds`, a
 * histogram of every command a source ran (write to reply), for sources
 * registered with `commandDuration` (plugin option
 * `metrics.commandDuration`). Its samples come from the `redisconn:command`
 * channel, attributed to the source by {@link watchCommands}; a source's
 * series go when it is removed.
 */
import { Counter, Gauge, Histogram, register as globalRegistry, type Registry } from 'prom-client';
import { checkTimeoutMs, commandInfo, type ClusterStats, type CommandTraceContext, type PoolStats, type SentinelStats, type SourceStats } from '../src/index.js';
import { watchCommands } from './commandwatch.js';
import { ErrBadOption } from './errors.js';

/** Something with stats: a ConnSource (Pool, Cluster...). */
export interface StatsSource {
  stats(): SourceStats;
}

/** One sample of a metric: its labels besides `pool` (and `node`, `role`), and its value. */
type Sample = [labels: Record<string, string>, value: number];

/** A metric: how it is declared and how its samples come from the stats (or, for a histogram, from each command). */
type MetricDescriptor = {
  name: string;
  help: string;
  /** Labels besides `pool` (and, per pool, `node` and `role`). */
  labels: readonly string[];
} & (
  | {
      /** A gauge is set; a counter is reset then raised to the source's running total. */
      kind: 'gauge' | 'counter';
      /** Read from one pool's counters: the source's, or each server's (labelled `node`, `role`). */
      per: 'pool';
      samples(stats: PoolStats): Sample[];
    }
  | {
      kind: 'gauge' | 'counter';
      /** Read from the whole source's stats; null when this source does not report the metric. */
      per: 'source';
      samples(stats: SourceStats): Sample[] | null;
    }
  | {
      /** Observed once per settled command of a source registered with `commandDuration`. */
      kind: 'histogram';
      per: 'command';
      buckets: readonly number[];
      /** The command's labels and the value to observe. */
      sample(command: CommandTraceContext, durationMs: number): Sample;
    }
);

/**
 * The `command` label: the command's name when the client's command table
 * knows it (its built-in rows, or rows a server's COMMAND taught it), else
 * `other`, so a label never holds whatever a caller sent.
 */
function commandLabel(command: string): string {
  return commandInfo(command) === undefined ? 'other' : command;
}

/** Labels of the per-server series of a source with several servers. */
const NODE_LABELS = ['node', 'role'] as const;

/** The stats of a cluster, or null for any other source. */
function clusterStats(stats: SourceStats): ClusterStats | null {
  return 'slotsCovered' in stats ? (stats as ClusterStats) : null;
}

/** The stats of a sentinel pool, or null for any other source. */
function sentinelStats(stats: SourceStats): SentinelStats | null {
  return 'failovers' in stats && 'master' in stats ? (stats as SentinelStats) : null;
}

/** The metrics: the one place to add one. */
const METRICS: readonly MetricDescriptor[] = [
  {
    name: 'redis_pool_connections',
    help: 'Connections of the Redis pool by state (idle, in_use); their sum is the open connections.',
    kind: 'gauge',
    per: 'pool',
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
    per: 'pool',
    labels: [],
    samples: (s) => [[{}, s.waitCount]],
  },
  {
    name: 'redis_pool_wait_duration_seconds_total',
    help: 'Total time callers waited for a Redis connection from the pool, in seconds.',
    kind: 'counter',
    per: 'pool',
    labels: [],
    samples: (s) => [[{}, s.waitDurationMs / 1000]],
  },
  {
    name: 'redis_pool_dials_total',
    help: 'Connections the Redis pool dialed, by result (ok, error).',
    kind: 'counter',
    per: 'pool',
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
    per: 'pool',
    labels: [],
    samples: (s) => [[{}, s.sharedCommands]],
  },
  {
    name: 'redis_pool_lease_moves_total',
    help: 'Leases that moved to an exclusive connection of the pool (MULTI, WATCH, blocking commands, subscriptions, per-call timeouts).',
    kind: 'counter',
    per: 'pool',
    labels: [],
    samples: (s) => [[{}, s.leaseMoves]],
  },
  {
    name: 'redis_cluster_redirects_total',
    help: 'Redirects the Redis Cluster client followed, by kind (moved, ask, tryagain, clusterdown).',
    kind: 'counter',
    per: 'source',
    labels: ['kind'],
    samples: (s) => {
      const cluster = clusterStats(s);
      return cluster && Object.entries(cluster.redirects).map(([kind, count]): Sample => [{ kind }, count]);
    },
  },
  {
    name: 'redis_cluster_refreshes_total',
    help: 'Reads of the Redis Cluster slot map, by trigger (start, moved, clusterdown, error, periodic) and result (ok, error).',
    kind: 'counter',
    per: 'source',
    labels: ['trigger', 'result'],
    samples: (s) => {
      const cluster = clusterStats(s);
      return (
        cluster &&
        Object.entries(cluster.refreshes).flatMap(([trigger, counts]): Sample[] => [
          [{ trigger, result: 'ok' }, counts.ok],
          [{ trigger, result: 'error' }, counts.error],
        ])
      );
    },
  },
  {
    name: 'redis_cluster_slots_covered',
    help: 'Slots of the Redis Cluster with a known master (16384 when the slot map is whole).',
    kind: 'gauge',
    per: 'source',
    labels: [],
    samples: (s) => {
      const cluster = clusterStats(s);
      return cluster && [[{}, cluster.slotsCovered]];
    },
  },
  {
    name: 'redis_sentinel_failovers_total',
    help: 'Master switches the Redis Sentinel pool followed (announced by +switch-master, or found when the old master failed).',
    kind: 'counter',
    per: 'source',
    labels: [],
    samples: (s) => {
      const sentinel = sentinelStats(s);
      return sentinel && [[{}, sentinel.failovers]];
    },
  },
  {
    name: 'redis_sentinel_master',
    help: 'The master the Redis Sentinel pool uses: 1 for its address (no series until the sentinels were first asked).',
    kind: 'gauge',
    per: 'source',
    labels: ['addr'],
    samples: (s) => {
      const sentinel = sentinelStats(s);
      if (sentinel === null) return null;
      return sentinel.master === '' ? [] : [[{ addr: sentinel.master }, 1]];
    },
  },
  {
    name: 'redis_command_duration_seconds',
    help: 'Time from writing a Redis command to its reply or error, in seconds, by command (other: a command the client does not know).',
    kind: 'histogram',
    per: 'command',
    labels: ['command'],
    // Sub-millisecond loopback round trips up to commands that block for seconds.
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    sample: (command, durationMs) => [{ command: commandLabel(command.command) }, durationMs / 1000],
  },
];

/** A stats row (gauge or counter). */
type StatsDescriptor = Exclude<MetricDescriptor, { per: 'command' }>;
/** The observed row (histogram). */
type CommandDescriptor = Extract<MetricDescriptor, { per: 'command' }>;

/** A metric made on the registry. */
interface Made {
  /** Copies every source's stats into it (nothing for an observed metric). */
  refresh(): void;
  /** Observes one command of the source reporting as `pool` (observed metrics only). */
  observe?(pool: string, command: CommandTraceContext, durationMs: number): void;
  /** Drops the series of `pool` (observed metrics: stats rows drop them at the next refresh). */
  forget?(pool: string): void;
}

/** The metrics of one registry and the sources reporting into it. */
class PoolMetrics {
  readonly sources = new Map<string, StatsSource>();
  /** The pools whose commands are observed (`commandDuration`). */
  private readonly observed = new Set<string>();
  /** The metrics made so far: those of the rows some source reported when added. */
  private readonly made = new Map<MetricDescriptor, Made>();

  constructor(private readonly registry: Registry) {}

  /**
   * Adds a source under `pool`, first making the metrics its stats report
   * (and, with `commandDuration`, the observed ones) that are not made yet
   * (when that throws, e.g. a name the registry already holds, the source
   * is not added).
   */
  add(pool: string, source: StatsSource, commandDuration: boolean): void {
    const stats = source.stats();
    for (const descriptor of METRICS) {
      if (this.made.has(descriptor)) continue;
      if (descriptor.per === 'source' && descriptor.samples(stats) === null) continue;
      if (descriptor.per === 'command' && !commandDuration) continue;
      this.made.set(descriptor, descriptor.per === 'command' ? this.makeObserved(descriptor) : this.make(descriptor));
    }
    this.sources.set(pool, source);
    if (commandDuration) this.observed.add(pool);
  }

  /**
   * Drops the source reporting as `pool` and its observed series; the
   * observed metrics go with the last pool observed.
   */
  delete(pool: string): void {
    this.sources.delete(pool);
    for (const made of this.made.values()) made.forget?.(pool);
    if (!this.observed.delete(pool) || this.observed.size > 0) return;
    for (const descriptor of this.made.keys()) {
      if (descriptor.per !== 'command') continue;
      this.made.delete(descriptor);
      this.registry.removeSingleMetric(descriptor.name);
    }
  }

  /** Copies every source's stats into the metrics (what a scrape does). */
  refresh(): void {
    for (const made of this.made.values()) made.refresh();
  }

  /** Observes one settled command of the source reporting as `pool`. */
  observe(pool: string, command: CommandTraceContext, durationMs: number): void {
    for (const made of this.made.values()) made.observe?.(pool, command, durationMs);
  }

  /**
   * Declares the metric of `descriptor` on the registry; returns what
   * refreshes it. Each metric reads the stats itself at collect time, so any
   * way of scraping (whole registry or a single metric) sees current values.
   */
  private make(descriptor: StatsDescriptor): Made {
    const labelNames = ['pool', ...(descriptor.per === 'pool' ? NODE_LABELS : []), ...descriptor.labels];
    const config = { name: descriptor.name, help: descriptor.help, labelNames, registers: [this.registry] };
    const refresh: () => void =
      descriptor.kind === 'gauge'
        ? this.refresher(descriptor, new Gauge({ ...config, collect: (): void => refresh() }), (metric, labels, value) => metric.set(labels, value))
        : this.refresher(descriptor, new Counter({ ...config, collect: (): void => refresh() }), (metric, labels, value) => metric.inc(labels, value));
    return { refresh };
  }

  /** Declares the histogram of `descriptor`; it remembers each pool's label sets, to drop them with the pool. */
  private makeObserved(descriptor: CommandDescriptor): Made {
    const histogram = new Histogram({
      name: descriptor.name,
      help: descriptor.help,
      labelNames: ['pool', ...descriptor.labels],
      buckets: [...descriptor.buckets],
      registers: [this.registry],
    });
    /** Per pool, its label sets so far (bounded: the command label is). */
    const series = new Map<string, Map<string, Record<string, string>>>();
    return {
      refresh: () => {},
      observe: (pool, command, durationMs) => {
        const [labels, value] = descriptor.sample(command, durationMs);
        const all = { pool, ...labels };
        let seen = series.get(pool);
        if (seen === undefined) {
          seen = new Map();
          series.set(pool, seen);
        }
        const key = Object.values(labels).join('\0');
        if (!seen.has(key)) seen.set(key, all);
        histogram.observe(all, value);
      },
      forget: (pool) => {
        for (const labels of series.get(pool)?.values() ?? []) histogram.remove(labels);
        series.delete(pool);
      },
    };
  }

  /** Resets `metric` and writes each source's samples with `write`. */
  private refresher<M extends Gauge | Counter>(descriptor: StatsDescriptor, metric: M, write: (metric: M, labels: Record<string, string>, value: number) => void): () => void {
    return () => {
      metric.reset();
      for (const [pool, source] of this.sources) {
        for (const [labels, value] of samplesOf(descriptor, source.stats())) write(metric, { pool, ...labels }, value);
      }
    };
  }

  remove(): void {
    for (const { name } of this.made.keys()) this.registry.removeSingleMetric(name);
  }
}

/** The samples of `descriptor` for one source's stats: per server (labelled `node`, `role`) when it reports servers. */
function samplesOf(descriptor: StatsDescriptor, stats: SourceStats): Sample[] {
  if (descriptor.per === 'source') return descriptor.samples(stats) ?? [];
  if (stats.nodes === undefined) return descriptor.samples(stats);
  return stats.nodes.flatMap((node) => descriptor.samples(node.stats).map(([labels, value]): Sample => [{ node: node.addr, role: node.role, ...labels }, value]));
}

const byRegistry = new WeakMap<Registry, PoolMetrics>();

/** A source's registration; `close()` removes it (and the metrics with the last source). */
export interface MetricsHandle {
  readonly registry: Registry;
  /** Refreshes the metrics now (what a scrape does). */
  refresh(): void;
  close(): void;
}

/** How a source reports (the fourth argument of {@link registerPoolMetrics}). */
export interface PoolMetricsOptions {
  /** Also refresh periodically, every `intervalMs` (timer unref'd). */
  intervalMs?: number | undefined;
  /**
   * Also observe every command run on the source's connections into
   * `redis_command_duration_seconds{pool,command}` (from the
   * `redisconn:command` channel). Default false.
   */
  commandDuration?: boolean | undefined;
}

/**
 * Reports `source` (a Pool, a Cluster...) under the label `pool` on
 * `registry` (default: the global one). Throws ErrBadOption when that pool
 * name already reports there. The last argument is `intervalMs` (also
 * refresh periodically, timer unref'd) or {@link PoolMetricsOptions}; with
 * `commandDuration`, the commands run on `source`'s connections are timed
 * until `close()`.
 */
export function registerPoolMetrics(pool: string, source: StatsSource, registry: Registry = globalRegistry, options?: number | PoolMetricsOptions): MetricsHandle {
  const { intervalMs, commandDuration = false } = typeof options === 'object' ? options : { intervalMs: options };
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    metrics = new PoolMetrics(registry);
    byRegistry.set(registry, metrics);
  }
  if (metrics.sources.has(pool)) {
    throw new ErrBadOption(`a pool named ${JSON.stringify(pool)} already reports metrics on this registry; give each app a distinct option name`);
  }
  const every = intervalMs === undefined ? undefined : checkTimeoutMs('metrics intervalMs', intervalMs, true);
  try {
    metrics.add(pool, source, commandDuration);
  } catch (err) {
    if (metrics.sources.size === 0) {
      metrics.remove();
      byRegistry.delete(registry);
    }
    throw err;
  }
  const shared = metrics;
  const timer = every === undefined ? null : setInterval(() => shared.refresh(), every);
  timer?.unref();
  const unwatch = commandDuration ? watchCommands(source, (command, durationMs) => shared.observe(pool, command, durationMs)) : null;
  let closed = false;
  return {
    registry,
    refresh: () => shared.refresh(),
    close() {
      if (closed) return;
      closed = true;
      unwatch?.();
      if (timer !== null) clearInterval(timer);
      shared.delete(pool);
      if (shared.sources.size === 0) {
        shared.remove();
        byRegistry.delete(registry);
      }
    },
  };
}

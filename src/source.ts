/**
 * ConnSource: what code that needs Redis — the Fastify plugin, the blob
 * cache, metrics, admin and health — asks of "a source of connections",
 * whatever stands behind it: one server (`Pool`), a Redis Cluster
 * (`Cluster`), or a master followed through Sentinel. Code written against
 * it runs unchanged on each.
 */
import type { Conn } from './conn.js';
import type { GetOptions, PoolStats } from './pool.js';
import type { Reply } from './resp/decode.js';
import type { Arg } from './resp/encode.js';

/** The role of a server behind a source. */
export type NodeRole = 'master' | 'replica';

/** The counters of one server's pool, as part of a source's stats. */
export interface NodeStats {
  /** `host:port` (after any address mapping). */
  readonly addr: string;
  readonly role: NodeRole;
  readonly stats: PoolStats;
}

/** Stats of a source: its totals, plus one entry per server it talks to. */
export interface SourceStats extends PoolStats {
  /** Per server; a plain pool reports none (its totals are its one server). */
  readonly nodes?: readonly NodeStats[];
}

/**
 * A source of connections. Every method is safe under any number of
 * concurrent callers.
 */
export interface ConnSource {
  /**
   * Borrows a connection with redigo semantics (`do/send/flush/receive`,
   * state kept until `close()`, which gives it back). Rejects with the
   * source's typed errors (closed, exhausted, timeout, dial error).
   */
  get(options?: GetOptions): Promise<Conn>;
  /**
   * Runs one stateless command without a borrow, auto-pipelined with other
   * callers. Commands that change or block a connection reject with
   * TypeError before anything is sent.
   */
  do(cmd: string, ...args: Arg[]): Promise<Reply>;
  /**
   * A connection that borrows nothing until a command needs exclusivity
   * (see `Pool.lease`); same contract as one from `get()`.
   */
  lease(options?: GetOptions): Conn;
  /**
   * Checks the source is serving, within `timeoutMs` (positive): a PING
   * answered (by every master of a cluster, which must also report
   * `cluster_state:ok`). Rejects with why not: TimeoutError, the dial's
   * error, the server's error reply, ClusterError.
   */
  check(timeoutMs: number): Promise<void>;
  /** A snapshot of the counters (totals; per server when there are several). */
  stats(): SourceStats;
  /**
   * Closes every connection (lent ones when they come back); later calls
   * reject with PoolClosedError. Safe to call twice.
   */
  close(): Promise<void>;
}

/** @internal The counters of several pools added up (a source's totals). */
export function sumStats(all: readonly PoolStats[]): PoolStats {
  const total: PoolStats = { activeCount: 0, idleCount: 0, inUseCount: 0, sharedCount: 0, waitCount: 0, waitDurationMs: 0, dials: 0, dialErrors: 0, sharedCommands: 0, leaseMoves: 0 };
  for (const stats of all) for (const key of Object.keys(total) as (keyof PoolStats)[]) total[key] += stats[key];
  return total;
}

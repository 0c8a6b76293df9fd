/**
 * A pool that follows the master of a Redis Sentinel deployment.
 *
 * Each new connection asks the sentinels (in order, the last that answered
 * first) for the master, dials it, and checks `ROLE` before use, so a
 * sentinel that lies or lags is caught. A subscription to `+switch-master`
 * on one sentinel (moved to another when that one dies) purges the pool the
 * moment a failover is announced: idle connections and the shared one close
 * at once, lent ones close when returned, and the next borrow dials the new
 * master. Connections in use fail with their own errors (a demoted master
 * answers writes with READONLY, which also triggers a re-check); nothing is
 * silently written to a replica.
 */
import type { Conn } from '../conn.js';
import { checkTimeoutMs, msLeft } from '../deadline.js';
import { dial, type DialOptions } from '../dial.js';
import { PoolClosedError, RedisError, SentinelError } from '../errors.js';
import { Lease } from '../lease.js';
import { newPoolDialing, type GetOptions, type Pool, type PoolOptions } from '../pool.js';
import type { Reply } from '../resp/decode.js';
import type { Arg } from '../resp/encode.js';
import { isReadOnly, sharedRefusal } from '../commands.js';
import { sumStats, type ConnSource, type NodeStats, type SourceStats } from '../source.js';
import { Sentinels } from './discovery.js';

/** Options of {@link newSentinelPool}: where the sentinels are, and the pool and dial options of the data nodes. */
export interface SentinelPoolOptions extends Partial<Omit<PoolOptions, 'dial'>>, Omit<DialOptions, 'readOnly' | 'signal'> {
  /** Sentinel addresses, `host:port`; one reachable is enough. Required. */
  sentinels: readonly string[];
  /** The name the sentinels monitor the master under. Required. */
  masterName: string;
  /** Sentinel ACL user (when the sentinels have their own credentials). */
  sentinelUsername?: string | undefined;
  /** Sentinel password (`requirepass` of the sentinels). */
  sentinelPassword?: string | undefined;
  /** TLS to the sentinels. Default: the data nodes' `tls`. */
  sentinelTls?: DialOptions['tls'] | undefined;
  /** Where read-only `do` commands go: the master (default) or a replica. */
  readFrom?: 'master' | 'replica' | undefined;
}

/** Stats of a sentinel pool: the master's pool (and the replicas'), the current master, failovers seen. */
export interface SentinelStats extends SourceStats {
  readonly nodes: readonly NodeStats[];
  /** The master in use, `host:port` ('' until first asked). */
  readonly master: string;
  /** Master switches seen (announced by `+switch-master`, or found when the old master failed). */
  readonly failovers: number;
}

function roleOf(reply: Reply): string {
  const first = Array.isArray(reply) ? reply[0] : null;
  return typeof first === 'string' ? first : Buffer.isBuffer(first) ? first.toString() : '';
}

/** Dials `addr` and refuses it unless ROLE says `expected` (`master` / `slave`). */
async function dialRole(addr: string, options: DialOptions, expected: 'master' | 'slave', masterName: string): Promise<Conn> {
  const conn = await dial(addr, options);
  try {
    const role = roleOf(await conn.do('ROLE'));
    if (role !== expected) {
      throw new SentinelError(`redisconn: ${addr}, named by the sentinels for ${JSON.stringify(masterName)}, says ROLE ${role || 'unknown'}, not ${expected === 'slave' ? 'replica' : 'master'}`);
    }
    return conn;
  } catch (err) {
    await conn.close();
    throw err;
  }
}

function ignore(): void {}

/** A source of connections to the current master of a Sentinel-monitored name. Safe under any number of concurrent callers. */
export class SentinelPool implements ConnSource {
  private readonly sentinels: Sentinels;
  private readonly pool: Pool;
  private readonly replicaPool: Pool | null;
  private currentMaster = '';
  /** The last master a connection passed the ROLE check on: only leaving it is a failover. */
  private verifiedMaster = '';
  private discovering: Promise<string> | null = null;
  private failovers = 0;
  private replicaTurn = 0;
  private readonly watching = new AbortController();
  private watcher: Promise<void> | null = null;
  private closed = false;

  constructor(options: SentinelPoolOptions) {
    const { sentinels, masterName, sentinelUsername, sentinelPassword, sentinelTls, readFrom, ...rest } = options ?? ({} as SentinelPoolOptions);
    if (!Array.isArray(sentinels) || sentinels.length === 0 || !sentinels.every((addr) => typeof addr === 'string' && addr !== '')) {
      throw new TypeError('redisconn: a sentinel pool needs sentinels: a non-empty array of "host:port" strings');
    }
    if (typeof masterName !== 'string' || masterName === '') throw new TypeError('redisconn: a sentinel pool needs masterName: the name the sentinels monitor');
    if (readFrom !== undefined && readFrom !== 'master' && readFrom !== 'replica') throw new RangeError(`redisconn: readFrom must be 'master' or 'replica', got ${String(readFrom)}`);
    const sentinelDial: DialOptions = {
      connectTimeoutMs: rest.connectTimeoutMs ?? 5_000,
      readTimeoutMs: rest.readTimeoutMs ?? 5_000,
      username: sentinelUsername,
      password: sentinelPassword,
      tls: sentinelTls ?? rest.tls,
    };
    this.sentinels = new Sentinels(sentinels, masterName, sentinelDial);
    const db = rest.db ?? 0;
    this.pool = newPoolDialing((dialOptions) => this.dialMaster(dialOptions), db, rest);
    this.replicaPool = readFrom === 'replica' ? newPoolDialing((dialOptions) => this.dialReplica(dialOptions), db, rest) : null;
    // Traced commands and borrows belong to this source, not to its inner pools.
    this.pool.traceSource = this;
    if (this.replicaPool !== null) this.replicaPool.traceSource = this;
  }

  /** The master in use (`host:port`), '' until the sentinels were first asked. */
  get master(): string {
    return this.currentMaster;
  }

  /** Borrows a connection to the master (see `Pool.get`). */
  get(options?: GetOptions): Promise<Conn> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: sentinel pool is closed'));
    return this.pool.get(options);
  }

  /**
   * Runs a stateless command on the master's shared connection (a replica's
   * with `readFrom: 'replica'` and a read-only command). A READONLY error
   * reply makes the pool ask the sentinels again.
   */
  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: sentinel pool is closed'));
    const refusal = sharedRefusal(cmd, args);
    if (refusal !== null) return Promise.reject(new TypeError(refusal.replace('Pool.do', 'SentinelPool.do')));
    if (this.replicaPool !== null && isReadOnly(cmd, args)) return this.replicaPool.doShared(cmd, args);
    return this.doShared(cmd, args);
  }

  /** A lease on the master (see `Pool.lease`); its shared commands watch for READONLY like `do`. */
  lease(options?: GetOptions): Conn {
    return new Lease(this, options);
  }

  /** Borrows a master connection and PINGs, within `timeoutMs`. */
  async check(timeoutMs: number): Promise<void> {
    checkTimeoutMs('timeoutMs', timeoutMs, true);
    const started = performance.now();
    await using conn = await this.get({ timeoutMs });
    await conn.doWithTimeout(msLeft(timeoutMs, started), 'PING');
  }

  stats(): SentinelStats {
    // No node until the sentinels named one: an empty address is no label anyone can use.
    const nodes: NodeStats[] = this.currentMaster === '' ? [] : [{ addr: this.currentMaster, role: 'master', stats: this.pool.stats() }];
    if (this.replicaPool !== null) nodes.push({ addr: 'replicas', role: 'replica', stats: this.replicaPool.stats() });
    const pools = [this.pool.stats(), ...(this.replicaPool === null ? [] : [this.replicaPool.stats()])];
    return { ...sumStats(pools), nodes, master: this.currentMaster, failovers: this.failovers };
  }

  /** Stops watching the sentinels and closes the pools (lent connections when returned). Safe twice. */
  async close(): Promise<void> {
    this.closed = true;
    this.watching.abort();
    await Promise.all([this.pool.close(), this.replicaPool?.close(), this.watcher]);
  }

  // ---- LeaseHost -------------------------------------------------------

  /** @internal */
  doShared(cmd: string, args: Arg[]): Promise<Reply> {
    return this.pool.doShared(cmd, args).catch((err: unknown) => {
      if (err instanceof RedisError && err.code === 'READONLY') this.recheck();
      throw err;
    });
  }

  /** @internal */
  borrowForLease(options?: GetOptions): Promise<Conn> {
    return this.pool.borrowForLease(options);
  }

  /** @internal */
  get protocolSeen(): 2 | 3 {
    return this.pool.protocolSeen;
  }

  /** @internal */
  get readTimeoutSeen(): number {
    return this.pool.readTimeoutSeen;
  }

  // ---- following the master ----------------------------------------------

  /** Dials the master the sentinels name (asking them again once if it fails or is not a master). */
  private async dialMaster(options: DialOptions): Promise<Conn> {
    this.watch();
    const known = this.currentMaster || (await this.discover());
    let addr = known;
    let conn: Conn;
    try {
      conn = await dialRole(addr, options, 'master', this.sentinels.masterName);
    } catch (err) {
      // A node that is not the master: the sentinel that named it lies or lags; ask the others first.
      if (err instanceof SentinelError) this.sentinels.distrust();
      addr = await this.discover();
      if (addr === known) throw err;
      conn = await dialRole(addr, options, 'master', this.sentinels.masterName);
    }
    this.verifiedMaster = addr;
    return conn;
  }

  /** Dials the next healthy replica the sentinels list. */
  private async dialReplica(options: DialOptions): Promise<Conn> {
    this.watch();
    const replicas = await this.sentinels.replicas();
    if (replicas.length === 0) throw new SentinelError(`redisconn: the sentinels list no healthy replica of ${JSON.stringify(this.sentinels.masterName)}`);
    const addr = replicas[this.replicaTurn++ % replicas.length] as string;
    return dialRole(addr, options, 'slave', this.sentinels.masterName);
  }

  /** Asks the sentinels for the master (single-flight) and switches to it if it changed. */
  private discover(): Promise<string> {
    this.discovering ??= this.sentinels.master().then(
      (addr) => {
        this.discovering = null;
        this.switchTo(addr);
        return addr;
      },
      (err: unknown) => {
        this.discovering = null;
        throw err;
      },
    );
    return this.discovering;
  }

  /** A READONLY reply: the master we talk to was demoted; ask again, and drop its connections even if the sentinels lag. */
  private recheck(): void {
    if (this.closed) return;
    const before = this.currentMaster;
    this.discover().then((addr) => {
      if (addr === before) this.pool.purge();
    }, ignore);
  }

  /**
   * Uses `addr` as the master from now on. Leaving a master that served (a
   * connection passed its ROLE check) is a failover: counted, and the pool
   * purged; leaving one never verified (a lying sentinel's pick) is not.
   */
  private switchTo(addr: string): void {
    if (addr === this.currentMaster || this.closed) return;
    const served = this.currentMaster !== '' && this.currentMaster === this.verifiedMaster;
    this.currentMaster = addr;
    if (!served) return;
    this.failovers++;
    this.pool.purge();
    this.replicaPool?.purge();
  }

  /** Starts the `+switch-master` subscription on first use. */
  private watch(): void {
    if (this.watcher !== null || this.closed) return;
    this.watcher = this.sentinels.watch(
      this.watching.signal,
      (addr) => this.switchTo(addr),
      () => void this.discover().catch(ignore),
    );
  }
}

/**
 * A pool following the master of `masterName` through `sentinels`, with
 * LUCI's pool defaults (see `newPool`) for the data-node connections.
 */
export function newSentinelPool(options: SentinelPoolOptions): SentinelPool {
  return new SentinelPool(options);
}

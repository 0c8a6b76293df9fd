/**
 * Cluster: a source of connections over a Redis Cluster — one `Pool` per
 * node, commands routed by the slot of their keys, redirects followed.
 *
 * The slot map comes from `CLUSTER SLOTS`, asked of a random known node (the
 * seeds when none answers), at most once per 200 ms (plus jitter) however
 * many callers ask: at start, on MOVED (the slot is patched at once), on
 * CLUSTERDOWN, on connection errors, and periodically. MOVED, ASK, TRYAGAIN
 * and CLUSTERDOWN are retried per command, in order, with backoff, at most
 * `maxRedirects` times; a connection error is never retried (the command
 * may have run).
 */
import { sharedRefusal, learnCommands, routeOf, type Route } from '../commands.js';
import type { Conn } from '../conn.js';
import { dial, type DialOptions } from '../dial.js';
import { ClusterError, CrossSlotError, PoolClosedError, RedisError, TimeoutError } from '../errors.js';
import { newPool, Pool, type GetOptions, type PoolOptions } from '../pool.js';
import type { Reply } from '../resp/decode.js';
import type { Arg } from '../resp/encode.js';
import { sumStats, type ConnSource, type NodeRole, type NodeStats, type SourceStats } from '../source.js';
import { checkTimeoutMs, msLeft, withinDeadline } from '../deadline.js';
import { asString } from '../reply.js';
import { ClusterConn } from './clusterconn.js';
import { backoffMs, redirectOf, type Redirect, type RedirectKind } from './redirect.js';
import { SLOT_COUNT, slotOf } from './slot.js';
import { hostOf, parseClusterSlots, type AddressMap, type Shard } from './topology.js';
import { aggregate, keyArg, noClusterWideNode, splitBySlot } from './fanout.js';

/** Where read-only commands go: the master (default), a replica, or a replica unless none is reachable. */
export type ReadFrom = 'master' | 'replica' | 'preferReplica';

/** What made the cluster read its slot map. */
export type RefreshTrigger = 'start' | 'moved' | 'clusterdown' | 'error' | 'periodic';

/** Options of {@link Cluster}. */
export interface ClusterOptions {
  /** Nodes to learn the topology from (`host:port`); one reachable is enough. Required. */
  seeds: readonly string[];
  /** Dial options for every node (`db` must be 0 on a cluster). */
  dial?: Omit<DialOptions, 'db' | 'readOnly' | 'signal'> | undefined;
  /** Pool options for every node's pool (not `dial`). */
  pool?: Omit<PoolOptions, 'dial'> | undefined;
  /**
   * Builds the pool of one node, instead of `dial` and `pool`; `readOnly`
   * says the connections must send READONLY (replica reads).
   */
  nodePool?: ((addr: string, readOnly: boolean) => Pool) | undefined;
  /** Where read-only commands go. Default `master`. */
  readFrom?: ReadFrom | undefined;
  /** Maps announced node addresses to dialable ones (NAT, Docker, hostnames). */
  addressMap?: AddressMap | undefined;
  /** Period of the background topology refresh; 0 = none. Default 15 000 ms. */
  refreshIntervalMs?: number | undefined;
  /** Redirects (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) followed per command. Default 16. */
  maxRedirects?: number | undefined;
}

/** Refresh outcomes per trigger. */
export type RefreshCounts = Record<RefreshTrigger, { ok: number; error: number }>;

/** A cluster's stats: totals over every node's pool, and per node. */
export interface ClusterStats extends SourceStats {
  readonly nodes: readonly NodeStats[];
  /** Redirects followed, per kind. */
  readonly redirects: Readonly<Record<RedirectKind, number>>;
  /** Topology reads, per trigger and result. */
  readonly refreshes: Readonly<RefreshCounts>;
  /** Slots with a known master (16384 when the map is whole). */
  readonly slotsCovered: number;
}

/** One node: its pool and its role in the last map. */
interface ClusterNode {
  readonly addr: string;
  role: NodeRole;
  readonly readOnly: boolean;
  readonly pool: Pool;
  /** When a call to it last failed at the connection level (ms, performance.now()). */
  failedAt: number;
}

/** Least gap between two topology reads, before jitter. */
const MIN_REFRESH_GAP_MS = 200;
/** How long a replica that failed is passed over by `preferReplica`. */
const REPLICA_PENALTY_MS = 5_000;
const NO_DEADLINE = Number.POSITIVE_INFINITY;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function emptyRefreshCounts(): RefreshCounts {
  return { start: { ok: 0, error: 0 }, moved: { ok: 0, error: 0 }, clusterdown: { ok: 0, error: 0 }, error: { ok: 0, error: 0 }, periodic: { ok: 0, error: 0 } };
}

function ignore(): void {}

/**
 * A Redis Cluster as one source of connections. Safe under any number of
 * concurrent callers. `do` runs on each node's shared, auto-pipelined
 * connection; `get()`/`lease()` give a `Conn` with redigo semantics across
 * the cluster (see ClusterConn).
 */
// Not `implements ClusterConnHost`: those members are internal (stripped
// from the published declarations), so the published class would not
// satisfy it. `new ClusterConn(this)` still checks it structurally.
export class Cluster implements ConnSource {
  private readonly seeds: readonly string[];
  private readonly makePool: (addr: string, readOnly: boolean) => Pool;
  readonly readFrom: ReadFrom;
  private readonly addressMap: AddressMap | undefined;
  private readonly maxRedirects: number;
  private readonly nodes = new Map<string, ClusterNode>();
  /** Pools of nodes dropped from the map, closing. */
  private readonly retiring = new Set<Promise<void>>();
  private slots: (Shard | undefined)[] = new Array<Shard | undefined>(SLOT_COUNT);
  private masters: readonly Shard[] = [];
  private started: Promise<void> | null = null;
  private mapped = false;
  /**
   * The first use is done: slot map read and command table learned. Not
   * `mapped`: a periodic or MOVED refresh can map the cluster first, and
   * the command table must still be learned.
   */
  private ready = false;
  private refreshing: Promise<void> | null = null;
  private lastRefreshAt = Number.NEGATIVE_INFINITY;
  private readonly refreshTimer: NodeJS.Timeout | null = null;
  private readonly redirects: Record<RedirectKind, number> = { moved: 0, ask: 0, tryagain: 0, clusterdown: 0 };
  private readonly refreshes = emptyRefreshCounts();
  private closed = false;

  constructor(options: ClusterOptions) {
    const seeds = options?.seeds;
    if (!Array.isArray(seeds) || seeds.length === 0 || !seeds.every((seed) => typeof seed === 'string' && seed !== '')) {
      throw new TypeError('redisconn: a cluster needs seeds: a non-empty array of "host:port" strings');
    }
    this.seeds = [...seeds];
    const readFrom = options.readFrom ?? 'master';
    if (readFrom !== 'master' && readFrom !== 'replica' && readFrom !== 'preferReplica') throw new RangeError(`redisconn: readFrom must be 'master', 'replica' or 'preferReplica', got ${String(readFrom)}`);
    this.readFrom = readFrom;
    const maxRedirects = options.maxRedirects ?? 16;
    if (!Number.isInteger(maxRedirects) || maxRedirects < 0) throw new RangeError(`redisconn: maxRedirects must be a non-negative integer, got ${String(maxRedirects)}`);
    this.maxRedirects = maxRedirects;
    const map = options.addressMap;
    if (map !== undefined && typeof map !== 'function' && (typeof map !== 'object' || map === null)) throw new TypeError('redisconn: addressMap must be an object or a function');
    this.addressMap = map;
    if ((options.dial as DialOptions | undefined)?.db) throw new RangeError('redisconn: a cluster has only db 0');
    this.makePool = options.nodePool ?? ((addr, readOnly) => new Pool({ ...options.pool, dial: () => dial(addr, { ...options.dial, readOnly }) }));
    const every = checkTimeoutMs('refreshIntervalMs', options.refreshIntervalMs ?? 15_000);
    if (every > 0) {
      this.refreshTimer = setInterval(() => this.refresh('periodic').catch(ignore), every);
      this.refreshTimer.unref();
    }
  }

  /**
   * Runs one stateless command, routed by the slot of its keys, on that
   * node's shared connection. MGET, DEL, UNLINK, EXISTS, TOUCH (and the
   * other `multi_shard` commands) are split by slot and their replies put
   * back together in order; `all_shards` commands (DBSIZE, KEYS, FLUSHALL,
   * SCRIPT EXISTS, ...) run on every master and are aggregated per their
   * command tips; any other command whose keys span slots rejects with
   * CrossSlotError before a byte is sent. State-changing and blocking
   * commands reject with TypeError (use `get()`).
   */
  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: cluster is closed'));
    const refusal = sharedRefusal(cmd, args);
    if (refusal !== null) return Promise.reject(new TypeError(refusal.replace('Pool.do', 'Cluster.do').replace('pool.get()', 'cluster.get()')));
    if (!this.ready) return this.start().then(() => this.dispatch(cmd, args));
    return this.dispatch(cmd, args);
  }

  /**
   * A connection across the cluster with redigo semantics, borrowing per
   * node only what its commands need (see ClusterConn). Rejects when the
   * topology cannot be read (ClusterError naming each node's error) or the
   * cluster is closed.
   */
  async get(options?: GetOptions): Promise<Conn> {
    if (this.closed) throw new PoolClosedError('redisconn: cluster is closed');
    if (!this.ready) await withinDeadline(this.start(), 'reading the cluster topology', options?.timeoutMs, options?.signal);
    return new ClusterConn(this, options);
  }

  /**
   * PINGs every master and asks one node for CLUSTER INFO, all within
   * `timeoutMs`: rejects unless every master answers and the cluster says
   * `cluster_state:ok` (ClusterError naming the state).
   */
  async check(timeoutMs: number): Promise<void> {
    checkTimeoutMs('timeoutMs', timeoutMs, true);
    const started = performance.now();
    await using conn = await this.get({ timeoutMs });
    await conn.doWithTimeout(msLeft(timeoutMs, started), 'PING');
    const info = await conn.doWithTimeout(msLeft(timeoutMs, started), 'CLUSTER', 'INFO');
    const state = /^cluster_state:(\S*)/m.exec(asString(info) ?? '')?.[1] ?? 'missing';
    if (state !== 'ok') throw new ClusterError(`redisconn: the Redis Cluster is not serving: CLUSTER INFO says cluster_state:${state}`);
  }

  /** Like `get()`, synchronously: the topology is read on the first command if need be. */
  lease(options?: GetOptions): Conn {
    if (!this.ready && !this.closed) this.start().catch(ignore);
    return new ClusterConn(this, options);
  }

  /** Totals over every node, per node, redirects, refreshes and slot coverage. */
  stats(): ClusterStats {
    const nodes: NodeStats[] = [];
    for (const node of this.nodes.values()) nodes.push({ addr: node.addr, role: node.role, stats: node.pool.stats() });
    let slotsCovered = 0;
    for (const shard of this.slots) if (shard !== undefined) slotsCovered++;
    return { ...sumStats(nodes.map((node) => node.stats)), nodes, redirects: { ...this.redirects }, refreshes: structuredClone(this.refreshes), slotsCovered };
  }

  /** Closes every node's pool (lent connections close when returned). Safe twice. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.refreshTimer !== null) clearInterval(this.refreshTimer);
      for (const node of this.nodes.values()) this.retire(node);
      this.nodes.clear();
    }
    await Promise.all(this.retiring);
  }

  /** Reads the slot map at once (single-flight, at most one per 200 ms). Rejects with ClusterError when no node answers. */
  refresh(trigger: RefreshTrigger): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.refreshing ??= this.refreshAfterGap(trigger).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  // ---- ClusterConnHost ------------------------------------------------

  /** @internal The topology is known (the first read done). */
  whenMapped(): Promise<void> {
    return this.ready ? Promise.resolve() : this.start();
  }

  /** @internal The pool serving `slot` (-1: any master) for a command, read-only or not. */
  poolFor(slot: number, readOnly: boolean): Pool {
    return this.nodeFor(slot, readOnly).pool;
  }

  /** @internal Every master's pool (`allNodes`: every node's). */
  fanOutPools(allNodes: boolean): Pool[] {
    return this.fanOutAddrs(allNodes).map((addr) => this.node(addr, 'master').pool);
  }

  /** @internal Reads the slot map again now; never rejects. */
  refreshNow(): Promise<void> {
    return this.refresh('error').catch(ignore);
  }

  /** @internal The slot map is known. */
  get isMapped(): boolean {
    return this.mapped;
  }

  /**
   * @internal Follows the redirect `err` asks for — MOVED (the slot is
   * patched, unless a replica said it), ASK (once, after ASKING), TRYAGAIN
   * and CLUSTERDOWN (after a backoff, within `deadline`) — until the command
   * is answered; rethrows any other error (a connection error triggers a
   * refresh, and is never retried). ClusterError past `maxRedirects`.
   */
  async follow(err: unknown, fromPool: Pool, slot: number, cmd: string, args: Arg[], readOnly: boolean, deadline: number): Promise<Reply> {
    let from = this.nodeOf(fromPool);
    for (let attempt = 1; ; attempt++) {
      const redirect = this.redirectFor(err, slot, from);
      if (redirect === null) throw err;
      if (attempt > this.maxRedirects) throw new ClusterError(`redisconn: ${cmd.toUpperCase()} was still redirected after ${this.maxRedirects} redirects`, [err as Error]);
      let node: ClusterNode;
      if (redirect.addr !== '') {
        node = this.node(redirect.addr, 'master');
      } else {
        await pause(attempt, deadline, err);
        node = this.nodeFor(slot, readOnly);
      }
      try {
        return redirect.kind === 'ask' ? await askingOn(node.pool, cmd, args) : await node.pool.doShared(cmd, args);
      } catch (next) {
        this.noteFailure(node, next);
        err = next;
        from = node;
      }
    }
  }

  private nodeOf(pool: Pool): ClusterNode | undefined {
    for (const node of this.nodes.values()) if (node.pool === pool) return node;
    return undefined;
  }

  /** Reacts to a failed call: the redirect to follow (counted), or null (connection errors and CLUSTERDOWN trigger a refresh). */
  private redirectFor(err: unknown, slot: number, from: ClusterNode | undefined): Redirect | null {
    const fromReplica = from?.role === 'replica';
    const redirect = redirectOf(err, this.addressMap, from?.addr);
    if (redirect === null) {
      if (!(err instanceof RedisError)) this.refresh('error').catch(ignore);
      return null;
    }
    this.redirects[redirect.kind]++;
    if (redirect.kind === 'moved' && !fromReplica) this.patch(redirect.slot, redirect.addr);
    if (redirect.kind === 'clusterdown') this.refresh('clusterdown').catch(ignore);
    return redirect;
  }

  // ---- routing --------------------------------------------------------

  private dispatch(cmd: string, args: Arg[]): Promise<Reply> {
    try {
      const route = routeOf(cmd, args);
      const policy = route.requestPolicy;
      if (policy === 'all_shards' || policy === 'all_nodes') return this.fanOut(cmd, args, route);
      const keys = route.keys;
      if (keys.length === 0) return policy === 'special' ? Promise.reject(noClusterWideNode(cmd)) : this.run(-1, cmd, args, route.readOnly, NO_DEADLINE);
      const slot = slotOf(keyArg(args[keys[0] as number], keys[0] as number));
      for (let i = 1; i < keys.length; i++) {
        if (slotOf(keyArg(args[keys[i] as number], keys[i] as number)) === slot) continue;
        if (policy === 'multi_shard') return this.split(cmd, args, route);
        return Promise.reject(new CrossSlotError(`redisconn: the keys of ${cmd.toUpperCase()} hash to different slots; a cluster runs it only when they share one (use {hashtags})`));
      }
      return this.run(slot, cmd, args, route.readOnly, NO_DEADLINE);
    } catch (err) {
      // A key spec the arguments do not fit, or a key argument encoding refuses (NaN, an object).
      return Promise.reject(err);
    }
  }

  /** Runs the command per slot group and puts the replies back in key order. */
  private split(cmd: string, args: Arg[], route: Route): Promise<Reply> {
    let groups: ReturnType<typeof splitBySlot>;
    try {
      groups = splitBySlot(args, route.keys);
    } catch (err) {
      return Promise.reject(err);
    }
    return Promise.all(groups.map((group) => this.run(group.slot, cmd, group.args, route.readOnly, NO_DEADLINE))).then((replies) => aggregate(route.responsePolicy, replies, groups, route.keys.length));
  }

  /** Runs the command on every master (every node for `all_nodes`) and aggregates the replies. */
  private fanOut(cmd: string, args: Arg[], route: Route): Promise<Reply> {
    const addrs = this.fanOutAddrs(route.requestPolicy === 'all_nodes');
    if (addrs.length === 0) return Promise.reject(new ClusterError('redisconn: no master is known'));
    const calls = addrs.map((addr) => this.runOnNode(this.node(addr, 'master'), cmd, args));
    if (route.responsePolicy === 'one_succeeded') return Promise.any(calls).catch((err: AggregateError) => Promise.reject(err.errors[0]));
    return Promise.all(calls).then((replies) => aggregate(route.responsePolicy, replies, null, 0));
  }

  private fanOutAddrs(allNodes: boolean): string[] {
    return allNodes ? [...new Set(this.masters.flatMap((shard) => [shard.master, ...shard.replicas]))] : this.masters.map((shard) => shard.master);
  }

  private runOnNode(node: ClusterNode, cmd: string, args: Arg[]): Promise<Reply> {
    return node.pool.doShared(cmd, args).catch((err: unknown) => {
      this.noteFailure(node, err);
      throw err;
    });
  }

  /**
   * Runs a command for `slot` (-1: keyless, any master) on the shared
   * connection of its node, following redirects (see `follow`).
   */
  private run(slot: number, cmd: string, args: Arg[], readOnly: boolean, deadline: number): Promise<Reply> {
    let node: ClusterNode;
    try {
      node = this.nodeFor(slot, readOnly);
    } catch (err) {
      return Promise.reject(err);
    }
    return node.pool.doShared(cmd, args).catch((err: unknown) => {
      this.noteFailure(node, err);
      return this.follow(err, node.pool, slot, cmd, args, readOnly, deadline);
    });
  }

  private noteFailure(node: ClusterNode, err: unknown): void {
    if (!(err instanceof RedisError)) node.failedAt = performance.now();
  }

  /** The node for `slot` (-1: a random master); throws ClusterError when no node serves it. */
  private nodeFor(slot: number, readOnly: boolean): ClusterNode {
    const shard = slot === -1 ? this.masters[Math.floor(Math.random() * this.masters.length)] : this.slots[slot];
    if (shard === undefined) {
      this.refresh('error').catch(ignore);
      throw new ClusterError(slot === -1 ? 'redisconn: no master is known' : `redisconn: no node serves slot ${slot} (the cluster map is incomplete)`);
    }
    if (readOnly && this.readFrom !== 'master' && shard.replicas.length > 0) {
      const replica = this.pickReplica(shard);
      if (replica !== null) return replica;
    }
    return this.node(shard.master, 'master');
  }

  private pickReplica(shard: Shard): ClusterNode | null {
    const start = Math.floor(Math.random() * shard.replicas.length);
    const now = performance.now();
    for (let i = 0; i < shard.replicas.length; i++) {
      const node = this.node(shard.replicas[(start + i) % shard.replicas.length] as string, 'replica');
      if (this.readFrom === 'replica' || now - node.failedAt > REPLICA_PENALTY_MS) return node;
    }
    return null;
  }

  /** The node of `addr`, made on first sight. A replica for reads gets a READONLY pool. */
  private node(addr: string, role: NodeRole): ClusterNode {
    let node = this.nodes.get(addr);
    const readOnly = role === 'replica' && this.readFrom !== 'master';
    if (node !== undefined && (!readOnly || node.readOnly)) return node;
    if (node !== undefined) this.retire(node);
    const pool = this.makePool(addr, readOnly);
    // Traced commands and borrows belong to the cluster, not to one node's pool.
    pool.traceSource = this;
    node = { addr, role, readOnly, pool, failedAt: Number.NEGATIVE_INFINITY };
    if (this.closed) void node.pool.close();
    else this.nodes.set(addr, node);
    return node;
  }

  private retire(node: ClusterNode): void {
    const closing = node.pool.close().catch(ignore);
    this.retiring.add(closing);
    void closing.then(() => this.retiring.delete(closing));
  }

  /** MOVED: the slot now belongs to `addr` (replicas unknown until the refresh it triggers). */
  private patch(slot: number, addr: string): void {
    if (slot < 0 || slot >= SLOT_COUNT) return;
    const old = this.slots[slot];
    if (old?.master !== addr) this.slots[slot] = this.masters.find((shard) => shard.master === addr) ?? { master: addr, replicas: [] };
    this.refresh('moved').catch(ignore);
  }

  // ---- topology -------------------------------------------------------

  /** The first topology read (and the command table), single-flight; a failure is retried by the next call. */
  private start(): Promise<void> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: cluster is closed'));
    this.started ??= (this.mapped ? Promise.resolve() : this.refresh('start')).then(
      async () => {
        await this.learnCommands();
        this.ready = true;
      },
      (err: unknown) => {
        this.started = null;
        throw err;
      },
    );
    return this.started;
  }

  /** Completes the command table from the server's COMMAND (key specs, tips); the built-in table serves if it fails. */
  private async learnCommands(): Promise<void> {
    const shard = this.masters[0];
    if (shard === undefined) return;
    try {
      learnCommands(await this.node(shard.master, 'master').pool.doShared('COMMAND', []));
    } catch {
      // Renamed or refused by ACL: the built-in table serves.
    }
  }

  private async refreshAfterGap(trigger: RefreshTrigger): Promise<void> {
    const gap = MIN_REFRESH_GAP_MS * (1 + Math.random() * 0.5) - (performance.now() - this.lastRefreshAt);
    if (gap > 0 && trigger !== 'start') await sleep(gap);
    try {
      await this.readSlots();
      this.refreshes[trigger].ok++;
    } catch (err) {
      this.refreshes[trigger].error++;
      throw err;
    } finally {
      this.lastRefreshAt = performance.now();
    }
  }

  /** Asks known nodes (random order), then the seeds, for CLUSTER SLOTS until one answers. */
  private async readSlots(): Promise<void> {
    const known = [...this.nodes.keys()].sort(() => Math.random() - 0.5);
    const candidates = [...new Set([...known, ...this.seeds])];
    const causes: Error[] = [];
    for (const addr of candidates) {
      if (this.closed) return;
      try {
        const reply = await this.node(addr, this.nodes.get(addr)?.role ?? 'master').pool.doShared('CLUSTER', ['SLOTS']);
        this.apply(parseClusterSlots(reply, hostOf(addr), this.addressMap));
        return;
      } catch (err) {
        causes.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    // A dial error names its address already: said once, without our prefix.
    const detail = causes.map((cause, i) => (cause.message.includes(candidates[i] as string) ? cause.message : `${candidates[i]}: ${cause.message}`).replace(/^redisconn: (dial )?/, '')).join('; ');
    throw new ClusterError(`redisconn: no cluster node answered CLUSTER SLOTS (${detail})`, causes);
  }

  private apply(ranges: ReturnType<typeof parseClusterSlots>): void {
    if (this.closed) return;
    if (ranges.length === 0) throw new ClusterError('redisconn: CLUSTER SLOTS lists no slot: the cluster has no slots assigned');
    const slots = new Array<Shard | undefined>(SLOT_COUNT);
    const masters = new Set<Shard>();
    const seen = new Set<string>();
    for (const { start, end, shard } of ranges) {
      slots.fill(shard, start, end + 1);
      masters.add(shard);
    }
    for (const shard of masters) {
      this.node(shard.master, 'master').role = 'master';
      seen.add(shard.master);
      for (const replica of shard.replicas) {
        this.node(replica, 'replica').role = 'replica';
        seen.add(replica);
      }
    }
    this.slots = slots;
    this.masters = [...masters];
    this.mapped = true;
    for (const [addr, node] of this.nodes) {
      if (seen.has(addr)) continue;
      this.nodes.delete(addr);
      this.retire(node);
    }
  }
}

/** ASK: the command runs once on the target, after ASKING on the same connection. */
async function askingOn(pool: Pool, cmd: string, args: Arg[]): Promise<Reply> {
  const conn = await pool.get();
  try {
    conn.send('ASKING');
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** Waits before retry `attempt`, unless that would pass `deadline`: then rejects with `err` (or a TimeoutError). */
async function pause(attempt: number, deadline: number, err: unknown): Promise<void> {
  const ms = backoffMs(attempt);
  if (performance.now() + ms > deadline) throw err instanceof Error ? err : new TimeoutError('redisconn: deadline passed while the cluster redirected');
  await sleep(ms);
}

/**
 * A cluster with LUCI's per-node pool defaults (see `newPool`: maxIdle 64,
 * maxActive 512, idle timeout 3 min, PING on borrow after 1 min idle, 5 s
 * timeouts). `options` takes the cluster options plus pool and dial
 * overrides for every node.
 */
export function newCluster(seeds: readonly string[], options: Omit<ClusterOptions, 'seeds' | 'dial' | 'pool' | 'nodePool'> & Partial<PoolOptions> & Omit<DialOptions, 'db' | 'readOnly' | 'signal'> = {}): Cluster {
  const { readFrom, addressMap, refreshIntervalMs, maxRedirects, ...overrides } = options;
  return new Cluster({ seeds, readFrom, addressMap, refreshIntervalMs, maxRedirects, nodePool: (addr, readOnly) => newPool(addr, 0, { ...overrides, readOnly }) });
}

/**
 * Fault paths of the cluster client against one real local cluster (3
 * masters, 3 replicas), every case under load: ≥ 20 concurrent callers doing
 * INCR / SET / GET, most through `cluster.do`, some each holding a
 * `cluster.get()` connection (issue 8). Allowed errors during a fault are the
 * typed ones: RedisError (CLUSTERDOWN, ...), ConnClosedError, ClusterError,
 * TimeoutError; anything else fails the test.
 *
 * - resharding a hot slot step by step and back: no error reaches a caller,
 *   no acknowledged write is lost;
 * - a slot whose redirects loop, and tiny maxRedirects during a migration:
 *   ClusterError (REDIS_CLUSTER), promptly;
 * - all seeds but one dead: works; none alive: ClusterError naming each seed;
 * - CLUSTER FAILOVER (readFrom master and preferReplica): only typed errors,
 *   no acknowledged write lost;
 * - a sharded subscriber follows its channel across a failover and a kill -9
 *   (and a receive started before its first SSUBSCRIBE still gets it);
 * - kill -9 of a master, its replica promoted by an election or by TAKEOVER
 *   at once: typed errors only, no call past its deadline, traffic back
 *   within 2 s of the promotion, for `cluster.do` and for connections alike;
 * - killed nodes restarted (a replica, masters after failover): the client
 *   keeps working and lists them again;
 * - nodes announcing hostnames, reached through `addressMap`; without it, a
 *   typed error naming the host, promptly.
 *
 * The destructive cases run in this order on one cluster (each leaves it
 * whole or the next one mends it); hostnames come last. Measured figures are
 * printed at the end (`[cluster-faults]` lines).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterError, ConnClosedError, PubSubConn, RedisError, TimeoutError, dial, newCluster, slotOf, type Cluster, type Conn, type PubSubNotification, type Reply } from '../src/index.js';
import { freePort, startRedisCluster, type TestClusterNode, type TestRedisCluster } from '../src/testing/index.js';
import { eventually, guardProcessErrors, settle, sleep, text } from './helpers.js';

guardProcessErrors();

let cluster: TestRedisCluster;
/** Measured figures, printed once at the end. */
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  const started = performance.now();
  cluster = await startRedisCluster();
  figures['cluster start (ms)'] = Math.round(performance.now() - started);
}, 40_000);

afterAll(async () => {
  await cluster?.stop();
  for (const [name, value] of Object.entries(figures)) console.log(`[cluster-faults] ${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
});

// ---- helpers -------------------------------------------------------------

/** The error types a caller may see during a fault (anything else fails the test). */
function typed(err: unknown): boolean {
  return err instanceof RedisError || err instanceof ConnClosedError || err instanceof ClusterError || err instanceof TimeoutError;
}

/** `Name:code` of an error, for counting. */
function kindOf(err: unknown): string {
  if (err instanceof RedisError) return `RedisError:${err.code}`;
  if (err instanceof Error) return `${err.name}:${(err as { code?: string }).code ?? '-'}`;
  return `non-error:${String(err)}`;
}

/** The first message of each kind of error, for the report. */
function samples(ops: readonly Op[]): Record<string, string> {
  const first: Record<string, string> = {};
  for (const op of ops) first[`${op.via} ${op.cmd} ${kindOf(op.error)}`] ??= String(op.error).slice(0, 160);
  return first;
}

function countKinds(errors: readonly unknown[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const err of errors) counts[kindOf(err)] = (counts[kindOf(err)] ?? 0) + 1;
  return counts;
}

/** Whether a failed call may still have run on the server (a connection-level failure). */
function outcomeUnknown(err: unknown): boolean {
  return !(err instanceof RedisError) && !(err instanceof ClusterError);
}

/** One command on a fresh connection (bulk strings as text). */
async function on(addr: string, cmd: string, ...args: (string | number)[]): Promise<Reply> {
  const conn = await dial(addr, { decodeStrings: true, connectTimeoutMs: 2_000, readTimeoutMs: 5_000 });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

function live(): TestClusterNode[] {
  return cluster.nodes.filter((node) => node.alive);
}

/** slot → `127.0.0.1:<port>` of its master, from CLUSTER SLOTS of a live node (ports, not the announced hosts). */
async function slotOwners(): Promise<(slot: number) => string> {
  let last: unknown;
  for (const node of live()) {
    try {
      const ranges = (await on(node.addr, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][];
      return (slot) => {
        const range = ranges.find(([start, end]) => start <= slot && slot <= end);
        if (range === undefined) throw new Error(`no owner for slot ${slot}`);
        return `127.0.0.1:${range[2][1]}`;
      };
    } catch (err) {
      last = err;
    }
  }
  throw new Error(`no node answered CLUSTER SLOTS: ${String(last)}`);
}

/** `count` keys `prefix:<n>` whose slots `owner` serves. */
async function keysOn(owner: string, prefix: string, count: number): Promise<string[]> {
  const ownerOf = await slotOwners();
  const found: string[] = [];
  for (let n = 0; found.length < count; n++) if (ownerOf(slotOf(`${prefix}:${n}`)) === owner) found.push(`${prefix}:${n}`);
  return found;
}

/** `count` keys `prefix:<n>` whose slots any master but `owner` serves. */
async function keysOff(owner: string, prefix: string, count: number): Promise<string[]> {
  const ownerOf = await slotOwners();
  const found: string[] = [];
  for (let n = 0; found.length < count; n++) if (ownerOf(slotOf(`${prefix}:${n}`)) !== owner) found.push(`${prefix}:${n}`);
  return found;
}

/** GET of each key, straight from the master serving its slot now (not through the client). */
async function readDirect(keys: readonly string[]): Promise<Map<string, string | null>> {
  const ownerOf = await slotOwners();
  const values = new Map<string, string | null>();
  const byOwner = new Map<string, string[]>();
  for (const key of keys) byOwner.set(ownerOf(slotOf(key)), [...(byOwner.get(ownerOf(slotOf(key))) ?? []), key]);
  for (const [addr, owned] of byOwner) {
    const conn = await dial(addr, { decodeStrings: true });
    try {
      for (const key of owned) {
        const value = await conn.do('GET', key);
        values.set(key, value === null ? null : text(value));
      }
    } finally {
      await conn.close();
    }
  }
  return values;
}

/** A live master other than `node`. */
function otherMaster(node: TestClusterNode | string): TestClusterNode {
  const addr = typeof node === 'string' ? node : node.addr;
  const other = cluster.masters().find((m) => m.alive && m.addr !== addr);
  if (!other) throw new Error('no other live master');
  return other;
}

/** The node (of the test cluster) at `addr`. */
function nodeAt(addr: string): TestClusterNode {
  const node = cluster.nodes.find((n) => n.addr === addr);
  if (!node) throw new Error(`no node at ${addr}`);
  return node;
}

/** The live replica of `master`. */
function replicaOf(master: TestClusterNode): TestClusterNode {
  const replica = cluster.nodes.find((n) => n.alive && n.role === 'replica' && n.masterId === master.id);
  if (!replica) throw new Error(`${master.addr} has no live replica`);
  return replica;
}

/** Polls ROLE on `addr` every 10 ms until it says master; resolves with when it first did (performance.now()). */
async function promotedAt(addr: string, timeoutMs: number): Promise<number> {
  const conn = await dial(addr, { decodeStrings: true, readTimeoutMs: 2_000 });
  const deadline = performance.now() + timeoutMs;
  try {
    for (;;) {
      const role = (await conn.do('ROLE')) as Reply[];
      if (role[0] === 'master') return performance.now();
      if (performance.now() > deadline) throw new Error(`${addr} still says ${String(role[0])} after ${timeoutMs} ms`);
      await sleep(10);
    }
  } finally {
    await conn.close();
  }
}

/** One finished call of the load. */
interface Op {
  readonly via: 'do' | 'conn';
  readonly cmd: 'INCR' | 'SET' | 'GET';
  readonly key: string;
  readonly start: number;
  readonly end: number;
  readonly error: unknown;
}

interface LoadOptions {
  /** Where `cluster.do` callers go. */
  doSource: Cluster;
  /** Where connection callers get their `cluster.get()` connection (default doSource). */
  connSource?: Cluster;
  /** Callers using `cluster.do`. Default 16. */
  doCallers?: number;
  /** Callers each holding a `cluster.get()` connection. Default 6. */
  connCallers?: number;
  /** Deadline of each connection call (`doWithTimeout`) and of `get()`; none: plain `do`. */
  callTimeoutMs?: number;
  /** Keys counted up with INCR by every caller, round robin. */
  counters: readonly string[];
  /** The key caller `i` SETs to its sequence number 1, 2, 3, ... */
  setKey: (caller: number) => string;
  /** Pause between a caller's calls, ms. Default 2. */
  pauseMs?: number;
}

/**
 * ≥ 20 concurrent callers: INCR of shared counters, SET of a key of their
 * own (sequence numbers), GET now and then. Records every acknowledgement
 * and every error, and the longest call of each kind.
 */
class Load {
  /** Per counter: INCRs acknowledged, failed with unknown outcome, highest value returned. */
  readonly counters = new Map<string, { acked: number; unknown: number; maxSeen: number }>();
  /** Per SET key: last sequence acknowledged, sequences whose outcome is unknown. */
  readonly sets = new Map<string, { acked: number; unknown: Set<number> }>();
  readonly errors: Op[] = [];
  ok = 0;
  maxDoMs = 0;
  maxConnMs = 0;
  private readonly listeners: ((op: Op) => void)[] = [];
  private stopping = false;
  private readonly runners: Promise<void>[] = [];
  private readonly options: Required<Omit<LoadOptions, 'callTimeoutMs'>> & { callTimeoutMs: number | undefined };

  constructor(options: LoadOptions) {
    this.options = { connSource: options.doSource, doCallers: 16, connCallers: 6, pauseMs: 2, ...options, callTimeoutMs: options.callTimeoutMs };
    for (const key of options.counters) this.counters.set(key, { acked: 0, unknown: 0, maxSeen: 0 });
    for (let i = 0; i < this.options.doCallers; i++) this.runners.push(this.doCaller(i));
    for (let i = 0; i < this.options.connCallers; i++) this.runners.push(this.connCaller(this.options.doCallers + i));
  }

  get callers(): number {
    return this.options.doCallers + this.options.connCallers;
  }

  /**
   * Waits until `more` further calls have been answered (default: every
   * caller three times over), failing the test after `timeoutMs`: a phase of
   * the load lasts for an amount of traffic, not for a time.
   */
  async served(more = 3 * this.callers, timeoutMs = 5_000): Promise<void> {
    const from = this.ok;
    const reached = await eventually(() => this.ok - from >= more, timeoutMs);
    expect(reached, `${more} more calls answered within ${timeoutMs} ms (${this.ok - from} were)`).toBe(true);
  }

  /** Calls `listener` with every finished call from now on. */
  watch(listener: (op: Op) => void): void {
    this.listeners.push(listener);
  }

  /** Stops every caller; resolves once their last calls settled (connections closed). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.runners);
  }

  private async doCaller(caller: number): Promise<void> {
    const { doSource } = this.options;
    await this.loop(caller, 'do', (cmd, key, arg) => (arg === undefined ? doSource.do(cmd, key) : doSource.do(cmd, key, arg)));
  }

  private async connCaller(caller: number): Promise<void> {
    const { connSource, callTimeoutMs } = this.options;
    let conn: Conn | null = null;
    try {
      await this.loop(caller, 'conn', async (cmd, key, arg) => {
        conn ??= await connSource.get(callTimeoutMs === undefined ? undefined : { timeoutMs: callTimeoutMs });
        const args = arg === undefined ? [key] : [key, arg];
        try {
          return await (callTimeoutMs === undefined ? conn.do(cmd, ...args) : conn.doWithTimeout(callTimeoutMs, cmd, ...args));
        } catch (err) {
          // A broken connection is replaced, as a caller of a pool would.
          if (conn.err() !== null) {
            const broken: Conn = conn;
            conn = null;
            await broken.close();
          }
          throw err;
        }
      });
    } finally {
      await (conn as Conn | null)?.close();
    }
  }

  private async loop(caller: number, via: Op['via'], call: (cmd: Op['cmd'], key: string, arg?: string) => Promise<Reply>): Promise<void> {
    const counters = this.options.counters;
    const setKey = this.options.setKey(caller);
    let seq = 0;
    for (let n = caller; !this.stopping; n++) {
      const counter = counters[n % counters.length] as string;
      const cmd: Op['cmd'] = n % 5 === 4 ? 'GET' : n % 2 === 0 ? 'INCR' : 'SET';
      const key = cmd === 'SET' ? setKey : counter;
      const value = cmd === 'SET' ? ++seq : 0;
      const start = performance.now();
      let error: unknown = null;
      let reply: Reply = null;
      try {
        reply = await call(cmd, key, cmd === 'SET' ? String(value) : undefined);
      } catch (err) {
        error = err;
      }
      const end = performance.now();
      if (via === 'do') this.maxDoMs = Math.max(this.maxDoMs, end - start);
      else this.maxConnMs = Math.max(this.maxConnMs, end - start);
      this.note({ via, cmd, key, start, end, error }, reply, value);
      await sleep(error === null ? this.options.pauseMs : 10);
    }
  }

  private note(op: Op, reply: Reply, value: number): void {
    if (op.error === null) this.ok++;
    else this.errors.push(op);
    if (op.cmd === 'INCR') {
      const counter = this.counters.get(op.key) as { acked: number; unknown: number; maxSeen: number };
      if (op.error === null) {
        counter.acked++;
        counter.maxSeen = Math.max(counter.maxSeen, Number(reply));
      } else if (outcomeUnknown(op.error)) {
        counter.unknown++;
      }
    } else if (op.cmd === 'SET') {
      let set = this.sets.get(op.key);
      if (set === undefined) this.sets.set(op.key, (set = { acked: 0, unknown: new Set() }));
      if (op.error === null) {
        set.acked = value;
        set.unknown.clear();
      } else if (outcomeUnknown(op.error)) {
        set.unknown.add(value);
      }
    }
    for (const listener of this.listeners) listener(op);
  }

  /**
   * Every acknowledged write checked against the masters now serving the
   * keys: a counter holds at least its acknowledged INCRs (at most those plus
   * the ones of unknown outcome), a SET key its last acknowledged value (or a
   * later one of unknown outcome). Returns the violations (none: []).
   */
  async lostWrites(only?: (key: string) => boolean): Promise<string[]> {
    const keys = [...this.counters.keys(), ...this.sets.keys()].filter((key) => only?.(key) ?? true);
    const values = await readDirect(keys);
    const lost: string[] = [];
    for (const [key, { acked, unknown, maxSeen }] of this.counters) {
      if (!keys.includes(key)) continue;
      const value = Number(values.get(key) ?? 0);
      if (value < acked || value < maxSeen || value > acked + unknown) lost.push(`${key}: ${value}, acked ${acked} (highest reply ${maxSeen}), ${unknown} of unknown outcome`);
    }
    for (const [key, { acked, unknown }] of this.sets) {
      if (!keys.includes(key) || acked === 0) continue;
      const value = Number(values.get(key) ?? 0);
      if (value !== acked && !unknown.has(value)) lost.push(`${key}: ${value}, last acked ${acked}${unknown.size ? `, unknown ${[...unknown].join(',')}` : ''}`);
    }
    return lost;
  }

  /** Acknowledged INCRs in total. */
  get ackedIncrs(): number {
    let total = 0;
    for (const { acked } of this.counters.values()) total += acked;
    return total;
  }
}

// ---- 1. resharding -------------------------------------------------------

describe('resharding a hot slot under load', () => {
  it('migrates the slot step by step and back (moveSlot): no error reaches a caller, no acknowledged write is lost', async () => {
    const client = newCluster(cluster.seeds);
    const hot = slotOf('hot');
    const counters = [...Array.from({ length: 8 }, (_, i) => `{hot}:n${i}`), ...Array.from({ length: 4 }, (_, i) => `reshard:n${i}`)];
    const load = new Load({ doSource: client, counters, setKey: (i) => `{hot}:set${i}` });
    expect(load.callers).toBeGreaterThanOrEqual(20);
    try {
      await load.served();
      const from = await cluster.masterOf(hot);
      const to = otherMaster(from);
      const started = performance.now();
      await cluster.beginSlotMigration(hot, to);
      let moved = 0;
      for (let step = 0; step < 50; step++) {
        const batch = await cluster.migrateKeys(hot, { count: 3 });
        if (batch === 0) break;
        moved += batch;
        await load.served(load.callers); // traffic between the steps
      }
      await cluster.finishSlotMigration(hot);
      const stepwiseMs = performance.now() - started;
      await load.served();
      const back = performance.now();
      await cluster.moveSlot(hot, from);
      const backMs = performance.now() - back;
      await load.served();
      await load.stop();
      figures['1 reshard'] = { callers: load.callers, ok: load.ok, acked_incr: load.ackedIncrs, keys_migrated_stepwise: moved, stepwise_ms: Math.round(stepwiseMs), move_back_ms: Math.round(backMs), redirects: client.stats().redirects, max_do_ms: Math.round(load.maxDoMs), max_conn_ms: Math.round(load.maxConnMs) };
      expect(load.errors.map((op) => `${op.via} ${op.cmd} ${op.key}: ${String(op.error)}`)).toEqual([]);
      expect(moved).toBeGreaterThan(0);
      const { ask, moved: movedRedirects } = client.stats().redirects;
      expect(ask).toBeGreaterThan(0);
      expect(movedRedirects).toBeGreaterThan(0);
      expect(await load.lostWrites()).toEqual([]);
      expect(await cluster.masterOf(hot)).toBe(from);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 20_000);
});

// ---- 8. maxRedirects -----------------------------------------------------

describe('redirect limits', () => {
  it('a slot whose redirects loop (MIGRATING on its master, no IMPORTING on the target): ClusterError after maxRedirects, promptly', async () => {
    const client = newCluster(cluster.seeds);
    const slot = slotOf('loop');
    const from = await cluster.masterOf(slot);
    const to = otherMaster(from);
    const counters = await keysOff(from.addr, 'loop-other', 8);
    const load = new Load({ doSource: client, counters, setKey: (i) => `loop-other:set${i}` });
    try {
      await cluster.beginSlotMigration(slot, to);
      // The target forgets it imports: it answers ASKING + command with MOVED back to the source, which answers ASK again.
      await on(to.addr, 'CLUSTER', 'SETSLOT', slot, 'STABLE');
      const conn = await client.get();
      const calls = Array.from({ length: 24 }, (_, i) => {
        const started = performance.now();
        const call = i % 4 === 3 ? conn.doWithTimeout(2_000, 'GET', `{loop}:c${i}`) : client.do('INCR', `{loop}:c${i}`);
        return settle(call).then((result) => ({ result, ms: performance.now() - started }));
      });
      const results = await Promise.all(calls);
      await conn.close();
      const slowest = Math.max(...results.map((r) => r.ms));
      figures['8 redirect loop'] = { calls: results.length, slowest_ms: Math.round(slowest), redirects: client.stats().redirects };
      for (const { result } of results) {
        expect(result.ok).toBe(false);
        if (result.ok) continue;
        expect(result.error).toBeInstanceOf(ClusterError);
        expect(result.error).toMatchObject({ code: 'REDIS_CLUSTER' });
        expect(String(result.error)).toMatch(/still redirected after 16 redirects/);
      }
      expect(slowest).toBeLessThan(2_000);
      // Nothing ran: the slot holds no key on either node.
      expect([await on(from.addr, 'CLUSTER', 'COUNTKEYSINSLOT', slot), await on(to.addr, 'CLUSTER', 'COUNTKEYSINSLOT', slot)]).toEqual([0, 0]);
      // The rest of the cluster was served all along.
      await load.stop();
      expect(load.errors.map((op) => `${op.via} ${op.cmd} ${op.key}: ${String(op.error)}`)).toEqual([]);
      expect(load.ok).toBeGreaterThan(100);
    } finally {
      await load.stop();
      await client.close();
      // Mend the slot: a real migration, finished.
      await on(to.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await cluster.migrateKeys(slot);
      await cluster.finishSlotMigration(slot);
    }
  }, 15_000);

  it('maxRedirects 0 during a migration: ClusterError on the first ASK; 1 follows it', async () => {
    const strict = newCluster(cluster.seeds, { maxRedirects: 0 });
    const one = newCluster(cluster.seeds, { maxRedirects: 1 });
    const slot = slotOf('tiny');
    const keys = Array.from({ length: 24 }, (_, i) => `{tiny}:k${i}`);
    const from = await cluster.masterOf(slot);
    const to = otherMaster(from);
    const counters = await keysOff(from.addr, 'tiny-other', 8);
    const load = new Load({ doSource: strict, counters, setKey: (i) => `tiny-other:set${i}` });
    try {
      await Promise.all(keys.map((key) => one.do('SET', key, 'v')));
      await cluster.beginSlotMigration(slot, to);
      const migrated = await cluster.migrateKeys(slot, { count: 12 });
      expect(migrated).toBe(12);
      const started = performance.now();
      const [strictResults, oneResults] = await Promise.all([Promise.all(keys.map((key) => settle(strict.do('GET', key)))), Promise.all(keys.map((key) => settle(one.do('GET', key))))]);
      const ms = performance.now() - started;
      const refused = strictResults.filter((r) => !r.ok);
      // Half the keys moved: those are ASKed, the rest answered by the source.
      expect(refused).toHaveLength(12);
      for (const result of refused) {
        if (result.ok) continue;
        expect(result.error).toBeInstanceOf(ClusterError);
        expect(result.error).toMatchObject({ code: 'REDIS_CLUSTER' });
        expect(String(result.error)).toMatch(/still redirected after 0 redirects/);
        expect((result.error as ClusterError).causes[0]).toMatchObject({ code: 'ASK' });
      }
      expect(oneResults.map((r) => (r.ok ? text(r.value) : String(r.error)))).toEqual(keys.map(() => 'v'));
      expect(ms).toBeLessThan(2_000);
      figures['8 maxRedirects 0/1'] = { refused_with_0: refused.length, answered_with_1: oneResults.filter((r) => r.ok).length, ms: Math.round(ms) };
      await load.stop();
      expect(load.errors.map((op) => `${op.via} ${op.cmd} ${op.key}: ${String(op.error)}`)).toEqual([]);
    } finally {
      await load.stop();
      await strict.close();
      await one.close();
      await cluster.migrateKeys(slot);
      await cluster.finishSlotMigration(slot);
    }
  }, 15_000);
});

// ---- 5. seeds --------------------------------------------------------------

describe('seeds', () => {
  it('all seeds but the last dead: 22 callers starting at once are all served', async () => {
    const dead = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, 'seed-gone.invalid:6379'];
    const client = newCluster([...dead, cluster.seeds[1] as string], { connectTimeoutMs: 300 });
    const counters = Array.from({ length: 10 }, (_, i) => `seeds:n${i}`);
    // The callers start before the topology is known: they all wait for the one first read.
    const load = new Load({ doSource: client, counters, setKey: (i) => `seeds:set${i}` });
    try {
      await load.served(101);
      await load.stop();
      expect(load.errors.map((op) => `${op.via} ${op.cmd} ${op.key}: ${String(op.error)}`)).toEqual([]);
      expect(load.ok).toBeGreaterThan(100);
      expect(await load.lostWrites()).toEqual([]);
      expect(client.stats().refreshes.start).toEqual({ ok: 1, error: 0 });
    } finally {
      await load.stop();
      await client.close();
    }
  }, 10_000);

  it('no seed alive: every concurrent caller gets ClusterError naming every seed, promptly', async () => {
    const dead = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`, 'seed-gone.invalid:6379'];
    const client = newCluster(dead, { connectTimeoutMs: 300 });
    try {
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const errors: unknown[] = [];
          for (let round = 0; round < 3; round++) {
            const result = await settle<unknown>(i % 4 === 3 ? client.get() : client.do('INCR', `none:${i}`));
            errors.push(result.ok ? new Error('served') : result.error);
          }
          return errors;
        }),
      );
      const ms = performance.now() - started;
      figures['5 no seed alive'] = { calls: results.length * 3, ms: Math.round(ms), start_refreshes: client.stats().refreshes.start };
      for (const err of results.flat()) {
        expect(err).toBeInstanceOf(ClusterError);
        expect(err).toMatchObject({ code: 'REDIS_CLUSTER' });
        expect((err as ClusterError).causes).toHaveLength(dead.length);
        for (const seed of dead) expect(String(err)).toContain(seed);
      }
      expect(ms).toBeLessThan(3_000);
    } finally {
      await client.close();
    }
  }, 10_000);
});

// ---- 2. CLUSTER FAILOVER -------------------------------------------------

describe('CLUSTER FAILOVER under load', () => {
  it.each(['master', 'preferReplica'] as const)('readFrom %s: only typed errors, traffic continues, every acknowledged write is on the new master', async (readFrom) => {
    const client = newCluster(cluster.seeds, { readFrom });
    const master = await cluster.masterOf(slotOf('fo'));
    const counters = [...(await keysOn(master.addr, `fo-${readFrom}`, 10)), ...(await keysOff(master.addr, `fo-${readFrom}-other`, 4))];
    const onShard = new Set(counters.slice(0, 10));
    const load = new Load({ doSource: client, counters, setKey: (i) => `{fo}:${readFrom}:set${i}` });
    let afterwards = 0;
    let done = Number.POSITIVE_INFINITY;
    load.watch((op) => {
      if (op.error === null && op.start > done && op.cmd !== 'GET' && (onShard.has(op.key) || op.cmd === 'SET')) afterwards++;
    });
    try {
      await load.served();
      const started = performance.now();
      const promoted = await cluster.failover(master);
      done = performance.now();
      // Traffic continues on the shard: wait for it (the count is checked below).
      await eventually(() => afterwards > 20, 5_000);
      await load.stop();
      const errors = load.errors.map((op) => op.error);
      figures[`2 failover, readFrom ${readFrom}`] = { callers: load.callers, ok: load.ok, acked_incr: load.ackedIncrs, errors: countKinds(errors), samples: samples(load.errors), failover_ms: Math.round(done - started), writes_on_shard_after: afterwards, max_do_ms: Math.round(load.maxDoMs), max_conn_ms: Math.round(load.maxConnMs), redirects: client.stats().redirects };
      expect(errors.filter((err) => !typed(err)).map(String)).toEqual([]);
      expect(afterwards).toBeGreaterThan(20);
      expect(await cluster.masterOf(slotOf('fo'))).toBe(promoted);
      expect(await load.lostWrites()).toEqual([]);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 20_000);
});

// ---- 7. sharded subscriber -----------------------------------------------

/** A PubSubConn's notifications as they arrive, with their arrival time. */
function collect(sub: PubSubConn): { got: { at: number; note: PubSubNotification }[]; done: Promise<unknown> } {
  const got: { at: number; note: PubSubNotification }[] = [];
  const done = (async () => {
    for (;;) {
      const note = await sub.receive();
      got.push({ at: performance.now(), note });
    }
  })().catch((err: unknown) => err);
  return { got, done };
}

/** Publishes `seq` numbers on `channel` every 20 ms through `client.do`; `sentAt[seq]` is when each was sent. */
function publisher(client: Cluster, channel: string): { sentAt: number[]; errors: unknown[]; stop: () => Promise<void> } {
  const sentAt: number[] = [];
  const errors: unknown[] = [];
  let stopping = false;
  const running = (async () => {
    for (let seq = 0; !stopping; seq++) {
      sentAt[seq] = performance.now();
      await client.do('SPUBLISH', channel, String(seq)).catch((err: unknown) => errors.push(err));
      await sleep(20);
    }
  })();
  return {
    sentAt,
    errors,
    stop: async () => {
      stopping = true;
      await running;
    },
  };
}

/**
 * Subscribes to shard channel `chan` on `client.get()`, publishes under
 * load, runs `fault` on the channel's master, and measures how long after
 * `fault` resolved a message published after it arrives. Then checks the
 * same PubSubConn still confirms a new subscription.
 */
async function subscriberAcross(name: string, fault: (owner: TestClusterNode) => Promise<void>): Promise<void> {
  const client = newCluster(cluster.seeds, { connectTimeoutMs: 500, readTimeoutMs: 2_000 });
  const owner = await cluster.masterOf(slotOf('chan'));
  const counters = [...(await keysOn(owner.addr, 'sub', 6)), ...(await keysOff(owner.addr, 'sub-other', 6))];
  const load = new Load({ doSource: client, counters, setKey: (i) => `{chan}:set${i}` });
  const sub = new PubSubConn(await client.get());
  // Subscribed before the first receive: a receive with nothing subscribed binds the connection to a random master.
  await sub.ssubscribe('chan');
  const { got, done } = collect(sub);
  const pub = publisher(client, 'chan');
  try {
    const messageAfter = (at: number): { at: number; seq: number } | undefined => {
      for (const { at: arrived, note } of got) {
        if (note.kind !== 'message') continue;
        const seq = Number(text(note.data));
        if ((pub.sentAt[seq] ?? 0) > at) return { at: arrived, seq };
      }
      return undefined;
    };
    expect(await eventually(() => messageAfter(0) !== undefined, 3_000)).toBe(true);
    expect(got[0]?.note).toMatchObject({ kind: 'ssubscribe', channel: 'chan', count: 1 });
    const started = performance.now();
    await fault(owner);
    const ended = performance.now();
    const back = await eventually(() => messageAfter(ended) !== undefined, 5_000);
    const first = messageAfter(ended);
    const received = got.filter((g) => g.note.kind === 'message').length;
    figures[`7 subscriber across ${name}`] = {
      fault_ms: Math.round(ended - started),
      message_after_fault_ms: first ? Math.round(first.at - ended) : 'none within 5 s',
      since_fault_start_ms: first ? Math.round(first.at - started) : null,
      published: pub.sentAt.length,
      received_by_then: received,
      publish_errors: countKinds(pub.errors),
      load_errors: countKinds(load.errors.map((op) => op.error)),
    };
    expect(back, `no message published after the ${name} arrived within 5 s`).toBe(true);
    expect((first?.at ?? Infinity) - ended).toBeLessThan(3_000);
    expect(await cluster.masterOf(slotOf('chan'))).not.toBe(owner);
    // The same connection still works as a subscriber: a new shard channel of the slot is confirmed, and served.
    const confirmed = got.length;
    await sub.ssubscribe('{chan}2');
    const confirmation = await eventually(() => got.slice(confirmed).some((g) => g.note.kind === 'ssubscribe' && g.note.channel === '{chan}2'), 2_000);
    const since = countKinds(got.slice(confirmed).map((g) => Object.assign(new Error(), { name: g.note.kind, code: 'channel' in g.note ? g.note.channel : '' })));
    expect(confirmation, `the ssubscribe confirmation of {chan}2 did not arrive within 2 s (notifications since: ${JSON.stringify(since)})`).toBe(true);
    expect(got.slice(confirmed).find((g) => g.note.kind === 'ssubscribe')?.note).toMatchObject({ channel: '{chan}2', count: 2 });
    expect(await client.do('SPUBLISH', '{chan}2', 'hi')).toBe(1);
    expect(await eventually(() => got.some((g) => g.note.kind === 'message' && g.note.channel === '{chan}2'), 2_000)).toBe(true);
    await load.stop();
    for (const err of [...pub.errors, ...load.errors.map((op) => op.error)]) expect(typed(err), String(err)).toBe(true);
  } finally {
    await pub.stop();
    await load.stop();
    await sub.close();
    const ended = await done;
    expect(ended).toBeInstanceOf(ConnClosedError);
    await client.close();
  }
}

describe('a sharded subscriber', () => {
  it('a receive waiting before the first ssubscribe gets its confirmation (the connection waits for its node)', async () => {
    const client = newCluster(cluster.seeds);
    const ownerOf = await slotOwners();
    // Two shard channels per master: a connection bound to a random master fails for some of them.
    const channels: string[] = [];
    for (const master of cluster.masters().filter((m) => m.alive)) {
      for (let n = 0, found = 0; found < 2; n++) {
        if (ownerOf(slotOf(`early:${n}`)) !== master.addr) continue;
        channels.push(`early:${n}`);
        found++;
      }
    }
    const load = new Load({ doSource: client, counters: Array.from({ length: 8 }, (_, i) => `early:n${i}`), setKey: (i) => `early:set${i}` });
    const subs = await Promise.all(channels.map(async () => new PubSubConn(await client.get())));
    try {
      const results = await Promise.all(
        subs.map(async (sub, i) => {
          const first = settle(sub.receive());
          // No event tells that the receive waits: a moment for it to, before the ssubscribe.
          await sleep(10);
          const subscribed = await settle(sub.ssubscribe(channels[i] as string));
          if (!subscribed.ok) return `${channels[i]}: ssubscribe rejected: ${String(subscribed.error)}`;
          const confirmation = await Promise.race([first, sleep(2_000).then(() => null)]);
          if (confirmation === null) return `${channels[i]}: no confirmation within 2 s`;
          return confirmation.ok ? confirmation.value : `${channels[i]}: receive rejected: ${String(confirmation.error)}`;
        }),
      );
      expect(results).toEqual(channels.map((channel) => ({ kind: 'ssubscribe', channel, count: 1 })));
      await load.stop();
      expect(load.errors.map((op) => String(op.error))).toEqual([]);
    } finally {
      await load.stop();
      await Promise.all(subs.map((sub) => sub.close()));
      await client.close();
    }
  }, 10_000);

  it('follows its channel across a CLUSTER FAILOVER of the channel’s master', async () => {
    await subscriberAcross('failover', async (owner) => {
      await cluster.failover(owner);
    });
  }, 20_000);

  it('follows its channel across a kill -9 of the channel’s master (its replica taking over)', async () => {
    await subscriberAcross('kill -9', async (owner) => {
      await cluster.killNode(owner);
      await sleep(300); // the scenario: the replica takes over 300 ms after the kill
      await cluster.failover(owner);
    });
  }, 20_000);
});

// ---- 3. kill -9 of a master ------------------------------------------------

/**
 * Kills a master (one with a live replica) under load, has `promote` make
 * its replica master (resolving with when ROLE first said so), and checks:
 * typed errors only, no call past its deadline, writes to the dead master's
 * slots back within 2 s of the promotion — through `cluster.do` and through
 * connections, each on a client of its own so each path must find the new
 * master by itself.
 */
async function killMasterUnderLoad(name: string, promote: (victim: TestClusterNode, replica: TestClusterNode) => Promise<[promotedAt: number, how: string]>): Promise<void> {
  const options = { connectTimeoutMs: 300, readTimeoutMs: 500, refreshIntervalMs: 15_000 };
  const doClient = newCluster(cluster.seeds, options);
  const connClient = newCluster(cluster.seeds, options);
  await cluster.refreshRoles();
  const victim = cluster.masters().find((m) => m.alive && cluster.nodes.some((n) => n.alive && n.role === 'replica' && n.masterId === m.id));
  if (!victim) throw new Error('no master with a live replica');
  const replica = replicaOf(victim);
  const onVictim = await keysOn(victim.addr, `kill-${name}`, 12);
  const elsewhere = await keysOff(victim.addr, `kill-${name}-other`, 6);
  const victimKeys = new Set(onVictim);
  const callTimeoutMs = 400;
  const load = new Load({ doSource: doClient, connSource: connClient, doCallers: 16, connCallers: 8, callTimeoutMs, counters: [...onVictim, ...elsewhere], setKey: (i) => `kill-${name}-set:${i}` });
  let killedAt = Number.POSITIVE_INFINITY;
  const firstWrite: Record<Op['via'], number> = { do: Number.POSITIVE_INFINITY, conn: Number.POSITIVE_INFINITY };
  load.watch((op) => {
    if (op.error === null && op.cmd === 'INCR' && victimKeys.has(op.key) && op.start > killedAt) firstWrite[op.via] = Math.min(firstWrite[op.via], op.end);
  });
  const ms = (value: number): number | string => (Number.isFinite(value) ? Math.round(value) : 'none');
  try {
    await load.served(51);
    expect(load.ok).toBeGreaterThan(50);
    killedAt = performance.now();
    await cluster.killNode(victim);
    const [promoted, how] = await promote(victim, replica);
    await eventually(() => firstWrite.do < Infinity && firstWrite.conn < Infinity, 4_000);
    await load.served(); // more traffic after the recovery
    await load.stop();
    await cluster.waitForState();
    await cluster.refreshRoles();
    const errors = load.errors.map((op) => op.error);
    const resumeDo = firstWrite.do - promoted;
    const resumeConn = firstWrite.conn - promoted;
    figures[`3 kill -9, ${name}`] = {
      promotion: how,
      promoted_after_kill_ms: Math.round(promoted - killedAt),
      resumed_do_after_promotion_ms: ms(resumeDo),
      resumed_conn_after_promotion_ms: ms(resumeConn),
      outage_do_ms: ms(firstWrite.do - killedAt),
      outage_conn_ms: ms(firstWrite.conn - killedAt),
      errors: countKinds(errors),
      samples: samples(load.errors),
      errors_do: load.errors.filter((op) => op.via === 'do').length,
      errors_conn: load.errors.filter((op) => op.via === 'conn').length,
      max_do_ms: Math.round(load.maxDoMs),
      max_conn_ms: Math.round(load.maxConnMs),
      ok: load.ok,
      lost_on_victim_shard: (await load.lostWrites((key) => victimKeys.has(key))).length,
      refreshes_do_client: doClient.stats().refreshes,
      refreshes_conn_client: connClient.stats().refreshes,
    };
    expect(errors.filter((err) => !typed(err)).map(String)).toEqual([]);
    // No call outlives its deadline: connection calls their 400 ms (plus a dial of at most 300 ms and slack),
    // cluster.do calls the read timeout plus the CLUSTERDOWN retries (16, about 2.5 s of backoff).
    expect(load.maxConnMs).toBeLessThan(callTimeoutMs + 300 + 300);
    expect(load.maxDoMs).toBeLessThan(4_000);
    // The one hard number of the issue: back within 2 s of the promotion (+100 ms for the 10 ms ROLE polling on a loaded box).
    expect(resumeDo, 'cluster.do writes to the dead master\'s slots resumed (ms after the promotion)').toBeLessThan(2_100);
    expect(resumeConn, 'connection writes to the dead master\'s slots resumed (ms after the promotion)').toBeLessThan(2_100);
    // Writes to the other shards are all there; the dead master's unreplicated ones may be gone (asynchronous replication).
    expect(await load.lostWrites((key) => !victimKeys.has(key) && !key.startsWith(`kill-${name}-set:`))).toEqual([]);
  } finally {
    await load.stop();
    await doClient.close();
    await connClient.close();
  }
}

describe('kill -9 of a master under load', () => {
  it('the cluster elects the replica: typed errors only, no call past its deadline, traffic back within 2 s of the promotion', async () => {
    await killMasterUnderLoad('election', async (victim, replica) => {
      try {
        // Node timeout 2 s, failure reports, then the election.
        return [await promotedAt(replica.addr, 8_000), 'election'];
      } catch {
        await cluster.failover(victim);
        return [await promotedAt(replica.addr, 2_000), 'TAKEOVER (no election within 8 s)'];
      }
    });
  }, 25_000);

  it('the replica takes over at once (no CLUSTERDOWN phase): connections find the new master too, within 2 s', async () => {
    await killMasterUnderLoad('takeover', async (victim, replica) => {
      await sleep(300); // the scenario: TAKEOVER 300 ms after the kill
      const polled = promotedAt(replica.addr, 5_000);
      await cluster.failover(victim);
      return [await polled, 'CLUSTER FAILOVER TAKEOVER 300 ms after the kill'];
    });
  }, 20_000);
});

// ---- 4. restarted nodes ------------------------------------------------------

describe('restarted nodes', () => {
  it('masters killed and failed over come back as replicas: the client keeps working and lists them again', async () => {
    const client = newCluster(cluster.seeds, { readFrom: 'replica', refreshIntervalMs: 300, connectTimeoutMs: 300, readTimeoutMs: 1_000 });
    const dead = cluster.nodes.filter((node) => !node.alive);
    expect(dead.length).toBeGreaterThanOrEqual(1);
    const counters = Array.from({ length: 16 }, (_, i) => `restart:n${i}`);
    const load = new Load({ doSource: client, counters, setKey: (i) => `restart:set${i}` });
    try {
      await load.served();
      expect(client.stats().nodes.filter((n) => dead.some((node) => node.addr === n.addr)).map((n) => n.addr)).toEqual([]);
      const started = performance.now();
      for (const node of dead) await cluster.restartNode(node);
      const restartMs = performance.now() - started;
      const listed = (): boolean => dead.every((node) => client.stats().nodes.some((n) => n.addr === node.addr && n.role === 'replica' && n.stats.sharedCommands > 0));
      const shown = await eventually(listed, 3_000);
      const shownMs = performance.now() - started - restartMs;
      await load.served(); // more traffic with the nodes back
      await load.stop();
      const errors = load.errors.map((op) => op.error);
      figures['4 masters restarted'] = { nodes: dead.map((node) => node.addr), restart_ms: Math.round(restartMs), listed_after_restart_ms: Math.round(shownMs), errors: countKinds(errors), ok: load.ok };
      expect(shown, JSON.stringify(client.stats().nodes.map((n) => [n.addr, n.role, n.stats.sharedCommands]))).toBe(true);
      for (const node of dead) expect(node.role).toBe('replica');
      expect(load.errors.filter((op) => op.cmd !== 'GET').map((op) => String(op.error))).toEqual([]);
      expect(errors.filter((err) => !typed(err)).map(String)).toEqual([]);
      expect(await load.lostWrites()).toEqual([]);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 25_000);

  it('a replica killed and restarted (readFrom replica): its reads fail with typed errors meanwhile, writes do not, the client lists it again', async () => {
    const client = newCluster(cluster.seeds, { readFrom: 'replica', refreshIntervalMs: 300, connectTimeoutMs: 300, readTimeoutMs: 1_000 });
    await cluster.refreshRoles();
    const replica = cluster.replicas().find((node) => node.alive) as TestClusterNode;
    const master = nodeAt(cluster.nodes.find((n) => n.id === replica.masterId)?.addr as string);
    const counters = [...(await keysOn(master.addr, 'replica', 10)), ...(await keysOff(master.addr, 'replica-other', 6))];
    const load = new Load({ doSource: client, counters, setKey: (i) => `replica-set:${i}` });
    try {
      const served = (): number => client.stats().nodes.find((n) => n.addr === replica.addr)?.stats.sharedCommands ?? -1;
      await load.served();
      await eventually(() => served() > 0, 5_000);
      expect(served()).toBeGreaterThan(0);
      const killed = performance.now();
      await cluster.killNode(replica);
      // Once the cluster flags it failed, CLUSTER SLOTS leaves it out and so does the client.
      const dropped = await eventually(() => !client.stats().nodes.some((n) => n.addr === replica.addr), 8_000);
      const droppedMs = performance.now() - killed;
      expect(dropped).toBe(true);
      const restarted = performance.now();
      await cluster.restartNode(replica);
      const restartMs = performance.now() - restarted;
      const shown = await eventually(() => served() > 0, 3_000);
      const shownMs = performance.now() - restarted - restartMs;
      await load.served(); // more traffic with the replica back
      await load.stop();
      const errors = load.errors.map((op) => op.error);
      figures['4 replica restarted'] = { dropped_after_kill_ms: Math.round(droppedMs), restart_ms: Math.round(restartMs), served_after_restart_ms: Math.round(shownMs), errors: countKinds(errors), read_errors: load.errors.filter((op) => op.cmd === 'GET').length, ok: load.ok };
      expect(shown).toBe(true);
      expect(client.stats().nodes.find((n) => n.addr === replica.addr)?.role).toBe('replica');
      expect(load.errors.filter((op) => op.cmd !== 'GET').map((op) => String(op.error))).toEqual([]);
      expect(errors.filter((err) => !typed(err)).map(String)).toEqual([]);
      expect(await load.lostWrites()).toEqual([]);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 25_000);
});

// ---- 6. announced hostnames (last: it changes every node's settings) -------

describe('nodes announcing hostnames', () => {
  const hostFor = (node: TestClusterNode): string => `node-${node.port}.invalid`;

  beforeAll(async () => {
    await cluster.announceHostname(hostFor);
  }, 20_000);

  it('CLUSTER SLOTS names the hosts, with the ports kept', async () => {
    const slots = (await on(cluster.seeds[0] as string, 'CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string, ...unknown[]][]][];
    for (const [, , ...endpoints] of slots) for (const [host, port] of endpoints) expect(host).toBe(`node-${port}.invalid`);
  }, 5_000);

  it('reached through addressMap under load, MOVED included', async () => {
    const client = newCluster(cluster.seeds.slice(0, 1), { addressMap: (addr) => addr.replace(/^node-(\d+)\.invalid/, '127.0.0.1') });
    const counters = Array.from({ length: 12 }, (_, i) => `{named}:n${i}`).concat(Array.from({ length: 6 }, (_, i) => `named:n${i}`));
    const load = new Load({ doSource: client, counters, setKey: (i) => `{named}:set${i}` });
    try {
      await load.served();
      const slot = slotOf('named');
      const from = await cluster.masterOf(slot);
      await cluster.moveSlot(slot, otherMaster(from));
      await load.served(); // traffic after the move (MOVED followed)
      await load.stop();
      figures['6 hostnames via addressMap'] = { ok: load.ok, redirects: client.stats().redirects, nodes: client.stats().nodes.map((n) => n.addr).sort() };
      expect(load.errors.map((op) => `${op.via} ${op.cmd} ${op.key}: ${String(op.error)}`)).toEqual([]);
      expect(client.stats().redirects.moved + client.stats().redirects.ask).toBeGreaterThan(0);
      expect(client.stats().nodes.map((n) => n.addr).sort()).toEqual(live().map((n) => n.addr).sort());
      expect(await load.lostWrites()).toEqual([]);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 15_000);

  it('without addressMap: every caller gets a typed error naming the unresolvable host, promptly', async () => {
    const client = newCluster(cluster.seeds.slice(0, 1), { connectTimeoutMs: 500 });
    const counters = Array.from({ length: 12 }, (_, i) => `unnamed:n${i}`);
    const load = new Load({ doSource: client, counters, setKey: (i) => `unnamed:set${i}`, callTimeoutMs: 1_000 });
    try {
      // Every caller answered (with an error) at least once; checked below.
      await eventually(() => load.errors.length >= load.callers || load.ok > 0, 5_000);
      await load.stop();
      const calls = load.ok + load.errors.length;
      figures['6 hostnames without addressMap'] = { calls, errors: countKinds(load.errors.map((op) => op.error)), max_do_ms: Math.round(load.maxDoMs), max_conn_ms: Math.round(load.maxConnMs) };
      expect(load.ok).toBe(0);
      expect(load.errors.length).toBeGreaterThanOrEqual(load.callers);
      for (const { error } of load.errors) {
        // The name lookup fails (ConnClosedError), or under load does not end within connectTimeoutMs (TimeoutError).
        expect(error instanceof ConnClosedError || error instanceof TimeoutError, String(error)).toBe(true);
        expect(String(error)).toMatch(/node-\d+\.invalid/);
      }
      expect(load.maxDoMs).toBeLessThan(1_000);
      expect(load.maxConnMs).toBeLessThan(1_000);
    } finally {
      await load.stop();
      await client.close();
    }
  }, 10_000);
});

/**
 * ClusterConn: one `Conn` across a Redis Cluster, with redigo semantics.
 *
 * Each command goes to the node of its keys' slot through a lease on that
 * node's pool (free for stateless commands, exclusive once one needs it), so
 * a pipeline may span nodes; replies come back in the order sent. Commands
 * that span slots are split (MGET, DEL, ...) or run on every master (DBSIZE,
 * ...) like `Cluster.do`. WATCH, MULTI and subscriptions bind the connection
 * to one slot's node until the state ends: MULTI waits for its first keyed
 * command to know the node (the commands before it answer as the server
 * would, `OK` / `QUEUED`, and are sent there when it is known); a key of
 * another slot while bound rejects with CrossSlotError before anything is
 * sent. While subscribed, everything passes straight to the bound node, so
 * `PubSubConn` works on it. Redirects of stateless commands are followed.
 */
import { ConnState, routeOf, stateChangeOf, type Route } from '../commands.js';
import type { Conn } from '../conn.js';
import { checkTimeoutMs } from '../deadline.js';
import { ConnClosedError, CrossSlotError, RedisError, TimeoutError } from '../errors.js';
import { Fifo } from '../fifo.js';
import type { GetOptions, Pool } from '../pool.js';
import type { Reply } from '../resp/decode.js';
import { checkArgs, checkCommand, type Arg } from '../resp/encode.js';
import { aggregate, keyArg, splitBySlot, type SlotGroup } from './fanout.js';
import { slotOf } from './slot.js';
import { Subscriptions } from './subscriptions.js';
import { backoffMs } from './redirect.js';

/** What a ClusterConn needs from its cluster. */
export interface ClusterConnHost {
  /** The slot map is known. */
  readonly isMapped: boolean;
  /** Resolves once the slot map is known; rejects when it cannot be read. */
  whenMapped(): Promise<void>;
  /** The pool serving `slot` (-1: any master). Throws ClusterError when none does. */
  poolFor(slot: number, readOnly: boolean): Pool;
  /** Every master's pool (`all_nodes`: every node's). */
  fanOutPools(allNodes: boolean): Pool[];
  /** Reads the slot map again now (single-flight); never rejects. */
  refreshNow(): Promise<void>;
  /** Follows the redirect `err` asks for (or rethrows it) until the command is answered. */
  follow(err: unknown, fromPool: Pool, slot: number, cmd: string, args: Arg[], readOnly: boolean, deadline: number): Promise<Reply>;
}

/** One node's share of a command: the lease it went to and what it sent there. */
interface Part {
  readonly lease: Conn;
  readonly pool: Pool;
  readonly slot: number;
  readonly args: Arg[];
}

/** A command whose reply is owed, in send order. */
interface Pending {
  readonly cmd: string;
  readonly parts: Part[];
  /** The route, when the parts' replies are aggregated or redirects are followed. */
  readonly route: Route | null;
  readonly groups: SlotGroup[] | null;
  /** The answer of a command held back until MULTI's node is known (`OK`, `QUEUED`). */
  readonly held: Reply | undefined;
  /** The real reply is read and dropped (a held command, sent once the node was known). */
  readonly hidden: boolean;
  /** Sent inside a transaction or watch: never redirected. */
  readonly bound: boolean;
}

/** The binding of WATCH/MULTI/subscriptions: the node and (once a key said) the slot. */
interface Binding {
  readonly pool: Pool;
  slot: number;
}

const NO_DEADLINE = Number.POSITIVE_INFINITY;
/** Re-subscription attempts in a row before a subscriber's read fails (with backoff: about 10 s). */
const RESUBSCRIBE_TRIES = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
const STATEFUL = ConnState.Watch | ConnState.Multi | ConnState.Subscribe | ConnState.ShardSubscribe;
const SUBSCRIBED = ConnState.Subscribe | ConnState.ShardSubscribe;

function closedError(): ConnClosedError {
  return new ConnClosedError('redisconn: connection closed');
}

function held(cmd: string, value: Reply): Pending {
  return { cmd, parts: [], route: null, groups: null, held: value, hidden: false, bound: true };
}

/** A connection across a cluster. Not for concurrent use (like any Conn). */
export class ClusterConn implements Conn {
  private readonly leases = new Map<Pool, Conn>();
  private readonly pending = new Fifo<Pending>();
  /** Leases with sends not flushed yet. */
  private readonly unflushed = new Set<Conn>();
  /** Commands held while MULTI waits for its node. */
  private heldBack: { cmd: string; args: Arg[] }[] = [];
  /** Commands sent before the slot map was known, routed at the next flush. */
  private unrouted: { cmd: string; args: Arg[] }[] = [];
  private binding: Binding | null = null;
  private state = 0;
  private readonly subscriptions = new Subscriptions();
  private closing: Promise<void> | null = null;
  private fatal: Error | null = null;
  /** Receives waiting, with nothing owed and no node bound, for the next send. */
  private readonly idleReceives = new Set<() => void>();

  constructor(
    private readonly host: ClusterConnHost,
    private readonly getOptions?: GetOptions,
  ) {}

  get protocol(): 2 | 3 {
    for (const lease of this.leases.values()) return lease.protocol;
    return 2;
  }

  get readTimeoutMs(): number {
    for (const lease of this.leases.values()) return lease.readTimeoutMs;
    return 0;
  }

  inFlight(): number {
    let count = 0;
    for (const lease of this.leases.values()) count += lease.inFlight();
    return Math.max(count, this.pending.length);
  }

  err(): Error | null {
    if (this.closing !== null) return this.fatal ?? closedError();
    return this.fatal;
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.call(cmd, args, NO_DEADLINE, null);
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    try {
      checkTimeoutMs('timeoutMs', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.call(cmd, args, performance.now() + timeoutMs, null);
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.call(cmd, args, NO_DEADLINE, signal);
  }

  /**
   * Buffers a command for the node of its keys. Throws TypeError on a bad
   * command or argument, CrossSlotError when its keys span slots (or leave
   * the bound slot), ConnClosedError after close.
   */
  send(cmd: string, ...args: Arg[]): void {
    if (this.closing !== null) throw closedError();
    if (this.fatal !== null) throw this.fatal;
    checkCommand(cmd);
    checkArgs(args);
    // Receives waiting for something to read look again once this send is done.
    for (const wake of [...this.idleReceives]) wake();
    if (!this.host.isMapped || this.unrouted.length > 0) {
      this.unrouted.push({ cmd, args });
      return;
    }
    const change = stateChangeOf(cmd, args);
    const nextState = change === undefined ? this.state : (this.state | change.set) & ~change.clear;
    if (this.state & SUBSCRIBED || (change !== undefined && change.set & SUBSCRIBED)) {
      this.sendSubscribed(cmd, args);
    } else {
      this.sendRouted(cmd, args, change !== undefined && (change.set & ConnState.Multi) !== 0);
    }
    this.state = nextState;
    if ((this.state & STATEFUL) === 0) {
      this.binding = null;
      this.heldBack = [];
    }
  }

  async flush(): Promise<void> {
    if (this.closing !== null) throw closedError();
    if (this.unrouted.length > 0) await this.route();
    const leases = [...this.unflushed];
    this.unflushed.clear();
    await Promise.all(leases.map((lease) => lease.flush())).catch((err: unknown) => {
      if (!(err instanceof RedisError)) void this.host.refreshNow();
      throw err;
    });
  }

  receive(): Promise<Reply> {
    return this.next(NO_DEADLINE, null);
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    try {
      checkTimeoutMs('timeoutMs', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.next(performance.now() + timeoutMs, null);
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.next(NO_DEADLINE, signal);
  }

  /** Gives back every lease (each waits for the replies still owed on it). Safe twice; never rejects. */
  close(): Promise<void> {
    if (this.closing === null) {
      for (const wake of [...this.idleReceives]) wake();
      this.pending.drain();
      this.heldBack = [];
      this.unrouted = [];
      this.closing = Promise.all([...this.leases.values()].map((lease) => lease.close())).then(() => undefined);
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- sending --------------------------------------------------------

  /** Routes the commands sent before the slot map was known, in order. */
  private async route(): Promise<void> {
    await this.host.whenMapped();
    const sends = this.unrouted;
    this.unrouted = [];
    for (const { cmd, args } of sends) this.send(cmd, ...args);
  }

  private lease(pool: Pool): Conn {
    let lease = this.leases.get(pool);
    if (lease === undefined) {
      lease = pool.lease(this.getOptions);
      this.leases.set(pool, lease);
    }
    return lease;
  }

  private sendOn(pool: Pool, cmd: string, args: Arg[]): Conn {
    const lease = this.lease(pool);
    lease.send(cmd, ...args);
    this.unflushed.add(lease);
    return lease;
  }

  /** Subscribed (or subscribing): everything goes to the bound node, replies read by `receive` as pushes. */
  private sendSubscribed(cmd: string, args: Arg[]): void {
    const route = routeOf(cmd, args);
    const slot = this.slotOfKeys(cmd, args, route);
    const binding = this.bind(slot);
    this.sendOn(binding.pool, cmd, args);
    this.subscriptions.note(cmd, args);
  }

  private sendRouted(cmd: string, args: Arg[], startsMulti: boolean): void {
    const route = routeOf(cmd, args);
    if (this.binding === null && (this.state & ConnState.Multi || startsMulti)) {
      this.holdOrBind(cmd, args, route, startsMulti);
      return;
    }
    if (this.binding !== null || this.state & ConnState.Watch || stateChangeOf(cmd, args)?.set) {
      const slot = this.slotOfKeys(cmd, args, route);
      const binding = this.bind(slot);
      this.pending.push({ cmd, parts: [this.part(binding.pool, slot, cmd, args)], route: null, groups: null, held: undefined, hidden: false, bound: true });
      return;
    }
    const policy = route.requestPolicy;
    if (policy === 'all_shards' || policy === 'all_nodes') {
      const parts = this.host.fanOutPools(policy === 'all_nodes').map((pool) => this.part(pool, -1, cmd, args));
      this.pending.push({ cmd, parts, route, groups: null, held: undefined, hidden: false, bound: false });
      return;
    }
    if (policy === 'multi_shard' && !this.sameSlot(args, route.keys)) {
      const groups = splitBySlot(args, route.keys);
      const parts = groups.map((group) => this.part(this.host.poolFor(group.slot, route.readOnly), group.slot, cmd, group.args));
      this.pending.push({ cmd, parts, route, groups, held: undefined, hidden: false, bound: false });
      return;
    }
    const slot = this.slotOfKeys(cmd, args, route);
    this.pending.push({ cmd, parts: [this.part(this.host.poolFor(slot, route.readOnly), slot, cmd, args)], route, groups: null, held: undefined, hidden: false, bound: false });
  }

  private part(pool: Pool, slot: number, cmd: string, args: Arg[]): Part {
    return { lease: this.sendOn(pool, cmd, args), pool, slot, args };
  }

  /** In MULTI before its node is known: hold keyless commands; the first keyed one binds and releases them. */
  private holdOrBind(cmd: string, args: Arg[], route: Route, startsMulti: boolean): void {
    const upper = cmd.toUpperCase();
    if (route.keys.length === 0 && upper !== 'EXEC') {
      if (upper === 'DISCARD') {
        this.heldBack = [];
        this.pending.push(held(cmd, 'OK'));
        return;
      }
      this.heldBack.push({ cmd, args });
      this.pending.push(held(cmd, startsMulti ? 'OK' : 'QUEUED'));
      return;
    }
    const slot = route.keys.length === 0 ? -1 : this.slotOfKeys(cmd, args, route);
    const binding = this.bind(slot);
    for (const earlier of this.heldBack) {
      const lease = this.sendOn(binding.pool, earlier.cmd, earlier.args);
      this.pending.push({ cmd: earlier.cmd, parts: [{ lease, pool: binding.pool, slot, args: earlier.args }], route: null, groups: null, held: undefined, hidden: true, bound: true });
    }
    this.heldBack = [];
    this.pending.push({ cmd, parts: [this.part(binding.pool, slot, cmd, args)], route: null, groups: null, held: undefined, hidden: false, bound: true });
  }

  /** The slot of the command's keys (-1 when keyless); CrossSlotError when they span slots or leave the bound one. */
  private slotOfKeys(cmd: string, args: readonly Arg[], route: Route): number {
    const keys = route.keys;
    if (keys.length === 0) return this.binding?.slot ?? -1;
    const slot = slotOf(keyArg(args[keys[0] as number]));
    if (!this.sameSlot(args, keys)) throw new CrossSlotError(`redisconn: the keys of ${cmd.toUpperCase()} hash to different slots; a cluster runs it only when they share one (use {hashtags})`);
    const bound = this.binding?.slot ?? -1;
    if (bound !== -1 && bound !== slot) {
      throw new CrossSlotError(`redisconn: ${cmd.toUpperCase()} names a key of slot ${slot}, but this connection is bound to slot ${bound} by WATCH, MULTI or a subscription`);
    }
    return slot;
  }

  private sameSlot(args: readonly Arg[], keys: readonly number[]): boolean {
    if (keys.length < 2) return true;
    const slot = slotOf(keyArg(args[keys[0] as number]));
    for (let i = 1; i < keys.length; i++) if (slotOf(keyArg(args[keys[i] as number])) !== slot) return false;
    return true;
  }

  /** Binds to the node of `slot` (-1: the bound node, else any master); a bound node without a slot takes one if it serves it. */
  private bind(slot: number): Binding {
    const current = this.binding;
    if (current === null) {
      this.binding = { pool: this.host.poolFor(slot, false), slot };
      return this.binding;
    }
    if (slot !== -1 && current.slot === -1) {
      if (this.host.poolFor(slot, false) !== current.pool) throw new CrossSlotError(`redisconn: slot ${slot} is served by another node than the one this connection is bound to`);
      current.slot = slot;
    }
    return current;
  }

  // ---- receiving ------------------------------------------------------

  private async call(cmd: string, args: Arg[], deadline: number, signal: AbortSignal | null): Promise<Reply> {
    if (!this.host.isMapped) await this.host.whenMapped();
    if (this.unrouted.length > 0) await this.route();
    if (cmd === '') return this.drainAll(deadline, signal);
    this.send(cmd, ...args);
    const subscribed = (this.state & SUBSCRIBED) !== 0;
    await this.flush();
    let last: Reply = null;
    let first: unknown = null;
    // Subscribed: the command's confirmation is a push for receive(); the
    // replies owed before it are read here.
    while (this.pending.length > 0) {
      try {
        last = await this.next(deadline, signal);
      } catch (err) {
        if (!(err instanceof RedisError)) throw err;
        first ??= err;
      }
    }
    if (subscribed && this.pending.length === 0 && cmd !== '') last = await this.next(deadline, signal);
    if (first !== null) throw first;
    return last;
  }

  private async drainAll(deadline: number, signal: AbortSignal | null): Promise<Reply> {
    await this.flush();
    const replies: Reply[] = [];
    while (this.pending.length > 0) {
      try {
        replies.push(await this.next(deadline, signal));
      } catch (err) {
        if (!(err instanceof RedisError)) throw err;
        replies.push(err);
      }
    }
    return replies;
  }

  /** The next reply in send order (hidden replies read and dropped); with none owed, the bound node's next push. */
  private async next(deadline: number, signal: AbortSignal | null): Promise<Reply> {
    for (;;) {
      if (this.closing !== null) throw closedError();
      if (this.fatal !== null) throw this.fatal;
      if (this.unrouted.length > 0) await this.flush();
      const entry = this.pending.shift();
      if (entry === undefined) {
        if (this.state & SUBSCRIBED) return this.nextPush(deadline, signal);
        if (this.binding !== null) return this.readFrom(this.lease(this.binding.pool), deadline, signal);
        // Nothing owed and no node yet: wait for the next send (a subscription says which node) rather than bind to any.
        await this.nextSend(deadline, signal);
        continue;
      }
      if (entry.held !== undefined) return entry.held;
      if (entry.hidden) {
        await this.readFrom(entry.parts[0]?.lease as Conn, deadline, signal).catch((err: unknown) => this.keepIfReply(err));
        continue;
      }
      return this.answer(entry, deadline, signal);
    }
  }

  /**
   * The next push of the bound node. Subscriptions follow their node: when
   * it fails, or a shard channel's slot moves (an unasked `sunsubscribe`),
   * the map is read again and everything is subscribed again on the new
   * node, quietly (messages published in between are lost, as pub/sub
   * allows); the caller sees an error only when no node takes them within
   * about 10 s of tries.
   */
  private async nextPush(deadline: number, signal: AbortSignal | null): Promise<Reply> {
    let failures = 0;
    for (;;) {
      const lease = this.lease((this.binding ?? this.bind(-1)).pool);
      let reply: Reply;
      try {
        reply = await (signal !== null ? lease.receiveWithSignal(signal) : deadline === NO_DEADLINE ? lease.receive() : lease.receiveWithTimeout(Math.max(1, Math.floor(deadline - performance.now()))));
      } catch (err) {
        if (err instanceof RedisError) throw err;
        if (this.closing !== null || signal?.aborted || !this.subscriptions.any || ++failures > RESUBSCRIBE_TRIES) {
          this.fatal ??= err instanceof Error ? err : new ConnClosedError(String(err));
          throw err;
        }
        await sleep(backoffMs(failures + 3));
        await this.resubscribe();
        continue;
      }
      if (this.subscriptions.isEcho(reply)) continue;
      if (this.subscriptions.isShardLoss(reply)) {
        await this.resubscribe();
        continue;
      }
      return reply;
    }
  }

  /** Drops the bound node's lease and subscribes again on the node the (re-read) map names. */
  private async resubscribe(): Promise<void> {
    const old = this.binding;
    this.binding = null;
    if (old !== null) {
      const lease = this.leases.get(old.pool);
      this.leases.delete(old.pool);
      this.unflushed.delete(lease as Conn);
      void lease?.close();
    }
    await this.host.refreshNow();
    try {
      const binding = this.bind(this.subscriptions.shardSlot());
      for (const [cmd, args] of this.subscriptions.replay()) this.sendOn(binding.pool, cmd, args);
      await this.flush();
    } catch {
      // No node for it yet (or the write failed): the next read fails and tries again.
    }
  }

  /** Resolves at the next send or close; rejects with TimeoutError at `deadline`, with the reason when `signal` aborts (either breaks the connection, as any abandoned read does). */
  private nextSend(deadline: number, signal: AbortSignal | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: unknown): void => {
        this.idleReceives.delete(wake);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err === undefined) return resolve();
        this.fatal ??= err instanceof Error ? err : new ConnClosedError(String(err));
        reject(err);
      };
      const wake = (): void => done();
      const onAbort = (): void => done(signal?.reason);
      this.idleReceives.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (deadline !== NO_DEADLINE) timer = setTimeout(() => done(new TimeoutError('redisconn: nothing to receive within the deadline')), Math.max(1, deadline - performance.now()));
    });
  }

  /** A dropped reply's error reply is harmless; a fatal error breaks this connection. */
  private keepIfReply(err: unknown): null {
    if (err instanceof RedisError) return null;
    throw err;
  }

  private async answer(entry: Pending, deadline: number, signal: AbortSignal | null): Promise<Reply> {
    const replies: Reply[] = [];
    let first: unknown = null;
    for (const part of entry.parts) {
      try {
        replies.push(await this.partReply(entry, part, deadline, signal));
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== null) throw first;
    if (entry.route === null || entry.parts.length === 1) return replies[0] ?? null;
    return aggregate(entry.route.responsePolicy, replies, entry.groups, entry.route.keys.length);
  }

  private async partReply(entry: Pending, part: Part, deadline: number, signal: AbortSignal | null): Promise<Reply> {
    try {
      return await this.readFrom(part.lease, deadline, signal);
    } catch (err) {
      if (!(err instanceof RedisError) || entry.bound || entry.route === null) throw err;
      return this.host.follow(err, part.pool, part.slot, entry.cmd, part.args, entry.route.readOnly, deadline);
    }
  }

  private readFrom(lease: Conn, deadline: number, signal: AbortSignal | null): Promise<Reply> {
    const read = signal !== null ? lease.receiveWithSignal(signal) : deadline === NO_DEADLINE ? lease.receive() : lease.receiveWithTimeout(Math.max(1, Math.floor(deadline - performance.now())));
    return read.catch((err: unknown) => {
      if (!(err instanceof RedisError)) {
        this.fatal ??= err instanceof Error ? err : new ConnClosedError(String(err));
        // The node may be gone (failed over, removed): read the map again, as Cluster.do does.
        void this.host.refreshNow();
      }
      throw err;
    });
  }
}

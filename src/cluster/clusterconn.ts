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
import { setMaxListeners } from 'node:events';
import { checkTimeoutMs, withinDeadline, type DeadlineHooks } from '../deadline.js';
import { ConnClosedError, CrossSlotError, RedisError } from '../errors.js';
import { Fifo } from '../fifo.js';
import type { GetOptions, Pool } from '../pool.js';
import type { Reply } from '../resp/decode.js';
import { checkArgs, checkCommand, type Arg } from '../resp/encode.js';
import { aggregate, keyArg, noClusterWideNode, splitBySlot, type SlotGroup } from './fanout.js';
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
  /** Refused when routed late (sent before the map was known): its reply is this error. */
  readonly failed?: Error;
  /** The reply being read, started at the flush, in send order (so every lease is read in order). */
  result?: Promise<Reply>;
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

function ignore(): void {}

/** Keyless all_shards commands that answer the same on any node, so they may run on a bound node. */
const NODE_LOCAL: ReadonlySet<string> = new Set(['PING', 'INFO']);

function textOf(reply: Reply | undefined): string | null {
  if (typeof reply === 'string') return reply;
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : null;
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
  /** Entries owed but not yet being read (started at the next flush, in order). */
  private unstarted: Pending[] = [];
  /** Aborted when this connection breaks: cancels the reads in flight on exclusive connections. */
  private readonly breaker = new AbortController();
  /** Settles after the last call made settles: calls settle in the order they were made. */
  private tail: Promise<void> = Promise.resolve();
  /** Receives waiting, with nothing owed and no node bound, for the next send. */
  private readonly idleReceives = new Set<() => void>();

  constructor(
    private readonly host: ClusterConnHost,
    private readonly getOptions?: GetOptions,
  ) {
    setMaxListeners(0, this.breaker.signal);
  }

  get protocol(): 2 | 3 {
    for (const lease of this.leases.values()) return lease.protocol;
    return this.anyPool()?.protocolSeen ?? 2;
  }

  get readTimeoutMs(): number {
    for (const lease of this.leases.values()) return lease.readTimeoutMs;
    return this.anyPool()?.readTimeoutSeen ?? 0;
  }

  private anyPool(): Pool | undefined {
    return this.host.isMapped ? this.host.fanOutPools(false)[0] : undefined;
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
    // Receives waiting for something to read look again once this send is done (their wake-up runs after it).
    for (const wake of [...this.idleReceives]) wake();
    if (!this.host.isMapped || this.unrouted.length > 0) {
      // What needs no map is checked now, as it would be once mapped.
      const route = routeOf(cmd, args);
      if (route.requestPolicy === 'multi_shard') splitBySlot(args, route.keys);
      else if (!this.sameSlot(args, route.keys)) throw new CrossSlotError(`redisconn: the keys of ${cmd.toUpperCase()} hash to different slots; a cluster runs it only when they share one (use {hashtags})`);
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

  flush(): Promise<void> {
    if (this.closing !== null) return Promise.reject(closedError());
    if (this.fatal !== null) return Promise.reject(this.fatal);
    if (this.unrouted.length > 0) return this.route().then(() => this.flush());
    return this.flushLeases().catch((err: unknown) => {
      // Its commands may or may not run: the replies owed can no longer be matched.
      this.breakWith(err);
      throw err;
    });
  }

  /** Flushes the leases sent to and starts reading what they owe, in send order. */
  private flushLeases(): Promise<void> {
    const leases = [...this.unflushed];
    this.unflushed.clear();
    const flushed = Promise.all(leases.map((lease) => lease.flush()));
    this.startReads();
    return flushed.then(ignore, (err: unknown) => {
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
      this.unstarted = [];
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
    for (const { cmd, args } of sends) {
      try {
        this.send(cmd, ...args);
      } catch (err) {
        this.owe({ cmd, parts: [], route: null, groups: null, held: undefined, hidden: false, bound: true, failed: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  private owe(entry: Pending): void {
    this.pending.push(entry);
    this.unstarted.push(entry);
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
    const policy = route.requestPolicy;
    if (policy === 'special' && route.keys.length === 0) throw noClusterWideNode(cmd);
    const fansOut = (policy === 'all_shards' || policy === 'all_nodes') && route.keys.length === 0 && !NODE_LOCAL.has(cmd.toUpperCase());
    if (fansOut && this.state & ConnState.Multi) {
      throw new CrossSlotError(`redisconn: ${cmd.toUpperCase()} runs on every master, but inside MULTI this connection runs on one node`);
    }
    if (this.binding === null && (this.state & ConnState.Multi || startsMulti)) {
      this.holdOrBind(cmd, args, route, startsMulti);
      return;
    }
    if (!fansOut && (this.binding !== null || this.state & ConnState.Watch || stateChangeOf(cmd, args)?.set)) {
      const slot = this.slotOfKeys(cmd, args, route);
      const binding = this.bind(slot);
      this.owe({ cmd, parts: [this.part(binding.pool, slot, cmd, args)], route: null, groups: null, held: undefined, hidden: false, bound: true });
      return;
    }
    if (policy === 'all_shards' || policy === 'all_nodes') {
      const parts = this.host.fanOutPools(policy === 'all_nodes').map((pool) => this.part(pool, -1, cmd, args));
      this.owe({ cmd, parts, route, groups: null, held: undefined, hidden: false, bound: false });
      return;
    }
    if (policy === 'multi_shard' && !this.sameSlot(args, route.keys)) {
      const groups = splitBySlot(args, route.keys);
      const parts = groups.map((group) => this.part(this.host.poolFor(group.slot, route.readOnly), group.slot, cmd, group.args));
      this.owe({ cmd, parts, route, groups, held: undefined, hidden: false, bound: false });
      return;
    }
    const slot = this.slotOfKeys(cmd, args, route);
    this.owe({ cmd, parts: [this.part(this.host.poolFor(slot, route.readOnly), slot, cmd, args)], route, groups: null, held: undefined, hidden: false, bound: false });
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
        this.owe(held(cmd, 'OK'));
        return;
      }
      this.heldBack.push({ cmd, args });
      this.owe(held(cmd, startsMulti ? 'OK' : 'QUEUED'));
      return;
    }
    const slot = route.keys.length === 0 ? -1 : this.slotOfKeys(cmd, args, route);
    const binding = this.bind(slot);
    for (const earlier of this.heldBack) {
      const lease = this.sendOn(binding.pool, earlier.cmd, earlier.args);
      this.owe({ cmd: earlier.cmd, parts: [{ lease, pool: binding.pool, slot, args: earlier.args }], route: null, groups: null, held: undefined, hidden: true, bound: true });
    }
    this.heldBack = [];
    this.owe({ cmd, parts: [this.part(binding.pool, slot, cmd, args)], route: null, groups: null, held: undefined, hidden: false, bound: true });
  }

  /** The slot of the command's keys (-1 when keyless); CrossSlotError when they span slots or leave the bound one. */
  private slotOfKeys(cmd: string, args: readonly Arg[], route: Route): number {
    const keys = route.keys;
    if (keys.length === 0) return this.binding?.slot ?? -1;
    const slot = slotOf(keyArg(args[keys[0] as number], keys[0] as number));
    if (!this.sameSlot(args, keys)) throw new CrossSlotError(`redisconn: the keys of ${cmd.toUpperCase()} hash to different slots; a cluster runs it only when they share one (use {hashtags})`);
    const bound = this.binding?.slot ?? -1;
    if (bound !== -1 && bound !== slot) {
      throw new CrossSlotError(`redisconn: ${cmd.toUpperCase()} names a key of slot ${slot}, but this connection is bound to slot ${bound} by WATCH, MULTI or a subscription`);
    }
    return slot;
  }

  private sameSlot(args: readonly Arg[], keys: readonly number[]): boolean {
    if (keys.length < 2) return true;
    const slot = slotOf(keyArg(args[keys[0] as number], keys[0] as number));
    for (let i = 1; i < keys.length; i++) if (slotOf(keyArg(args[keys[i] as number], keys[i] as number)) !== slot) return false;
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

  private call(cmd: string, args: Arg[], deadline: number, signal: AbortSignal | null): Promise<Reply> {
    if (this.closing !== null) return Promise.reject(closedError());
    if (this.fatal !== null) return Promise.reject(this.fatal);
    if (!this.host.isMapped || this.unrouted.length > 0) {
      const mapped = this.host.whenMapped().then(() => (this.unrouted.length > 0 ? this.route() : undefined));
      return this.bounded(mapped, deadline, signal).then(() => this.call(cmd, args, deadline, signal));
    }
    try {
      if (cmd !== '') this.send(cmd, ...args);
    } catch (err) {
      return Promise.reject(err);
    }
    const subscribed = cmd !== '' && (this.state & SUBSCRIBED) !== 0;
    const flushed = this.flush();
    flushed.catch(ignore);
    // Claimed now, in call order: a later call cannot take these replies.
    const mine = this.pending.drain();
    return this.inOrder(this.collect(mine, cmd === '', subscribed, flushed, deadline, signal));
  }

  /** The replies of `entries`: as an array (do('')), or the last one / the first error reply (do). */
  private async collect(entries: Pending[], all: boolean, subscribed: boolean, flushed: Promise<void>, deadline: number, signal: AbortSignal | null): Promise<Reply> {
    await this.bounded(flushed, deadline, signal);
    const replies: Reply[] = [];
    let last: Reply = null;
    let first: unknown = null;
    for (const entry of entries) {
      try {
        const reply = await this.bounded(this.started(entry), deadline, signal);
        if (entry.hidden) continue;
        last = reply;
        if (all) replies.push(reply);
      } catch (err) {
        if (!(err instanceof RedisError) && entry.failed === undefined) throw err;
        if (entry.hidden) continue;
        if (all) replies.push(err as Reply);
        else first ??= err;
      }
    }
    // Subscribed: the command's confirmation is a push for receive(); the replies owed before it were read above.
    if (subscribed) last = await this.nextPush(deadline, signal);
    if (all) return replies;
    if (first !== null) throw first;
    return last;
  }

  /** The next reply in send order (hidden replies read and dropped); with none owed, the bound node's next push. */
  private next(deadline: number, signal: AbortSignal | null): Promise<Reply> {
    if (this.closing !== null) return Promise.reject(closedError());
    if (this.fatal !== null) return Promise.reject(this.fatal);
    if (this.unrouted.length > 0) return this.flush().then(() => this.next(deadline, signal));
    const hidden: Promise<Reply>[] = [];
    let entry = this.pending.shift();
    while (entry?.hidden) {
      hidden.push(this.started(entry));
      entry = this.pending.shift();
    }
    if (entry === undefined) {
      if (this.state & SUBSCRIBED) return this.nextPush(deadline, signal);
      if (this.binding !== null) return this.bounded(this.readFrom(this.lease(this.binding.pool)), deadline, signal);
      // Nothing owed and no node yet: wait for the next send (or close) instead of binding to a random master.
      return this.nextSend(deadline, signal).then(() => this.next(deadline, signal));
    }
    const result = this.started(entry);
    const reply = hidden.length === 0 ? result : Promise.allSettled(hidden).then(() => result);
    return this.inOrder(this.bounded(reply, deadline, signal));
  }

  /** The reply of `entry`, its reads started now if the flush has not started them (sent, not flushed). */
  private started(entry: Pending): Promise<Reply> {
    if (entry.result === undefined) this.startReads();
    return entry.result as Promise<Reply>;
  }

  /** Starts reading the reply of every entry sent so far, in send order. */
  private startReads(): void {
    const entries = this.unstarted;
    this.unstarted = [];
    for (const entry of entries) {
      let result: Promise<Reply>;
      if (entry.failed !== undefined) result = Promise.reject(entry.failed);
      else if (entry.held !== undefined) result = Promise.resolve(entry.held);
      else if (entry.hidden) result = this.readFrom(entry.parts[0]?.lease as Conn).then(() => null, (err: unknown) => this.keepIfReply(err));
      else result = this.answer(entry);
      result.catch(ignore);
      entry.result = result;
    }
  }

  /** Settles like `work`, but not before the calls made before it. */
  private inOrder(work: Promise<Reply>): Promise<Reply> {
    const before = this.tail;
    const done = work.then(
      (reply) => before.then(() => reply),
      (err: unknown) => before.then(() => Promise.reject(err)),
    );
    this.tail = done.then(ignore, ignore);
    return done;
  }

  /** `work` within the call's deadline and signal; passing either breaks the connection (its replies would be lost). */
  private bounded<T>(work: Promise<T>, deadline: number, signal: AbortSignal | null): Promise<T> {
    if (deadline === NO_DEADLINE && signal === null) return work;
    const timeoutMs = deadline === NO_DEADLINE ? undefined : Math.max(1, Math.floor(deadline - performance.now()));
    return withinDeadline(work, 'waiting for the reply', timeoutMs, signal, this.breakOnGiveUp);
  }

  /** Made once, so a bounded call makes no closure for it. */
  private readonly breakOnGiveUp: DeadlineHooks<unknown> = { onGiveUp: (err) => this.breakWith(err) };

  /** Breaks this connection once: later calls fail with `err`; reads in flight on exclusive connections are cancelled. */
  private breakWith(err: unknown): void {
    this.fatal ??= err instanceof Error ? err : new ConnClosedError(String(err));
    if (!this.breaker.signal.aborted) this.breaker.abort(this.fatal);
  }

  /** In subscribed mode: an unsubscribe confirmation saying no subscription is left ends the mode (and the binding). */
  private noteConfirmation(reply: Reply): void {
    if (!Array.isArray(reply) || reply.length !== 3 || reply[2] !== 0) return;
    const kind = textOf(reply[0]);
    if (kind === 'unsubscribe' || kind === 'punsubscribe') this.state &= ~ConnState.Subscribe;
    else if (kind === 'sunsubscribe') this.state &= ~ConnState.ShardSubscribe;
    else return;
    if ((this.state & STATEFUL) === 0) this.binding = null;
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
        reply = await this.bounded(lease.receiveWithSignal(this.breaker.signal), deadline, signal);
      } catch (err) {
        if (err instanceof RedisError) throw err;
        if (this.closing !== null || this.fatal !== null || !this.subscriptions.any || ++failures > RESUBSCRIBE_TRIES) {
          this.breakWith(err);
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
      this.noteConfirmation(reply);
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
      await this.flushLeases();
    } catch {
      // No node for it yet (or the write failed): the next read fails and tries again.
    }
  }

  /**
   * Resolves at the next send or close, within the call's deadline and
   * signal (giving up breaks the connection, as any abandoned read does).
   */
  private nextSend(deadline: number, signal: AbortSignal | null): Promise<void> {
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.idleReceives.add(wake);
    return this.bounded(woken, deadline, signal).finally(() => this.idleReceives.delete(wake));
  }

  /** A dropped reply's error reply is harmless; a fatal error breaks this connection. */
  private keepIfReply(err: unknown): null {
    if (err instanceof RedisError) return null;
    throw err;
  }

  /** The reply of a (possibly split or fanned-out) command: every part's read is made now, in order. */
  private async answer(entry: Pending): Promise<Reply> {
    const outcomes = await Promise.allSettled(entry.parts.map((part) => this.partReply(entry, part)));
    if (entry.route?.responsePolicy === 'one_succeeded') {
      for (const outcome of outcomes) if (outcome.status === 'fulfilled') return outcome.value;
    }
    const replies: Reply[] = [];
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason;
      replies.push(outcome.value);
    }
    if (entry.route === null || entry.parts.length === 1) return replies[0] ?? null;
    return aggregate(entry.route.responsePolicy, replies, entry.groups, entry.route.keys.length);
  }

  private async partReply(entry: Pending, part: Part): Promise<Reply> {
    try {
      return await this.readFrom(part.lease);
    } catch (err) {
      if (!(err instanceof RedisError) || entry.bound || entry.route === null) throw err;
      return this.host.follow(err, part.pool, part.slot, entry.cmd, part.args, entry.route.readOnly, NO_DEADLINE);
    }
  }

  /** The next reply of `lease`; a failure other than an error reply breaks this connection. */
  private readFrom(lease: Conn): Promise<Reply> {
    return lease.receiveWithSignal(this.breaker.signal).catch((err: unknown) => {
      if (!(err instanceof RedisError)) {
        this.breakWith(err);
        // The node may be gone (failed over, removed): read the map again, as Cluster.do does.
        void this.host.refreshNow();
      }
      throw err;
    });
  }
}

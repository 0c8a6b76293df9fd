/**
 * Lease: a connection from a pool that costs nothing until it needs one
 * (`pool.lease()`; the plugin's default request connection).
 *
 * Stateless commands run on the pool's shared, auto-pipelined connection, so
 * a borrow per HTTP request pays no socket of its own. The first time the
 * lease needs exclusivity — a command that changes connection state or
 * blocks (MULTI, WATCH, SUBSCRIBE, SELECT, BLPOP, CLIENT, ...), a per-call
 * timeout or signal, or a `receive` with no reply owed — it waits for the
 * replies it is owed on the shared connection, borrows an exclusive one with
 * `pool.get()`, and stays on it until closed. Replies keep their order
 * across the move, so callers see the semantics of one exclusive connection.
 */
import { checkTimeoutMs } from './deadline.js';
import { ConnClosedError, RedisError } from './errors.js';
import type { Conn } from './conn.js';
import type { GetOptions } from './pool.js';
import { Fifo } from './fifo.js';
import type { Reply } from './resp/decode.js';
import { checkArgs, checkCommand, type Arg } from './resp/encode.js';
import { sharedRefusal } from './commands.js';

/** What a Lease needs from its pool. */
export interface LeaseHost {
  /** Runs a stateless command on the shared connection. */
  doShared(cmd: string, args: Arg[]): Promise<Reply>;
  /** Borrows the exclusive connection a lease moves to (`Pool.get`, counted as a move). */
  borrowForLease(options?: GetOptions): Promise<Conn>;
  /** The protocol the pool's connections speak, as far as known. */
  readonly protocolSeen: 2 | 3;
  /** The read timeout of the pool's connections, as far as known. */
  readonly readTimeoutSeen: number;
}

interface Queued {
  cmd: string;
  args: Arg[];
}

function ignore(): void {}

/**
 * The rejection a per-call deadline gets before the lease moves for it (a
 * bad timeout, an aborted signal), as a connection would give it: no borrow
 * is made for a call that cannot run. Null when the call may go ahead.
 */
function refuseBadDeadline(timeoutMs: number | null, signal: AbortSignal | null): Promise<never> | null {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (timeoutMs === null) return null;
  try {
    checkTimeoutMs('timeoutMs', timeoutMs);
  } catch (err) {
    return Promise.reject(err);
  }
  return null;
}

/** Whether `cmd` cannot run on the shared connection. */
function needsOwnConnection(cmd: string, args: readonly Arg[]): boolean {
  return sharedRefusal(cmd, args) !== null;
}

/**
 * Settles like redigo's Do over `replies` (oldest first): the last value, or
 * the first error among them (an error reply or a connection failure).
 */
async function lastOrFirstError(replies: Promise<Reply>[]): Promise<Reply> {
  const outcomes = await Promise.allSettled(replies);
  for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  const last = outcomes[outcomes.length - 1];
  return last !== undefined && last.status === 'fulfilled' ? last.value : null;
}

/** A pool lease on the shared connection that moves to an exclusive one when it must. */
export class Lease implements Conn {
  private exclusive: Conn | null = null;
  private moving: Promise<Conn> | null = null;
  private closing: Promise<void> | null = null;
  /** Replies of commands already sent on the shared connection, not yet read. */
  private readonly owed = new Fifo<Promise<Reply>>();
  /** Commands buffered by `send`, not yet flushed. */
  private queued: Queued[] = [];
  private queuedNeedExclusive = false;
  /** `do` calls on the shared connection not settled yet, and the last of them (they settle in order). */
  private sharedInFlight = 0;
  private lastShared: Promise<Reply> | null = null;
  /** Bound once per lease, so tracking a shared call makes no closure. */
  private readonly sharedSettled = (): void => {
    if (--this.sharedInFlight === 0) this.lastShared = null;
  };

  constructor(
    private readonly host: LeaseHost,
    private readonly getOptions?: GetOptions,
  ) {}

  get protocol(): 2 | 3 {
    return this.exclusive?.protocol ?? this.host.protocolSeen;
  }

  /** The exclusive connection's read timeout once moved; until then the shared connection's. */
  get readTimeoutMs(): number {
    return this.exclusive?.readTimeoutMs ?? this.host.readTimeoutSeen;
  }

  inFlight(): number {
    const moving = this.moving !== null && this.exclusive === null ? 1 : 0;
    return this.sharedInFlight + this.owed.length + this.queued.length + moving + (this.exclusive?.inFlight() ?? 0);
  }

  err(): Error | null {
    if (this.closing !== null) return closedError();
    return this.exclusive?.err() ?? null;
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    if (this.closing !== null) return Promise.reject(closedError());
    if (cmd === '') return this.drain();
    if (this.exclusive === null && this.moving === null && !this.queuedNeedExclusive && !needsOwnConnection(cmd, args)) {
      if (this.queued.length === 0 && this.owed.length === 0) return this.trackShared(this.host.doShared(cmd, args));
      // Replies are owed to `send`: a bad command must be refused before it takes them.
      try {
        checkCommand(cmd);
        checkArgs(args);
      } catch (err) {
        return Promise.reject(err);
      }
      this.flushQueued();
      return lastOrFirstError([...this.owed.drain(), this.trackShared(this.host.doShared(cmd, args))]);
    }
    return this.onExclusive((conn) => conn.do(cmd, ...args));
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    const refused = refuseBadDeadline(timeoutMs, null);
    return refused ?? this.onExclusive((conn) => conn.doWithTimeout(timeoutMs, cmd, ...args));
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    const refused = refuseBadDeadline(null, signal);
    return refused ?? this.onExclusive((conn) => conn.doWithSignal(signal, cmd, ...args));
  }

  send(cmd: string, ...args: Arg[]): void {
    if (this.closing !== null) throw closedError();
    if (this.exclusive !== null) {
      this.exclusive.send(cmd, ...args);
      return;
    }
    checkCommand(cmd);
    checkArgs(args);
    this.queued.push({ cmd, args });
    if (needsOwnConnection(cmd, args)) this.queuedNeedExclusive = true;
  }

  flush(): Promise<void> {
    if (this.closing !== null) return Promise.reject(closedError());
    if (this.exclusive !== null || this.moving !== null || this.queuedNeedExclusive) {
      return this.moveToExclusive().then((conn) => conn.flush());
    }
    this.flushQueued();
    return Promise.resolve();
  }

  receive(): Promise<Reply> {
    return this.read((conn) => conn.receive());
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    return refuseBadDeadline(timeoutMs, null) ?? this.read((conn) => conn.receiveWithTimeout(timeoutMs));
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    return refuseBadDeadline(null, signal) ?? this.read((conn) => conn.receiveWithSignal(signal));
  }

  /**
   * Returns the exclusive connection to the pool, if one was borrowed (after
   * the replies still owed on it, as a pooled connection does). Calls made
   * before close() settle as usual, a move in progress included. Safe to
   * call twice; never rejects.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      const moving = this.moving;
      // As a pooled connection flushes what `send` buffered before it goes
      // back, buffered stateless commands still run (their replies unread).
      // While a move is under way, what `send` buffered stays queued: the move
      // replays it on the exclusive connection, which close() returns after.
      if (moving === null) {
        if (this.exclusive === null && !this.queuedNeedExclusive) this.flushQueued();
        this.queued = [];
      }
      this.owed.drain();
      this.closing = moving === null ? Promise.resolve() : moving.then((conn) => conn.close(), ignore);
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Counts a `do` on the shared connection until it settles, so `inFlight`,
   * `do('')` and a move to an exclusive connection wait for it.
   */
  private trackShared(reply: Promise<Reply>): Promise<Reply> {
    this.sharedInFlight++;
    this.lastShared = reply;
    reply.then(this.sharedSettled, this.sharedSettled);
    return reply;
  }

  /** `do('')`: flushes, then (after the calls before it) every owed reply as an array, error replies as values. */
  private drain(): Promise<Reply> {
    if (this.exclusive !== null || this.moving !== null || this.queuedNeedExclusive) {
      // Both claims are made in one callback, so calls made later cannot take these replies.
      return this.moveToExclusive().then((conn) => {
        const owed = this.owedValues(this.owed.drain());
        const rest = conn.do('');
        return Promise.all([owed, rest]).then(([before, after]) => [...before, ...(after as Reply[])]);
      });
    }
    this.flushQueued();
    const owed = this.owed.drain(); // this do('')'s replies, whatever is sent after it
    const last = this.lastShared;
    if (last === null) return this.owedValues(owed);
    const values = (): Promise<Reply[]> => this.owedValues(owed);
    return last.then(values, values);
  }

  /** The outcomes of `replies`: values, error replies as RedisError values; a fatal error rejects. */
  private async owedValues(replies: Promise<Reply>[]): Promise<Reply[]> {
    const outcomes = await Promise.allSettled(replies);
    return outcomes.map((outcome) => {
      if (outcome.status === 'fulfilled') return outcome.value;
      if (outcome.reason instanceof RedisError) return outcome.reason;
      throw outcome.reason;
    });
  }

  /** A reply owed on the shared connection comes first; else the exclusive connection answers. */
  private read(onConn: (conn: Conn) => Promise<Reply>): Promise<Reply> {
    if (this.closing !== null) return Promise.reject(closedError());
    const owed = this.owed.shift();
    if (owed !== undefined) return owed;
    return this.onExclusive(onConn);
  }

  /** Runs `call` on the exclusive connection; a Do-style call also reads the shared replies owed. */
  private onExclusive(call: (conn: Conn) => Promise<Reply>): Promise<Reply> {
    if (this.closing !== null) return Promise.reject(closedError());
    const conn = this.exclusive;
    if (conn !== null && this.owed.length === 0) return call(conn);
    return this.moveToExclusive().then((moved) => {
      if (this.owed.length === 0) return call(moved);
      return lastOrFirstError([...this.owed.drain(), call(moved)]);
    });
  }

  /** Sends what `send` buffered on the shared connection. */
  private flushQueued(): void {
    const queued = this.queued;
    if (queued.length === 0) return;
    this.queued = [];
    for (const { cmd, args } of queued) {
      const reply = this.host.doShared(cmd, args);
      reply.catch(ignore); // read (and its error seen) by receive/do, or dropped on close
      this.owed.push(reply);
    }
  }

  /**
   * Borrows the exclusive connection once: after the shared replies owed have
   * arrived (so order holds), replaying the commands `send` buffered.
   */
  private moveToExclusive(): Promise<Conn> {
    this.moving ??= (async () => {
      // Order: what ran on the shared connection must be answered before the move.
      await Promise.allSettled([...this.owed, this.lastShared]);
      let conn: Conn;
      try {
        conn = await this.host.borrowForLease(this.getOptions);
      } catch (err) {
        this.moving = null; // the next call may try again
        throw err;
      }
      // Closed meanwhile: the calls made before close() still run on it, in
      // order; close() closes it after them (its callback was queued later).
      const queued = this.queued;
      this.queued = [];
      this.queuedNeedExclusive = false;
      for (const { cmd, args } of queued) conn.send(cmd, ...args);
      this.exclusive = conn;
      return conn;
    })();
    return this.moving;
  }
}

function closedError(): ConnClosedError {
  return new ConnClosedError('redisconn: connection already closed (returned to its pool)');
}


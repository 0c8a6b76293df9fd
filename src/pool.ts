/**
 * Pool: lends exclusive connections out and takes them back (redigo's Pool).
 *
 * Idle connections form a LIFO list (the most recently used is lent first, so
 * surplus ones age out). Idle timeout and maximum lifetime are enforced on
 * borrow and by a background reaper that never keeps the process alive. With
 * `maxActive` reached, `get()` either fails at once (`wait: false`) or queues
 * in FIFO order; each freed connection or slot goes to the oldest waiter.
 */
import { checkTimeoutMs, Deadline, msLeft, withinDeadline } from './deadline.js';
import { PoolClosedError, PoolExhaustedError } from './errors.js';
import { setConnectionKind, type Conn } from './conn.js';
import { poolGetChannel, traceSettled, type ConnectionKind, type PoolGetTraceContext } from './diagnostics.js';
import { dial, type DialOptions } from './dial.js';
import { dialURL } from './url.js';
import { Fifo } from './fifo.js';
import { PooledConn } from './pooledconn.js';
import type { Reply } from './resp/decode.js';
import type { Arg } from './resp/encode.js';
import { sharedRefusal } from './commands.js';
import { SharedConn } from './shared.js';
import { Lease } from './lease.js';
import type { ConnSource } from './source.js';

/** Options of {@link Pool}. */
export interface PoolOptions {
  /** Opens a new connection, e.g. `() => dial(addr, opts)`. Required. */
  dial: () => Promise<Conn>;
  /**
   * Checks an idle connection before it is lent; `lastUsedMs` is when it was
   * last returned (the pool's clock). Throw (or reject) to have that
   * connection closed and the next one tried. Default: no check.
   */
  testOnBorrow?: ((conn: Conn, lastUsedMs: number) => void | Promise<void>) | undefined;
  /** Idle connections kept; extra returned ones are closed. Default 16. */
  maxIdle?: number | undefined;
  /** Connections open at once (idle + in use + dialing); 0 = unlimited. Default 128. */
  maxActive?: number | undefined;
  /** Idle connections older than this are closed; 0 = never. Default 300 000 ms. */
  idleTimeoutMs?: number | undefined;
  /** With `maxActive` reached: true → wait in line, false → PoolExhaustedError. Default true. */
  wait?: boolean | undefined;
  /** Connections older than this are closed instead of lent; 0 = no limit. Default 0. */
  maxConnLifetimeMs?: number | undefined;
  /**
   * Deadline for resetting a returned connection (DISCARD, UNSUBSCRIBE...)
   * and for the replies still owed on it; past it the connection is closed
   * instead of reused. Must be positive (a return is always bounded). Default 5 000 ms.
   */
  resetTimeoutMs?: number | undefined;
  /** The clock, for tests. Default `Date.now`. */
  now?: (() => number) | undefined;
}

/** Options of {@link Pool.get}. */
export interface GetOptions {
  /** Abandons the get (waiting, dialing, or in testOnBorrow); rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Deadline for the whole get; rejects with TimeoutError. */
  timeoutMs?: number | undefined;
}

/** A snapshot of a pool's counters (redigo's PoolStats plus dial counts). */
export interface PoolStats {
  /** Connections open: idle + in use (including ones being dialed or reset). */
  activeCount: number;
  idleCount: number;
  /** activeCount − idleCount (the shared connection included). */
  inUseCount: number;
  /** The shared connection, when open or dialing: 0 or 1 (counted in activeCount and inUseCount). */
  sharedCount: number;
  /** Gets that had to wait for a connection, in total. */
  waitCount: number;
  /** Total time gets spent waiting, in ms. */
  waitDurationMs: number;
  /** Dials attempted, in total. */
  dials: number;
  /** Dials that failed, in total. */
  dialErrors: number;
  /** Commands run on the shared connection (`do`, and leases before they move), in total. */
  sharedCommands: number;
  /** Leases that moved to an exclusive connection (MULTI, BLPOP, ...), in total. */
  leaseMoves: number;
}

interface IdleConn {
  conn: Conn;
  createdAt: number;
  lastUsed: number;
}

/** A queued get. It is handed either a connection or the right to dial. */
interface Waiter {
  resolve(entry: IdleConn | null): void;
  reject(err: unknown): void;
}

const DIAL_PERMIT = null;

/**
 * A pool of exclusive connections. All methods are safe to call concurrently
 * (from any number of async callers); counters stay exact under any mix of
 * borrows, failures, aborts and closes.
 */
// Not `implements ConnReturner, SharedConnHost, LeaseHost`: those members are
// package-internal (stripped from the published types); `new SharedConn(this)`
// and friends check the shapes structurally.
export class Pool implements ConnSource {
  readonly resetTimeoutMs: number;
  private readonly dialFn: () => Promise<Conn>;
  private readonly testOnBorrow: PoolOptions['testOnBorrow'];
  private readonly maxIdle: number;
  private readonly maxActive: number;
  private readonly idleTimeoutMs: number;
  private readonly wait: boolean;
  private readonly maxConnLifetimeMs: number;
  private readonly now: () => number;

  /** Idle connections, oldest first: lend from the end, reap from the start. */
  private readonly idle: IdleConn[] = [];
  private readonly waiters = new Fifo<Waiter>();
  /** Connections being closed; `close()` waits for them. */
  private readonly closing = new Set<Promise<void>>();
  /** Connections counted against maxActive: idle, lent, dialing, being checked. */
  private active = 0;
  /** The shared connection (dialing or open): counted in stats, outside maxActive. */
  private sharedOpen = 0;
  private waitCount = 0;
  private waitDurationMs = 0;
  private dials = 0;
  private dialErrors = 0;
  private sharedCommands = 0;
  private leaseMoves = 0;
  private closed = false;
  /** When `purge()` last ran: connections born by then are not kept. */
  private purgedAt = Number.NEGATIVE_INFINITY;
  private drained: (() => void) | null = null;
  private reaper: NodeJS.Timeout | null = null;
  private readonly shared = new SharedConn(this);
  /** The RESP version of the last connection dialed (LeaseHost). (package-internal) @internal */
  protocolSeen: 2 | 3 = 2;
  /** The read timeout of the last connection dialed (LeaseHost). (package-internal) @internal */
  readTimeoutSeen = 0;
  /**
   * What tracing reports as the `source` of this pool's connections and
   * borrows: the pool, or the cluster or sentinel pool that owns it (which
   * sets it). (package-internal) @internal
   */
  traceSource: object = this;

  constructor(options: PoolOptions) {
    if (typeof options?.dial !== 'function') throw new TypeError('redisconn: Pool needs a dial function');
    this.dialFn = options.dial;
    this.testOnBorrow = optionalFunction('testOnBorrow', options.testOnBorrow);
    this.maxIdle = count('maxIdle', options.maxIdle, 16);
    this.maxActive = count('maxActive', options.maxActive, 128);
    this.idleTimeoutMs = count('idleTimeoutMs', options.idleTimeoutMs, 300_000);
    this.maxConnLifetimeMs = count('maxConnLifetimeMs', options.maxConnLifetimeMs, 0);
    this.resetTimeoutMs = checkTimeoutMs('Pool option resetTimeoutMs', options.resetTimeoutMs ?? 5_000, true);
    this.wait = flag('wait', options.wait, true);
    this.now = optionalFunction('now', options.now) ?? Date.now;
    const reapEvery = Math.min(...[this.idleTimeoutMs, this.maxConnLifetimeMs].filter((ms) => ms > 0));
    if (Number.isFinite(reapEvery)) {
      this.reaper = setInterval(() => this.reap(), Math.max(1000, Math.min(reapEvery / 2, 60_000)));
      this.reaper.unref();
    }
  }

  /** Connections open (idle + in use). */
  get activeCount(): number {
    return this.active + this.sharedOpen;
  }

  /** Idle connections. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** A snapshot of the counters. */
  stats(): PoolStats {
    return {
      activeCount: this.active + this.sharedOpen,
      idleCount: this.idle.length,
      inUseCount: this.active + this.sharedOpen - this.idle.length,
      sharedCount: this.sharedOpen,
      waitCount: this.waitCount,
      waitDurationMs: this.waitDurationMs,
      dials: this.dials,
      dialErrors: this.dialErrors,
      sharedCommands: this.sharedCommands,
      leaseMoves: this.leaseMoves,
    };
  }

  /**
   * Borrows a connection: the most recently used idle one that passes the
   * checks, else a new one. Rejects with PoolClosedError after `close()`,
   * PoolExhaustedError (`wait: false`, `maxActive` reached), TimeoutError
   * (`timeoutMs`), the signal's reason, or the dial's error. The connection
   * must be closed (`close()` or `await using`) to go back to the pool.
   */
  get(options: GetOptions = {}): Promise<Conn> {
    return poolGetChannel.hasSubscribers ? this.tracedTake(options, 'exclusive') : this.take(options, 'exclusive', null);
  }

  /**
   * A get lending the connection as `kind` ('exclusive', or 'lease' for a
   * lease moving); `trace` is its `redisconn:pool:get` context when traced.
   */
  private take(options: GetOptions, kind: ConnectionKind, trace: PoolGetTraceContext | null): Promise<Conn> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: pool is closed'));
    let deadline = NO_DEADLINE;
    if (options.timeoutMs !== undefined || options.signal !== undefined) {
      try {
        if (options.timeoutMs !== undefined) checkTimeoutMs('get timeoutMs', options.timeoutMs);
        deadline = new Deadline(GET_WHAT, options.timeoutMs, options.signal);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    this.reapIdle();
    // Fast path, no await: a fresh idle connection whose check answers at once.
    const entry = this.idle.pop();
    if (entry === undefined) return this.borrow(deadline, undefined, false, kind, trace);
    const verdict = this.usable(entry);
    if (verdict === true) return Promise.resolve(this.lend(entry.conn, entry.createdAt, kind));
    return this.borrow(deadline, entry, verdict, kind, trace);
  }

  /** {@link take} publishing its `redisconn:pool:get` context. */
  private tracedTake(options: GetOptions, kind: ConnectionKind): Promise<Conn> {
    const trace: PoolGetTraceContext = { source: this.traceSource, waited: false, durationMs: undefined, outcome: undefined, error: undefined };
    return traceSettled(poolGetChannel, trace, () => this.take(options, kind, trace));
  }

  /**
   * The rest of a `get`: `entry` (with its check's `verdict`) is the idle
   * connection already taken, if any. The deadline arms its timer only when
   * the get has to wait (for a slot, a dial or a slow check) and is disarmed
   * when the get settles.
   */
  private async borrow(deadline: Deadline, entry: IdleConn | undefined, verdict: Promise<boolean> | boolean, kind: ConnectionKind, trace: PoolGetTraceContext | null): Promise<Conn> {
    try {
      if (entry === undefined) {
        if (this.maxActive === 0 || this.active < this.maxActive) {
          this.active++;
        } else if (!this.wait) {
          throw new PoolExhaustedError(`redisconn: pool exhausted: all ${this.maxActive} connections in use`);
        } else {
          if (trace !== null) trace.waited = true;
          entry = (await this.waitTurn(deadline.signal())) ?? undefined;
          if (entry !== undefined) verdict = this.usable(entry);
        }
      }
      // From here on the get awaits (a dial, a check, or another idle connection's turn).
      if (trace !== null) trace.waited = true;
      for (;;) {
        if (entry === undefined) return this.lend(await this.dialWithSlot(deadline.signal()), this.now(), kind);
        if (await this.settleCheck(entry, verdict, deadline)) return this.lend(entry.conn, entry.createdAt, kind);
        // Our slot now belongs to no connection: close the bad one, then prefer
        // another idle connection (freeing the slot) over dialing with it.
        this.closeQuietly(entry.conn);
        entry = this.idle.pop();
        if (entry !== undefined) {
          this.releaseSlot();
          verdict = this.usable(entry);
        }
      }
    } finally {
      deadline.disarm();
    }
  }

  /**
   * Runs one stateless command on the pool's shared connection, auto-pipelined
   * with every other `do` of the same tick; no borrow, no round trip to the
   * pool. Commands that change connection state or block (MULTI, WATCH,
   * SUBSCRIBE, SELECT, BLPOP, XREAD BLOCK, CLIENT, ...) reject with TypeError:
   * borrow a connection with `get()` for those. The shared connection counts
   * as one in use; when it breaks, calls in flight reject with its error and
   * the next call dials a new one.
   */
  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: pool is closed'));
    const refusal = sharedRefusal(cmd, args);
    if (refusal !== null) return Promise.reject(new TypeError(refusal));
    this.sharedCommands++;
    return this.shared.do(cmd, args);
  }

  /**
   * Lends a connection that borrows nothing until it must: stateless
   * commands run on the shared connection (as with `do`); the first command
   * that needs exclusivity (MULTI, WATCH, SUBSCRIBE, BLPOP, ..., a per-call
   * timeout or signal, a receive with nothing owed) moves it, replies in
   * order, to an exclusive connection from `get(options)`, kept until
   * `close()`. Same contract as a connection from `get()`, but free for the
   * common case; errors of the move (pool exhausted, timeout) surface on the
   * call that needed it.
   */
  lease(options?: GetOptions): Conn {
    return new Lease(this, options);
  }

  /** Runs a command on the shared connection without the refusal check (LeaseHost). (package-internal) @internal */
  doShared(cmd: string, args: Arg[]): Promise<Reply> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: pool is closed'));
    this.sharedCommands++;
    return this.shared.do(cmd, args);
  }

  /** Borrows the connection a lease moves to (LeaseHost). (package-internal) @internal */
  borrowForLease(options: GetOptions = {}): Promise<Conn> {
    this.leaseMoves++;
    return poolGetChannel.hasSubscribers ? this.tracedTake(options, 'lease') : this.take(options, 'lease', null);
  }

  /**
   * Dials the shared connection (SharedConnHost). It shows in the stats as
   * one in use but sits outside maxActive: it never waits for, nor takes, a
   * slot. (package-internal) @internal
   */
  dialShared(): Promise<Conn> {
    if (this.closed) return Promise.reject(new PoolClosedError('redisconn: pool is closed'));
    this.sharedOpen++;
    return this.startDial().then(
      (conn) => {
        if (this.closed) {
          this.releaseShared(conn);
          throw new PoolClosedError('redisconn: pool closed while dialing');
        }
        setConnectionKind(conn, 'shared', this.traceSource);
        return conn;
      },
      (err: unknown) => {
        this.sharedOpen--;
        this.settleIfDrained();
        throw err;
      },
    );
  }

  /** Closes and uncounts the shared connection (SharedConnHost). (package-internal) @internal */
  releaseShared(conn: Conn): void {
    this.closeQuietly(conn);
    this.sharedOpen--;
    this.settleIfDrained();
  }

  /** Borrows a connection and PINGs, all within `timeoutMs` (see ConnSource.check). */
  async check(timeoutMs: number): Promise<void> {
    checkTimeoutMs('timeoutMs', timeoutMs, true);
    const started = performance.now();
    await using conn = await this.get({ timeoutMs });
    await conn.doWithTimeout(msLeft(timeoutMs, started), 'PING');
  }

  /**
   * Closes idle connections, rejects queued gets with PoolClosedError, and
   * closes lent connections when they come back. Resolves once every
   * connection is closed. Safe to call twice.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (this.reaper !== null) clearInterval(this.reaper);
      for (const waiter of this.waiters.drain()) waiter.reject(new PoolClosedError('redisconn: pool closed while waiting for a connection'));
      for (const entry of this.idle.splice(0)) this.discard(entry.conn);
      void this.shared.close();
    }
    if (this.active + this.sharedOpen > 0) {
      await new Promise<void>((resolve) => {
        const previous = this.drained;
        this.drained = () => {
          previous?.();
          resolve();
        };
      });
    }
    await Promise.all(this.closing);
  }

  /**
   * @internal Forgets the server the connections talk to (a Sentinel
   * failover): closes the idle connections and the shared one at once (calls
   * in flight on it reject with its error; the next call dials again), and
   * closes lent ones when they come back instead of keeping them.
   */
  purge(): void {
    if (this.closed) return;
    this.purgedAt = this.now();
    for (const entry of this.idle.splice(0)) this.discard(entry.conn);
    void this.shared.close();
  }

  /** Takes back a lent connection (called by PooledConn.close). @internal */
  giveBack(conn: Conn, createdAt: number, reusable: boolean): void {
    const now = this.now();
    if (!reusable || this.closed || conn.err() !== null || this.expired(createdAt, now) || createdAt <= this.purgedAt) {
      this.discard(conn);
      return;
    }
    const entry: IdleConn = { conn, createdAt, lastUsed: now };
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(entry);
      return;
    }
    this.idle.push(entry);
    if (this.idle.length > this.maxIdle) this.discard((this.idle.shift() as IdleConn).conn);
  }

  /** Lends `conn` as `kind` (what its traced commands report from now on). */
  private lend(conn: Conn, createdAt: number, kind: ConnectionKind): Conn {
    setConnectionKind(conn, kind, this.traceSource);
    return new PooledConn(conn, createdAt, this);
  }

  /** Closes a connection the pool counted and frees its slot. */
  private discard(conn: Conn): void {
    this.closeQuietly(conn);
    this.releaseSlot();
  }

  /** Closes without letting a failing close() escape as an unhandled rejection. */
  private closeQuietly(conn: Conn): void {
    const closing = Promise.resolve()
      .then(() => conn.close())
      .catch(() => {})
      .finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }

  /** One slot fewer in use: hand it to the oldest waiter, or count it free. */
  private releaseSlot(): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter.resolve(DIAL_PERMIT);
      return;
    }
    this.active--;
    this.settleIfDrained();
  }

  /** Wakes `close()` once no connection is left. */
  private settleIfDrained(): void {
    if (this.active + this.sharedOpen === 0 && this.drained !== null) {
      const drained = this.drained;
      this.drained = null;
      drained();
    }
  }

  private expired(createdAt: number, now: number): boolean {
    return this.maxConnLifetimeMs > 0 && now - createdAt >= this.maxConnLifetimeMs;
  }

  private stale(entry: IdleConn, now: number): boolean {
    return (this.idleTimeoutMs > 0 && now - entry.lastUsed >= this.idleTimeoutMs) || this.expired(entry.createdAt, now);
  }

  /**
   * Closes idle connections past the idle timeout. The idle list is in return
   * order, so only its stale head is visited (a get stays O(1)); lifetime and
   * broken connections are caught on borrow and by the background reaper.
   */
  private reapIdle(): void {
    if (this.idleTimeoutMs === 0) return;
    const now = this.now();
    const idle = this.idle;
    let stale = 0;
    while (stale < idle.length && now - (idle[stale] as IdleConn).lastUsed >= this.idleTimeoutMs) stale++;
    if (stale === 0) return;
    for (const entry of idle.splice(0, stale)) this.discard(entry.conn);
  }

  private reap(): void {
    const now = this.now();
    const idle = this.idle;
    for (let i = 0; i < idle.length; ) {
      const entry = idle[i] as IdleConn;
      if (this.stale(entry, now) || entry.conn.err() !== null) {
        idle.splice(i, 1);
        this.discard(entry.conn);
      } else {
        i++;
      }
    }
  }

  /**
   * Whether an idle connection may be lent: not broken, not stale, passes
   * testOnBorrow (a promise only when the check itself is asynchronous).
   */
  private usable(entry: IdleConn): Promise<boolean> | boolean {
    if (entry.conn.err() !== null || this.stale(entry, this.now())) return false;
    return this.testOnBorrow === undefined ? true : this.testIdle(entry);
  }

  /**
   * Waits for a check still running. If the get's deadline or signal ends
   * first, rejects with its reason at once (the deadline covers the check
   * too); the connection is kept or closed when its check ends.
   */
  private settleCheck(entry: IdleConn, verdict: Promise<boolean> | boolean, deadline: Deadline): Promise<boolean> | boolean {
    if (typeof verdict === 'boolean') return verdict;
    const signal = deadline.signal();
    if (signal === undefined) return verdict;
    return withinDeadline(verdict, GET_WHAT, undefined, signal, { onLate: (ok) => this.checkedLate(entry, ok) });
  }

  /**
   * Runs testOnBorrow: true when it passed and left the connection unbroken.
   * A check that answers synchronously (no PING due) costs no promise.
   */
  private testIdle(entry: IdleConn): Promise<boolean> | boolean {
    const conn = entry.conn;
    let result: void | Promise<void>;
    try {
      result = (this.testOnBorrow as NonNullable<PoolOptions['testOnBorrow']>)(conn, entry.lastUsed);
    } catch {
      return false;
    }
    if (result === undefined || typeof (result as Partial<Promise<void>>).then !== 'function') return conn.err() === null;
    return Promise.resolve(result).then(
      () => conn.err() === null,
      () => false,
    );
  }

  /** A check whose get was abandoned ended: keep the connection, or close it and free its slot. */
  private checkedLate(entry: IdleConn, ok: boolean): void {
    if (ok) this.giveBack(entry.conn, entry.createdAt, true);
    else this.discard(entry.conn);
  }

  /** Queues until handed a connection or a dial permit. */
  private waitTurn(signal: AbortSignal | undefined): Promise<IdleConn | null> {
    this.waitCount++;
    const started = this.now();
    return new Promise<IdleConn | null>((resolve, reject) => {
      const settle = (): void => {
        this.waitDurationMs += this.now() - started;
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        resolve: (entry) => {
          settle();
          resolve(entry);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const onAbort = (): void => {
        if (this.waiters.remove(waiter)) waiter.reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Calls the dial function, counting the attempt and its failure. */
  private startDial(): Promise<Conn> {
    this.dials++;
    let dialing: Promise<Conn>;
    try {
      dialing = Promise.resolve(this.dialFn());
    } catch (err) {
      dialing = Promise.reject(err);
    }
    return dialing.then(
      (conn) => {
        this.protocolSeen = conn.protocol;
        this.readTimeoutSeen = conn.readTimeoutMs;
        return conn;
      },
      (err: unknown) => {
        this.dialErrors++;
        throw err;
      },
    );
  }

  /** Dials using a slot already counted in `active`; frees it on failure. */
  private async dialWithSlot(signal: AbortSignal | undefined): Promise<Conn> {
    const settled = this.startDial().then(
      (conn) => {
        if (this.closed) {
          this.discard(conn);
          throw new PoolClosedError('redisconn: pool closed while dialing');
        }
        return conn;
      },
      (err: unknown) => {
        this.releaseSlot();
        throw err;
      },
    );
    if (signal === undefined) return settled;
    return withinDeadline(settled, GET_WHAT, undefined, signal, { onLate: (conn) => this.giveBack(conn, this.now(), true) });
  }
}

function flag(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`redisconn: Pool option ${name} must be a boolean, got ${typeof value}`);
  return value;
}

function optionalFunction<F>(name: string, value: F | undefined): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`redisconn: Pool option ${name} must be a function, got ${typeof value}`);
  return value;
}

function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`redisconn: Pool option ${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** What a get's deadline names when it passes. */
const GET_WHAT = 'waiting for a connection from the pool';

/** The deadline of a get with neither `timeoutMs` nor a signal: stateless, so shared. */
const NO_DEADLINE = new Deadline(GET_WHAT, undefined, undefined);

/**
 * A pool for `addr` (`host:port`, a unix socket path, or a redis:// URL) and
 * `db`, with LUCI's defaults: maxIdle 64, maxActive 512, idle timeout 3 min,
 * wait true, PING on borrow when idle over 1 min, connect/read/write timeouts
 * of 5 s. `overrides` adjust pool and dial options. `db` (0 when omitted)
 * and `overrides` win over what a URL says, so a URL's `/N` never selects
 * the database: pass N as `db`.
 */
export function newPool(addr: string, db = 0, overrides: Partial<PoolOptions> & DialOptions = {}): Pool {
  return newPoolDialing((options) => (addr.includes('://') ? dialURL(addr, options) : dial(addr, options)), db, overrides);
}

/**
 * @internal `newPool` for any way of dialing (a Sentinel's master, say):
 * `connect` gets the dial options with LUCI's defaults applied.
 */
export function newPoolDialing(connect: (options: DialOptions) => Promise<Conn>, db: number, overrides: Partial<PoolOptions> & DialOptions): Pool {
  const { dial: dialOverride, testOnBorrow, maxIdle, maxActive, idleTimeoutMs, wait, maxConnLifetimeMs, resetTimeoutMs, now, ...dialOptions } = overrides;
  // An option given as undefined means its default, so it must not overwrite one here.
  const given = Object.fromEntries(Object.entries(dialOptions).filter(([, value]) => value !== undefined)) as DialOptions;
  const options: DialOptions = { connectTimeoutMs: 5_000, readTimeoutMs: 5_000, writeTimeoutMs: 5_000, db, ...given };
  const clock = now ?? Date.now;
  const pool = new Pool({
    dial: dialOverride ?? (() => connect(options)),
    // Synchronous unless a PING is due, so a borrow of a fresh connection awaits nothing.
    testOnBorrow: testOnBorrow ?? ((conn, lastUsed) => (clock() - lastUsed > 60_000 ? conn.do('PING').then(() => undefined) : undefined)),
    maxIdle: maxIdle ?? 64,
    maxActive: maxActive ?? 512,
    idleTimeoutMs: idleTimeoutMs ?? 180_000,
    wait: wait ?? true,
    maxConnLifetimeMs: maxConnLifetimeMs ?? 0,
    resetTimeoutMs: resetTimeoutMs ?? 5_000,
    now: clock,
  });
  // Known before the first dial: a lease reports it from the start.
  pool.readTimeoutSeen = options.readTimeoutMs ?? 0;
  pool.protocolSeen = options.protocol === 3 ? 3 : 2;
  return pool;
}

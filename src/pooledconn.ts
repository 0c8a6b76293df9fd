/**
 * PooledConn: the handle `Pool.get()` lends out (redigo's activeConn). It
 * forwards to a pooled connection, tracks the connection state commands leave
 * behind, and on `close()` resets that state before the connection goes back:
 * MULTI → DISCARD, WATCH → UNWATCH, subscribed → unsubscribe from everything
 * and drain up to a private ECHO marker; MONITOR, SELECT, HELLO, AUTH, RESET
 * or a broken connection → closed instead of reused.
 *
 * A connection is never lent to anyone else while a reply on it is still
 * owed: `close()` with a call in flight (a `do` not yet answered, replies of
 * `send` not read) first waits for those replies — bounded by the pool's
 * reset deadline — and the calls in flight settle as usual. If they do not
 * arrive in time, the connection is broken (those calls reject with a
 * TimeoutError) and closed instead of reused.
 */
import { randomBytes } from 'node:crypto';
import { ConnClosedError } from './errors.js';
import { ConnState, stateChangeOf } from './commands.js';
import type { Conn } from './conn.js';
import type { Reply } from './resp/decode.js';
import type { Arg } from './resp/encode.js';

/**
 * What a PooledConn needs from the pool that lent it (the pool provides it,
 * the PooledConn calls it): to take the connection back, and the deadline
 * for resetting it first.
 */
export interface ConnReturner {
  /** Takes back `conn` (born at `createdAt`); `reusable` false closes it. */
  giveBack(conn: Conn, createdAt: number, reusable: boolean): void;
  /** Deadline for resetting a returned connection. */
  readonly resetTimeoutMs: number;
}

/** A borrowed connection. After `close()` every call rejects with ConnClosedError. */
export class PooledConn implements Conn {
  private conn: Conn | null;
  private state = 0;
  private closing: Promise<void> | null = null;

  constructor(
    conn: Conn,
    private readonly createdAt: number,
    private readonly pool: ConnReturner,
  ) {
    this.conn = conn;
  }

  get protocol(): 2 | 3 {
    return this.conn?.protocol ?? 2;
  }

  get readTimeoutMs(): number {
    return this.conn?.readTimeoutMs ?? 0;
  }

  inFlight(): number {
    return this.conn?.inFlight() ?? 0;
  }

  err(): Error | null {
    return this.conn === null ? closedError() : this.conn.err();
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    const conn = this.conn;
    if (conn === null) return Promise.reject(closedError());
    this.track(cmd, args);
    return conn.do(cmd, ...args);
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    const conn = this.conn;
    if (conn === null) return Promise.reject(closedError());
    this.track(cmd, args);
    return conn.doWithTimeout(timeoutMs, cmd, ...args);
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    const conn = this.conn;
    if (conn === null) return Promise.reject(closedError());
    this.track(cmd, args);
    return conn.doWithSignal(signal, cmd, ...args);
  }

  send(cmd: string, ...args: Arg[]): void {
    const conn = this.conn;
    if (conn === null) throw closedError();
    conn.send(cmd, ...args);
    this.track(cmd, args);
  }

  flush(): Promise<void> {
    return this.conn === null ? Promise.reject(closedError()) : this.conn.flush();
  }

  receive(): Promise<Reply> {
    return this.conn === null ? Promise.reject(closedError()) : this.conn.receive();
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    return this.conn === null ? Promise.reject(closedError()) : this.conn.receiveWithTimeout(timeoutMs);
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    return this.conn === null ? Promise.reject(closedError()) : this.conn.receiveWithSignal(signal);
  }

  /**
   * Resets the connection's state and returns it to the pool (or closes it
   * when it cannot be made clean). With calls still in flight it first waits
   * for their replies, up to the pool's reset deadline (see the class doc).
   * Resolves when that is done; never rejects. Calling it again is harmless.
   */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    const conn = this.conn;
    if (conn === null) return Promise.resolve();
    this.conn = null;
    if (this.state === 0 && conn.inFlight() === 0) {
      this.pool.giveBack(conn, this.createdAt, conn.err() === null);
      this.closing = Promise.resolve();
    } else {
      this.closing = this.reset(conn).then((clean) => this.pool.giveBack(conn, this.createdAt, clean));
    }
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private track(cmd: string, args: readonly Arg[]): void {
    const change = stateChangeOf(cmd, args);
    if (change !== undefined) this.state = (this.state & ~change.clear) | change.set;
  }

  /** Undoes what the borrower left behind; true when the connection is clean. */
  private async reset(conn: Conn): Promise<boolean> {
    const state = this.state;
    if (state & ConnState.Tainted || conn.err() !== null) return false;
    const timeoutMs = this.pool.resetTimeoutMs;
    try {
      if (state & ConnState.Multi) conn.send('DISCARD');
      else if (state & ConnState.Watch) conn.send('UNWATCH');
      if (state & (ConnState.Subscribe | ConnState.ShardSubscribe)) {
        conn.send('UNSUBSCRIBE');
        conn.send('PUNSUBSCRIBE');
        if (state & ConnState.ShardSubscribe) conn.send('SUNSUBSCRIBE');
        const marker = `redisconn-reset-${randomBytes(8).toString('hex')}`;
        conn.send('ECHO', marker);
        await conn.flush();
        // Messages and unsubscribe confirmations come first; the marker ends them.
        for (;;) {
          const reply = await conn.receiveWithTimeout(timeoutMs).catch((err: unknown) => err);
          if (conn.err() !== null) return false;
          if (isMarker(reply, marker)) break;
        }
      }
      // Ordered after every call in flight: resolves once their replies are in.
      await conn.doWithTimeout(timeoutMs, '');
      return conn.err() === null && conn.inFlight() === 0;
    } catch {
      return false;
    }
  }
}

function isMarker(reply: unknown, marker: string): boolean {
  if (typeof reply === 'string') return reply === marker;
  return Buffer.isBuffer(reply) && reply.length === marker.length && reply.toString('latin1') === marker;
}

function closedError(): ConnClosedError {
  return new ConnClosedError('redisconn: connection already closed (returned to its pool)');
}

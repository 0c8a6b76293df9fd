/**
 * PubSubConn: a connection in publish/subscribe mode (redigo's PubSubConn).
 *
 * Commands (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their unsubscribes, PING) are
 * sent and flushed; their confirmations arrive, in order with the messages,
 * through `receive()` or async iteration as typed notifications. Works on
 * RESP2 and RESP3 connections alike. While a receive waits, a periodic PING
 * checks that the server still answers (`healthCheckMs`), so a hung server
 * or a silently dropped connection fails the wait instead of hanging it.
 */
import { randomBytes } from 'node:crypto';
import { SUBSCRIPTION_KINDS, type SubscriptionKind } from './commands.js';
import type { Conn } from './conn.js';
import { checkTimeoutMs, formatMs, withinDeadline } from './deadline.js';
import { ConnClosedError, ProtocolError, RedisError, TimeoutError } from './errors.js';
import { Fifo } from './fifo.js';
import type { Reply } from './resp/decode.js';

/** A channel name, pattern, or PING payload: text (sent as UTF-8) or bytes. */
export type PubSubArg = string | Uint8Array;

export type { SubscriptionKind } from './commands.js';

/**
 * A published message. `pattern` is set only for a pattern match (pmessage);
 * a sharded message (smessage) is a plain message too. `data` is always a
 * Buffer; with `decodeStrings` it is the UTF-8 encoding of the decoded text,
 * so payloads that are not valid UTF-8 only round-trip without that option.
 */
export interface PubSubMessage {
  kind: 'message';
  channel: string;
  pattern?: string;
  data: Buffer;
}

/**
 * A (un)subscribe confirmation. `count` is the number of subscriptions the
 * connection still has (sharded ones counted separately). `channel` is the
 * channel or pattern, or `''` when an unsubscribe-all found nothing to drop.
 */
export interface PubSubSubscription {
  kind: SubscriptionKind;
  channel: string;
  count: number;
}

/**
 * The answer to {@link PubSubConn.ping}; `data` is empty when none was sent.
 * With `decodeStrings` on RESP3 (or when not subscribed) a payload of exactly
 * `PONG` cannot be told from none and reads as empty.
 */
export interface PubSubPong {
  kind: 'pong';
  data: Buffer;
}

/** What {@link PubSubConn.receive} resolves and iteration yields. */
export type PubSubNotification = PubSubMessage | PubSubSubscription | PubSubPong;

const EMPTY = Buffer.alloc(0);

/** Options of {@link PubSubConn}. */
export interface PubSubOptions {
  /**
   * How long a waiting PubSubConn tolerates silence, in ms, before it checks
   * that the server is still there; 0 turns the check off. Any number of ms
   * from 0 to 2^31 − 1; anything else throws `RangeError`.
   *
   * While at least one `receive` (or iteration) is waiting and nothing at all
   * has arrived on the connection for this long, a PING with a private
   * payload is sent. Its answer is swallowed (never seen as a `pong`), and
   * any reply restarts the clock. When nothing arrives within the pong
   * deadline — the connection's `readTimeoutMs` when set, else this same
   * period — every waiting receive rejects with {@link TimeoutError} and the
   * connection is broken (`conn.err()` is set; close the PubSubConn). Without
   * it a hung server (or a peer gone without a FIN) leaves subscribers
   * waiting forever: the connection's read timeout guards only replies that
   * are owed, never the wait for the next message.
   *
   * Default 30 000 (30 s). redigo's pub/sub example pings every minute; half
   * that finds a dead server within about 35 s under a pool's 5 s read
   * timeout, keeps quiet subscriptions alive through NATs and load balancers
   * that drop idle flows after a minute or more, and costs one PING per 30 s
   * of silence per subscriber. Like the read timeout, it counts whole
   * replies: a single reply taking longer than this plus the pong deadline
   * to arrive fails the wait.
   */
  healthCheckMs?: number | undefined;
}

/** The default {@link PubSubOptions.healthCheckMs}. */
const DEFAULT_HEALTH_CHECK_MS = 30_000;

/** A `receive` call waiting for its notification (its deadline, if any, is withinDeadline's). */
interface Waiter {
  resolve(notification: PubSubNotification): void;
  reject(err: unknown): void;
}

const HEALTH_PREFIX = 'redisconn-health-';
const HEALTH_PAYLOAD_LENGTH = HEALTH_PREFIX.length + 16;

/**
 * A connection used for pub/sub. Owns its {@link Conn}: `close()` closes it
 * (a pooled one goes back to its pool, which unsubscribes it first). Do not
 * issue other commands on the connection while it is wrapped.
 *
 * Sending methods resolve once the command is flushed; they reject with
 * `TypeError` on bad arguments and with the connection's fatal error once it
 * is broken. Any number of `receive` calls may be outstanding; they are
 * answered in order, from one read of the connection at a time.
 *
 * While a receive waits, the server's health is checked: see
 * {@link PubSubOptions.healthCheckMs}.
 */
export class PubSubConn implements AsyncIterable<PubSubNotification>, AsyncDisposable {
  /** The health-check period in effect (ms; 0 = off). */
  readonly healthCheckMs: number;
  /** Receive calls waiting, oldest first. */
  private readonly waiters = new Fifo<Waiter>();
  /**
   * What a read brought after the call it was for gave up (a deadline or an
   * abort that came too late to cancel it): the next receive gets it.
   */
  private readonly backlog: (PubSubNotification | RedisError)[] = [];
  /** The one read of the connection in flight while anyone waits; null otherwise. */
  private reading: Promise<Reply> | null = null;
  /** Cancels `reading`; replaced once used. */
  private controller = new AbortController();
  private closing: Promise<void> | null = null;
  /** The health-check timer: armed only while a receive waits. */
  private healthTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last reply (or of the wait starting). */
  private lastHeard = 0;
  /** A health PING is out and nothing has arrived since it was sent. */
  private awaitingPong = false;
  private pingSentAt = 0;
  private pongDeadlineMs = 0;
  /** Payloads of health PINGs whose answer has not been read yet. */
  private readonly healthPings: string[] = [];

  /**
   * Wraps `conn`, which should not be shared with other users. Throws
   * `RangeError` on an invalid `healthCheckMs`.
   */
  constructor(
    readonly conn: Conn,
    options: PubSubOptions = {},
  ) {
    this.healthCheckMs = checkTimeoutMs('healthCheckMs', options.healthCheckMs ?? DEFAULT_HEALTH_CHECK_MS);
  }

  /** SUBSCRIBE to one or more channels. */
  subscribe(...channels: PubSubArg[]): Promise<void> {
    return this.command('SUBSCRIBE', channels, true);
  }

  /** PSUBSCRIBE to one or more glob-style patterns. */
  psubscribe(...patterns: PubSubArg[]): Promise<void> {
    return this.command('PSUBSCRIBE', patterns, true);
  }

  /** SSUBSCRIBE to one or more shard channels (Redis 7+). */
  ssubscribe(...channels: PubSubArg[]): Promise<void> {
    return this.command('SSUBSCRIBE', channels, true);
  }

  /** UNSUBSCRIBE from the given channels, or from all with no arguments. */
  unsubscribe(...channels: PubSubArg[]): Promise<void> {
    return this.command('UNSUBSCRIBE', channels, false);
  }

  /** PUNSUBSCRIBE from the given patterns, or from all with no arguments. */
  punsubscribe(...patterns: PubSubArg[]): Promise<void> {
    return this.command('PUNSUBSCRIBE', patterns, false);
  }

  /** SUNSUBSCRIBE from the given shard channels, or from all with no arguments. */
  sunsubscribe(...channels: PubSubArg[]): Promise<void> {
    return this.command('SUNSUBSCRIBE', channels, false);
  }

  /** PING, answered by a `pong` notification carrying `data` (empty when omitted). */
  ping(data?: PubSubArg): Promise<void> {
    return this.command('PING', data === undefined ? [] : [data], false);
  }

  /**
   * The next notification, waiting as long as the server is healthy. Rejects
   * with {@link RedisError} on an error reply (the connection stays usable),
   * with {@link ProtocolError} on a reply that is no pub/sub notification
   * (the connection is then closed), with {@link TimeoutError} when the
   * health check finds the server unresponsive, and with the fatal error
   * once the connection is broken.
   */
  receive(): Promise<PubSubNotification> {
    return this.next(0, null);
  }

  /**
   * `receive` with a deadline (0 = none). Passing it rejects with
   * {@link TimeoutError} and breaks the connection, as any abandoned read does
   * (its `err()` is then a ConnClosedError whose `cause` is the TimeoutError).
   * Rejects with `RangeError` on a timeout that is negative, not finite or
   * above 2^31 − 1 ms.
   */
  receiveWithTimeout(timeoutMs: number): Promise<PubSubNotification> {
    try {
      checkTimeoutMs('timeoutMs', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.next(timeoutMs, null);
  }

  /** `receive` cancelled by `signal` (rejects with its reason); aborting breaks the connection. */
  receiveWithSignal(signal: AbortSignal): Promise<PubSubNotification> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.next(0, signal);
  }

  /**
   * Closes the connection. Receives waiting are rejected and the read in
   * flight cancelled, which breaks the connection (a pooled one is then
   * discarded rather than reused); without one a pooled connection is
   * unsubscribed and reused. Stops the health check. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      this.breakReads(new ConnClosedError('redisconn: pub/sub connection closed'));
      this.healthPings.length = 0;
      this.closing = this.conn.close();
    }
    return this.closing;
  }

  /** Same as {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Yields every notification in arrival order. Ends cleanly once `close()`
   * is called on this PubSubConn (also while waiting); throws any other error,
   * including the connection being closed by the server or underneath and
   * the health check's {@link TimeoutError}. Leaving the loop early (`break`)
   * does not close the connection.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<PubSubNotification, void, undefined> {
    for (;;) {
      let notification: PubSubNotification;
      try {
        notification = await this.receive();
      } catch (err) {
        if (this.closing !== null) return;
        throw err;
      }
      yield notification;
    }
  }

  private command(cmd: string, args: PubSubArg[], needsArgs: boolean): Promise<void> {
    if (needsArgs && args.length === 0) return Promise.reject(new TypeError(`redisconn: ${cmd} needs at least one channel or pattern`));
    try {
      this.conn.send(cmd, ...args);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.conn.flush();
  }

  /** Queues a receive; `timeoutMs` (0 = none) and `signal` give up on it. */
  private next(timeoutMs: number, signal: AbortSignal | null): Promise<PubSubNotification> {
    const early = this.backlog.shift();
    if (early !== undefined) return early instanceof RedisError ? Promise.reject(early) : Promise.resolve(early);
    let waiter!: Waiter;
    const received = new Promise<PubSubNotification>((resolve, reject) => {
      waiter = { resolve, reject };
    });
    this.waiters.push(waiter);
    if (this.reading === null) this.startRead();
    if (this.healthTimer === null) this.startHealthCheck();
    if (timeoutMs === 0 && signal === null) return received;
    return withinDeadline(received, 'waiting for a pub/sub notification', timeoutMs === 0 ? undefined : timeoutMs, signal, {
      onGiveUp: (reason) => this.abandon(waiter, reason),
    });
  }

  /**
   * A receive gave up. The read in flight is cancelled, which breaks the
   * connection as any abandoned read does: the replies left on the wire
   * could no longer be told apart from the ones it should have taken.
   */
  private abandon(waiter: Waiter, reason: unknown): void {
    if (!this.waiters.remove(waiter)) return;
    waiter.reject(reason);
    // The read itself stays ours: it settles the receives left (with the
    // connection's error), or, if its reply was already in, hands it on.
    if (this.reading !== null) this.controller.abort(reason);
    if (this.waiters.length === 0) this.stopHealthCheck();
  }

  /** Starts the one read of the connection that serves the receives waiting. */
  private startRead(): void {
    if (this.controller.signal.aborted) this.controller = new AbortController();
    let read: Promise<Reply>;
    try {
      read = this.conn.receiveWithSignal(this.controller.signal);
    } catch (err) {
      read = Promise.reject(err);
    }
    this.reading = read;
    read.then(
      (reply) => this.onReply(read, reply),
      (err: unknown) => this.onReadError(read, err),
    );
  }

  /** Reads on while anyone waits; stops the health check otherwise. */
  private readOn(): void {
    if (this.waiters.length > 0) this.startRead();
    else this.stopHealthCheck();
  }

  private onReply(read: Promise<Reply>, reply: Reply): void {
    // A read cancelled by close() or a failed health check: its receives are settled.
    if (read !== this.reading) return;
    this.reading = null;
    this.heard();
    const notification = toNotification(reply);
    if (notification === null) {
      this.protocolFailure(reply);
      return;
    }
    if (notification.kind !== 'pong' || !this.takeHealthPong(notification.data)) {
      const waiter = this.waiters.shift();
      if (waiter === undefined) this.backlog.push(notification);
      else waiter.resolve(notification);
    }
    this.readOn();
  }

  private onReadError(read: Promise<Reply>, err: unknown): void {
    if (read !== this.reading) return;
    this.reading = null;
    if (err instanceof RedisError && this.conn.err() === null) {
      // An error reply: it answers one receive; the connection stays usable.
      this.heard();
      const waiter = this.waiters.shift();
      if (waiter === undefined) this.backlog.push(err);
      else waiter.reject(err);
      this.readOn();
      return;
    }
    // The connection is broken: every receive waiting fails with its error.
    let reason: unknown = this.conn.err() ?? err;
    if (this.awaitingPong && reason instanceof TimeoutError) reason = this.healthTimeout(reason);
    this.stopHealthCheck();
    for (const waiter of this.waiters.drain()) waiter.reject(reason);
  }

  /** A reply that is no notification: the stream cannot be trusted any more. */
  private protocolFailure(reply: Reply): void {
    const err = new ProtocolError(`redisconn: unexpected reply in pub/sub mode: ${describe(reply)}`);
    const waiter = this.waiters.shift();
    const rejectIt = (): void => waiter?.reject(err);
    this.close().then(rejectIt, rejectIt);
  }

  /**
   * Rejects every receive waiting with `reason`, cancels the read in flight
   * (breaking the connection) and stops the health check.
   */
  private breakReads(reason: unknown): void {
    this.stopHealthCheck();
    const waiters = this.waiters.drain();
    if (this.reading !== null) {
      this.reading = null;
      this.controller.abort(reason);
    }
    for (const waiter of waiters) waiter.reject(reason);
  }

  // --- Health check -------------------------------------------------------

  /** A receive starts waiting with none before it: the silence clock starts now. */
  private startHealthCheck(): void {
    if (this.healthCheckMs === 0 || this.closing !== null || this.waiters.length === 0) return;
    this.lastHeard = performance.now();
    this.awaitingPong = false;
    this.armHealthTimer(this.healthCheckMs);
  }

  private stopHealthCheck(): void {
    if (this.healthTimer !== null) {
      clearTimeout(this.healthTimer);
      this.healthTimer = null;
    }
    this.awaitingPong = false;
  }

  private armHealthTimer(ms: number): void {
    // Never keeps the process alive: a pending receive alone should not.
    this.healthTimer = setTimeout(() => this.onHealthTimer(), ms).unref();
  }

  /** Something arrived: the server is alive. (No timer work per reply.) */
  private heard(): void {
    if (this.healthTimer === null) return;
    this.lastHeard = performance.now();
    this.awaitingPong = false;
  }

  private onHealthTimer(): void {
    this.healthTimer = null;
    if (this.waiters.length === 0 || this.closing !== null) return;
    const now = performance.now();
    if (this.awaitingPong) {
      const left = this.pingSentAt + this.pongDeadlineMs - now;
      if (left >= 1) this.armHealthTimer(Math.ceil(left));
      else this.breakReads(this.healthTimeout());
      return;
    }
    const left = this.lastHeard + this.healthCheckMs - now;
    if (left >= 1) {
      this.armHealthTimer(Math.ceil(left));
      return;
    }
    const payload = HEALTH_PREFIX + randomBytes(8).toString('hex');
    try {
      this.conn.send('PING', payload);
    } catch (err) {
      // Only a broken connection refuses a PING: its receives must not hang.
      this.breakReads(this.conn.err() ?? err);
      return;
    }
    this.healthPings.push(payload);
    // A write that fails breaks the connection; the read in flight reports it.
    this.conn.flush().catch(() => {});
    const readTimeoutMs = this.conn.readTimeoutMs;
    this.pongDeadlineMs = readTimeoutMs > 0 ? readTimeoutMs : this.healthCheckMs;
    this.pingSentAt = now;
    this.awaitingPong = true;
    this.armHealthTimer(this.pongDeadlineMs);
  }

  private healthTimeout(cause?: unknown): TimeoutError {
    const message = `redisconn: the server did not answer the health-check PING within ${formatMs(this.pongDeadlineMs)} ms`;
    return cause === undefined ? new TimeoutError(message) : new TimeoutError(message, { cause });
  }

  /** True (and forgotten) when `data` is the payload of a health PING of ours. */
  private takeHealthPong(data: Buffer): boolean {
    const pings = this.healthPings;
    if (pings.length === 0 || data.length !== HEALTH_PAYLOAD_LENGTH) return false;
    const index = pings.indexOf(data.toString('latin1'));
    if (index < 0) return false;
    pings.splice(index, 1);
    return true;
  }
}

/** The notification a reply stands for, or null when it is none. */
function toNotification(reply: Reply): PubSubNotification | null {
  // Outside subscribed mode, and always on RESP3, PING answers +PONG or its argument.
  if (reply === 'PONG') return { kind: 'pong', data: EMPTY };
  if (isBulk(reply)) return { kind: 'pong', data: bytes(reply) };
  if (!Array.isArray(reply) || !isBulk(reply[0])) return null;
  const kind = text(reply[0]);
  const [, a, b, c] = reply;
  switch (kind) {
    case 'message':
    case 'smessage':
      return reply.length === 3 && isBulk(a) && isBulk(b) ? { kind: 'message', channel: text(a), data: bytes(b) } : null;
    case 'pmessage':
      return reply.length === 4 && isBulk(a) && isBulk(b) && isBulk(c) ? { kind: 'message', channel: text(b), pattern: text(a), data: bytes(c) } : null;
    case 'pong':
      return reply.length === 2 && isBulk(a) ? { kind: 'pong', data: bytes(a) } : null;
  }
  if (!SUBSCRIPTION_KINDS.has(kind) || reply.length !== 3 || typeof b !== 'number' || !(a === null || isBulk(a))) return null;
  return { kind: kind as SubscriptionKind, channel: a === null ? '' : text(a), count: b };
}

function isBulk(value: Reply | undefined): value is string | Buffer {
  return typeof value === 'string' || Buffer.isBuffer(value);
}

function text(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('utf8');
}

function bytes(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function describe(reply: Reply): string {
  if (reply === null) return 'null';
  if (Array.isArray(reply)) return `array of ${reply.length}`;
  if (typeof reply === 'object') return reply.constructor.name;
  return typeof reply;
}

/**
 * PubSubConn: a connection in publish/subscribe mode (redigo's PubSubConn).
 *
 * Commands (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, their unsubscribes, PING) are
 * sent and flushed; their confirmations arrive, in order with the messages,
 * through `receive()` or async iteration as typed notifications. Works on
 * RESP2 and RESP3 connections alike.
 */
import type { Conn } from './conn.js';
import { ConnClosedError, ProtocolError, TimeoutError } from './errors.js';
import type { Reply } from './resp/decode.js';

/** A channel name, pattern, or PING payload: text (sent as UTF-8) or bytes. */
export type PubSubArg = string | Uint8Array;

/** The confirmations of (un)subscribe commands. */
export type SubscriptionKind = 'subscribe' | 'unsubscribe' | 'psubscribe' | 'punsubscribe' | 'ssubscribe' | 'sunsubscribe';

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

const SUBSCRIPTION_KINDS: ReadonlySet<string> = new Set<SubscriptionKind>(['subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ssubscribe', 'sunsubscribe']);
const EMPTY = Buffer.alloc(0);

/**
 * A connection used for pub/sub. Owns its {@link Conn}: `close()` closes it
 * (a pooled one goes back to its pool, which unsubscribes it first). Do not
 * issue other commands on the connection while it is wrapped.
 *
 * Sending methods resolve once the command is flushed; they reject with
 * `TypeError` on bad arguments and with the connection's fatal error once it
 * is broken. Any number of `receive` calls may be outstanding; they are
 * answered in order.
 */
export class PubSubConn implements AsyncIterable<PubSubNotification>, AsyncDisposable {
  /** Reads in flight; `close()` cancels them. */
  private readonly readers = new Set<AbortController>();
  private closing: Promise<void> | null = null;

  /** Wraps `conn`, which should not be shared with other users. */
  constructor(readonly conn: Conn) {}

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
   * The next notification, waiting as long as it takes. Rejects with
   * {@link RedisError} on an error reply (the connection stays usable), with
   * {@link ProtocolError} on a reply that is no pub/sub notification (the
   * connection is then closed), and with the fatal error once it is broken.
   */
  receive(): Promise<PubSubNotification> {
    return this.next(0, null);
  }

  /**
   * `receive` with a deadline (0 = none). Passing it rejects with
   * {@link TimeoutError} and breaks the connection, as any abandoned read does
   * (its `err()` is then a ConnClosedError whose `cause` is the TimeoutError).
   * Rejects with `RangeError` on a negative or non-finite timeout.
   */
  receiveWithTimeout(timeoutMs: number): Promise<PubSubNotification> {
    if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(new RangeError(`redisconn: timeout must be a non-negative number of ms, got ${timeoutMs}`));
    }
    return this.next(timeoutMs, null);
  }

  /** `receive` cancelled by `signal` (rejects with its reason); aborting breaks the connection. */
  receiveWithSignal(signal: AbortSignal): Promise<PubSubNotification> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.next(0, signal);
  }

  /**
   * Closes the connection. Reads in flight are cancelled, which breaks the
   * connection (a pooled one is then discarded rather than reused); without
   * them a pooled connection is unsubscribed and reused. Safe to call twice.
   */
  close(): Promise<void> {
    if (this.closing === null) {
      const reason = new ConnClosedError('redisconn: pub/sub connection closed');
      for (const reader of this.readers) reader.abort(reason);
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
   * including the connection being closed by the server or underneath.
   * Leaving the loop early (`break`) does not close the connection.
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

  private async next(timeoutMs: number, signal: AbortSignal | null): Promise<PubSubNotification> {
    const reply = await this.read(timeoutMs, signal);
    const notification = toNotification(reply);
    if (notification !== null) return notification;
    await this.close();
    throw new ProtocolError(`redisconn: unexpected reply in pub/sub mode: ${describe(reply)}`);
  }

  /** One reply from the connection, cancellable by the deadline, `signal` and `close()`. */
  private async read(timeoutMs: number, signal: AbortSignal | null): Promise<Reply> {
    const reader = new AbortController();
    const onAbort = (): void => reader.abort(signal?.reason);
    const timer = timeoutMs > 0 ? setTimeout(() => reader.abort(new TimeoutError(`redisconn: no pub/sub notification within ${timeoutMs} ms`)), timeoutMs) : null;
    signal?.addEventListener('abort', onAbort, { once: true });
    this.readers.add(reader);
    try {
      return await this.conn.receiveWithSignal(reader.signal);
    } finally {
      this.readers.delete(reader);
      if (timer !== null) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
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

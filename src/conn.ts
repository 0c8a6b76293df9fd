/**
 * Conn: one exclusive connection to a Redis server, with redigo's
 * `do / send / flush / receive` model.
 *
 * Replies are matched to calls in the order the calls claimed them: `do`
 * claims every reply still owed plus its own, `receive` claims the next one.
 * Any fatal error (I/O, EOF, protocol, timeout, abort, close) breaks the
 * connection once: `err()` returns it and every later call rejects with it.
 */
import { AsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { SUBSCRIPTION_KINDS } from './commands.js';
import { checkTimeoutMs, formatMs } from './deadline.js';
import { commandChannel, type CommandTraceContext, type ConnectionKind } from './diagnostics.js';
import { ConnClosedError, ProtocolError, RedisError, TimeoutError } from './errors.js';
import { Fifo } from './fifo.js';
import { Decoder, NEED_MORE, type Reply } from './resp/decode.js';
import { CommandWriter, type Arg } from './resp/encode.js';

/** An exclusive Redis connection. Not for concurrent use by unrelated callers. */
export interface Conn extends AsyncDisposable {
  /**
   * Sends a command (plus anything buffered by `send`) and reads every reply
   * still owed, then this one. Resolves the last reply; rejects with the first
   * error reply among them (a {@link RedisError}; the connection stays usable),
   * or with the fatal error when the connection breaks. `do('')` only flushes
   * and resolves the array of all owed replies, error replies included as values.
   * A bad argument rejects with `TypeError` before anything is written.
   * Not for (P|S)SUBSCRIBE and their unsubscribes, which answer once per
   * channel: use `PubSubConn` (send + receive) for those.
   */
  do(cmd: string, ...args: Arg[]): Promise<Reply>;
  /** `do` with its own read deadline instead of the connection's read timeout. */
  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply>;
  /** `do` cancelled by `signal`. Aborting breaks the connection (its replies would be lost). */
  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply>;
  /**
   * Buffers a command without writing it. Throws `TypeError` on a bad
   * argument (nothing buffered) and the fatal error on a broken connection.
   */
  send(cmd: string, ...args: Arg[]): void;
  /** Writes what `send` buffered; resolves once handed to the OS. */
  flush(): Promise<void>;
  /**
   * The next reply. An error reply rejects with {@link RedisError}. Waits
   * without the read timeout when no reply is owed (pub/sub listening).
   */
  receive(): Promise<Reply>;
  /** `receive` with a deadline; passing it breaks the connection. */
  receiveWithTimeout(timeoutMs: number): Promise<Reply>;
  /** `receive` cancelled by `signal`; aborting breaks the connection. */
  receiveWithSignal(signal: AbortSignal): Promise<Reply>;
  /** Null while usable; the fatal error once broken or closed. */
  err(): Error | null;
  /**
   * Closes the connection. Safe to call twice. A connection from `dial` is
   * closed at once: calls still in flight reject with ConnClosedError. One
   * from a pool (`get`, `lease`) goes back to it: calls in flight settle
   * first (bounded by the pool's reset deadline), and the connection is only
   * reused once nothing is owed on it.
   */
  close(): Promise<void>;
  /** The RESP version spoken: 2, or 3 after `HELLO 3`. */
  readonly protocol: 2 | 3;
  /** The connection's read timeout in ms (0 = none); see {@link ConnOptions.readTimeoutMs}. */
  readonly readTimeoutMs: number;
  /**
   * Calls waiting on this connection (a `do` or `receive` not yet settled)
   * plus replies owed to `send` that nobody has read. 0 means nothing is in
   * flight: the connection could be handed to someone else as it is.
   */
  inFlight(): number;
}

/** Options of {@link newConn}. */
export interface ConnOptions {
  /**
   * Deadline for each owed reply, in ms (0 = none; default 0): a reply must
   * arrive whole within this long of becoming the one awaited (when its call
   * was made, or when the reply before it arrived). Bytes of a reply that
   * trickle in do not extend it. Passing it rejects the waiting calls with
   * `TimeoutError` and breaks the connection.
   */
  readTimeoutMs?: number;
  /** Deadline for a backed-up write to drain. 0 = none. Default 0. */
  writeTimeoutMs?: number;
  /** Return bulk strings as UTF-8 strings instead of Buffers. */
  decodeStrings?: boolean;
  /** Protocol spoken on this socket (set after a successful `HELLO 3`). */
  protocol?: 2 | 3;
  /** Name used in error messages, e.g. the dialed address. */
  name?: string;
  /** Largest reply accepted, in bytes on the wire (aggregates included). Default 512 MiB. */
  maxReplyBytes?: number;
  /**
   * Host name (or unix socket path) of the server, as dialed: reported to
   * tracing (`redisconn:command`'s `serverAddress`) only. Default ''.
   */
  host?: string;
  /** TCP port of the server, reported to tracing only. Default undefined. */
  port?: number;
  /** Database selected on the socket, reported to tracing only (nothing is sent). Default 0. */
  db?: number;
}

const enum ClaimKind {
  /** `do`: the owed replies; settles with the last one or the first error. */
  Do,
  /** `do('')`: the owed replies as an array, errors included. */
  Drain,
  /** `receive`: the next reply of any kind. */
  Receive,
}

/** A RESP3 push that is not an answer to a command (a message, an invalidation). */
class OutOfBand {
  constructor(readonly reply: Reply) {}
}

type Inbound = Reply | OutOfBand;


function pushKind(reply: Reply): string {
  const first = Array.isArray(reply) ? reply[0] : undefined;
  return typeof first === 'string' ? first : Buffer.isBuffer(first) ? first.toString('latin1') : '';
}

/** One outstanding read: a call waiting for `remaining` replies. */
class Claim {
  remaining: number;
  last: Reply = null;
  error: RedisError | null = null;
  readonly all: Reply[] | null;
  resolve!: (reply: Reply) => void;
  reject!: (err: unknown) => void;
  timer: NodeJS.Timeout | null = null;
  signal: AbortSignal | null = null;
  /** False for a `receive` made with no reply owed: it listens for pushes / pub/sub. */
  owed = true;
  /** True when the connection's read timeout applies (no own deadline, a reply is owed). */
  usesReadTimeout = false;

  constructor(
    readonly conn: NetConn,
    readonly kind: ClaimKind,
    count: number,
  ) {
    this.remaining = count;
    this.all = kind === ClaimKind.Drain ? [] : null;
  }

  /** Takes one reply; true when the claim is now complete. */
  take(reply: Reply): boolean {
    if (this.all !== null) this.all.push(reply);
    else {
      this.last = reply;
      if (this.error === null && reply instanceof RedisError) this.error = reply;
    }
    return --this.remaining <= 0;
  }

  settle(): void {
    this.disarm();
    if (this.all !== null) this.resolve(this.all);
    else if (this.error !== null) this.reject(this.error);
    else this.resolve(this.last);
  }

  fail(err: unknown): void {
    this.disarm();
    this.reject(err);
  }

  disarm(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.signal !== null) {
      this.signal.removeEventListener('abort', this);
      this.signal = null;
    }
  }

  /** The abort listener (an object listener, so no closure per call). */
  handleEvent(): void {
    const reason: unknown = this.signal?.reason;
    this.conn.abandon(this, reason, new ConnClosedError(`redisconn: ${this.conn.name}: connection closed: a call was aborted`, { cause: reason }));
  }
}

function claimTimedOut(claim: Claim, timeoutMs: number): void {
  claim.timer = null;
  const err = new TimeoutError(`redisconn: ${claim.conn.name}: no reply within ${formatMs(timeoutMs)} ms`);
  claim.conn.abandon(claim, err, err);
}

/** The read deadline's timer fired (a function, not a closure per arm). */
function readTimerFired(conn: NetConn): void {
  conn.checkReadDeadline();
}

/** Writes what the calls of one tick queued, in one write (see NetConn.call). */
function flushQueued(conn: NetConn): void {
  conn.writeQueued();
}

function isReply(item: Inbound): boolean {
  return !(item instanceof OutOfBand);
}

// ---- Tracing (`redisconn:command`) ------------------------------------------
//
// Nothing here runs while nobody subscribes: a NetConn checks
// `commandChannel.hasSubscribers` once per command it encodes, and otherwise
// only tests its `tracer` field (null) per write and per reply.

/** Subscribe-family commands, upper case, to the kind of push that confirms them. */
const CONFIRMED_BY: ReadonlyMap<string, string> = new Map([...SUBSCRIPTION_KINDS].map((kind) => [kind.toUpperCase(), kind]));

/** Commands a RESP2 connection in subscribed mode accepts (their replies stay apart from messages). */
const PUBSUB_COMMANDS: ReadonlySet<string> = new Set([...CONFIRMED_BY.keys(), 'PING', 'QUIT', 'RESET']);

/** What kind of value a reply decoded to (see CommandTraceContext.reply). */
function replyKind(reply: Reply, isPush: boolean, protocol: 2 | 3): string {
  if (isPush) return 'push';
  switch (typeof reply) {
    case 'string':
      return 'string';
    case 'number':
      return protocol === 3 && !Number.isInteger(reply) ? 'double' : 'integer';
    case 'bigint':
      return protocol === 3 ? 'bignumber' : 'integer';
    case 'boolean':
      return 'boolean';
  }
  if (reply === null) return 'null';
  if (Buffer.isBuffer(reply)) return 'bulk';
  if (Array.isArray(reply)) return 'array';
  if (reply instanceof Map) return 'map';
  if (reply instanceof Set) return 'set';
  return 'unknown';
}

/** The stable `code` of an error that has one (every redisconn error does). */
function errorCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Publishes `start` and `end` (run in the async context the command was issued in). */
function publishWrite(context: CommandTrace): void {
  commandChannel.start.publish(context);
  commandChannel.end.publish(context);
}

/**
 * The context of one traced command (see CommandTraceContext). What the
 * tracer keeps about it is in private fields, so subscribers see only the
 * documented ones.
 */
class CommandTrace implements CommandTraceContext {
  readonly command: string;
  readonly argCount: number;
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly db: number;
  readonly connection: ConnectionKind;
  readonly source: object | undefined;
  batchSize = 0;
  reply: string | undefined = undefined;
  error: unknown = undefined;
  errorCode: string | undefined = undefined;
  /** Replies of untraced commands due before this one's. */
  #skip: number;
  /** The async context the command was issued in: `start` is published in it. */
  readonly #scope: AsyncResource;

  constructor(command: string, argCount: number, conn: NetConn, skip: number) {
    this.command = command;
    this.argCount = argCount;
    this.serverAddress = conn.serverAddress;
    this.serverPort = conn.serverPort;
    this.db = conn.db;
    this.connection = conn.connectionKind;
    this.source = conn.traceSource;
    this.#skip = skip;
    this.#scope = new AsyncResource('redisconn:command');
  }

  /** A reply of an untraced command ahead of this one arrived: true when it was one this context waited past. */
  skipped(): boolean {
    if (this.#skip === 0) return false;
    this.#skip--;
    return true;
  }

  /** Whether replies of untraced commands are still due before this one's. */
  waitsPast(): boolean {
    return this.#skip > 0;
  }

  written(batchSize: number): void {
    this.batchSize = batchSize;
    this.#scope.runInAsyncScope(publishWrite, null, this);
  }

  answered(reply: Reply, isPush: boolean, protocol: 2 | 3): void {
    if (reply instanceof RedisError) {
      this.error = reply;
      this.errorCode = reply.code;
      commandChannel.error.publish(this);
    } else {
      this.reply = replyKind(reply, isPush, protocol);
    }
    commandChannel.asyncStart.publish(this);
    commandChannel.asyncEnd.publish(this);
  }

  failed(err: unknown, code: string | undefined): void {
    this.error = err;
    this.errorCode = code;
    commandChannel.error.publish(this);
    commandChannel.asyncStart.publish(this);
    commandChannel.asyncEnd.publish(this);
  }
}

/**
 * Matches a connection's traced commands to their replies. Made when a
 * command is encoded with a subscriber present; dropped once nothing traced
 * is owed and nobody subscribes.
 *
 * Matching: replies come in the order commands were written; each context
 * takes the reply in its place, after the replies of untraced commands ahead
 * of it (commands encoded before anyone subscribed, or during the dial's
 * handshake). Messages and other out-of-band pushes (RESP3 invalidations)
 * never take a context. A subscribe-family command's context is ended by
 * the first confirmation of its kind; the others of the same command (one
 * per channel) are absorbed: as many as it named channels, or for an
 * unsubscribe from all, those whose subscription count keeps falling by
 * one. On RESP2, where messages and confirmations are plain arrays, an
 * array shaped as one counts as one while the connection is known to be
 * subscribed or the command awaited is one subscribed mode allows
 * (SUBSCRIBE..., PING, QUIT, RESET).
 */
class CommandTracer {
  /** Written, awaiting their replies, in order. */
  private readonly owed = new Fifo<CommandTrace>();
  /** Encoded, not written yet. */
  private unwritten: CommandTrace[] = [];
  /** The other array `unwritten` swaps with at each write (no array per write). */
  private spare: CommandTrace[] = [];
  /** Untraced commands in the next write (for `batchSize`). */
  private untracedUnwritten = 0;
  /** Replies due to untraced commands after the last context. */
  private tail: number;
  /** A subscription confirmation with a count > 0 was seen (RESP2 classification). */
  private subscribed = false;
  /** The push kind whose further confirmations belong to the command answered last. */
  private absorbKind: string | null = null;
  /** How many more to absorb; -1: as many as the server sends (an unsubscribe from all). */
  private absorbLeft = 0;
  /** The count of the last confirmation absorbed under absorbLeft -1. */
  private absorbCount = 0;

  constructor(
    private readonly conn: NetConn,
    ahead: number,
  ) {
    this.tail = ahead;
  }

  /** Nothing traced is owed, nor any untraced reply counted. */
  idle(): boolean {
    return this.owed.length === 0 && this.unwritten.length === 0 && this.tail === 0;
  }

  traced(command: string, argCount: number): void {
    this.unwritten.push(new CommandTrace(command.toUpperCase(), argCount, this.conn, this.tail));
    this.tail = 0;
  }

  untraced(): void {
    this.tail++;
    this.untracedUnwritten++;
  }

  /** What was encoded went out in one write. */
  written(): void {
    const batch = this.unwritten;
    const size = batch.length + this.untracedUnwritten;
    this.untracedUnwritten = 0;
    if (batch.length === 0) return;
    this.unwritten = this.spare;
    for (const context of batch) {
      this.owed.push(context);
      context.written(size);
    }
    batch.length = 0;
    this.spare = batch;
  }

  /** A reply (or push) arrived; `outOfBand` pushes answer no command. */
  reply(reply: Reply, isPush: boolean, outOfBand: boolean): void {
    if (outOfBand) return;
    if (isPush) {
      this.confirmation(pushKind(reply), reply as Reply[], true);
      return;
    }
    if (this.conn.protocol === 2 && Array.isArray(reply) && (reply.length === 3 || reply.length === 4) && this.maySubscribe()) {
      const kind = pushKind(reply);
      if (kind === 'message' || kind === 'pmessage' || kind === 'smessage') return;
      if (reply.length === 3 && SUBSCRIPTION_KINDS.has(kind)) {
        this.confirmation(kind, reply, false);
        return;
      }
    }
    this.absorbKind = null;
    const head = this.next();
    if (head === undefined) return;
    this.owed.shift();
    head.answered(reply, isPush, this.conn.protocol);
  }

  /** The connection broke: every context written and not answered ends with `err`. */
  fail(err: unknown): void {
    const code = errorCodeOf(err);
    for (const context of this.owed.drain()) context.failed(err, code);
    this.unwritten.length = 0; // never written: never started
    this.tail = 0;
  }

  /**
   * The written context the next reply answers; undefined when the reply is
   * one of an untraced command (counted off) or answers nothing known.
   */
  private next(): CommandTrace | undefined {
    const head = this.owed.peek();
    if (head !== undefined) return head.skipped() ? undefined : head;
    const first = this.unwritten[0];
    if (first !== undefined) first.skipped();
    else if (this.tail > 0) this.tail--;
    return undefined;
  }

  /** RESP2: whether an array could be a message or a confirmation rather than an answer. */
  private maySubscribe(): boolean {
    if (this.subscribed) return true;
    const head = this.owed.peek();
    return head !== undefined && !head.waitsPast() && PUBSUB_COMMANDS.has(head.command);
  }

  private confirmation(kind: string, reply: Reply[], isPush: boolean): void {
    const count = reply[2];
    if (typeof count === 'number') {
      if (kind === 'subscribe' || kind === 'psubscribe' || kind === 'ssubscribe') {
        if (count > 0) this.subscribed = true;
      } else if (count === 0) {
        this.subscribed = false;
      }
    }
    // The other confirmations of the command answered last (one per channel).
    if (this.absorbKind === kind) {
      if (this.absorbLeft > 0) {
        this.absorbLeft--;
        return;
      }
      // An unsubscribe from all: one per channel, the count falling by one each time.
      if (this.absorbLeft < 0 && reply[1] !== null && count === this.absorbCount - 1) {
        this.absorbCount = count;
        return;
      }
    }
    this.absorbKind = null;
    const head = this.next();
    // A confirmation no traced command waits for (an extra one) consumes nothing.
    if (head === undefined || CONFIRMED_BY.get(head.command) !== kind) return;
    this.owed.shift();
    if (head.argCount !== 1) {
      this.absorbKind = kind;
      this.absorbLeft = head.argCount === 0 ? -1 : head.argCount - 1;
      this.absorbCount = typeof count === 'number' ? count : 0;
    }
    head.answered(reply, isPush, this.conn.protocol);
  }
}


/** The socket-backed {@link Conn}. Create with `dial`, `dialURL` or {@link newConn}. */
class NetConn implements Conn {
  readonly name: string;
  protocol: 2 | 3;
  private readonly socket: Socket;
  private readonly decoder: Decoder;
  private readonly writer = new CommandWriter();
  private readonly claims = new Fifo<Claim>();
  /** Replies that arrived before anyone claimed them (and parked pushes). */
  private readonly inbox = new Fifo<Inbound>();
  /** Commands written whose replies nobody has claimed yet. */
  private pending = 0;
  private fatal: Error | null = null;
  private closed: Promise<void> | null = null;
  readonly readTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private writeTimer: NodeJS.Timeout | null = null;
  /**
   * When the awaited reply is due (performance.now() ms), or 0 when no call
   * under the read timeout is waiting. Moved forward once per chunk that
   * completes a reply; the one timer below re-arms itself for what is left.
   */
  private readDeadline = 0;
  private readTimer: NodeJS.Timeout | null = null;
  /** A write of the commands `do` queued is scheduled for the end of this tick. */
  private writeScheduled = false;
  /** Where the server is, for tracing (ConnOptions `host`, `port`, `db`). */
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly db: number;
  /** How this connection is used, for tracing; set by the pool that lends or uses it. (package-internal) */
  connectionKind: ConnectionKind = 'direct';
  /** The pool (or cluster, sentinel pool) using this connection, for tracing. (package-internal) */
  traceSource: object | undefined = undefined;
  /** False while `dial` runs the handshake: those commands are not traced. (package-internal) */
  traceCommands = true;
  /** Matches traced commands to replies; null while nothing is traced (see CommandTracer). */
  private tracer: CommandTracer | null = null;

  constructor(socket: Socket, options: ConnOptions = {}) {
    this.socket = socket;
    this.name = options.name ?? `${socket.remoteAddress ?? 'socket'}:${socket.remotePort ?? ''}`;
    this.protocol = options.protocol ?? 2;
    this.readTimeoutMs = checkTimeoutMs('readTimeoutMs', options.readTimeoutMs ?? 0);
    this.writeTimeoutMs = checkTimeoutMs('writeTimeoutMs', options.writeTimeoutMs ?? 0);
    this.decoder = new Decoder({ decodeStrings: options.decodeStrings ?? false, maxReplyBytes: options.maxReplyBytes });
    this.serverAddress = options.host ?? '';
    this.serverPort = options.port;
    this.db = options.db ?? 0;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: Error) => this.fail(new ConnClosedError(`redisconn: ${this.name}: ${err.message}`, { cause: err })));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.clearWriteTimer());
  }

  err(): Error | null {
    return this.fatal;
  }

  inFlight(): number {
    return this.claims.length + this.pending;
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.call(cmd, args, 0, null);
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    try {
      checkTimeoutMs('timeoutMs', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.call(cmd, args, timeoutMs, null);
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.call(cmd, args, 0, signal);
  }

  send(cmd: string, ...args: Arg[]): void {
    if (this.fatal !== null) throw this.fatal;
    this.writer.write(cmd, args);
    if (this.tracer !== null || commandChannel.hasSubscribers) this.trace(cmd, args.length);
    this.pending++;
  }

  flush(): Promise<void> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      if (!this.writeOut(resolve, reject)) resolve();
    });
  }

  receive(): Promise<Reply> {
    return this.read(0, null);
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    try {
      checkTimeoutMs('timeoutMs', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.read(timeoutMs, null);
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return this.read(0, signal);
  }

  close(): Promise<void> {
    if (this.closed === null) {
      this.fail(new ConnClosedError(`redisconn: ${this.name}: connection closed`));
      this.closed = this.socket.closed
        ? Promise.resolve()
        : new Promise((resolve) => this.socket.once('close', () => resolve()));
    }
    return this.closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private call(cmd: string, args: Arg[], timeoutMs: number, signal: AbortSignal | null): Promise<Reply> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    let kind = ClaimKind.Do;
    if (cmd === '') {
      kind = ClaimKind.Drain;
    } else {
      try {
        this.writer.write(cmd, args);
      } catch (err) {
        return Promise.reject(err);
      }
      if (this.tracer !== null || commandChannel.hasSubscribers) this.trace(cmd, args.length);
      this.pending++;
    }
    const count = this.pending;
    this.pending = 0;
    // Every `do` of this tick goes out in one write: callers that fan out
    // (Promise.all, many requests) share one syscall instead of one each.
    if (!this.writeScheduled) {
      this.writeScheduled = true;
      process.nextTick(flushQueued, this);
    }
    return this.claim(kind, count, timeoutMs, signal);
  }

  private read(timeoutMs: number, signal: AbortSignal | null): Promise<Reply> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    const owed = this.pending > 0;
    if (owed) this.pending--;
    // Fast path of a pipeline's receives: the reply is already here and nobody
    // waits ahead, so it is handed over without a Claim (what claim() +
    // takeFromInbox() would do, minus the allocations).
    if (this.claims.length === 0 && this.inbox.length > 0) {
      const item = this.inbox.shift() as Inbound;
      const reply = item instanceof OutOfBand ? item.reply : item;
      return reply instanceof RedisError ? Promise.reject(reply) : Promise.resolve(reply);
    }
    return this.claim(ClaimKind.Receive, 1, timeoutMs, signal, owed);
  }

  private claim(kind: ClaimKind, count: number, timeoutMs: number, signal: AbortSignal | null, owed = count > 0): Promise<Reply> {
    const claim = new Claim(this, kind, count);
    claim.owed = owed;
    const promise = new Promise<Reply>((resolve, reject) => {
      claim.resolve = resolve;
      claim.reject = reject;
    });
    if (this.takeFromInbox(claim)) {
      claim.settle();
      return promise;
    }
    if (timeoutMs > 0) claim.timer = setTimeout(claimTimedOut, timeoutMs, claim, timeoutMs);
    else claim.usesReadTimeout = owed && this.readTimeoutMs > 0;
    if (signal !== null) {
      claim.signal = signal;
      signal.addEventListener('abort', claim);
    }
    this.claims.push(claim);
    if (claim.usesReadTimeout && this.readDeadline === 0 && this.awaitedClaim() === claim) this.startReadDeadline();
    return promise;
  }

  /**
   * Satisfies a new claim from replies that arrived unclaimed; true when
   * complete. A claim owed nothing (`do('')` with nothing pending) completes
   * at once only when no call is waiting ahead of it: otherwise it settles in
   * turn, after them, so `do('')` also means "after everything before me".
   */
  private takeFromInbox(claim: Claim): boolean {
    const inbox = this.inbox;
    if (claim.remaining === 0) return this.claims.length === 0;
    if (inbox.length === 0 || this.claims.length > 0) return false;
    if (claim.kind === ClaimKind.Receive) {
      const item = inbox.shift() as Inbound;
      return claim.take(item instanceof OutOfBand ? item.reply : item);
    }
    // A `do` takes replies only; parked pushes stay for a later `receive`.
    for (;;) {
      const item = inbox.peek() instanceof OutOfBand ? inbox.removeFirst(isReply) : inbox.shift();
      if (item === undefined) return false;
      if (claim.take(item as Reply)) return true;
    }
  }

  /** Writes the commands queued by `do` calls (scheduled once per tick). */
  writeQueued(): void {
    this.writeScheduled = false;
    if (this.fatal === null) this.writeOut(null, null);
  }

  /**
   * Writes what the writer holds. `done`/`failed` are called when the bytes
   * reach the OS or the write fails. Returns false when there was nothing.
   */
  private writeOut(done: (() => void) | null, failed: ((err: unknown) => void) | null): boolean {
    const data = this.writer.take();
    if (data === null) return false;
    if (this.tracer !== null) this.tracer.written();
    const socket = this.socket;
    const callback = done === null ? undefined : (err?: Error | null) => (err ? (failed as (e: unknown) => void)(this.fatal ?? err) : done());
    let flowing: boolean;
    if (Buffer.isBuffer(data)) {
      flowing = socket.write(data, callback);
    } else {
      socket.cork();
      const last = data.length - 1;
      flowing = true;
      for (let i = 0; i < last; i++) flowing = socket.write(data[i] as Buffer);
      flowing = socket.write(data[last] as Buffer, callback) && flowing;
      socket.uncork();
    }
    if (!flowing && this.writeTimeoutMs > 0 && this.writeTimer === null) {
      this.writeTimer = setTimeout(() => {
        this.writeTimer = null;
        this.fail(new TimeoutError(`redisconn: ${this.name}: write did not complete within ${this.writeTimeoutMs} ms`));
      }, this.writeTimeoutMs);
    }
    return true;
  }

  private clearWriteTimer(): void {
    if (this.writeTimer !== null) {
      clearTimeout(this.writeTimer);
      this.writeTimer = null;
    }
  }

  private onData(chunk: Buffer): void {
    const decoder = this.decoder;
    decoder.feed(chunk);
    let replies = 0;
    for (;;) {
      let reply: Reply | typeof NEED_MORE;
      try {
        reply = decoder.next();
      } catch (err) {
        this.fail(err instanceof ProtocolError ? err : new ProtocolError(String(err)));
        return;
      }
      if (reply === NEED_MORE || this.fatal !== null) break;
      const isPush = decoder.isPush;
      // Subscription confirmations answer a command; every other push arrives unasked.
      const outOfBand = isPush && !SUBSCRIPTION_KINDS.has(pushKind(reply));
      // An unasked push answers nobody: it does not move the awaited reply's deadline.
      if (!outOfBand) replies++;
      if (this.tracer !== null) this.tracer.reply(reply, isPush, outOfBand);
      this.dispatch(reply, isPush, outOfBand);
    }
    if (this.tracer !== null && this.tracer.idle() && !commandChannel.hasSubscribers) this.tracer = null;
    // The replies of one chunk arrived together: the next one awaited is due
    // a read timeout from now. Bytes that complete no reply move nothing.
    if (replies > 0 && this.readTimeoutMs > 0 && this.fatal === null) this.restartReadDeadline();
  }

  /** The claim the next reply goes to: the oldest owed one (a listener ahead does not count). */
  private awaitedClaim(): Claim | undefined {
    const head = this.claims.peek();
    return head === undefined || head.owed ? head : this.firstOwedClaim();
  }

  /** Starts the deadline of the awaited reply now, if its call is under the read timeout. */
  private restartReadDeadline(): void {
    const awaited = this.awaitedClaim();
    if (awaited === undefined || !awaited.usesReadTimeout) {
      this.readDeadline = 0;
      return;
    }
    this.startReadDeadline();
  }

  private startReadDeadline(): void {
    this.readDeadline = performance.now() + this.readTimeoutMs;
    this.readTimer ??= setTimeout(readTimerFired, this.readTimeoutMs, this);
  }

  /** The read timer fired: fail if the awaited reply is late, else wait for what is left. */
  checkReadDeadline(): void {
    this.readTimer = null;
    if (this.readDeadline === 0 || this.fatal !== null) return;
    const left = this.readDeadline - performance.now();
    if (left > 0.5) {
      this.readTimer = setTimeout(readTimerFired, Math.ceil(left), this);
      return;
    }
    this.fail(new TimeoutError(`redisconn: ${this.name}: no reply within ${formatMs(this.readTimeoutMs)} ms`));
  }

  /**
   * Hands a reply to the oldest claim. In RESP3 a reply that is not a push
   * answers a command, so it skips `receive` calls that only listen (nothing
   * owed) and goes to the oldest call owed a reply, when there is one.
   * A listening `receive` that takes an answer settles one owed reply, as in
   * redigo (the count never goes below 0).
   */
  private dispatch(reply: Reply, isPush: boolean, outOfBand: boolean): void {
    const head = this.claims.peek();
    let claim = head;
    if (head !== undefined && !head.owed && !isPush && this.protocol === 3) claim = this.firstOwedClaim() ?? head;
    if (claim === undefined || (outOfBand && claim.kind !== ClaimKind.Receive)) {
      this.inbox.push(outOfBand ? new OutOfBand(reply) : reply);
      return;
    }
    if (!claim.owed && !outOfBand && this.pending > 0) this.pending--;
    if (claim.take(reply)) {
      if (claim === head) this.claims.shift();
      else this.claims.remove(claim);
      claim.settle();
      // Parked pushes go to the receives now first in line, and claims owed
      // nothing settle in turn; each may bring the other to the head.
      for (;;) {
        if (this.inbox.length > 0) this.handParkedToReceives();
        const next = this.claims.peek();
        if (next === undefined || next.remaining !== 0) break;
        this.settleEmptyHeads();
      }
    }
  }

  /** Settles the claims owed nothing that were waiting for the ones before them. */
  private settleEmptyHeads(): void {
    for (let next = this.claims.peek(); next !== undefined && next.remaining === 0; next = this.claims.peek()) {
      this.claims.shift();
      next.settle();
    }
  }

  /**
   * Pushes parked while a `do` was first in line go to the `receive` calls
   * now first in line, in arrival order (a message that came during a BLPOP
   * belongs to the receive queued behind it).
   */
  private handParkedToReceives(): void {
    for (let next = this.claims.peek(); next !== undefined && next.kind === ClaimKind.Receive && this.inbox.length > 0; next = this.claims.peek()) {
      const item = this.inbox.shift() as Inbound;
      this.claims.shift();
      next.take(item instanceof OutOfBand ? item.reply : item);
      next.settle();
    }
  }

  /** The oldest waiting claim owed a reply (rare path: only behind a listener). */
  private firstOwedClaim(): Claim | undefined {
    for (const claim of this.claims) if (claim.owed) return claim;
    return undefined;
  }

  private onClose(): void {
    if (this.fatal !== null) return;
    const midReply = this.decoder.hasPartial ? ' in the middle of a reply' : '';
    this.fail(new ConnClosedError(`redisconn: ${this.name}: connection closed by the server${midReply}`));
  }

  /**
   * A command was encoded with a subscriber present, or while a tracer is
   * still matching (called before `pending` counts it). Handshake commands
   * and those encoded with nobody subscribed are counted, not traced.
   */
  private trace(cmd: string, argCount: number): void {
    let tracer = this.tracer;
    if (this.traceCommands && commandChannel.hasSubscribers) {
      tracer ??= this.tracer = new CommandTracer(this, this.repliesOwed());
      tracer.traced(cmd, argCount);
    } else if (tracer !== null) {
      tracer.untraced();
    }
  }

  /**
   * Replies the server still owes for the commands encoded so far (when
   * tracing starts: they come before any traced one). RESP2 pub/sub messages
   * parked unclaimed make it an underestimate, never below 0.
   */
  private repliesOwed(): number {
    let owed = this.pending;
    for (const item of this.inbox) if (isReply(item)) owed--;
    for (const claim of this.claims) if (claim.owed) owed += claim.remaining;
    return owed > 0 ? owed : 0;
  }

  /** A claim gave up (timeout, abort): its reply will never be read, so the stream is lost. */
  abandon(claim: Claim, callerError: unknown, fatal: Error): void {
    if (this.claims.remove(claim)) claim.fail(callerError);
    this.fail(fatal);
  }

  /** Breaks the connection once: records `err`, fails every waiting call, drops the socket. */
  private fail(err: Error): void {
    if (this.fatal !== null) return;
    this.fatal = err;
    this.clearWriteTimer();
    this.readDeadline = 0;
    if (this.readTimer !== null) {
      clearTimeout(this.readTimer);
      this.readTimer = null;
    }
    this.writer.release();
    this.decoder.release();
    this.inbox.drain();
    this.pending = 0;
    const tracer = this.tracer;
    if (tracer !== null) {
      this.tracer = null;
      tracer.fail(err);
    }
    for (const claim of this.claims.drain()) claim.fail(err);
    this.socket.destroy();
  }
}

/**
 * Wraps a connected socket (TCP, TLS or unix) in a {@link Conn}. The socket
 * must be connected and not yet read from; no handshake is done here.
 */
export function newConn(socket: Socket, options: ConnOptions = {}): Conn {
  return new NetConn(socket, options);
}

/**
 * Records how `conn` is used (and by which pool), as its traced commands
 * report it; called by the pool each time it lends or uses a connection.
 * Connections that are not a NetConn (wrappers) are left alone.
 * (package-internal)
 */
export function setConnectionKind(conn: Conn, kind: ConnectionKind, source: object | undefined): void {
  if (conn instanceof NetConn) {
    conn.connectionKind = kind;
    conn.traceSource = source;
  }
}

export type { NetConn };

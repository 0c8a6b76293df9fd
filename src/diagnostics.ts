/**
 * Tracing through `node:diagnostics_channel`: redisconn publishes
 * TracingChannels any tracer can subscribe to without patching the client
 * (as undici and Fastify do). Names and context shapes are public API.
 *
 * - `redisconn:command`: one per command written to a server, from the write
 *   to its reply: `start`/`end` when it goes out (with the batch it went out
 *   in), `asyncStart`/`asyncEnd` when its reply arrives (`reply` set), or
 *   `error` (an error reply: `error` and `errorCode` set; the connection
 *   failing — I/O error, timeout, abort, close — `error` and `errorCode` set,
 *   e.g. `REDIS_TIMEOUT`, for every command still owed) then
 *   `asyncStart`/`asyncEnd`. Every context that got `start` gets `asyncEnd`.
 *   `start`/`end` run in the async context of the call that issued the
 *   command (`do`, `send`, `pool.do`), even when its write happens later in
 *   a batch with others' commands, so the span active there is the parent.
 *   A command encoded but never written (the connection broke first)
 *   publishes nothing. Commands encoded while nobody subscribed are never
 *   published, and replies still match when a subscriber comes mid-pipeline.
 *   Messages and other out-of-band pushes never end a command's context; a
 *   subscribe-family command's context ends with its first confirmation (the
 *   others, one per channel, are passed over). The
 *   handshake `dial` runs (AUTH, HELLO, CLIENT SETNAME, SELECT, READONLY) is
 *   not traced here: `redisconn:connect` covers it.
 * - `redisconn:pool:get`: one per borrow from a pool (`Pool.get`, a lease
 *   moving), `start` when asked, `asyncStart`/`asyncEnd` (or `error`) when
 *   it settles.
 * - `redisconn:connect`: one per dial (connect and handshake) of a parsed
 *   address (`dial`, `dialURL`): `start` when asked, `asyncStart`/`asyncEnd`
 *   (or `error`) when it settles, `durationMs` and `outcome` set by then.
 *
 * Nobody subscribed: the hot paths check `hasSubscribers` once (per
 * command encoded, per `Pool.get`, per dial), a connection tests one field
 * per write and per reply, and nothing is allocated.
 */
import diagnostics from 'node:diagnostics_channel';

/** Which kind of connection a command ran on. */
export type ConnectionKind = 'shared' | 'lease' | 'exclusive' | 'direct';

/** Context of `redisconn:command`. Argument values are never included. */
export interface CommandTraceContext {
  /** The command name as given, upper-cased (`GET`, `CLUSTER`, ...). */
  readonly command: string;
  /** Arguments after the command name. */
  readonly argCount: number;
  /** Host (or unix socket path) of the server. */
  readonly serverAddress: string;
  /** TCP port; undefined on a unix socket. */
  readonly serverPort: number | undefined;
  /**
   * Database index selected on the connection by the dial (a SELECT run
   * later is not followed; a pooled connection that ran one is closed on
   * return). 0 for `newConn` unless given.
   */
  readonly db: number;
  /**
   * The pool's shared connection, a lease's (once it moved off the shared
   * one), an exclusive borrow's (`pool.get()`), or one dialed directly.
   * Set by the pool each time it lends or uses a connection.
   */
  readonly connection: ConnectionKind;
  /**
   * The object the connection is lent or used by: the Pool (or the cluster
   * or sentinel pool that owns it); undefined for a connection from `dial`.
   */
  readonly source: object | undefined;
  /** Commands written in the same write as this one (1 for a lone `do`). */
  batchSize: number;
  /**
   * The kind of value the reply decoded to, once it arrived (undefined for
   * an error): 'string' (a simple or verbatim string, or a bulk string with
   * `decodeStrings`), 'bulk' (a Buffer), 'integer', 'double' (RESP3, a
   * non-integral number), 'bignumber' (RESP3, a bigint), 'array', 'null',
   * 'map', 'set', 'boolean', 'push' (RESP3: a subscription confirmation).
   */
  reply?: string;
  /** The error (a RedisError reply, or the connection's fatal error). */
  error?: unknown;
  /** The error's stable code (`WRONGTYPE`, `REDIS_TIMEOUT`, `REDIS_CONN_CLOSED`, ...). */
  errorCode?: string;
}

/** What a traced borrow or dial reports once it has settled. */
export interface SettledContext {
  /** How long it took, in ms (a dial: connect and handshake), once settled. */
  durationMs?: number;
  /** 'ok' or 'error', once settled. */
  outcome?: 'ok' | 'error';
  /** What it rejected with, when `outcome` is 'error'. */
  error?: unknown;
}

/** Context of `redisconn:pool:get`. */
export interface PoolGetTraceContext extends SettledContext {
  /** The pool borrowed from (the Pool object, or the cluster or sentinel pool that owns it). */
  readonly source: object;
  /** Whether the borrow had to wait: it could not be served at once by an idle connection (a slot, a dial or an asynchronous check). */
  waited: boolean;
}

/** Context of `redisconn:connect`. */
export interface ConnectTraceContext extends SettledContext {
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  readonly db: number;
  readonly tls: boolean;
  readonly protocol: 2 | 3;
}

/** The `redisconn:command` TracingChannel. */
export const commandChannel = diagnostics.tracingChannel<CommandTraceContext, CommandTraceContext>('redisconn:command');
/** The `redisconn:pool:get` TracingChannel. */
export const poolGetChannel = diagnostics.tracingChannel<PoolGetTraceContext, PoolGetTraceContext>('redisconn:pool:get');
/** The `redisconn:connect` TracingChannel. */
export const connectChannel = diagnostics.tracingChannel<ConnectTraceContext, ConnectTraceContext>('redisconn:connect');


/**
 * @internal Runs `work` traced on `channel` with `context`: `start` and
 * `end` around the call (a synchronous throw counts as a rejection), then,
 * once it settles, `durationMs` and `outcome` (and `error`) set before
 * `error` (on failure), `asyncStart` and `asyncEnd`. Settles like `work`.
 * For callers that checked `hasSubscribers`: it makes closures.
 */
export function traceSettled<T, C extends SettledContext>(channel: diagnostics.TracingChannel<C, C>, context: C, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  channel.start.publish(context);
  let running: Promise<T>;
  try {
    running = work();
  } catch (err) {
    running = Promise.reject(err);
  }
  channel.end.publish(context);
  return running.then(
    (value) => {
      context.durationMs = performance.now() - started;
      context.outcome = 'ok';
      channel.asyncStart.publish(context);
      channel.asyncEnd.publish(context);
      return value;
    },
    (err: unknown) => {
      context.durationMs = performance.now() - started;
      context.outcome = 'error';
      context.error = err;
      channel.error.publish(context);
      channel.asyncStart.publish(context);
      channel.asyncEnd.publish(context);
      throw err;
    },
  );
}

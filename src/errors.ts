/**
 * Error classes of the client. Each carries a stable string `code` so callers
 * (and the Fastify plugin) can branch without parsing messages.
 */

/** Base class of every error this package creates on purpose. */
export abstract class RedisConnError extends Error {
  /** Stable machine-readable code, e.g. `REDIS_TIMEOUT`. */
  abstract readonly code: string;
}

/**
 * An error reply from the server (`-ERR ...`, `!` blob error). `code` is the
 * first word of the message (`ERR`, `WRONGTYPE`, `NOSCRIPT`, ...). Not fatal:
 * the connection stays usable.
 */
export class RedisError extends RedisConnError {
  override readonly name = 'RedisError';
  readonly code: string;
  constructor(message: string) {
    const space = message.indexOf(' ');
    const code = space > 0 ? message.slice(0, space) : message || 'ERR';
    super(code === 'MOVED' || code === 'ASK' ? message + CLUSTER_HINT : message);
    this.code = code;
  }
}

/**
 * Said after a redirect reaching a caller: only a plain connection or pool
 * gets one to the user (a cluster follows them), so it met a cluster node.
 */
const CLUSTER_HINT = ' (this server is a Redis Cluster node: use newCluster() or the plugin\'s cluster option, which follow redirects)';

/** The bytes on the wire are not valid RESP. Fatal for the connection. */
export class ProtocolError extends RedisConnError {
  override readonly name = 'ProtocolError';
  readonly code = 'REDIS_PROTOCOL';
}

/** A connect, read or write deadline passed. Fatal for the connection. */
export class TimeoutError extends RedisConnError {
  override readonly name = 'TimeoutError';
  readonly code = 'REDIS_TIMEOUT';
}

/**
 * The connection is closed: by `close()`, by the server (EOF, CLIENT KILL),
 * by a socket error (the original is in `cause`), or by an aborted call.
 */
export class ConnClosedError extends RedisConnError {
  override readonly name = 'ConnClosedError';
  readonly code = 'REDIS_CONN_CLOSED';
}

/** `Pool.get()` with `wait: false` found every slot of `maxActive` in use. */
export class PoolExhaustedError extends RedisConnError {
  override readonly name = 'PoolExhaustedError';
  readonly code = 'REDIS_POOL_EXHAUSTED';
}

/** The pool was closed; no connection can be borrowed any more. */
export class PoolClosedError extends RedisConnError {
  override readonly name = 'PoolClosedError';
  readonly code = 'REDIS_POOL_CLOSED';
}

/**
 * The keys of a command hash to different slots where a cluster needs one
 * (a multi-key command other than MGET/DEL/..., a transaction, a connection
 * bound to a node). Raised before anything is sent.
 */
export class CrossSlotError extends RedisConnError {
  override readonly name = 'CrossSlotError';
  readonly code = 'REDIS_CROSSSLOT';
}

/**
 * An error after trying several servers (cluster nodes, sentinels): each
 * one's error is in `causes` (and a lone one is also the `cause`).
 */
export abstract class ManyServersError extends RedisConnError {
  /** The error of each server tried, in the order tried. */
  readonly causes: readonly Error[];
  constructor(message: string, causes: readonly Error[] = []) {
    super(message, causes.length === 1 ? { cause: causes[0] } : undefined);
    this.causes = causes;
  }
}

/**
 * A cluster could not serve a call: no node answered for the topology (each
 * node's own error is in `causes`), a slot has no reachable owner, or the
 * redirects did not end within `maxRedirects`.
 */
export class ClusterError extends ManyServersError {
  override readonly name = 'ClusterError';
  readonly code = 'REDIS_CLUSTER';
}

/**
 * Sentinel could not give a usable master: no sentinel answered (each one's
 * error is in `causes`), none knows the master name, or the node named
 * is not a master (a sentinel that lies, or one not yet updated).
 */
export class SentinelError extends ManyServersError {
  override readonly name = 'SentinelError';
  readonly code = 'REDIS_SENTINEL';
}

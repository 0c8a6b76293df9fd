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
  override readonly name: string = 'RedisError';
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

/** A step of the dial handshake, as {@link HandshakeError} names it. */
export type HandshakeCommand = 'AUTH' | 'HELLO' | 'CLIENT SETNAME' | 'SELECT' | 'READONLY';

/**
 * The server refused a step of the dial handshake: a configuration error (a
 * wrong password, a db the server lacks, a protocol it does not speak), not
 * an error of any request. Every later dial with the same options fails the
 * same way, so retrying does not help; the input must change.
 *
 * Still a {@link RedisError}, and `code` stays the server's own (`WRONGPASS`,
 * `NOAUTH`, `NOPROTO`, ...), except that the generic `ERR` becomes the
 * stable `REDIS_HANDSHAKE` (SELECT 99 → "ERR DB index is out of range").
 * `command` is the step refused and `serverMessage` the server's text. The
 * message names the address, the step and the option to check, e.g.
 * `redisconn: dial 127.0.0.1:6379: SELECT 99 refused: ERR DB index is out
 * of range (check the db option)`; it never shows a password or user name.
 */
export class HandshakeError extends RedisError {
  override readonly name: string = 'HandshakeError';
  override readonly code: string;
  /** The handshake step the server refused. */
  readonly command: HandshakeCommand;
  /** The server's error reply, as it said it (`ERR DB index is out of range`). */
  readonly serverMessage: string;

  /**
   * `address` is the endpoint dialed, `shown` the step as the message shows
   * it (`SELECT 99`, `AUTH`: never credentials), `reply` the server's error.
   */
  constructor(address: string, command: HandshakeCommand, shown: string, reply: RedisError) {
    super(`redisconn: dial ${address}: ${shown} refused: ${reply.message} (check ${optionsToCheck(command, reply.code)})`);
    this.code = reply.code === 'ERR' ? 'REDIS_HANDSHAKE' : reply.code;
    this.command = command;
    this.serverMessage = reply.message;
  }
}

/** The dial options behind a refused handshake step, as the message names them. */
function optionsToCheck(command: HandshakeCommand, code: string): string {
  switch (command) {
    case 'AUTH':
      return 'the password and username options';
    case 'CLIENT SETNAME':
      return 'the clientName option';
    case 'SELECT':
      return 'the db option';
    case 'READONLY':
      return 'the readOnly option';
    case 'HELLO':
      // HELLO carries the protocol version, AUTH and SETNAME at once.
      if (code === 'NOPROTO') return 'the protocol option';
      if (code === 'WRONGPASS' || code === 'NOAUTH') return 'the password and username options';
      return 'the protocol, password, username and clientName options';
  }
}

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

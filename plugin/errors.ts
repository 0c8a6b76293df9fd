/**
 * The plugin's errors, made with @fastify/error so they carry stable codes
 * and HTTP status codes, and the mapping of client errors to HTTP.
 */
import createError from '@fastify/error';
import { ClusterError, ConnClosedError, CrossSlotError, HandshakeError, PoolClosedError, PoolExhaustedError, ProtocolError, RedisError, SentinelError, TimeoutError } from '../src/index.js';

/** `get()` when no Redis address is configured (LUCI's ErrNotConfigured). HTTP 503. */
export const ErrNotConfigured = createError('FST_REDIS_NOT_CONFIGURED', 'Redis connection pool is not configured', 503);

/** A plugin option is invalid; the message names the option. Fails `app.ready()`. */
export const ErrBadOption = createError<'FST_REDIS_BAD_OPTION', 500, [string, { cause: unknown }?]>('FST_REDIS_BAD_OPTION', 'redisconn: %s', 500);

/** `connectOnStart: true` and Redis did not answer PING. Fails `app.ready()`. */
export const ErrUnreachable = createError<'FST_REDIS_UNREACHABLE', 503, [string, string, { cause: unknown }?]>('FST_REDIS_UNREACHABLE', 'redisconn: Redis at %s is unreachable: %s', 503);

/** The plugin was registered twice on the same instance. */
export const ErrAlreadyRegistered = createError(
  'FST_REDIS_ALREADY_REGISTERED',
  'redisconn: the plugin is already registered on this instance (register it once, or in separate encapsulated contexts)',
  500,
);

/**
 * The HTTP status a client error should produce when a handler lets it
 * through: 503 when Redis is unavailable (pool exhausted or closed,
 * connection lost, timeout, garbage on the wire, a cluster whose topology
 * cannot be read or that keeps redirecting, sentinels that give no usable
 * master) or misconfigured (a HandshakeError: the server refused the dial's
 * AUTH, HELLO, SELECT, ..., so no request can succeed until the
 * configuration changes; it answers with its stable code, e.g.
 * `REDIS_HANDSHAKE` or `WRONGPASS`); 500 for any other server error reply
 * or keys of one command in different cluster slots; undefined for
 * anything else.
 */
export function httpStatusFor(err: unknown): number | undefined {
  if (
    err instanceof HandshakeError ||
    err instanceof PoolExhaustedError ||
    err instanceof PoolClosedError ||
    err instanceof ConnClosedError ||
    err instanceof TimeoutError ||
    err instanceof ProtocolError ||
    err instanceof ClusterError ||
    err instanceof SentinelError
  ) {
    return 503;
  }
  if (err instanceof RedisError || err instanceof CrossSlotError) return 500;
  return undefined;
}

/**
 * Gives a client error the `statusCode` Fastify's error handler reads, so a
 * forgotten try/catch answers 503 (with the error's stable `code`) instead of
 * a bare 500. Returns the same error.
 */
export function withHttpStatus<E>(err: E): E {
  const status = httpStatusFor(err);
  if (status !== undefined && (err as { statusCode?: unknown }).statusCode === undefined) {
    Object.defineProperty(err, 'statusCode', { value: status, configurable: true, writable: true, enumerable: false });
  }
  return err;
}

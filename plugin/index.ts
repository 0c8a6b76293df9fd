/**
 * The redisconn Fastify plugin (LUCI's server/redisconn for Fastify): a
 * source of connections (a pool, a Redis Cluster, or a pool following the
 * master of a Sentinel deployment) built from options or
 * flags/env, `app.redis` and `request.redis`, a blob cache, pool metrics,
 * and optional admin and health routes. Everything here speaks `ConnSource`,
 * never a concrete topology.
 *
 * This module is the package's main entry: the plugin is its default export,
 * and the whole client is re-exported beside it.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import fp from 'fastify-plugin';
import { HandshakeError, TimeoutError, newCluster, newPool, newSentinelPool, redactURL, withinDeadline, type Conn, type ConnSource, type DialOptions, type GetOptions } from '../src/index.js';
import { DEFAULT_ADMIN_PREFIX, DEFAULT_HEALTH_ROUTE, registerAdminRoutes, registerHealthRoute } from './admin.js';
import { BlobCache, DEFAULT_BLOB_PREFIX, DEFAULT_MAX_VALUE_BYTES, toAbstractCache, type AbstractCache } from './blobcache.js';
import { ErrAlreadyRegistered, ErrBadOption, ErrNotConfigured, ErrUnreachable, withHttpStatus } from './errors.js';
import { watchCommands, type CommandWatcher } from './commandwatch.js';
import { registerPoolMetrics, type MetricsHandle } from './metrics.js';
import { resolveTarget, validateOptions, type RedisconnOptions, type ResolvedTarget } from './options.js';
import { RequestConn, releaseForgotten } from './requestconn.js';

/** `app.redis`: the source of connections and what is built on it. */
export interface AppRedis {
  /** The source of connections (a Pool, a Cluster, a SentinelPool...); null when nothing is configured. */
  readonly pool: ConnSource | null;
  /** Borrows a connection (close it when done); rejects ErrNotConfigured when unconfigured. */
  get(options?: GetOptions): Promise<Conn>;
  /** A blob cache namespace; null when unconfigured or disabled. */
  blobCache(namespace: string): BlobCache | null;
  /**
   * The same namespace speaking the abstract-cache protocol (for
   * @fastify/caching: `{ cache: app.redis.abstractCache('http') }`). Throws
   * ErrNotConfigured when no Redis is configured, and ErrBadOption when the
   * blob cache is disabled (`blobCache: false`): a cache that silently
   * caches nothing would hide the mistake.
   */
  abstractCache(namespace: string): AbstractCache;
}

/**
 * The namespaces an app registers, for its types only. Optional: every name
 * is typed as a namespace anyway (as @fastify/redis does), but under
 * `noUncheckedIndexedAccess` a name listed here is typed without
 * `| undefined`: `declare module 'redisconn' { interface RedisNamespaces {
 * sessions: true } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface -- filled by declaration merging
export interface RedisNamespaces {}

/**
 * `app.redis`: the default registration, and each namespaced one
 * (`app.redis.cache` after registering with `namespace: 'cache'`). Names
 * declared by {@link AppRedis} keep their own types.
 */
export type AppRedisNamespaces = AppRedis & { readonly [N in keyof RedisNamespaces]: AppRedis } & { readonly [namespace: string]: AppRedis };

/** `request.redis`: the default registration's connections, and each namespace's (`request.redis.cache`). */
export type RequestRedisNamespaces = RequestRedis & { readonly [N in keyof RedisNamespaces]: RequestRedis } & { readonly [namespace: string]: RequestRedis };

/** `request.redis`: connections tied to the request. */
export interface RequestRedis {
  /**
   * A connection for this request (a lease unless `exclusiveConnections`).
   * Close it when done (`await using`). One still open once the handler is
   * done is closed for you, with a warning: "done" is the response finished,
   * or, when the client went away, the handler's response produced or its
   * reply hijacked and the socket closed. A handler that sends its reply
   * itself (`reply.send()`) and keeps working must close the connection
   * before the response finishes. Rejects ErrNotConfigured when unconfigured;
   * client errors a handler lets through answer 503 (unavailable) or 500
   * (error reply) with their stable `code`.
   */
  get(options?: GetOptions): Promise<Conn>;
}

declare module 'fastify' {
  interface FastifyInstance {
    redis: AppRedisNamespaces;
  }
  interface FastifyRequest {
    redis: RequestRedisNamespaces;
  }
}

const kHub = Symbol('redisconn.hub');
const kRequestRedis = Symbol('redisconn.requestRedis');
const kReply = Symbol('redisconn.reply');

/** What one registration's decorators share (the default one's source is swapped by `usePool`). */
interface PluginState {
  pool: ConnSource | null;
  getTimeoutMs: number;
  /** `{ timeoutMs: getTimeoutMs }`, made once. */
  defaultGetOptions: GetOptions;
  exclusiveConnections: boolean;
  blobPrefix: string;
  maxValueBytes: number;
  blobCacheEnabled: boolean;
}

/**
 * Every registration on one app: the decorators, hooks and routes they
 * share. Made by the first registration (default or namespaced); the default
 * state stays unconfigured (`get()` rejects ErrNotConfigured) until the
 * default registration or `usePool` fills it.
 */
interface Hub {
  readonly defaultState: PluginState;
  defaultRegistered: boolean;
  readonly namespaces: Map<string, PluginState>;
  /** `app.redis`: the default state's, with each namespace's as a property. */
  readonly appRedis: AppRedisImpl;
  /** Metrics routes served, and the registry each serves: two registrations may share one. */
  readonly metricsRoutes: Map<string, Registry>;
}

type HubApp = FastifyInstance & { [kHub]?: Hub };
type TrackedRequest = FastifyRequest & { [kRequestRedis]: RequestRedisImpl | null; [kReply]: FastifyReply | null };

const DEFAULT_GET_TIMEOUT_MS = 5_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** A registration's state from its options (the defaults when none). */
function stateOf(pool: ConnSource | null, options: RedisconnOptions = {}): PluginState {
  const getTimeoutMs = options.getTimeoutMs ?? DEFAULT_GET_TIMEOUT_MS;
  const blobOptions = options.blobCache === false ? undefined : options.blobCache;
  return {
    pool,
    getTimeoutMs,
    defaultGetOptions: { timeoutMs: getTimeoutMs },
    exclusiveConnections: options.exclusiveConnections === true,
    blobPrefix: blobOptions?.prefix ?? DEFAULT_BLOB_PREFIX,
    maxValueBytes: blobOptions?.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
    blobCacheEnabled: options.blobCache !== false,
  };
}

/**
 * Closes the source, but never lets a connection someone forgot to return
 * hold `app.close()` forever: after `timeoutMs` it logs how many are still
 * out (the source closes them when they come back) and returns.
 */
async function closeWithin(app: FastifyInstance, pool: ConnSource, timeoutMs: number): Promise<void> {
  try {
    await withinDeadline(pool.close(), 'closing the Redis connections', timeoutMs);
  } catch (err) {
    if (!(err instanceof TimeoutError)) throw err;
    app.log.warn({ inUse: pool.stats().inUseCount }, `redisconn: connections still lent out ${timeoutMs} ms after close; closing without them (each closes when returned)`);
  }
}

/** The get options with the plugin's default timeout (no object made for the common `get()`). */
function withTimeout(state: PluginState, options: GetOptions | undefined): GetOptions {
  if (options === undefined) return state.defaultGetOptions;
  return options.timeoutMs === undefined ? { ...options, timeoutMs: state.getTimeoutMs } : options;
}

/**
 * A lease (the default) or, with `exclusiveConnections`, an exclusive
 * borrow, handed to `wrap` (the request's tracking, or none).
 */
function borrow<C extends Conn>(state: PluginState, options: GetOptions | undefined, wrap: (conn: Conn) => C): Promise<C> {
  const pool = state.pool;
  if (pool === null) return Promise.reject(new ErrNotConfigured());
  if (!state.exclusiveConnections) return Promise.resolve(wrap(pool.lease(withTimeout(state, options))));
  return pool.get(withTimeout(state, options)).then(wrap);
}

function asIs(conn: Conn): Conn {
  return conn;
}

/**
 * `request.redis`: the default registration's connections, and the
 * request's tracking of every connection it borrowed through any namespace.
 */
class RequestRedisImpl implements RequestRedis {
  readonly conns: RequestConn[] = [];
  /** The response was handed to Fastify (onSend ran) while the client was still there. */
  responded = false;

  constructor(
    private readonly state: PluginState,
    namespaces: ReadonlyMap<string, PluginState>,
  ) {
    // No iterator made on the common path, an app with no namespace.
    if (namespaces.size > 0) this.addNamespaces(namespaces);
  }

  private addNamespaces(namespaces: ReadonlyMap<string, PluginState>): void {
    for (const [namespace, namespaceState] of namespaces) {
      Object.defineProperty(this, namespace, { value: new NamespaceRequestRedis(namespaceState, this.track), enumerable: true });
    }
  }

  get(options?: GetOptions): Promise<Conn> {
    return borrow(this.state, options, this.track);
  }

  /** Bound once per request: wraps and remembers a connection of this request. */
  private readonly track = (conn: Conn): RequestConn => {
    const tracked = new RequestConn(conn);
    this.conns.push(tracked);
    return tracked;
  };
}

/** What a namespace must not be called on the request side (`request.redis.conns`...). */
const REQUEST_REDIS_NAMES = new RequestRedisImpl(stateOf(null), new Map());

/** `request.redis[namespace]`: that registration's connections, tracked with the request's others. */
class NamespaceRequestRedis implements RequestRedis {
  constructor(
    private readonly state: PluginState,
    private readonly track: (conn: Conn) => RequestConn,
  ) {}

  get(options?: GetOptions): Promise<Conn> {
    return borrow(this.state, options, this.track);
  }
}

class AppRedisImpl implements AppRedis {
  constructor(
    private readonly state: PluginState,
    private readonly log: FastifyBaseLogger,
  ) {}

  get pool(): ConnSource | null {
    return this.state.pool;
  }

  get(options?: GetOptions): Promise<Conn> {
    return borrow(this.state, options, asIs);
  }

  blobCache(namespace: string): BlobCache | null {
    const { pool, blobCacheEnabled, blobPrefix, maxValueBytes } = this.state;
    if (pool === null || !blobCacheEnabled) return null;
    return new BlobCache(pool, namespace, blobPrefix, maxValueBytes);
  }

  abstractCache(namespace: string): AbstractCache {
    if (this.state.pool === null) throw new ErrNotConfigured();
    const blobs = this.blobCache(namespace);
    if (blobs === null) throw new ErrBadOption('abstractCache() needs the blob cache, and option blobCache is false');
    return toAbstractCache(blobs, this.log);
  }
}

/** The hub `app` owns; null when nothing registered on it (a parent context's does not count). */
function ownHub(app: FastifyInstance): Hub | null {
  return Object.hasOwn(app, kHub) ? ((app as HubApp)[kHub] ?? null) : null;
}

/**
 * The hub of `app`, made (with the decorators and hooks) by the first
 * registration. Throws ErrAlreadyRegistered when a parent context already
 * decorated `app` with `redis`: register every Redis on one context.
 */
function hubOf(app: FastifyInstance): Hub {
  const own = ownHub(app);
  if (own !== null) return own;
  if (app.hasDecorator('redis') || app.hasRequestDecorator('redis')) throw new ErrAlreadyRegistered();
  const defaultState = stateOf(null);
  const hub: Hub = { defaultState, defaultRegistered: false, namespaces: new Map(), appRedis: new AppRedisImpl(defaultState, app.log), metricsRoutes: new Map() };
  (app as HubApp)[kHub] = hub;
  install(app, hub);
  return hub;
}

/** Makes `state` the default registration's (its fields copied into the state the decorators hold). */
function claimDefault(hub: Hub, state: PluginState): void {
  if (hub.defaultRegistered) throw new ErrAlreadyRegistered();
  hub.defaultRegistered = true;
  Object.assign(hub.defaultState, state);
}

/** Adds `state` as `app.redis[namespace]` (and `request.redis[namespace]`). */
function addNamespace(hub: Hub, namespace: string, state: PluginState, log: FastifyBaseLogger): void {
  if (hub.namespaces.has(namespace)) {
    throw new ErrBadOption(`option namespace ${JSON.stringify(namespace)} is already registered on this instance: give each Redis its own namespace`);
  }
  if (namespace in hub.appRedis || namespace in REQUEST_REDIS_NAMES) {
    throw new ErrBadOption(`option namespace ${JSON.stringify(namespace)} is a name app.redis already has; choose another (e.g. ${JSON.stringify(`${namespace}Redis`)})`);
  }
  hub.namespaces.set(namespace, state);
  Object.defineProperty(hub.appRedis, namespace, { value: new AppRedisImpl(state, log), enumerable: true });
}

/** Decorates `app` and its requests, and adds the hooks that release forgotten connections. */
function install(app: FastifyInstance, hub: Hub): void {
  const { defaultState, namespaces } = hub;
  // Each namespace is a property addNamespace defines on these objects.
  app.decorate('redis', hub.appRedis as unknown as AppRedisNamespaces);
  app.decorateRequest(kRequestRedis, null);
  app.decorateRequest(kReply, null);
  app.decorateRequest('redis', {
    getter(this: FastifyRequest): RequestRedisNamespaces {
      const tracked = this as TrackedRequest;
      return (tracked[kRequestRedis] ??= new RequestRedisImpl(defaultState, namespaces)) as unknown as RequestRedisNamespaces;
    },
  });
  app.addHook('onRequest', rememberReply);
  app.addHook('onError', giveHttpStatus);
  app.addHook('onResponse', releaseOnResponse);
  app.addHook('onSend', releaseOnSendIfAborted);
  app.addHook('onRequestAbort', releaseOnAbortIfResponded);
}

/*
 * Forgotten request connections are released only once the handler is done
 * with them, never while it may still be awaiting a reply (that would hand a
 * busy socket to the next request, and warn about a handler that closes in
 * `finally`). "Done" is: the response finished (onResponse); or, for a
 * client that went away, the handler produced its response (onSend), plus
 * one macrotask turn for the handler's own `finally` to run. The hooks are
 * callback-style and return at once for requests that borrowed nothing.
 */

/**
 * A client error a handler let through answers 503 (unavailable) or 500
 * (error reply) with its stable `code`: its status is set here, once, where
 * Fastify hands the error to its error handler, instead of on every call.
 */
function giveHttpStatus(_request: FastifyRequest, _reply: FastifyReply, error: Error, done: () => void): void {
  withHttpStatus(error);
  done();
}

function releaseOnResponse(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const tracked = (request as TrackedRequest)[kRequestRedis];
  if (tracked) void releaseForgotten(request, tracked.conns);
  done();
}

function releaseOnSendIfAborted(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  const tracked = (request as TrackedRequest)[kRequestRedis];
  if (tracked) {
    if (request.raw.aborted || reply.raw.destroyed) setImmediate(releaseLater, request, tracked);
    else tracked.responded = true;
  }
  done(null, payload);
}

/** The reply, for the abort hook: a hijacked reply (SSE, streams) never reaches onSend. */
function rememberReply(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  (request as TrackedRequest)[kReply] = reply;
  done();
}

/**
 * The client left after the handler produced its response, or the handler
 * hijacked the reply (it then waits for the socket to close, as an SSE
 * route does, and its `finally` runs before this release).
 */
function releaseOnAbortIfResponded(request: FastifyRequest, done: () => void): void {
  const tracked = (request as TrackedRequest)[kRequestRedis];
  if (tracked && (tracked.responded || (request as TrackedRequest)[kReply]?.sent === true)) setImmediate(releaseLater, request, tracked);
  done();
}

function releaseLater(request: FastifyRequest, tracked: RequestRedisImpl): void {
  void releaseForgotten(request, tracked.conns);
}

const redisconnPlugin: FastifyPluginAsync<RedisconnOptions> = async (app, options) => {
  validateOptions(options);
  const target = resolveTarget(options);
  const { namespace } = options;
  const name = options.name ?? namespace ?? 'default';
  const { addr, cluster, sentinel, db } = target;
  let pool: ConnSource | null = options.pool ?? null;
  const ownsPool = pool === null && (addr !== '' || cluster.length > 0 || sentinel !== null);
  if (ownsPool) {
    const {
      addr: _addr, cluster: _cluster, sentinel: _sentinel, db: _db, namespace: _namespace, name: _name, getTimeoutMs: _getTimeout, closeTimeoutMs: _closeTimeout, exclusiveConnections: _exclusive, connectOnStart: _connect,
      slowCommandMs: _slow, blobCache: _blob, metrics: _metrics, admin: _admin, health: _health, argv: _argv, env: _env, pool: _pool, ...poolAndDial
    } = options;
    if (sentinel !== null) {
      const { sentinels, masterName, username, password, tls } = sentinel;
      pool = newSentinelPool({ ...poolAndDial, db, sentinels, masterName, sentinelUsername: username, sentinelPassword: password, sentinelTls: tls });
    } else {
      pool = cluster.length > 0 ? newCluster(cluster, withURLOptions(target.urlOptions, poolAndDial)) : newPool(addr, db, poolAndDial);
    }
  }
  /** What messages call the target: the address, the cluster's seeds, or the master's name and sentinels (never a password). */
  const where =
    sentinel !== null ? `master ${JSON.stringify(sentinel.masterName)} of sentinels ${sentinel.sentinels.join(',')}` : cluster.length > 0 ? `cluster ${cluster.join(',')}` : redactURL(addr);
  const state = stateOf(pool, options);
  let metrics: MetricsHandle | null = null;
  try {
    const hub = hubOf(app);
    if (namespace === undefined) claimDefault(hub, state);
    else addNamespace(hub, namespace, state, app.log);
    if (pool !== null && options.metrics !== false) {
      const { registry, intervalMs, commandDuration } = options.metrics ?? {};
      metrics = registerPoolMetrics(name, pool, registry, { intervalMs, commandDuration: commandDuration === true });
      if (options.metrics?.route !== undefined) serveMetrics(app, hub, options.metrics.route, metrics.registry);
    }
  } catch (err) {
    metrics?.close();
    if (ownsPool) await pool?.close();
    throw err;
  }
  // Last of the setup that can throw: nothing to undo if it does not run.
  const unwatchSlow = pool !== null && options.slowCommandMs !== undefined ? watchCommands(pool, slowCommandLogger(app.log, name, options.slowCommandMs)) : null;
  const currentPool = (): ConnSource | null => state.pool;
  const authorize = options.admin?.authorize;
  if (authorize !== undefined) {
    registerAdminRoutes(app, { ...options.admin, authorize, prefix: options.admin?.prefix ?? namespaced(DEFAULT_ADMIN_PREFIX, namespace) }, currentPool, state.defaultGetOptions);
  }
  if (options.health !== undefined && options.health !== false) {
    const health = options.health === true ? {} : options.health;
    registerHealthRoute(app, { ...health, route: health.route ?? namespaced(DEFAULT_HEALTH_ROUTE, namespace) }, currentPool);
  }

  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  app.addHook('onClose', async () => {
    unwatchSlow?.();
    metrics?.close();
    if (ownsPool && pool !== null) await closeWithin(app, pool, closeTimeoutMs);
  });

  if (options.connectOnStart === true && pool !== null) {
    try {
      await pool.check(options.connectTimeoutMs ?? 5_000);
    } catch (err) {
      unwatchSlow?.();
      metrics?.close();
      if (ownsPool) await pool.close();
      throw startupFailure(err, where, target);
    }
  }
};

/** A default route or prefix, under the namespace's own path when there is one. */
function namespaced(path: string, namespace: string | undefined): string {
  return namespace === undefined ? path : `${path}/${encodeURIComponent(namespace)}`;
}

/**
 * Serves `registry` at `route`. Several registrations may name one route
 * for one registry (it is served once, with every pool's series); one route
 * for two registries is refused.
 */
function serveMetrics(app: FastifyInstance, hub: Hub, route: string, registry: Registry): void {
  const served = hub.metricsRoutes.get(route);
  if (served === registry) return;
  if (served !== undefined) throw new ErrBadOption(`option metrics.route ${JSON.stringify(route)} already serves another registry; give each registry its own route`);
  hub.metricsRoutes.set(route, registry);
  app.get(route, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });
}

/**
 * Why `connectOnStart` failed, as the error `app.ready()` rejects with: a
 * handshake step the server refused is a configuration error naming the
 * input to fix (ErrBadOption); anything else is ErrUnreachable.
 */
function startupFailure(err: unknown, where: string, target: ResolvedTarget): Error {
  if (err instanceof HandshakeError) {
    const refused = err.command === 'SELECT' ? `db ${target.db} (from ${target.dbSource})` : `the connection's ${err.command}`;
    return new ErrBadOption(`Redis at ${where} refused ${refused}: ${err.serverMessage}`, { cause: err });
  }
  // The address is said once, by this message: not again by the cause's own prefix.
  const why = (err as Error).message.replace(/^redisconn: (?:dial .+?: )?/, '');
  return new ErrUnreachable(where, why, { cause: err });
}

/**
 * Logs each command slower than `thresholdMs` (write to reply) once, at
 * warn: what ran where and how long it took, never its arguments.
 */
function slowCommandLogger(log: FastifyBaseLogger, pool: string, thresholdMs: number): CommandWatcher {
  return (command, durationMs) => {
    if (durationMs <= thresholdMs) return;
    const { command: name, connection, serverAddress, serverPort, db, errorCode } = command;
    const rounded = Math.round(durationMs * 1000) / 1000;
    log.warn(
      { pool, command: name, durationMs: rounded, connection, serverAddress, serverPort, db, ...(errorCode !== undefined && { errorCode }) },
      `redisconn: slow command ${name} took ${Math.round(durationMs)} ms (slowCommandMs ${thresholdMs})`,
    );
  };
}

/**
 * `explicit` over the dial options URL seeds imply (credentials, TLS; their
 * db was checked to be 0), for a cluster, whose nodes are dialed by
 * `host:port`. An explicit option wins when defined, except that a TLS URL
 * keeps TLS on (an explicit `tls` object then supplies its settings), as
 * `dialURL` does.
 */
function withURLOptions<O extends Omit<DialOptions, 'db'>>(url: DialOptions, explicit: O): O {
  const { db: _db, ...fromURL } = url;
  const merged = { ...fromURL, ...Object.fromEntries(Object.entries(explicit).filter(([, value]) => value !== undefined)) } as O;
  if (url.tls === true && (merged.tls === undefined || merged.tls === false)) merged.tls = true;
  return merged;
}

/**
 * The redisconn Fastify plugin. Register it once per app for `app.redis`:
 * `app.register(redisconn, { addr: '127.0.0.1:6379' })`, `{ cluster:
 * ['10.0.0.1:7000', ...] }` for a Redis Cluster, or `{ sentinel: {
 * sentinels: ['10.0.0.1:26379', ...], masterName: 'mymaster' } }` for the
 * master of a Sentinel deployment; without them it reads
 * `--redis-addr`/`--redis-cluster`/`--redis-sentinel` +
 * `--redis-master-name`/`--redis-db` and
 * `REDIS_ADDR`/`REDIS_CLUSTER`/`REDIS_SENTINEL` +
 * `REDIS_MASTER_NAME`/`REDIS_DB`. Register it again with `namespace: 'cache'`
 * (and options, never flags) for `app.redis.cache` beside it. Startup never
 * waits for Redis unless `connectOnStart: true`.
 */
const redisconn = fp(redisconnPlugin, { name: 'redisconn', fastify: '5.x' });
export default redisconn;

type AppOrRequest = FastifyInstance | FastifyRequest;

function isRequest(target: AppOrRequest): target is FastifyRequest {
  return 'raw' in target && 'routeOptions' in target;
}

/** The hub the app (or the request's context) sees, its own or a parent context's. */
function hubSeen(target: AppOrRequest): Hub | undefined {
  return ((isRequest(target) ? target.server : target) as HubApp)[kHub];
}

/**
 * Borrows a connection (LUCI's `redisconn.Get(ctx)`) from the default
 * registration: through the request (tracked and released with it) or the
 * app. Rejects ErrNotConfigured when no pool is configured or the plugin is
 * not registered.
 */
export function getConn(target: AppOrRequest, options?: GetOptions): Promise<Conn> {
  if (hubSeen(target) === undefined) return Promise.reject(new ErrNotConfigured());
  return isRequest(target) ? target.redis.get(options) : target.redis.get(options);
}

/**
 * The source of connections (LUCI's `GetPool(ctx)`) of the default
 * registration, or of `namespace`: a Pool, a Cluster..., or null when not
 * configured or not registered.
 */
export function getPool(target: AppOrRequest, namespace?: string): ConnSource | null {
  const hub = hubSeen(target);
  const state = namespace === undefined ? hub?.defaultState : hub?.namespaces.get(namespace);
  return state?.pool ?? null;
}

/**
 * Installs a source of connections you built (a Pool, a Cluster...; LUCI's
 * `UsePool`) as the default registration's. With the plugin registered, it
 * replaces the source the decorators use (the old one is not closed: it is
 * yours or the plugin's to close). Without, it decorates `app` like the
 * plugin would, minus metrics and routes. The source stays yours to close.
 */
export function usePool(app: FastifyInstance, pool: ConnSource): void {
  const hub = hubSeen(app) ?? hubOf(app);
  hub.defaultRegistered = true;
  hub.defaultState.pool = pool;
}

export { redisconn };
export { ErrNotConfigured, ErrBadOption, ErrUnreachable, ErrAlreadyRegistered, httpStatusFor, withHttpStatus } from './errors.js';
export { optionsFromFlags } from './options.js';
export type { RedisconnOptions, SentinelOptions, BlobCacheOptions, MetricsOptions, AdminOptions, HealthOptions, FlagOptions } from './options.js';
export { BlobCache, toAbstractCache } from './blobcache.js';
export type { AbstractCache, AbstractCacheEntry, AbstractCacheKey } from './blobcache.js';
export { registerPoolMetrics } from './metrics.js';
export type { MetricsHandle, PoolMetricsOptions, StatsSource } from './metrics.js';
export * from '../src/index.js';

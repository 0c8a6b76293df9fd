/**
 * Plugin options: what `register` accepts, what flags and environment say
 * (`--redis-addr`, `--redis-db`, `REDIS_ADDR`, `REDIS_DB`; flags win), and
 * their validation. Every error names the option, flag or variable at fault.
 */
import type { FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { parseAddress, parseURL, type Conn, type DialOptions, type Pool } from '../src/index.js';
import { ErrBadOption } from './errors.js';

/** Blob cache settings. */
export interface BlobCacheOptions {
  /** Key prefix; keys are `<prefix>.<ns>:<key>`. Default `redisconn.blobcache`. */
  prefix?: string;
  /** Largest value accepted by `set`. Default 1 MiB. */
  maxValueBytes?: number;
}

/** Prometheus metrics settings. */
export interface MetricsOptions {
  /** Registry to register on. Default: prom-client's global registry. */
  registry?: Registry;
  /** Serve the registry at this route (e.g. `/metrics`). Default: no route. */
  route?: string;
  /** Also refresh the gauges every `intervalMs` (push-style exporters). Default: scrape time only. */
  intervalMs?: number;
}

/** The admin API (off unless `authorize` is given). */
export interface AdminOptions {
  /** Decides whether the request may use the admin API. Absent → no admin route. */
  authorize?: (request: FastifyRequest) => boolean | Promise<boolean>;
  /** Route prefix. Default `/admin/redis`. */
  prefix?: string;
}

/** The health route. */
export interface HealthOptions {
  /** Route. Default `/healthz/redis`. */
  route?: string;
  /** PING deadline. Default 1 000 ms. */
  timeoutMs?: number;
}

/** Options of the redisconn Fastify plugin. */
export interface RedisconnOptions extends Omit<DialOptions, 'db' | 'signal'> {
  /** `host:port`, `[ipv6]:port`, a unix socket path or a redis:// URL. Unset → flags/env; empty → not configured. */
  addr?: string;
  /** Database number. Unset → flags/env, else 0. */
  db?: number;
  /** Pool label in metrics and logs. Default `default`. */
  name?: string;
  /** Pool: idle connections kept. Default 64 (LUCI). */
  maxIdle?: number;
  /** Pool: connections open at once. Default 512 (LUCI). */
  maxActive?: number;
  /** Pool: idle connections older than this are closed. Default 180 000 ms. */
  idleTimeoutMs?: number;
  /** Pool: wait for a free connection (true) or fail at once. Default true. */
  wait?: boolean;
  /** Pool: connections older than this are closed. Default 0 (no limit). */
  maxConnLifetimeMs?: number;
  /** Pool: check run on an idle connection before lending it. Default: PING when idle > 1 min. */
  testOnBorrow?: (conn: Conn, lastUsedMs: number) => void | Promise<void>;
  /** Bound on `get()` (waiting for a slot plus dialing). Default 5 000 ms. */
  getTimeoutMs?: number;
  /**
   * `get()` returns a lease (`Pool.lease`) instead of an exclusive borrow:
   * stateless commands ride the pool's shared connection (no socket per
   * request), and it borrows a connection of its own only when a command
   * needs one (MULTI, WATCH, SUBSCRIBE, BLPOP, a per-call timeout...). The
   * pool metrics then count only those borrows. Default false.
   */
  lazyConnections?: boolean;
  /**
   * How long `app.close()` waits for connections still lent out (one taken
   * with `app.redis.get()` and never closed) before it goes on without them;
   * they are closed when returned. Default 5 000 ms.
   */
  closeTimeoutMs?: number;
  /** PING once during `app.ready()` and fail it when Redis is unreachable. Default false. */
  connectOnStart?: boolean;
  /** Blob cache settings, or false to disable `blobCache()`. */
  blobCache?: BlobCacheOptions | false;
  /** Metrics settings, or false for none. Default: registered on the global registry. */
  metrics?: MetricsOptions | false;
  /** Admin API; off unless given. */
  admin?: AdminOptions;
  /** Health route; off unless given (`true` for defaults). */
  health?: HealthOptions | boolean;
  /** Command-line arguments to read flags from. Default `process.argv`. */
  argv?: readonly string[];
  /** Environment to read variables from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Use this pool instead of building one (it stays yours to close). */
  pool?: Pool;
}

/** What flags and environment say. Absent keys were not given. */
export interface FlagOptions {
  addr?: string;
  db?: number;
}

/** Where the flags are read from: `--redis-addr X`, `--redis-addr=X`, `--redis-db N`. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === flag) {
      const next = argv[i + 1];
      if (next === undefined) throw new ErrBadOption(`flag ${flag} needs a value`);
      value = next;
      i++;
    } else if (arg.startsWith(`${flag}=`)) {
      value = arg.slice(flag.length + 1);
    }
  }
  return value;
}

/** Parses a db number; `source` names where it came from. */
export function parseDb(text: string, source: string): number {
  if (!/^\d+$/.test(text.trim())) throw new ErrBadOption(`${source} must be a non-negative integer, got ${JSON.stringify(text)}`);
  return Number(text.trim());
}

/**
 * Reads `--redis-addr` / `--redis-db` from `argv` and `REDIS_ADDR` /
 * `REDIS_DB` from `env`; flags win over variables. A bad db throws an error
 * naming the flag or variable.
 */
export function optionsFromFlags(argv: readonly string[] = process.argv, env: Readonly<Record<string, string | undefined>> = process.env): FlagOptions {
  const out: FlagOptions = {};
  const addr = flagValue(argv, '--redis-addr') ?? env.REDIS_ADDR;
  if (addr !== undefined) out.addr = addr;
  const flagDb = flagValue(argv, '--redis-db');
  if (flagDb !== undefined) out.db = parseDb(flagDb, '--redis-db');
  else if (env.REDIS_DB !== undefined && env.REDIS_DB !== '') out.db = parseDb(env.REDIS_DB, 'REDIS_DB');
  return out;
}

const KNOWN_OPTIONS = new Set<string>([
  'addr', 'db', 'name', 'maxIdle', 'maxActive', 'idleTimeoutMs', 'wait', 'maxConnLifetimeMs', 'testOnBorrow',
  'getTimeoutMs', 'closeTimeoutMs', 'lazyConnections', 'connectOnStart', 'blobCache', 'metrics', 'admin', 'health', 'argv', 'env', 'pool',
  'username', 'password', 'clientName', 'tls', 'connectTimeoutMs', 'readTimeoutMs', 'writeTimeoutMs',
  'keepAliveMs', 'protocol', 'decodeStrings',
]);
const NON_NEGATIVE = ['db', 'maxIdle', 'maxActive', 'idleTimeoutMs', 'maxConnLifetimeMs', 'getTimeoutMs', 'closeTimeoutMs', 'connectTimeoutMs', 'readTimeoutMs', 'writeTimeoutMs', 'keepAliveMs'] as const;

/** Throws ErrBadOption naming the first unknown or invalid option. */
export function validateOptions(options: RedisconnOptions): void {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new ErrBadOption(`unknown option ${JSON.stringify(key)}`);
  }
  for (const key of NON_NEGATIVE) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (key === 'db' || key.startsWith('max') ? !Number.isInteger(value) : false))) {
      throw new ErrBadOption(`option ${key} must be a non-negative ${key === 'db' || key.startsWith('max') ? 'integer' : 'number'}, got ${String(value)}`);
    }
  }
  for (const key of ['wait', 'connectOnStart', 'lazyConnections', 'decodeStrings'] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== 'boolean') throw new ErrBadOption(`option ${key} must be a boolean, got ${typeof value}`);
  }
  if (options.addr !== undefined && typeof options.addr !== 'string') throw new ErrBadOption(`option addr must be a string, got ${typeof options.addr}`);
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) throw new ErrBadOption('option name must be a non-empty string');
  if (options.protocol !== undefined && options.protocol !== 2 && options.protocol !== 3) throw new ErrBadOption(`option protocol must be 2 or 3, got ${String(options.protocol)}`);
  const authorize = options.admin?.authorize;
  if (authorize !== undefined && typeof authorize !== 'function') throw new ErrBadOption('option admin.authorize must be a function');
  if (options.decodeStrings === true && options.blobCache !== false) {
    throw new ErrBadOption('option decodeStrings: true would turn binary blob cache values into text; set blobCache: false to use it');
  }
  const metrics = options.metrics;
  if (metrics && metrics.intervalMs !== undefined && !(Number.isFinite(metrics.intervalMs) && metrics.intervalMs > 0)) {
    throw new ErrBadOption(`option metrics.intervalMs must be a positive number, got ${String(metrics.intervalMs)}`);
  }
  const blob = options.blobCache;
  if (blob && blob.maxValueBytes !== undefined && !(Number.isInteger(blob.maxValueBytes) && blob.maxValueBytes > 0)) {
    throw new ErrBadOption(`option blobCache.maxValueBytes must be a positive integer, got ${String(blob.maxValueBytes)}`);
  }
}

/** Where to connect, resolved from options then flags/env. */
export interface ResolvedTarget {
  /** Empty when not configured. */
  addr: string;
  db: number;
  /** Dial options implied by a URL `addr` (credentials, TLS, db). */
  urlOptions: DialOptions;
}

/**
 * Resolves addr and db: explicit options win, else flags/env. A URL addr
 * contributes its credentials, TLS and db. Throws ErrBadOption naming the
 * source of a bad addr or db.
 */
export function resolveTarget(options: RedisconnOptions): ResolvedTarget {
  const fromFlags = options.addr === undefined || options.db === undefined ? optionsFromFlags(options.argv, options.env) : {};
  const addr = (options.addr ?? fromFlags.addr ?? '').trim();
  const addrSource = options.addr !== undefined ? 'option addr' : '--redis-addr / REDIS_ADDR';
  let urlOptions: DialOptions = {};
  if (addr !== '') {
    try {
      if (addr.includes('://')) urlOptions = parseURL(addr).options;
      else parseAddress(addr);
    } catch (err) {
      throw new ErrBadOption(`${addrSource} ${JSON.stringify(addr.replace(/\/\/[^@/]*@/, '//***@'))} is invalid: ${(err as Error).message}`);
    }
  }
  const db = options.db ?? fromFlags.db ?? urlOptions.db ?? 0;
  return { addr, db, urlOptions };
}

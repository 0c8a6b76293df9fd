/**
 * Plugin options: what `register` accepts, what flags and environment say
 * (`--redis-addr`, `--redis-cluster`, `--redis-db`, `REDIS_ADDR`,
 * `REDIS_CLUSTER`, `REDIS_DB`; flags win), and their validation. Every error
 * names the option, flag or variable at fault.
 */
import type { FastifyError } from '@fastify/error';
import type { FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { checkTimeoutMs, parseAddress, parseURL, redactURL, type Conn, type ConnSource, type DialOptions, type Endpoint } from '../src/index.js';
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
  /** Also refresh the gauges every `intervalMs` (positive, at most 2^31 − 1 ms; push-style exporters). Default: scrape time only. */
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
  /** Deadline of the whole check (positive, at most 2^31 − 1 ms). Default 1 000 ms. */
  timeoutMs?: number;
}

/** Options of the redisconn Fastify plugin. */
export interface RedisconnOptions extends Omit<DialOptions, 'db' | 'signal' | 'readOnly'> {
  /** `host:port`, `[ipv6]:port`, a unix socket path or a redis:// URL. Unset → flags/env; empty → not configured. */
  addr?: string;
  /**
   * A Redis Cluster's seed nodes (`host:port`, or redis:// URLs that all say
   * the same credentials and TLS): the plugin builds a `Cluster` instead of a
   * pool, with the pool and dial options below for every node. Not with
   * `addr`; db must be 0. Unset (and no `addr`) → flags/env.
   */
  cluster?: readonly string[];
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
  /** Pool: deadline for resetting a returned connection (DISCARD, UNSUBSCRIBE...) and the replies owed on it; positive. Default 5 000 ms. */
  resetTimeoutMs?: number;
  /** Pool: check run on an idle connection before lending it. Default: PING when idle > 1 min. */
  testOnBorrow?: (conn: Conn, lastUsedMs: number) => void | Promise<void>;
  /** Bound on `get()` (waiting for a slot plus dialing). Default 5 000 ms. */
  getTimeoutMs?: number;
  /**
   * `get()` borrows an exclusive connection from the pool at once instead of
   * returning a lease (the default: a `Pool.lease()`, which runs stateless
   * commands on the pool's shared connection and moves to an exclusive one
   * only when a command needs it; see the README's "Leases"). Both behave as
   * one exclusive connection to the caller. Default false.
   */
  exclusiveConnections?: boolean;
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
  /** Use this source of connections (a Pool, a Cluster...) instead of building one; it stays yours to close. */
  pool?: ConnSource;
}

/** What flags and environment say. Absent keys were not given. */
export interface FlagOptions {
  addr?: string;
  /** Cluster seeds, as listed (comma-separated), not yet checked. */
  cluster?: string[];
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

/** A setting, with where it came from (`option addr`, `--redis-db`, `REDIS_CLUSTER`...), for error messages. */
interface Sourced<T> {
  value: T;
  source: string;
}

/** What flags and environment say, each with where it came from. */
interface FlagsRead {
  addr?: Sourced<string>;
  cluster?: Sourced<string[]>;
  db?: Sourced<number>;
}

/** `a, b,c` → `['a', 'b', 'c']` (blank entries dropped). */
function splitSeeds(list: string): string[] {
  return list
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '');
}

/**
 * Reads flags, else variables. Where to connect (addr or cluster) comes
 * whole from the flags when either target flag is given, else from the
 * variables: a flag never mixes with a variable. An empty REDIS_CLUSTER or
 * REDIS_DB counts as unset.
 */
function readFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): FlagsRead {
  const out: FlagsRead = {};
  const flagAddr = flagValue(argv, '--redis-addr');
  const flagCluster = flagValue(argv, '--redis-cluster');
  if (flagAddr !== undefined || flagCluster !== undefined) {
    if (flagAddr !== undefined) out.addr = { value: flagAddr, source: '--redis-addr' };
    if (flagCluster !== undefined) out.cluster = { value: splitSeeds(flagCluster), source: '--redis-cluster' };
  } else {
    if (env.REDIS_ADDR !== undefined) out.addr = { value: env.REDIS_ADDR, source: 'REDIS_ADDR' };
    if (env.REDIS_CLUSTER !== undefined && env.REDIS_CLUSTER.trim() !== '') out.cluster = { value: splitSeeds(env.REDIS_CLUSTER), source: 'REDIS_CLUSTER' };
  }
  const flagDb = flagValue(argv, '--redis-db');
  if (flagDb !== undefined) out.db = { value: parseDb(flagDb, '--redis-db'), source: '--redis-db' };
  else if (env.REDIS_DB !== undefined && env.REDIS_DB !== '') out.db = { value: parseDb(env.REDIS_DB, 'REDIS_DB'), source: 'REDIS_DB' };
  return out;
}

/** Throws ErrBadOption naming both sources when an addr (non-empty) and a cluster are given together. */
function checkOneTarget(addr: Sourced<string> | undefined, cluster: Sourced<readonly string[]> | undefined): void {
  if (addr !== undefined && cluster !== undefined && addr.value.trim() !== '') {
    throw new ErrBadOption(`${addr.source} and ${cluster.source} are both set: give a single server's address or a cluster's seeds, not both`);
  }
}

/**
 * Reads `--redis-addr` / `--redis-cluster` / `--redis-db` from `argv` and
 * `REDIS_ADDR` / `REDIS_CLUSTER` / `REDIS_DB` from `env`; flags win over
 * variables. A bad db, or an addr given with a cluster, throws an error
 * naming the flags or variables.
 */
export function optionsFromFlags(argv: readonly string[] = process.argv, env: Readonly<Record<string, string | undefined>> = process.env): FlagOptions {
  const read = readFlags(argv, env);
  checkOneTarget(read.addr, read.cluster);
  const out: FlagOptions = {};
  if (read.addr !== undefined) out.addr = read.addr.value;
  if (read.cluster !== undefined) out.cluster = read.cluster.value;
  if (read.db !== undefined) out.db = read.db.value;
  return out;
}

// ---------------------------------------------------------------------------
// Validation: one table, one entry per option (nested ones under their parent).

/** Checks one option's value (never undefined); throws ErrBadOption naming `name`. */
type Check = (value: unknown, name: string) => void;

/**
 * A value for a message. Strings are never echoed (an option may be a
 * password or carry one); numbers and the like are.
 */
function shown(value: unknown): string {
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

function bad(name: string, what: string, value: unknown): FastifyError {
  return new ErrBadOption(`option ${name} must be ${what}, got ${shown(value)}`);
}

const isBoolean: Check = (value, name) => {
  if (typeof value !== 'boolean') throw bad(name, 'a boolean', value);
};
const isFunction: Check = (value, name) => {
  if (typeof value !== 'function') throw bad(name, 'a function', value);
};
const isString: Check = (value, name) => {
  if (typeof value !== 'string') throw bad(name, 'a string', value);
};
const isNonEmptyString: Check = (value, name) => {
  if (typeof value !== 'string' || value === '') throw bad(name, 'a non-empty string', value);
};
const isObject: Check = (value, name) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(name, 'an object', value);
};

function integer(min: 0 | 1): Check {
  const what = min === 0 ? 'a non-negative integer' : 'a positive integer';
  return (value, name) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw bad(name, what, value);
  };
}

/**
 * A timeout in ms by the package's one rule (`checkTimeoutMs`: 0..2^31 − 1,
 * larger would overflow Node's timers); `positive` refuses 0, `whole` refuses
 * fractions (the pool's own options are whole ms).
 */
function timeoutMs(opts: { positive?: boolean; whole?: boolean } = {}): Check {
  return (value, name) => {
    try {
      checkTimeoutMs(`option ${name}`, value, opts.positive === true);
    } catch (err) {
      throw new ErrBadOption((err as Error).message.replace(/^redisconn: /, ''), { cause: err });
    }
    if (opts.whole === true && !Number.isInteger(value)) throw bad(name, 'a whole number of ms', value);
  };
}

function oneOf(...allowed: unknown[]): Check {
  return (value, name) => {
    if (!allowed.includes(value)) throw bad(name, allowed.map(String).join(' or '), value);
  };
}

/**
 * An object whose listed properties are checked (named `<name>.<key>`);
 * `orBoolean` also accepts true/false, `orFalse` false alone.
 */
function shape(fields: Record<string, Check>, accept: { orBoolean?: boolean; orFalse?: boolean } = {}): Check {
  return (value, name) => {
    if (accept.orBoolean === true && typeof value === 'boolean') return;
    if (accept.orFalse === true && value === false) return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw bad(name, accept.orBoolean === true ? 'a boolean or an object' : accept.orFalse === true ? 'false or an object' : 'an object', value);
    }
    for (const [key, check] of Object.entries(fields)) {
      const field = (value as Record<string, unknown>)[key];
      if (field !== undefined) check(field, `${name}.${key}`);
    }
  };
}

const isStringArray: Check = (value, name) => {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw bad(name, 'an array of strings', value);
};

/** What a `pool` option must have to be a ConnSource. */
const SOURCE_METHODS: readonly (keyof ConnSource)[] = ['get', 'do', 'lease', 'check', 'stats', 'close'];

/**
 * Every option `register` knows, and its check; an option not here is
 * refused as unknown. `satisfies` keeps it in step with RedisconnOptions:
 * an option added there and not here fails to compile.
 */
const OPTIONS = {
  addr: isString, // parsed, with its source named, by resolveTarget
  cluster: isStringArray, // likewise
  db: integer(0),
  name: isNonEmptyString,
  // Pool.
  maxIdle: integer(0),
  maxActive: integer(0),
  idleTimeoutMs: timeoutMs({ whole: true }),
  wait: isBoolean,
  maxConnLifetimeMs: integer(0),
  resetTimeoutMs: timeoutMs({ positive: true, whole: true }),
  testOnBorrow: isFunction,
  getTimeoutMs: timeoutMs(),
  exclusiveConnections: isBoolean,
  closeTimeoutMs: timeoutMs(),
  connectOnStart: isBoolean,
  pool: (value, name) => {
    const source = value as Partial<Record<keyof ConnSource, unknown>> | null;
    if (typeof source !== 'object' || source === null || !SOURCE_METHODS.every((method) => typeof source[method] === 'function')) {
      throw bad(name, 'a source of connections (a Pool, a Cluster...)', value);
    }
  },
  // Dial.
  username: isString,
  password: isString,
  clientName: isString,
  tls: (value, name) => {
    if (typeof value !== 'boolean') isObject(value, name);
  },
  connectTimeoutMs: timeoutMs({ positive: true }),
  readTimeoutMs: timeoutMs(),
  writeTimeoutMs: timeoutMs(),
  keepAliveMs: timeoutMs(),
  protocol: oneOf(2, 3),
  decodeStrings: isBoolean,
  maxReplyBytes: integer(1),
  // Plugin features.
  blobCache: shape({ prefix: isNonEmptyString, maxValueBytes: integer(1) }, { orFalse: true }),
  metrics: shape({ registry: isObject, route: isNonEmptyString, intervalMs: timeoutMs({ positive: true }) }, { orFalse: true }),
  admin: shape({ authorize: isFunction, prefix: isString }),
  health: shape({ route: isNonEmptyString, timeoutMs: timeoutMs({ positive: true }) }, { orBoolean: true }),
  // Where flags and environment are read from.
  argv: isStringArray,
  env: isObject,
} satisfies Record<keyof RedisconnOptions, Check>;

const KNOWN_OPTIONS: ReadonlyMap<string, Check> = new Map(Object.entries(OPTIONS));

/** Throws ErrBadOption naming the first unknown or invalid option. */
export function validateOptions(options: RedisconnOptions): void {
  for (const [key, value] of Object.entries(options)) {
    const check = KNOWN_OPTIONS.get(key);
    if (check === undefined) throw new ErrBadOption(key === 'lazyConnections' ? 'option lazyConnections was removed: leases are now the default; set exclusiveConnections: true for an exclusive borrow per get()' : `unknown option ${JSON.stringify(key)}`);
    if (value !== undefined) check(value, key);
  }
  if (options.decodeStrings === true && options.blobCache !== false) {
    throw new ErrBadOption('option decodeStrings: true would turn binary blob cache values into text; set blobCache: false to use it');
  }
}

/** Where to connect, resolved from options then flags/env. */
export interface ResolvedTarget {
  /** Empty when not configured, or a cluster. */
  addr: string;
  /** Cluster seeds as `host:port`; empty unless a cluster is configured. */
  cluster: string[];
  /** Always 0 for a cluster. */
  db: number;
  /** Dial options implied by a URL `addr` or URL seeds (credentials, TLS, db). */
  urlOptions: DialOptions;
}

/**
 * Parses an addr (or a seed); returns where it points and the dial options a
 * URL implies. The error names `source` (`option addr`, `--redis-cluster`...)
 * and shows the addr through `redactURL`: no part of a user name or
 * password, ever.
 */
function checkAddr(addr: string, source: string): { endpoint: Endpoint; options: DialOptions } {
  const fail = (why: string): FastifyError => new ErrBadOption(`${source} is invalid: ${why.replace(/^redisconn: /, '')}`);
  if (addr.includes('://')) {
    try {
      return parseURL(addr);
    } catch (err) {
      // parseURL's messages show the URL redacted; no cause, so nothing else rides along.
      throw fail((err as Error).message);
    }
  }
  // An "@" outside a URL is a password meant for a URL (or a typo): no host
  // holds one, and parseAddress would quote it back in full.
  if (addr.includes('@') && !addr.startsWith('/')) {
    throw fail(`${JSON.stringify(redactURL(addr))}: a user name or password needs a URL, e.g. redis://user:password@host:6379`);
  }
  try {
    return { endpoint: parseAddress(addr), options: {} };
  } catch (err) {
    throw fail((err as Error).message);
  }
}

/** The dial options two URL seeds may differ in (compared, never shown). */
const URL_SETTINGS = ['username', 'password', 'tls', 'db'] as const;

/**
 * Checks cluster seeds: at least one, each `host:port` or a TCP URL, the
 * URLs all saying the same credentials, TLS and db. Returns them as
 * `host:port` and the dial options the URLs imply. Errors name `source`.
 */
function checkSeeds(seeds: readonly string[], source: string): { seeds: string[]; urlOptions: DialOptions } {
  const list = seeds.map((seed) => seed.trim());
  if (list.length === 0 || list.includes('')) throw new ErrBadOption(`${source} is invalid: ${list.length === 0 ? 'it lists no seeds' : 'a seed is empty'}; give host:port of at least one cluster node`);
  let urlOptions: DialOptions | undefined;
  const out = list.map((seed) => {
    const { endpoint, options } = checkAddr(seed, source);
    if (endpoint.path !== undefined) throw new ErrBadOption(`${source} is invalid: ${JSON.stringify(redactURL(seed))}: a cluster seed must be host:port, not a unix socket`);
    if (seed.includes('://')) {
      if (urlOptions !== undefined && URL_SETTINGS.some((key) => urlOptions?.[key] !== options[key])) {
        throw new ErrBadOption(`${source} is invalid: its URLs differ in user name, password, TLS or db; every node of a cluster is dialed alike`);
      }
      urlOptions = options;
    }
    return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
  });
  return { seeds: out, urlOptions: urlOptions ?? {} };
}

/**
 * Resolves where to connect: explicit options win, else flags, else
 * variables (addr or cluster as one choice, see readFlags); db likewise. A
 * URL contributes its credentials, TLS and db. Throws ErrBadOption naming the
 * source of a bad addr, seed list or db, of an addr given with a cluster, and
 * of a db other than 0 for a cluster.
 */
export function resolveTarget(options: RedisconnOptions): ResolvedTarget {
  const targetGiven = options.addr !== undefined || options.cluster !== undefined;
  const fromFlags = !targetGiven || options.db === undefined ? readFlags(options.argv ?? process.argv, options.env ?? process.env) : {};
  const addrGiven = targetGiven ? sourced(options.addr, 'option addr') : fromFlags.addr;
  const clusterGiven = targetGiven ? sourced(options.cluster, 'option cluster') : fromFlags.cluster;
  checkOneTarget(addrGiven, clusterGiven);
  const dbGiven = sourced(options.db, 'option db') ?? fromFlags.db;
  if (clusterGiven !== undefined) {
    const { seeds, urlOptions } = checkSeeds(clusterGiven.value, clusterGiven.source);
    const db = dbGiven ?? sourced(urlOptions.db, `${clusterGiven.source} (a URL's db)`);
    if (db !== undefined && db.value !== 0) throw new ErrBadOption(`${db.source} is ${db.value}, but a Redis Cluster has only db 0`);
    return { addr: '', cluster: seeds, db: 0, urlOptions };
  }
  const addr = (addrGiven?.value ?? '').trim();
  const urlOptions = addr === '' ? {} : checkAddr(addr, addrGiven?.source ?? 'option addr').options;
  const db = dbGiven?.value ?? urlOptions.db ?? 0;
  return { addr, cluster: [], db, urlOptions };
}

function sourced<T>(value: T | undefined, source: string): Sourced<T> | undefined {
  return value === undefined ? undefined : { value, source };
}

/**
 * Plugin options: what `register` accepts, what flags and environment say
 * (`--redis-addr`, `--redis-cluster`, `--redis-sentinel`,
 * `--redis-master-name`, `--redis-db`, `REDIS_ADDR`, `REDIS_CLUSTER`,
 * `REDIS_SENTINEL`, `REDIS_MASTER_NAME`, `REDIS_DB`; flags win), and their
 * validation. Every error names the option, flag or variable at fault.
 */
import type { FastifyError } from '@fastify/error';
import type { FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { checkTimeoutMs, parseAddress, parseURL, redactURL, type Conn, type ConnSource, type DialOptions, type Endpoint } from '../src/index.js';
import { ErrBadOption } from './errors.js';

/** Blob cache settings. */
export interface BlobCacheOptions {
  /** Key prefix; keys are `<prefix>.<ns>:<key>`. Default `redisconn.blobcache`. */
  prefix?: string | undefined;
  /** Largest value accepted by `set`. Default 1 MiB. */
  maxValueBytes?: number | undefined;
}

/** Prometheus metrics settings. */
export interface MetricsOptions {
  /** Registry to register on. Default: prom-client's global registry. */
  registry?: Registry | undefined;
  /** Serve the registry at this route (e.g. `/metrics`). Default: no route. */
  route?: string | undefined;
  /** Also refresh the gauges every `intervalMs` (positive, at most 2^31 − 1 ms; push-style exporters). Default: scrape time only. */
  intervalMs?: number | undefined;
  /**
   * Also time every command run on the pool's connections into the
   * histogram `redis_command_duration_seconds{pool,command}` (from the
   * `redisconn:command` channel; `command` is `other` for a command the
   * client does not know). Default false.
   */
  commandDuration?: boolean | undefined;
}

/** The admin API (off unless `authorize` is given). */
export interface AdminOptions {
  /** Decides whether the request may use the admin API. Absent → no admin route. */
  authorize?: ((request: FastifyRequest) => boolean | Promise<boolean>) | undefined;
  /** Route prefix. Default `/admin/redis`. */
  prefix?: string | undefined;
}

/** The health route. */
export interface HealthOptions {
  /** Route. Default `/healthz/redis`. */
  route?: string | undefined;
  /** Deadline of the whole check (positive, at most 2^31 − 1 ms). Default 1 000 ms. */
  timeoutMs?: number | undefined;
}

/**
 * A Redis Sentinel deployment: the plugin builds a `SentinelPool` that
 * follows the master the sentinels name. The credentials and TLS here are
 * the sentinels' own; the data nodes (master, replicas) are dialed with the
 * top-level `username`, `password`, `tls` and `db`.
 */
export interface SentinelOptions {
  /**
   * Sentinel addresses: `host:port`, or redis:// / rediss:// URLs (all saying
   * the same credentials and TLS, which are the sentinels'); one reachable is
   * enough. Required.
   */
  sentinels: readonly string[];
  /** The name the sentinels monitor the master under. Required. */
  masterName: string;
  /** ACL user of the sentinels. */
  username?: string | undefined;
  /** Password of the sentinels (their `requirepass`). */
  password?: string | undefined;
  /** TLS to the sentinels. Default: the data nodes' `tls`. */
  tls?: DialOptions['tls'] | undefined;
}

/** Options of the redisconn Fastify plugin. */
export interface RedisconnOptions extends Omit<DialOptions, 'db' | 'signal' | 'readOnly'> {
  /** `host:port`, `[ipv6]:port`, a unix socket path or a redis:// URL. Unset → flags/env; empty → not configured. */
  addr?: string | undefined;
  /**
   * A Redis Cluster's seed nodes (`host:port`, or redis:// URLs that all say
   * the same credentials and TLS): the plugin builds a `Cluster` instead of a
   * pool, with the pool and dial options below for every node. Not with
   * `addr`; db must be 0. Unset (and no `addr`) → flags/env.
   */
  cluster?: readonly string[] | undefined;
  /**
   * A Redis Sentinel deployment (sentinel addresses and the master's name):
   * the plugin builds a `SentinelPool` following the master, with the pool
   * and dial options below (and `db`) for the data nodes. Not with `addr` or
   * `cluster`. Unset (and no `addr`, `cluster`) → flags/env.
   */
  sentinel?: SentinelOptions | undefined;
  /** Database number. Unset → flags/env, else 0. */
  db?: number | undefined;
  /**
   * Register a further Redis under `app.redis[namespace]` and
   * `request.redis[namespace]`, beside the default one (`app.redis`) and any
   * other namespace: its own source of connections, metrics label (`name`
   * defaults to the namespace), blob cache, and admin and health routes
   * (defaults `/admin/redis/<namespace>`, `/healthz/redis/<namespace>`). A
   * namespaced registration reads options only, never flags or environment
   * (those configure the default one). Not a name `app.redis` already has
   * (`pool`, `get`, `blobCache`, `abstractCache`, another namespace).
   */
  namespace?: string | undefined;
  /** Pool label in metrics and logs. Default: the namespace, else `default`. */
  name?: string | undefined;
  /** Pool: idle connections kept. Default 64 (LUCI). */
  maxIdle?: number | undefined;
  /** Pool: connections open at once. Default 512 (LUCI). */
  maxActive?: number | undefined;
  /** Pool: idle connections older than this are closed. Default 180 000 ms. */
  idleTimeoutMs?: number | undefined;
  /** Pool: wait for a free connection (true) or fail at once. Default true. */
  wait?: boolean | undefined;
  /** Pool: connections older than this are closed. Default 0 (no limit). */
  maxConnLifetimeMs?: number | undefined;
  /** Pool: deadline for resetting a returned connection (DISCARD, UNSUBSCRIBE...) and the replies owed on it; positive. Default 5 000 ms. */
  resetTimeoutMs?: number | undefined;
  /** Pool: check run on an idle connection before lending it. Default: PING when idle > 1 min. */
  testOnBorrow?: ((conn: Conn, lastUsedMs: number) => void | Promise<void>) | undefined;
  /** Bound on `get()` (waiting for a slot plus dialing). Default 5 000 ms. */
  getTimeoutMs?: number | undefined;
  /**
   * `get()` borrows an exclusive connection from the pool at once instead of
   * returning a lease (the default: a `Pool.lease()`, which runs stateless
   * commands on the pool's shared connection and moves to an exclusive one
   * only when a command needs it; see the README's "Leases"). Both behave as
   * one exclusive connection to the caller. Default false.
   */
  exclusiveConnections?: boolean | undefined;
  /**
   * How long `app.close()` waits for connections still lent out (one taken
   * with `app.redis.get()` and never closed) before it goes on without them;
   * they are closed when returned. Default 5 000 ms.
   */
  closeTimeoutMs?: number | undefined;
  /** PING once during `app.ready()` and fail it when Redis is unreachable. Default false. */
  connectOnStart?: boolean | undefined;
  /**
   * Log a warning through the app's logger for each command on the pool's
   * connections that took longer than this many ms from write to reply
   * (positive, at most 2^31 − 1): `{ pool, command, durationMs, connection,
   * serverAddress, serverPort, db }`, never argument values. Blocking
   * commands count their wait. Default: off.
   */
  slowCommandMs?: number | undefined;
  /** Blob cache settings, or false to disable `blobCache()`. */
  blobCache?: BlobCacheOptions | false | undefined;
  /** Metrics settings, or false for none. Default: registered on the global registry. */
  metrics?: MetricsOptions | false | undefined;
  /** Admin API; off unless given. */
  admin?: AdminOptions | undefined;
  /** Health route; off unless given (`true` for defaults). */
  health?: HealthOptions | boolean | undefined;
  /** Command-line arguments to read flags from. Default `process.argv`. */
  argv?: readonly string[] | undefined;
  /** Environment to read variables from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Use this source of connections (a Pool, a Cluster...) instead of building one; it stays yours to close. */
  pool?: ConnSource | undefined;
}

/** What flags and environment say. Absent keys were not given. */
export interface FlagOptions {
  addr?: string;
  /** Cluster seeds, as listed (comma-separated), not yet checked. */
  cluster?: string[];
  /** Sentinel addresses as listed (comma-separated, not yet checked) and the master's name. */
  sentinel?: { sentinels: string[]; masterName: string };
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
  /** Sentinel addresses, as listed. */
  sentinels?: Sourced<string[]>;
  masterName?: Sourced<string>;
  db?: Sourced<number>;
  /** Target variables that are set but not read, because a target flag was given (for hints). */
  unread?: string[];
}

/** The flags that say where to connect: given any, the target comes from flags alone. */
const TARGET_FLAGS = ['--redis-addr', '--redis-cluster', '--redis-sentinel', '--redis-master-name'] as const;
/** The variables that say where to connect (an empty one counts as unset). */
const TARGET_VARIABLES = ['REDIS_ADDR', 'REDIS_CLUSTER', 'REDIS_SENTINEL', 'REDIS_MASTER_NAME'] as const;

/** `a, b,c` → `['a', 'b', 'c']` (blank entries dropped). */
function splitSeeds(list: string): string[] {
  return list
    .split(',')
    .map((seed) => seed.trim())
    .filter((seed) => seed !== '');
}

/** A variable's value, undefined when unset or blank. */
function setIn(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Reads flags, else variables. Where to connect (addr, cluster, or
 * sentinels and master name) comes whole from the flags when any target
 * flag is given, else from the variables: a flag never mixes with a
 * variable. An empty REDIS_CLUSTER, REDIS_SENTINEL, REDIS_MASTER_NAME or
 * REDIS_DB counts as unset.
 */
function readFlags(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): FlagsRead {
  const out: FlagsRead = {};
  const [flagAddr, flagCluster, flagSentinel, flagMaster] = TARGET_FLAGS.map((flag) => flagValue(argv, flag));
  if (flagAddr !== undefined || flagCluster !== undefined || flagSentinel !== undefined || flagMaster !== undefined) {
    if (flagAddr !== undefined) out.addr = { value: flagAddr, source: '--redis-addr' };
    if (flagCluster !== undefined) out.cluster = { value: splitSeeds(flagCluster), source: '--redis-cluster' };
    if (flagSentinel !== undefined) out.sentinels = { value: splitSeeds(flagSentinel), source: '--redis-sentinel' };
    if (flagMaster !== undefined) out.masterName = { value: flagMaster.trim(), source: '--redis-master-name' };
    const unread = TARGET_VARIABLES.filter((name) => setIn(env, name) !== undefined);
    if (unread.length > 0) out.unread = unread;
  } else {
    if (env.REDIS_ADDR !== undefined) out.addr = { value: env.REDIS_ADDR, source: 'REDIS_ADDR' };
    const cluster = setIn(env, 'REDIS_CLUSTER');
    if (cluster !== undefined) out.cluster = { value: splitSeeds(cluster), source: 'REDIS_CLUSTER' };
    const sentinels = setIn(env, 'REDIS_SENTINEL');
    if (sentinels !== undefined) out.sentinels = { value: splitSeeds(sentinels), source: 'REDIS_SENTINEL' };
    const masterName = setIn(env, 'REDIS_MASTER_NAME');
    if (masterName !== undefined) out.masterName = { value: masterName.trim(), source: 'REDIS_MASTER_NAME' };
  }
  const flagDb = flagValue(argv, '--redis-db');
  if (flagDb !== undefined) out.db = { value: parseDb(flagDb, '--redis-db'), source: '--redis-db' };
  else if (env.REDIS_DB !== undefined && env.REDIS_DB !== '') out.db = { value: parseDb(env.REDIS_DB, 'REDIS_DB'), source: 'REDIS_DB' };
  return out;
}

/**
 * Throws ErrBadOption naming two sources when more than one target is given
 * at one level: an addr (non-empty), a cluster, a sentinel deployment (its
 * option, or either of its flags or variables).
 */
function checkOneTarget(addr: Sourced<string> | undefined, ...others: (Sourced<unknown> | undefined)[]): void {
  const given = [addr !== undefined && addr.value.trim() !== '' ? addr : undefined, ...others].filter((target): target is Sourced<unknown> => target !== undefined);
  const [first, second] = given;
  if (first !== undefined && second !== undefined) {
    throw new ErrBadOption(`${first.source} and ${second.source} are both set: give one of a single server's address, a cluster's seeds, or sentinels and a master name, not several`);
  }
}

/** Sentinel addresses and the master's name, each with where it came from. */
interface SentinelRead {
  sentinels: Sourced<readonly string[]>;
  masterName: Sourced<string>;
}

/**
 * Both halves of a sentinel target given at one level (option, flags or
 * variables), or ErrBadOption naming the missing half and where the other
 * came from (and the variable not read, when a flag shadowed it). Returns
 * undefined when neither is given.
 */
function sentinelPair(
  sentinels: Sourced<readonly string[]> | undefined,
  masterName: Sourced<string> | undefined,
  names: { sentinels: string; masterName: string },
  unread: readonly string[] = [],
): SentinelRead | undefined {
  if (sentinels !== undefined && masterName !== undefined) return { sentinels, masterName };
  if (sentinels === undefined && masterName === undefined) return undefined;
  const [missing, present, variable] = sentinels === undefined ? [names.sentinels, masterName as Sourced<string>, 'REDIS_SENTINEL'] : [names.masterName, sentinels, 'REDIS_MASTER_NAME'];
  const what = sentinels === undefined ? 'the addresses of the sentinels' : 'the name the sentinels monitor the master under';
  const hint = unread.includes(variable) ? ` (${variable} is not read: with a --redis-* target flag given, the target comes from the flags alone)` : '';
  throw new ErrBadOption(`${missing} is not set, but ${present.source} is: a Sentinel deployment needs ${what} too${hint}`);
}

/** The sentinel target flags or variables say, if any (see {@link sentinelPair}). */
function flagSentinel(read: FlagsRead): SentinelRead | undefined {
  const flags = read.sentinels?.source.startsWith('--') === true || read.masterName?.source.startsWith('--') === true;
  const names = flags ? { sentinels: '--redis-sentinel', masterName: '--redis-master-name' } : { sentinels: 'REDIS_SENTINEL', masterName: 'REDIS_MASTER_NAME' };
  return sentinelPair(read.sentinels, read.masterName, names, read.unread);
}

/**
 * Reads `--redis-addr` / `--redis-cluster` / `--redis-sentinel` +
 * `--redis-master-name` / `--redis-db` from `argv` and `REDIS_ADDR` /
 * `REDIS_CLUSTER` / `REDIS_SENTINEL` + `REDIS_MASTER_NAME` / `REDIS_DB` from
 * `env`; flags win over variables. A bad db, more than one target, or half
 * a sentinel target throws an error naming the flags or variables.
 */
export function optionsFromFlags(argv: readonly string[] = process.argv, env: Readonly<Record<string, string | undefined>> = process.env): FlagOptions {
  const read = readFlags(argv, env);
  checkOneTarget(read.addr, read.cluster, read.sentinels ?? read.masterName);
  const sentinel = flagSentinel(read);
  const out: FlagOptions = {};
  if (read.addr !== undefined) out.addr = read.addr.value;
  if (read.cluster !== undefined) out.cluster = read.cluster.value;
  if (sentinel !== undefined) out.sentinel = { sentinels: [...sentinel.sentinels.value], masterName: sentinel.masterName.value };
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
 * `orBoolean` also accepts true/false, `orFalse` false alone; `exact`
 * refuses properties not listed.
 */
function shape(fields: Record<string, Check>, accept: { orBoolean?: boolean; orFalse?: boolean; exact?: boolean } = {}): Check {
  return (value, name) => {
    if (accept.orBoolean === true && typeof value === 'boolean') return;
    if (accept.orFalse === true && value === false) return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw bad(name, accept.orBoolean === true ? 'a boolean or an object' : accept.orFalse === true ? 'false or an object' : 'an object', value);
    }
    if (accept.exact === true) {
      const unknown = Object.keys(value).find((key) => !Object.hasOwn(fields, key));
      if (unknown !== undefined) throw new ErrBadOption(`unknown option ${JSON.stringify(`${name}.${unknown}`)}`);
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

const isTls: Check = (value, name) => {
  if (typeof value !== 'boolean') isObject(value, name);
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
  // Its sentinels and masterName: whether both are there is said by resolveTarget.
  sentinel: shape({ sentinels: isStringArray, masterName: isNonEmptyString, username: isString, password: isString, tls: isTls }, { exact: true }),
  db: integer(0),
  namespace: isNonEmptyString, // its clashes with app.redis's own names are said at registration
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
  slowCommandMs: timeoutMs({ positive: true }),
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
  tls: isTls,
  connectTimeoutMs: timeoutMs({ positive: true }),
  readTimeoutMs: timeoutMs(),
  writeTimeoutMs: timeoutMs(),
  keepAliveMs: timeoutMs(),
  protocol: oneOf(2, 3),
  decodeStrings: isBoolean,
  maxReplyBytes: integer(1),
  // Plugin features.
  blobCache: shape({ prefix: isNonEmptyString, maxValueBytes: integer(1) }, { orFalse: true }),
  metrics: shape({ registry: isObject, route: isNonEmptyString, intervalMs: timeoutMs({ positive: true }), commandDuration: isBoolean }, { orFalse: true }),
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
  if (options.namespace !== undefined) {
    const flagsGiven = options.argv !== undefined ? 'argv' : options.env !== undefined ? 'env' : undefined;
    if (flagsGiven !== undefined) {
      throw new ErrBadOption(`option ${flagsGiven} is not read with option namespace: a namespaced registration takes its target from options only (flags and environment configure the default registration)`);
    }
  }
  if (options.decodeStrings === true && options.blobCache !== false) {
    throw new ErrBadOption('option decodeStrings: true would turn binary blob cache values into text; set blobCache: false to use it');
  }
}

/** A sentinel deployment, resolved: addresses as `host:port`, and the sentinels' own credentials and TLS. */
export interface ResolvedSentinel {
  sentinels: string[];
  masterName: string;
  username?: string;
  password?: string;
  tls?: DialOptions['tls'];
}

/** Where to connect, resolved from options then flags/env. */
export interface ResolvedTarget {
  /** Empty when not configured, a cluster or a sentinel deployment. */
  addr: string;
  /** Cluster seeds as `host:port`; empty unless a cluster is configured. */
  cluster: string[];
  /** The sentinel deployment; null unless one is configured. */
  sentinel: ResolvedSentinel | null;
  /** Always 0 for a cluster. */
  db: number;
  /** Where `db` came from (`option db`, `--redis-db`, `REDIS_DB`, a URL), for messages; `default` when not given. */
  dbSource: string;
  /** Dial options implied by a URL `addr` or URL seeds (credentials, TLS, db); empty for sentinels (theirs are in `sentinel`). */
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

/** How a list of addresses is named in errors: cluster seeds or sentinels. */
interface ListWords {
  /** `seeds`, `sentinels`. */
  plural: string;
  /** `a seed`, `a sentinel address`. */
  one: string;
  /** `a cluster seed`, `a sentinel address`. */
  each: string;
  /** `at least one cluster node`, `at least one sentinel`. */
  atLeast: string;
  /** `every node of a cluster`, `every sentinel`. */
  every: string;
}

const SEED_WORDS: ListWords = { plural: 'seeds', one: 'a seed', each: 'a cluster seed', atLeast: 'at least one cluster node', every: 'every node of a cluster' };
const SENTINEL_WORDS: ListWords = { plural: 'sentinels', one: 'a sentinel address', each: 'a sentinel address', atLeast: 'at least one sentinel', every: 'every sentinel' };

/**
 * Checks cluster seeds (or sentinel addresses): at least one, each
 * `host:port` or a TCP URL, the URLs all saying the same credentials, TLS
 * and db. Returns them as `host:port` and the dial options the URLs imply.
 * Errors name `source`.
 */
function checkSeeds(seeds: readonly string[], source: string, words: ListWords = SEED_WORDS): { seeds: string[]; urlOptions: DialOptions } {
  const list = seeds.map((seed) => seed.trim());
  if (list.length === 0 || list.includes('')) throw new ErrBadOption(`${source} is invalid: ${list.length === 0 ? `it lists no ${words.plural}` : `${words.one} is empty`}; give host:port of ${words.atLeast}`);
  let urlOptions: DialOptions | undefined;
  const out = list.map((seed) => {
    const { endpoint, options } = checkAddr(seed, source);
    if (endpoint.path !== undefined) throw new ErrBadOption(`${source} is invalid: ${JSON.stringify(redactURL(seed))}: ${words.each} must be host:port, not a unix socket`);
    if (seed.includes('://')) {
      if (urlOptions !== undefined && URL_SETTINGS.some((key) => urlOptions?.[key] !== options[key])) {
        throw new ErrBadOption(`${source} is invalid: its URLs differ in user name, password, TLS or db; ${words.every} is dialed alike`);
      }
      urlOptions = options;
    }
    return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
  });
  return { seeds: out, urlOptions: urlOptions ?? {} };
}

/**
 * Resolves where to connect: explicit options win, else flags, else
 * variables (addr, cluster or sentinel as one choice, see readFlags); db
 * likewise. A URL contributes its credentials, TLS and db (a sentinel URL:
 * the sentinels' credentials and TLS). Throws ErrBadOption naming the source
 * of a bad addr, seed or sentinel list, master name or db, of two targets
 * given together, of half a sentinel target, and of a db other than 0 for a
 * cluster.
 */
export function resolveTarget(options: RedisconnOptions): ResolvedTarget {
  // A namespaced registration is configured by its options alone.
  const targetGiven = options.namespace !== undefined || options.addr !== undefined || options.cluster !== undefined || options.sentinel !== undefined;
  const readsFlags = options.namespace === undefined && (!targetGiven || options.db === undefined);
  const fromFlags = readsFlags ? readFlags(options.argv ?? process.argv, options.env ?? process.env) : {};
  const addrGiven = targetGiven ? sourced(options.addr, 'option addr') : fromFlags.addr;
  const clusterGiven = targetGiven ? sourced(options.cluster, 'option cluster') : fromFlags.cluster;
  checkOneTarget(addrGiven, clusterGiven, targetGiven ? sourced(options.sentinel, 'option sentinel') : (fromFlags.sentinels ?? fromFlags.masterName));
  const dbGiven = sourced(options.db, 'option db') ?? fromFlags.db;
  if (clusterGiven !== undefined) {
    const { seeds, urlOptions } = checkSeeds(clusterGiven.value, clusterGiven.source);
    const db = dbGiven ?? sourced(urlOptions.db, `${clusterGiven.source} (a URL's db)`);
    if (db !== undefined && db.value !== 0) throw new ErrBadOption(`${db.source} is ${db.value}, but a Redis Cluster has only db 0`);
    return { addr: '', cluster: seeds, sentinel: null, db: 0, dbSource: 'default', urlOptions };
  }
  const sentinelGiven = targetGiven ? optionSentinel(options.sentinel) : flagSentinel(fromFlags);
  if (sentinelGiven !== undefined) {
    const sentinel = checkSentinel(sentinelGiven, options.sentinel);
    return { addr: '', cluster: [], sentinel, db: dbGiven?.value ?? 0, dbSource: dbGiven?.source ?? 'default', urlOptions: {} };
  }
  const addr = (addrGiven?.value ?? '').trim();
  const addrSource = addrGiven?.source ?? 'option addr';
  const urlOptions = addr === '' ? {} : checkAddr(addr, addrSource).options;
  const db = dbGiven ?? sourced(urlOptions.db, `${addrSource} (its URL's db)`);
  return { addr, cluster: [], sentinel: null, db: db?.value ?? 0, dbSource: db?.source ?? 'default', urlOptions };
}

/** The halves of option `sentinel` (see {@link sentinelPair}). */
function optionSentinel(option: SentinelOptions | undefined): SentinelRead | undefined {
  if (option === undefined) return undefined;
  const pair = sentinelPair(sourced(option.sentinels, 'option sentinel.sentinels'), sourced(option.masterName, 'option sentinel.masterName'), {
    sentinels: 'option sentinel.sentinels',
    masterName: 'option sentinel.masterName',
  });
  if (pair === undefined) throw new ErrBadOption('option sentinel needs sentinels (their addresses) and masterName (the name they monitor the master under)');
  return pair;
}

/**
 * Checks a sentinel target: the addresses (as cluster seeds are checked; a
 * URL says the sentinels' credentials and TLS, never a db) and a non-empty
 * master name. Credentials and TLS of option `sentinel` win over the URLs'
 * (a TLS URL keeps TLS on).
 */
function checkSentinel(read: SentinelRead, explicit: SentinelOptions | undefined): ResolvedSentinel {
  const { seeds, urlOptions } = checkSeeds(read.sentinels.value, read.sentinels.source, SENTINEL_WORDS);
  if (urlOptions.db !== undefined && urlOptions.db !== 0) {
    throw new ErrBadOption(`${read.sentinels.source} is invalid: a sentinel URL says db ${urlOptions.db}, but sentinels have no db; set option db, --redis-db or REDIS_DB for the master's`);
  }
  const masterName = read.masterName.value.trim();
  if (masterName === '') throw new ErrBadOption(`${read.masterName.source} is empty: give the name the sentinels monitor the master under`);
  const out: ResolvedSentinel = { sentinels: seeds, masterName };
  const username = explicit?.username ?? urlOptions.username;
  const password = explicit?.password ?? urlOptions.password;
  let tls = explicit?.tls ?? urlOptions.tls;
  if (urlOptions.tls === true && (tls === undefined || tls === false)) tls = true;
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  if (tls !== undefined) out.tls = tls;
  return out;
}

function sourced<T>(value: T | undefined, source: string): Sourced<T> | undefined {
  return value === undefined ? undefined : { value, source };
}

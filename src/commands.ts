/**
 * The command table (redigo's commandinfo): for each command, what it does
 * to the connection, whether it may run on the pool's shared connection, the
 * push kind of its replies, where its keys are and how a cluster routes it.
 * Every rule about commands — the reset of a returned connection, the
 * refusals of the shared connection, which pushes answer a command, which
 * notifications are subscription confirmations, which arguments are keys,
 * which requests fan out to every shard — reads this one table.
 *
 * The built-in rows are what Redis 7.0's `COMMAND` reports for the common
 * commands (key specs, request/response policy tips, the `readonly` flag),
 * plus the connection rules only a client knows. {@link learnCommands}
 * completes the table from a server's own `COMMAND` reply. A command absent
 * from the table is stateless, non-blocking and shared-safe, and its keys
 * are unknown.
 *
 * Key positions follow Redis 7 key specs, read by one interpreter for the
 * built-in and the learnt rows. Positions inside a spec count as Redis
 * counts them: 0 is the command name, 1 the first argument (`args[0]`).
 * A subcommand's positions count its container's name: in
 * `OBJECT ENCODING key` the key is at 2 (`args[1]`).
 */
import type { Reply } from './resp/decode.js';
import { decimal, type Arg } from './resp/encode.js';

/** Connection state left behind by commands, as bits. */
export const enum ConnState {
  Watch = 1,
  Multi = 2,
  Subscribe = 4,
  ShardSubscribe = 8,
  /** State no command can undo cheaply (MONITOR, SELECT, CLIENT SETNAME...): close instead of reuse. */
  Tainted = 16,
}

/** The confirmations of (un)subscribe commands: pushes that answer a command. */
export type SubscriptionKind = 'subscribe' | 'unsubscribe' | 'psubscribe' | 'punsubscribe' | 'ssubscribe' | 'sunsubscribe';

/** What a command does to the state: bits to set and bits to clear. */
export interface StateChange {
  readonly set: number;
  readonly clear: number;
}

/**
 * Where a key spec starts (Redis 7's `begin_search`): at a fixed position;
 * or just after a keyword, searched from `startFrom` towards the end (a
 * negative `startFrom` counts from the end and searches towards the start,
 * as Redis does); or unknown (Redis cannot say: the command's own key
 * finder decides, see {@link keyIndexes}).
 */
export type BeginSearch =
  | { readonly index: number }
  | { readonly keyword: string; readonly startFrom: number }
  | { readonly unknown: true };

/**
 * Which arguments from the start are keys (Redis 7's `find_keys`).
 * `range`: from the start to `lastKey` positions further (a negative
 * `lastKey` counts from the end: -1 is the last argument), every `step`th;
 * with `limit` > 0 and `lastKey` -1, only the first 1/limit of the rest
 * (XREAD's STREAMS k1 k2 id1 id2: limit 2). `keyNum`: the argument
 * `keyNumIdx` positions after the start says how many keys there are; they
 * begin `firstKey` positions after the start, every `step`th.
 */
export type FindKeys =
  | { readonly range: { readonly lastKey: number; readonly step: number; readonly limit: number } }
  | { readonly keyNum: { readonly keyNumIdx: number; readonly firstKey: number; readonly step: number } }
  | { readonly unknown: true };

/** One Redis 7 key spec: where to begin and which arguments are keys from there. */
export interface KeySpec {
  readonly beginSearch: BeginSearch;
  readonly findKeys: FindKeys;
  /**
   * The arguments are shard channels, not keys (Redis flags the spec
   * `not_key`: SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE). They hash to slots like
   * keys, so {@link keyIndexes} reports them with the keys, on purpose.
   */
  readonly channel?: true;
  /** Redis flags the spec `incomplete`: it may miss keys, the command's own key finder is authoritative. */
  readonly incomplete?: true;
}

/** How a cluster client sends a keyless or multi-key command (the `request_policy` tip). */
export type RequestPolicy = 'all_shards' | 'multi_shard' | 'all_nodes' | 'special';
/** How a cluster client combines the replies of a fanned-out command (the `response_policy` tip). */
export type ResponsePolicy = 'one_succeeded' | 'all_succeeded' | 'agg_logical_and' | 'agg_logical_or' | 'agg_min' | 'agg_max' | 'agg_sum' | 'special';

/** Why a command may not run on the shared connection; see {@link CommandInfo.notShared}. */
export type NotShared = 'state' | 'blocks' | 'block-arg' | 'replies';

/** One row of the table, as {@link commandInfo} returns it. */
export interface CommandInfo {
  /** The name in upper case; a subcommand's is `CONTAINER SUB` (`'CONFIG GET'`). */
  readonly name: string;
  /** State bits the command sets and clears. */
  readonly state?: StateChange;
  /**
   * Why it may not run on the shared connection: it changes connection
   * state, blocks it (`'block-arg'`: only with a BLOCK argument), or answers
   * more than once. Absent: shared-safe.
   */
  readonly notShared?: NotShared;
  /** The push kind of its confirmations (subscribe commands). */
  readonly push?: SubscriptionKind;
  /** Where its keys (and shard channels) are, in Redis's order; empty when it names none itself. */
  readonly keySpecs: readonly KeySpec[];
  /** The `request_policy` tip; undefined: none (route by the keys, or to any one shard when keyless). */
  readonly requestPolicy: RequestPolicy | undefined;
  /** The `response_policy` tip; undefined: none (the default for the request policy). */
  readonly responsePolicy: ResponsePolicy | undefined;
  /** Redis flags it `readonly`: a replica may serve it. */
  readonly readOnly: boolean;
  /** It never names a key: no key spec, no key finder of its own, and no subcommand that names one. */
  readonly keyless: boolean;
  /** True once a server's `COMMAND` reply supplied its key specs, tips and flags ({@link learnCommands}). */
  readonly learnt: boolean;
  /**
   * Subcommand rows of a container command (CONFIG, OBJECT, XINFO...), by
   * name in upper and lower case. The container routes by these: the row of
   * `args[0]`, or the container's own row for an unknown subcommand.
   */
  readonly subcommands?: ReadonlyMap<string, CommandInfo>;
}

/** How a cluster client routes one call: {@link routeOf}. */
export interface Route {
  /**
   * Indexes into `args` (the arguments after the command name; for a
   * container command, `args[0]` is the subcommand) of the keys and shard
   * channels, in key spec order. Empty when there is none. Shared between
   * calls: never mutate it.
   */
  readonly keys: readonly number[];
  readonly requestPolicy: RequestPolicy | undefined;
  readonly responsePolicy: ResponsePolicy | undefined;
  readonly readOnly: boolean;
  /** False when the table has no row for the command: empty `keys` then means unknown, not keyless. */
  readonly known: boolean;
}

/** The declarative form of a row, as written in {@link TABLE}. */
interface RowSpec {
  readonly state?: StateChange;
  readonly notShared?: NotShared;
  readonly push?: SubscriptionKind;
  readonly keys?: readonly KeySpec[];
  readonly requestPolicy?: RequestPolicy;
  readonly responsePolicy?: ResponsePolicy;
  readonly readOnly?: true;
  /**
   * Never split across slots, whatever the server's tips say (MSETNX: its
   * all-or-nothing promise holds only within one node). Kept when learning.
   */
  readonly atomic?: true;
  /** Subcommand rows, upper case names. */
  readonly subcommands?: Readonly<Record<string, RowSpec>>;
}

/** A command's own key finder, for the specs Redis cannot express (its getkeys_proc). */
type KeysFinder = (name: string, args: readonly Arg[]) => number[];

/** A row with what the hot path needs worked out once. */
interface Row extends CommandInfo {
  readonly subcommands?: ReadonlyMap<string, Row>;
  /** The route when the key positions do not depend on the arguments (GET, SET, LMOVE, keyless...), else null. */
  readonly fixedRoute: Route | null;
  /** With a fixed route: the fewest arguments holding every key. */
  readonly minArgs: number;
  /** The command's own key finder (SORT, MIGRATE), or null. */
  readonly finder: KeysFinder | null;
}

const TAINTS: StateChange = { set: ConnState.Tainted, clear: 0 };
const sets = (bits: number): StateChange => ({ set: bits, clear: 0 });
const clears = (bits: number): StateChange => ({ set: 0, clear: bits });

/** The key at `index` alone. */
const key = (index: number): KeySpec => keys(index, 0);
/** Keys from `index` to `lastKey` (relative; negative: from the end), every `step`th, the first 1/`limit` of them. */
const keys = (index: number, lastKey = -1, step = 1, limit = 0): KeySpec => ({ beginSearch: { index }, findKeys: { range: { lastKey, step, limit } } });
/** Keys after `keyword`, searched from `startFrom`. */
const keysAfter = (keyword: string, startFrom: number, lastKey: number, step: number, limit: number): KeySpec => ({
  beginSearch: { keyword, startFrom },
  findKeys: { range: { lastKey, step, limit } },
});
/** Keys counted by a numkeys argument `keyNumIdx` after `index`, from `firstKey` after `index`. */
const numKeys = (index: number, keyNumIdx: number, firstKey: number, step: number): KeySpec => ({
  beginSearch: { index },
  findKeys: { keyNum: { keyNumIdx, firstKey, step } },
});
const channels = (spec: KeySpec): KeySpec => ({ ...spec, channel: true });
const incomplete = (spec: KeySpec): KeySpec => ({ ...spec, incomplete: true });
const UNKNOWN_KEYS: KeySpec = { beginSearch: { unknown: true }, findKeys: { unknown: true } };

/**
 * The built-in rows. Key specs, tips and `readOnly` are those of Redis
 * 7.0.15's `COMMAND` (WAITAOF, CLIENT NO-TOUCH and CLIENT SETINFO are newer:
 * connection rules only).
 */
const TABLE: Readonly<Record<string, RowSpec>> = {
  // Transactions and connection state
  WATCH: { state: sets(ConnState.Watch), notShared: 'state', keys: [keys(1, -1)] },
  UNWATCH: { state: clears(ConnState.Watch), notShared: 'state' },
  MULTI: { state: sets(ConnState.Multi), notShared: 'state' },
  EXEC: { state: clears(ConnState.Watch | ConnState.Multi), notShared: 'state' },
  DISCARD: { state: clears(ConnState.Watch | ConnState.Multi), notShared: 'state' },
  SELECT: { state: TAINTS, notShared: 'state' },
  HELLO: { state: TAINTS, notShared: 'state' },
  AUTH: { state: TAINTS, notShared: 'state' },
  RESET: { state: TAINTS, notShared: 'state' },
  READONLY: { state: TAINTS, notShared: 'state' },
  READWRITE: { state: TAINTS, notShared: 'state' },
  QUIT: { notShared: 'state' },
  SWAPDB: { notShared: 'state' },
  MONITOR: { state: TAINTS, notShared: 'replies' },
  SYNC: { notShared: 'replies' },
  PSYNC: { notShared: 'replies' },
  DEBUG: { notShared: 'blocks' },
  SHUTDOWN: { notShared: 'state' },
  WAIT: { notShared: 'blocks', requestPolicy: 'all_shards', responsePolicy: 'agg_min' },
  WAITAOF: { notShared: 'blocks' },
  PING: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
  ECHO: {},
  // Pub/sub: shard channels route like keys
  SUBSCRIBE: { state: sets(ConnState.Subscribe), notShared: 'replies', push: 'subscribe' },
  PSUBSCRIBE: { state: sets(ConnState.Subscribe), notShared: 'replies', push: 'psubscribe' },
  SSUBSCRIBE: { state: sets(ConnState.ShardSubscribe), notShared: 'replies', push: 'ssubscribe', keys: [channels(keys(1, -1))] },
  UNSUBSCRIBE: { notShared: 'replies', push: 'unsubscribe' },
  PUNSUBSCRIBE: { notShared: 'replies', push: 'punsubscribe' },
  SUNSUBSCRIBE: { notShared: 'replies', push: 'sunsubscribe', keys: [channels(keys(1, -1))] },
  SPUBLISH: { keys: [channels(key(1))] },
  // Strings
  GET: { readOnly: true, keys: [key(1)] },
  SET: { keys: [key(1)] },
  SETEX: { keys: [key(1)] },
  PSETEX: { keys: [key(1)] },
  SETNX: { keys: [key(1)] },
  GETSET: { keys: [key(1)] },
  GETDEL: { keys: [key(1)] },
  GETEX: { keys: [key(1)] },
  INCR: { keys: [key(1)] },
  INCRBY: { keys: [key(1)] },
  INCRBYFLOAT: { keys: [key(1)] },
  DECR: { keys: [key(1)] },
  DECRBY: { keys: [key(1)] },
  APPEND: { keys: [key(1)] },
  STRLEN: { readOnly: true, keys: [key(1)] },
  GETRANGE: { readOnly: true, keys: [key(1)] },
  SETRANGE: { keys: [key(1)] },
  MGET: { readOnly: true, requestPolicy: 'multi_shard', keys: [keys(1, -1)] },
  MSET: { requestPolicy: 'multi_shard', responsePolicy: 'all_succeeded', keys: [keys(1, -1, 2)] },
  MSETNX: { atomic: true, requestPolicy: 'multi_shard', responsePolicy: 'agg_min', keys: [keys(1, -1, 2)] },
  // Bits and HyperLogLog
  BITOP: { keys: [key(2), keys(3, -1)] },
  BITCOUNT: { readOnly: true, keys: [key(1)] },
  SETBIT: { keys: [key(1)] },
  GETBIT: { readOnly: true, keys: [key(1)] },
  PFADD: { keys: [key(1)] },
  PFCOUNT: { readOnly: true, keys: [keys(1, -1)] },
  PFMERGE: { keys: [key(1), keys(2, -1)] },
  // Keys and the keyspace
  DEL: { requestPolicy: 'multi_shard', responsePolicy: 'agg_sum', keys: [keys(1, -1)] },
  UNLINK: { requestPolicy: 'multi_shard', responsePolicy: 'agg_sum', keys: [keys(1, -1)] },
  EXISTS: { readOnly: true, requestPolicy: 'multi_shard', responsePolicy: 'agg_sum', keys: [keys(1, -1)] },
  TOUCH: { readOnly: true, requestPolicy: 'multi_shard', responsePolicy: 'agg_sum', keys: [keys(1, -1)] },
  EXPIRE: { keys: [key(1)] },
  PEXPIRE: { keys: [key(1)] },
  EXPIREAT: { keys: [key(1)] },
  PEXPIREAT: { keys: [key(1)] },
  EXPIRETIME: { readOnly: true, keys: [key(1)] },
  PEXPIRETIME: { readOnly: true, keys: [key(1)] },
  TTL: { readOnly: true, keys: [key(1)] },
  PTTL: { readOnly: true, keys: [key(1)] },
  PERSIST: { keys: [key(1)] },
  TYPE: { readOnly: true, keys: [key(1)] },
  RENAME: { keys: [key(1), key(2)] },
  RENAMENX: { keys: [key(1), key(2)] },
  COPY: { keys: [key(1), key(2)] },
  MOVE: { keys: [key(1)] },
  DUMP: { readOnly: true, keys: [key(1)] },
  RESTORE: { keys: [key(1)] },
  MIGRATE: { keys: [key(3), incomplete(keysAfter('KEYS', -2, -1, 1, 0))] },
  SORT: { keys: [key(1), UNKNOWN_KEYS, UNKNOWN_KEYS] },
  KEYS: { readOnly: true, requestPolicy: 'all_shards' },
  SCAN: { readOnly: true, requestPolicy: 'special' },
  RANDOMKEY: { readOnly: true, requestPolicy: 'all_shards' },
  DBSIZE: { readOnly: true, requestPolicy: 'all_shards', responsePolicy: 'agg_sum' },
  FLUSHALL: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
  FLUSHDB: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
  // Hashes
  HSET: { keys: [key(1)] },
  HSETNX: { keys: [key(1)] },
  HGET: { readOnly: true, keys: [key(1)] },
  HMSET: { keys: [key(1)] },
  HMGET: { readOnly: true, keys: [key(1)] },
  HDEL: { keys: [key(1)] },
  HEXISTS: { readOnly: true, keys: [key(1)] },
  HGETALL: { readOnly: true, keys: [key(1)] },
  HKEYS: { readOnly: true, keys: [key(1)] },
  HVALS: { readOnly: true, keys: [key(1)] },
  HLEN: { readOnly: true, keys: [key(1)] },
  HINCRBY: { keys: [key(1)] },
  HINCRBYFLOAT: { keys: [key(1)] },
  HSTRLEN: { readOnly: true, keys: [key(1)] },
  HRANDFIELD: { readOnly: true, keys: [key(1)] },
  HSCAN: { readOnly: true, keys: [key(1)] },
  // Lists
  LPUSH: { keys: [key(1)] },
  RPUSH: { keys: [key(1)] },
  LPUSHX: { keys: [key(1)] },
  RPUSHX: { keys: [key(1)] },
  LPOP: { keys: [key(1)] },
  RPOP: { keys: [key(1)] },
  LLEN: { readOnly: true, keys: [key(1)] },
  LRANGE: { readOnly: true, keys: [key(1)] },
  LINDEX: { readOnly: true, keys: [key(1)] },
  LSET: { keys: [key(1)] },
  LINSERT: { keys: [key(1)] },
  LREM: { keys: [key(1)] },
  LTRIM: { keys: [key(1)] },
  LPOS: { readOnly: true, keys: [key(1)] },
  LMOVE: { keys: [key(1), key(2)] },
  RPOPLPUSH: { keys: [key(1), key(2)] },
  LMPOP: { keys: [numKeys(1, 0, 1, 1)] },
  BLPOP: { notShared: 'blocks', keys: [keys(1, -2)] },
  BRPOP: { notShared: 'blocks', keys: [keys(1, -2)] },
  BLMOVE: { notShared: 'blocks', keys: [key(1), key(2)] },
  BRPOPLPUSH: { notShared: 'blocks', keys: [key(1), key(2)] },
  BLMPOP: { notShared: 'blocks', keys: [numKeys(2, 0, 1, 1)] },
  // Sets
  SADD: { keys: [key(1)] },
  SREM: { keys: [key(1)] },
  SMEMBERS: { readOnly: true, keys: [key(1)] },
  SISMEMBER: { readOnly: true, keys: [key(1)] },
  SMISMEMBER: { readOnly: true, keys: [key(1)] },
  SCARD: { readOnly: true, keys: [key(1)] },
  SPOP: { keys: [key(1)] },
  SRANDMEMBER: { readOnly: true, keys: [key(1)] },
  SINTER: { readOnly: true, keys: [keys(1, -1)] },
  SUNION: { readOnly: true, keys: [keys(1, -1)] },
  SDIFF: { readOnly: true, keys: [keys(1, -1)] },
  SINTERSTORE: { keys: [key(1), keys(2, -1)] },
  SUNIONSTORE: { keys: [key(1), keys(2, -1)] },
  SDIFFSTORE: { keys: [key(1), keys(2, -1)] },
  SMOVE: { keys: [key(1), key(2)] },
  SSCAN: { readOnly: true, keys: [key(1)] },
  // Sorted sets
  ZADD: { keys: [key(1)] },
  ZREM: { keys: [key(1)] },
  ZSCORE: { readOnly: true, keys: [key(1)] },
  ZMSCORE: { readOnly: true, keys: [key(1)] },
  ZINCRBY: { keys: [key(1)] },
  ZCARD: { readOnly: true, keys: [key(1)] },
  ZCOUNT: { readOnly: true, keys: [key(1)] },
  ZLEXCOUNT: { readOnly: true, keys: [key(1)] },
  ZRANK: { readOnly: true, keys: [key(1)] },
  ZREVRANK: { readOnly: true, keys: [key(1)] },
  ZRANGE: { readOnly: true, keys: [key(1)] },
  ZREVRANGE: { readOnly: true, keys: [key(1)] },
  ZRANGEBYSCORE: { readOnly: true, keys: [key(1)] },
  ZREVRANGEBYSCORE: { readOnly: true, keys: [key(1)] },
  ZRANGEBYLEX: { readOnly: true, keys: [key(1)] },
  ZREVRANGEBYLEX: { readOnly: true, keys: [key(1)] },
  ZREMRANGEBYRANK: { keys: [key(1)] },
  ZREMRANGEBYSCORE: { keys: [key(1)] },
  ZREMRANGEBYLEX: { keys: [key(1)] },
  ZPOPMIN: { keys: [key(1)] },
  ZPOPMAX: { keys: [key(1)] },
  ZRANDMEMBER: { readOnly: true, keys: [key(1)] },
  ZSCAN: { readOnly: true, keys: [key(1)] },
  ZUNIONSTORE: { keys: [key(1), numKeys(2, 0, 1, 1)] },
  ZINTERSTORE: { keys: [key(1), numKeys(2, 0, 1, 1)] },
  ZDIFFSTORE: { keys: [key(1), numKeys(2, 0, 1, 1)] },
  ZUNION: { readOnly: true, keys: [numKeys(1, 0, 1, 1)] },
  ZINTER: { readOnly: true, keys: [numKeys(1, 0, 1, 1)] },
  ZDIFF: { readOnly: true, keys: [numKeys(1, 0, 1, 1)] },
  ZRANGESTORE: { keys: [key(1), key(2)] },
  ZMPOP: { keys: [numKeys(1, 0, 1, 1)] },
  BZPOPMIN: { notShared: 'blocks', keys: [keys(1, -2)] },
  BZPOPMAX: { notShared: 'blocks', keys: [keys(1, -2)] },
  BZMPOP: { notShared: 'blocks', keys: [numKeys(2, 0, 1, 1)] },
  // Streams
  XADD: { keys: [key(1)] },
  XRANGE: { readOnly: true, keys: [key(1)] },
  XREVRANGE: { readOnly: true, keys: [key(1)] },
  XREAD: { notShared: 'block-arg', readOnly: true, keys: [keysAfter('STREAMS', 1, -1, 1, 2)] },
  XREADGROUP: { notShared: 'block-arg', keys: [keysAfter('STREAMS', 4, -1, 1, 2)] },
  XACK: { keys: [key(1)] },
  XLEN: { readOnly: true, keys: [key(1)] },
  XTRIM: { keys: [key(1)] },
  XDEL: { keys: [key(1)] },
  XSETID: { keys: [key(1)] },
  XCLAIM: { keys: [key(1)] },
  XAUTOCLAIM: { keys: [key(1)] },
  XPENDING: { readOnly: true, keys: [key(1)] },
  XGROUP: {
    subcommands: {
      CREATE: { keys: [key(2)] },
      SETID: { keys: [key(2)] },
      DESTROY: { keys: [key(2)] },
      CREATECONSUMER: { keys: [key(2)] },
      DELCONSUMER: { keys: [key(2)] },
    },
  },
  XINFO: {
    subcommands: {
      STREAM: { readOnly: true, keys: [key(2)] },
      GROUPS: { readOnly: true, keys: [key(2)] },
      CONSUMERS: { readOnly: true, keys: [key(2)] },
    },
  },
  // Geo
  GEOADD: { keys: [key(1)] },
  GEODIST: { readOnly: true, keys: [key(1)] },
  GEOHASH: { readOnly: true, keys: [key(1)] },
  GEOPOS: { readOnly: true, keys: [key(1)] },
  GEOSEARCH: { readOnly: true, keys: [key(1)] },
  GEOSEARCHSTORE: { keys: [key(1), key(2)] },
  GEORADIUS: { keys: [key(1), keysAfter('STORE', 6, 0, 1, 0), keysAfter('STOREDIST', 6, 0, 1, 0)] },
  GEORADIUSBYMEMBER: { keys: [key(1), keysAfter('STORE', 5, 0, 1, 0), keysAfter('STOREDIST', 5, 0, 1, 0)] },
  GEORADIUS_RO: { readOnly: true, keys: [key(1)] },
  GEORADIUSBYMEMBER_RO: { readOnly: true, keys: [key(1)] },
  // Scripts and functions
  EVAL: { keys: [numKeys(2, 0, 1, 1)] },
  EVALSHA: { keys: [numKeys(2, 0, 1, 1)] },
  EVAL_RO: { readOnly: true, keys: [numKeys(2, 0, 1, 1)] },
  EVALSHA_RO: { readOnly: true, keys: [numKeys(2, 0, 1, 1)] },
  FCALL: { keys: [numKeys(2, 0, 1, 1)] },
  FCALL_RO: { readOnly: true, keys: [numKeys(2, 0, 1, 1)] },
  SCRIPT: {
    subcommands: {
      EXISTS: { requestPolicy: 'all_shards', responsePolicy: 'agg_logical_and' },
      LOAD: { requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' },
      FLUSH: { requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' },
      KILL: { requestPolicy: 'all_shards', responsePolicy: 'one_succeeded' },
    },
  },
  FUNCTION: {
    subcommands: {
      LOAD: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
      FLUSH: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
      DELETE: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
      KILL: { requestPolicy: 'all_shards', responsePolicy: 'one_succeeded' },
      LIST: {},
      DUMP: {},
      RESTORE: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
      STATS: { requestPolicy: 'all_shards', responsePolicy: 'special' },
    },
  },
  // Server. Of CLIENT, the subcommands that leave state on the connection
  // taint it; the others (ID, INFO, LIST, GETNAME, KILL...) are harmless on
  // an exclusive connection.
  CLIENT: {
    notShared: 'state',
    subcommands: {
      SETNAME: { state: TAINTS },
      TRACKING: { state: TAINTS },
      REPLY: { state: TAINTS },
      'NO-EVICT': { state: TAINTS },
      'NO-TOUCH': { state: TAINTS },
      SETINFO: { state: TAINTS },
      CACHING: {},
      GETNAME: {},
      ID: {},
      INFO: {},
      LIST: {},
      KILL: {},
      PAUSE: {},
      UNPAUSE: {},
    },
  },
  CONFIG: {
    subcommands: {
      GET: {},
      SET: { requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' },
      RESETSTAT: {},
      REWRITE: {},
    },
  },
  INFO: { requestPolicy: 'all_shards', responsePolicy: 'special' },
  TIME: {},
  LASTSAVE: {},
  MEMORY: {
    subcommands: {
      USAGE: { readOnly: true, keys: [key(2)] },
      STATS: { requestPolicy: 'all_shards', responsePolicy: 'special' },
      DOCTOR: { requestPolicy: 'all_shards', responsePolicy: 'special' },
      PURGE: { requestPolicy: 'all_shards', responsePolicy: 'all_succeeded' },
      'MALLOC-STATS': { requestPolicy: 'all_shards', responsePolicy: 'special' },
    },
  },
  OBJECT: {
    subcommands: {
      ENCODING: { readOnly: true, keys: [key(2)] },
      IDLETIME: { readOnly: true, keys: [key(2)] },
      REFCOUNT: { readOnly: true, keys: [key(2)] },
    },
  },
  SLOWLOG: {
    subcommands: {
      GET: { requestPolicy: 'all_nodes' },
      LEN: { requestPolicy: 'all_nodes', responsePolicy: 'agg_sum' },
      RESET: { requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' },
    },
  },
};

// ---------------------------------------------------------------------------
// Reading arguments

/** `arg` as the text Redis receives (a Buffer as latin1: one char per byte). */
function argText(arg: Arg): string {
  if (typeof arg === 'string') return arg;
  if (arg instanceof Uint8Array) return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength).toString('latin1');
  if (typeof arg === 'number') return Number.isFinite(arg) ? decimal(arg) : arg > 0 ? 'inf' : '-inf';
  if (typeof arg === 'boolean') return arg ? '1' : '0';
  if (arg === null || arg === undefined) return '';
  if (typeof arg === 'bigint') return arg.toString();
  return argText(arg.redisArg());
}

function upperText(arg: Arg | undefined): string {
  return arg === undefined ? '' : argText(arg).toUpperCase();
}

/** ASCII upper case of one char code: what Redis's strcasecmp folds. */
function foldCase(code: number): number {
  return code >= 0x61 && code <= 0x7a ? code - 0x20 : code;
}

/** Whether `arg` is `word` (upper case ASCII), ignoring ASCII case, with no allocation for strings and Buffers. */
function isWord(arg: Arg | undefined, word: string): boolean {
  if (typeof arg === 'string') {
    if (arg.length !== word.length) return false;
    for (let i = 0; i < word.length; i++) if (foldCase(arg.charCodeAt(i)) !== word.charCodeAt(i)) return false;
    return true;
  }
  if (arg instanceof Uint8Array) {
    if (arg.length !== word.length) return false;
    for (let i = 0; i < word.length; i++) if (foldCase(arg[i] as number) !== word.charCodeAt(i)) return false;
    return true;
  }
  return false;
}

/** `arg` as Redis's string2ll reads it (no sign '+', no leading zeros), or null. */
function integerArg(arg: Arg | undefined): number | null {
  if (arg === undefined) return null;
  const text = argText(arg);
  return /^(?:0|-?[1-9][0-9]{0,17})$/.test(text) ? Number(text) : null;
}

// ---------------------------------------------------------------------------
// The key spec interpreter (Redis's getKeysUsingKeySpecs)

/** A key spec found no key: its keyword is absent. */
const NOT_FOUND = 0;
/** A key spec Redis cannot express (begin_search or find_keys `unknown`). */
const UNKNOWN = -1;

/**
 * The position where `spec` starts in a call of `argc` positions (the name
 * included): its index, the position after its keyword (NOT_FOUND when the
 * keyword is absent), or UNKNOWN. A keyword is searched as Redis does: from
 * `startFrom` up to, not including, the last position; from `argc +
 * startFrom` down to, not including, position 1 when negative.
 */
function beginOf(begin: BeginSearch, args: readonly Arg[], argc: number): number {
  if ('index' in begin) return begin.index;
  if (!('keyword' in begin)) return UNKNOWN;
  const forward = begin.startFrom > 0;
  const start = forward ? begin.startFrom : argc + begin.startFrom;
  const end = forward ? argc - 1 : 1;
  const step = start <= end ? 1 : -1;
  for (let i = start; i !== end; i += step) {
    if (i >= argc || i < 1) break;
    if (isWord(args[i - 1], begin.keyword)) return i + 1;
  }
  return NOT_FOUND;
}

/** Why `name`'s arguments do not fit its key spec: the TypeError to throw. */
function misfit(name: string, detail: string): TypeError {
  return new TypeError(`redisconn: the arguments of ${name} do not fit its key spec: ${detail}`);
}

/**
 * Appends to `out` the indexes (into args) of the keys of a range spec
 * starting at position `first`; returns the problem, or null. Unlike
 * Redis, which refuses the spec, an empty open range (`lastKey` < 0) names
 * no key: SUNSUBSCRIBE with no channel, PFMERGE with no source key.
 */
function collectRange(range: { readonly lastKey: number; readonly step: number; readonly limit: number }, first: number, argc: number, out: number[]): string | null {
  const { lastKey, step, limit } = range;
  if (step < 1 || limit < 0) return `a key step of ${step} and a limit of ${limit} are not usable`;
  let last: number;
  if (lastKey >= 0) last = first + lastKey;
  else if (limit === 0) last = argc + lastKey;
  else last = first + Math.trunc((argc - first) / limit) + lastKey;
  // An open range (to the end) may be empty: SUNSUBSCRIBE alone, PFMERGE dst.
  if (lastKey < 0 && last < first) return null;
  if (last >= argc || last < first || first >= argc) return `keys from argument ${first} to ${last}, but there are ${argc - 1} arguments`;
  for (let i = first; i <= last; i += step) out.push(i - 1);
  return null;
}

/**
 * Appends to `out` the indexes of the keys of a keynum spec starting at
 * position `first`; returns the problem, or null. A numkeys of 0 names no
 * key (Redis's own spec check refuses it and its EVAL/FCALL key finders
 * then report no key: the same result).
 */
function collectKeyNum(keyNum: { readonly keyNumIdx: number; readonly firstKey: number; readonly step: number }, first: number, args: readonly Arg[], out: number[]): string | null {
  const at = first + keyNum.keyNumIdx;
  if (at > args.length) return `the numkeys argument (${at}) is missing, there are ${args.length} arguments`;
  const count = integerArg(args[at - 1]);
  if (count === null || count < 0) return `numkeys must be a non-negative integer, got '${argText(args[at - 1] as Arg)}'`;
  const start = first + keyNum.firstKey;
  const step = keyNum.step;
  if (step < 1) return `a key step of ${step} is not usable`;
  const last = start + (count - 1) * step;
  if (count > 0 && last > args.length) return `numkeys is ${count} but only ${Math.max(0, args.length - start + 1)} arguments follow it`;
  for (let n = 0, i = start; n < count; n++, i += step) out.push(i - 1);
  return null;
}

/** The problem of a key spec of a form Redis cannot express. */
const UNKNOWN_SPEC = 'a key spec of unknown form';

/**
 * Appends to `out` the indexes (into args) of the keys `spec` finds; returns
 * null when done (a keyword spec whose keyword is absent finds nothing),
 * else the problem: UNKNOWN_SPEC, or why the arguments do not fit.
 */
function collect(spec: KeySpec, args: readonly Arg[], out: number[]): string | null {
  const argc = args.length + 1;
  const first = beginOf(spec.beginSearch, args, argc);
  if (first === NOT_FOUND) return null;
  if (first === UNKNOWN) return UNKNOWN_SPEC;
  const find = spec.findKeys;
  if ('range' in find) return collectRange(find.range, first, argc, out);
  if ('keyNum' in find) return collectKeyNum(find.keyNum, first, args, out);
  return UNKNOWN_SPEC;
}

/**
 * The key indexes of `row` for `args`, as Redis's getKeysFromCommandWithSpecs
 * finds them: every spec in order; a spec that does not fit, is of unknown
 * form or is incomplete hands over to the command's own key finder. Without
 * one, a misfit throws, and unknown or incomplete specs give what the
 * others (and the incomplete one) found, as Redis's GET_KEYSPEC_RETURN_PARTIAL.
 */
function findKeys(row: Row, args: readonly Arg[]): number[] {
  const out: number[] = [];
  for (const spec of row.keySpecs) {
    const before = out.length;
    const problem = collect(spec, args, out);
    const handOver = problem !== null || (spec.incomplete === true && out.length > before);
    if (!handOver) continue;
    if (row.finder !== null) return row.finder(row.name, args);
    if (problem !== null && problem !== UNKNOWN_SPEC) throw misfit(row.name, problem);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Key finders of the commands whose specs are unknown or incomplete

/** SORT: the key, and the destination of the last STORE, skipping the arguments of LIMIT, GET and BY (Redis's sortGetKeys). */
function sortKeys(name: string, args: readonly Arg[]): number[] {
  if (args.length < 1) throw misfit(name, 'the key is missing');
  const out = [0];
  let store = -1;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i];
    if (isWord(arg, 'LIMIT')) i += 2;
    else if (isWord(arg, 'STORE') && i + 1 < args.length) store = i + 1;
    else if (isWord(arg, 'GET') || isWord(arg, 'BY')) i += 1;
  }
  if (store >= 0) out.push(store);
  return out;
}

/** SORT_RO: the key alone (Redis's sortROGetKeys). */
function sortReadOnlyKeys(name: string, args: readonly Arg[]): number[] {
  if (args.length < 1) throw misfit(name, 'the key is missing');
  return [0];
}

/** MIGRATE's options and how many arguments each takes. */
const MIGRATE_OPTIONS: ReadonlyMap<string, number> = new Map([
  ['COPY', 0],
  ['REPLACE', 0],
  ['AUTH', 1],
  ['AUTH2', 2],
]);

/** MIGRATE host port key|"" db timeout [options] [KEYS k...]: the key, or those after KEYS (Redis's migrateGetKeys). */
function migrateKeys(name: string, args: readonly Arg[]): number[] {
  if (args.length < 5) throw misfit(name, `it takes at least 5 arguments, got ${args.length}`);
  for (let i = 5; i < args.length; i++) {
    if (isWord(args[i], 'KEYS')) {
      if (argText(args[2] as Arg) !== '') throw misfit(name, 'with KEYS, the key argument must be empty');
      return Array.from({ length: args.length - i - 1 }, (_, n) => i + 1 + n);
    }
    i += MIGRATE_OPTIONS.get(upperText(args[i])) ?? 0;
  }
  return [2];
}

/** The key finders of the commands whose key specs Redis cannot complete, by upper case name. */
const FINDERS: ReadonlyMap<string, KeysFinder> = new Map([
  ['SORT', sortKeys],
  ['SORT_RO', sortReadOnlyKeys],
  ['MIGRATE', migrateKeys],
]);

// ---------------------------------------------------------------------------
// Rows

/** A row before compiling: declarative or learnt. */
interface Draft {
  readonly state?: StateChange;
  readonly notShared?: NotShared;
  readonly push?: SubscriptionKind;
  readonly atomic?: true;
  readonly keySpecs: readonly KeySpec[];
  readonly requestPolicy: RequestPolicy | undefined;
  readonly responsePolicy: ResponsePolicy | undefined;
  readonly readOnly: boolean;
  readonly learnt: boolean;
  /** By upper case subcommand name. */
  readonly subcommands?: ReadonlyMap<string, Draft>;
}

const NO_KEYS: readonly number[] = Object.freeze([]);

/** The fixed key positions of `specs` (index begin, range with lastKey >= 0), and the fewest arguments holding them; null when they depend on the arguments. */
function fixedKeys(specs: readonly KeySpec[]): { keys: readonly number[]; minArgs: number } | null {
  const keys: number[] = [];
  let minArgs = 0;
  for (const { beginSearch, findKeys: find } of specs) {
    if (!('index' in beginSearch) || !('range' in find) || find.range.lastKey < 0 || find.range.step < 1) return null;
    const last = beginSearch.index + find.range.lastKey;
    for (let at = beginSearch.index; at <= last; at += find.range.step) keys.push(at - 1);
    minArgs = Math.max(minArgs, last);
  }
  return { keys: keys.length === 0 ? NO_KEYS : Object.freeze(keys), minArgs };
}

/** Copies the optional connection rules of `from` (present ones only, so rows compare equal). */
function connectionRules(from: Pick<Draft, 'state' | 'notShared' | 'push' | 'atomic'> | undefined): Pick<Draft, 'state' | 'notShared' | 'push' | 'atomic'> {
  if (from === undefined) return {};
  return {
    ...(from.atomic !== undefined && { atomic: from.atomic }),
    ...(from.state !== undefined && { state: from.state }),
    ...(from.notShared !== undefined && { notShared: from.notShared }),
    ...(from.push !== undefined && { push: from.push }),
  };
}

/** Compiles `draft` into the row named `name` (upper case). */
function compile(name: string, draft: Draft): Row {
  const finder = FINDERS.get(name) ?? null;
  let subcommands: Map<string, Row> | undefined;
  if (draft.subcommands !== undefined) {
    subcommands = new Map();
    for (const [sub, subDraft] of draft.subcommands) {
      const row = compile(`${name} ${sub}`, subDraft);
      subcommands.set(sub, row).set(sub.toLowerCase(), row);
    }
  }
  const fixed = finder === null ? fixedKeys(draft.keySpecs) : null;
  const keyless = draft.keySpecs.length === 0 && finder === null && (subcommands === undefined || [...subcommands.values()].every((row) => row.keyless));
  const requestPolicy = draft.atomic === true ? undefined : draft.requestPolicy;
  const route: Route | null =
    fixed === null ? null : Object.freeze({ keys: fixed.keys, requestPolicy, responsePolicy: draft.responsePolicy, readOnly: draft.readOnly, known: true });
  return {
    name,
    ...connectionRules(draft),
    keySpecs: draft.keySpecs,
    requestPolicy,
    responsePolicy: draft.responsePolicy,
    readOnly: draft.readOnly,
    keyless,
    learnt: draft.learnt,
    ...(subcommands !== undefined && { subcommands }),
    fixedRoute: route,
    minArgs: fixed?.minArgs ?? 0,
    finder,
  };
}

/** The draft of a row of {@link TABLE}. */
function draftOf(spec: RowSpec): Draft {
  return {
    ...connectionRules(spec),
    keySpecs: spec.keys ?? [],
    requestPolicy: spec.requestPolicy,
    responsePolicy: spec.responsePolicy,
    readOnly: spec.readOnly === true,
    learnt: false,
    ...(spec.subcommands !== undefined && { subcommands: new Map(Object.entries(spec.subcommands).map(([sub, row]) => [sub, draftOf(row)])) }),
  };
}

/** The table keyed by upper and lower case names, so the usual spellings need no case folding. Learning replaces rows, never mutates one. */
const BY_NAME = new Map<string, Row>();
/** Name lengths in the table: a name of another length is ruled out without case folding. */
const LENGTHS = new Set<number>();

function install(name: string, row: Row): void {
  BY_NAME.set(name, row).set(name.toLowerCase(), row);
  LENGTHS.add(name.length);
}

for (const [name, spec] of Object.entries(TABLE)) install(name, compile(name, draftOf(spec)));

/** The row of `cmd`: one map access for the usual spellings (GET, get), case folding only for others of a known length. */
function rowOf(cmd: string): Row | undefined {
  const row = BY_NAME.get(cmd);
  if (row !== undefined) return row;
  if (typeof cmd !== 'string' || !LENGTHS.has(cmd.length)) return undefined;
  return BY_NAME.get(cmd.toUpperCase());
}

/** The subcommand row `arg` names in `row`, or undefined. */
function subRowOf(row: Row, arg: Arg | undefined): Row | undefined {
  const subs = row.subcommands;
  if (subs === undefined || arg === undefined) return undefined;
  return (typeof arg === 'string' ? subs.get(arg) : undefined) ?? subs.get(upperText(arg));
}

/** The row a call routes by: the subcommand's of a container command, else the command's own. */
function callRowOf(cmd: string, args: readonly Arg[]): Row | undefined {
  const row = rowOf(cmd);
  if (row?.subcommands === undefined) return row;
  return subRowOf(row, args[0]) ?? row;
}

/**
 * The row of `cmd`, case-insensitive (built in, or learnt by
 * {@link learnCommands}); undefined for a command the table does not know
 * (or a non-string), which is stateless, non-blocking and shared-safe.
 */
export function commandInfo(cmd: string): CommandInfo | undefined {
  return rowOf(cmd);
}

/** The state change `cmd args...` causes, or undefined. */
export function stateChangeOf(cmd: string, args: readonly Arg[]): StateChange | undefined {
  const info = rowOf(cmd);
  if (info === undefined) return undefined;
  return (info.subcommands === undefined ? undefined : subRowOf(info, args[0])?.state) ?? info.state;
}

function isBlockArg(arg: Arg): boolean {
  return typeof arg === 'string' && arg.length === 5 && arg.toUpperCase() === 'BLOCK';
}

/**
 * Why `cmd` may not run on the shared connection, or null when it may: it
 * changes connection state, blocks it, or answers more than once.
 */
export function sharedRefusal(cmd: string, args: readonly Arg[]): string | null {
  const info = rowOf(cmd);
  if (info?.notShared === undefined) return null;
  if (info.notShared === 'block-arg' && !args.some(isBlockArg)) return null;
  return `redisconn: ${cmd.toUpperCase()} changes or blocks the connection, so Pool.do cannot run it on the shared connection; borrow one with pool.get()`;
}

/** The push kinds that confirm a subscribe command (lower case, as the server sends them). */
export const SUBSCRIPTION_KINDS: ReadonlySet<string> = new Set(Object.values(TABLE).flatMap((info) => (info.push === undefined ? [] : [info.push])));

/** The route of a command the table does not know. */
const UNKNOWN_ROUTE: Route = Object.freeze({ keys: NO_KEYS, requestPolicy: undefined, responsePolicy: undefined, readOnly: false, known: false });

/**
 * How a cluster routes `cmd args...` (args: the arguments after the command
 * name): the indexes into `args` of its keys and shard channels, its
 * request and response policies and whether a replica may serve it. A
 * container command (CONFIG, OBJECT, XINFO...) routes by the row of its
 * subcommand `args[0]`. A command the table does not know gets `known:
 * false` and no keys. Throws `TypeError` when the arguments do not fit a
 * key spec (a missing key, numkeys not a non-negative integer or larger
 * than the arguments after it). Commands whose key positions do not depend
 * on the arguments (GET, SET, HSET, LMOVE, PING...) get a shared, frozen
 * route: no allocation.
 */
export function routeOf(cmd: string, args: readonly Arg[]): Route {
  const row = callRowOf(cmd, args);
  if (row === undefined) return UNKNOWN_ROUTE;
  const fixed = row.fixedRoute;
  if (fixed !== null) {
    if (args.length >= row.minArgs) return fixed;
    throw misfit(row.name, `it has a key at argument ${row.minArgs}, but there are ${args.length} arguments`);
  }
  return { keys: findKeys(row, args), requestPolicy: row.requestPolicy, responsePolicy: row.responsePolicy, readOnly: row.readOnly, known: true };
}

/**
 * The indexes into `args` (the arguments after the command name) of the
 * keys of `cmd args...`, shard channels included (SPUBLISH, SSUBSCRIBE,
 * SUNSUBSCRIBE: they pick the slot like keys), in the order of Redis's
 * `COMMAND GETKEYS`. [] for a keyless or unknown command. Throws
 * `TypeError` when the arguments do not fit a key spec. The array may be
 * shared: never mutate it. See {@link routeOf}.
 */
export function keyIndexes(cmd: string, args: readonly Arg[]): readonly number[] {
  return routeOf(cmd, args).keys;
}

/**
 * Whether a replica may serve `cmd` (Redis flags it `readonly`). A
 * container command answers for its subcommand `args[0]` when given.
 * False for a command the table does not know.
 */
export function isReadOnly(cmd: string, args: readonly Arg[] = NO_KEYS): boolean {
  return callRowOf(cmd, args)?.readOnly ?? false;
}

// ---------------------------------------------------------------------------
// Learning from COMMAND

const REQUEST_POLICIES: ReadonlySet<string> = new Set<RequestPolicy>(['all_shards', 'multi_shard', 'all_nodes', 'special']);
const RESPONSE_POLICIES: ReadonlySet<string> = new Set<ResponsePolicy>(['one_succeeded', 'all_succeeded', 'agg_logical_and', 'agg_logical_or', 'agg_min', 'agg_max', 'agg_sum', 'special']);

function notCommandReply(what: string): TypeError {
  return new TypeError(`redisconn: not a COMMAND reply: ${what}`);
}

/** A simple or bulk string of the reply as text. */
function replyText(reply: Reply | undefined, what: string): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw notCommandReply(`${what} is not a string`);
}

function replyNumber(reply: Reply | undefined, what: string): number {
  if (typeof reply === 'number') return reply;
  if (typeof reply === 'bigint') return Number(reply);
  throw notCommandReply(`${what} is not a number`);
}

/** The elements of an array (RESP2) or set (RESP3); a missing or null field is empty. */
function replyItems(reply: Reply | undefined, what: string): readonly Reply[] {
  if (reply === undefined || reply === null) return [];
  if (Array.isArray(reply)) return reply;
  if (reply instanceof Set) return [...reply];
  throw notCommandReply(`${what} is not an array`);
}

/** The fields of a map (RESP3) or flat array of name, value pairs (RESP2). */
function replyFields(reply: Reply | undefined, what: string): ReadonlyMap<string, Reply> {
  const fields = new Map<string, Reply>();
  if (reply instanceof Map) {
    for (const [name, value] of reply) fields.set(replyText(name, `a field name of ${what}`), value);
    return fields;
  }
  const items = replyItems(reply, what);
  for (let i = 0; i + 1 < items.length; i += 2) fields.set(replyText(items[i], `a field name of ${what}`), items[i + 1] as Reply);
  return fields;
}

function parseBeginSearch(reply: Reply | undefined, what: string): BeginSearch {
  const fields = replyFields(reply, what);
  const type = replyText(fields.get('type'), `the type of ${what}`);
  const spec = replyFields(fields.get('spec'), what);
  if (type === 'index') return { index: replyNumber(spec.get('index'), `the index of ${what}`) };
  if (type === 'keyword') {
    return { keyword: replyText(spec.get('keyword'), `the keyword of ${what}`).toUpperCase(), startFrom: replyNumber(spec.get('startfrom'), `the startfrom of ${what}`) };
  }
  return { unknown: true };
}

function parseFindKeys(reply: Reply | undefined, what: string): FindKeys {
  const fields = replyFields(reply, what);
  const type = replyText(fields.get('type'), `the type of ${what}`);
  const spec = replyFields(fields.get('spec'), what);
  const number = (name: string): number => replyNumber(spec.get(name), `the ${name} of ${what}`);
  if (type === 'range') return { range: { lastKey: number('lastkey'), step: number('keystep'), limit: number('limit') } };
  if (type === 'keynum') return { keyNum: { keyNumIdx: number('keynumidx'), firstKey: number('firstkey'), step: number('keystep') } };
  return { unknown: true };
}

function parseKeySpec(reply: Reply, name: string): KeySpec {
  const fields = replyFields(reply, `a key spec of ${name}`);
  const flags = new Set(replyItems(fields.get('flags'), `the key spec flags of ${name}`).map((flag) => replyText(flag, `a key spec flag of ${name}`).toLowerCase()));
  const spec: KeySpec = {
    beginSearch: parseBeginSearch(fields.get('begin_search'), `the begin_search of ${name}`),
    findKeys: parseFindKeys(fields.get('find_keys'), `the find_keys of ${name}`),
  };
  return flags.has('not_key') ? channels(flags.has('incomplete') ? incomplete(spec) : spec) : flags.has('incomplete') ? incomplete(spec) : spec;
}

/** The key specs of a pre-7 entry (no key specs): its first key, last key and step, when it has keys. */
function legacyKeySpecs(entry: readonly Reply[], name: string): KeySpec[] {
  const first = replyNumber(entry[3], `the first key of ${name}`);
  if (first <= 0) return [];
  const last = replyNumber(entry[4], `the last key of ${name}`);
  return [keys(first, last < 0 ? last : last - first, replyNumber(entry[5], `the key step of ${name}`))];
}

/** The tips `request_policy:...` and `response_policy:...`; an unknown policy value reads as 'special' (handle with care). */
function parseTips(reply: Reply | undefined, name: string): Pick<Draft, 'requestPolicy' | 'responsePolicy'> {
  let requestPolicy: RequestPolicy | undefined;
  let responsePolicy: ResponsePolicy | undefined;
  for (const item of replyItems(reply, `the tips of ${name}`)) {
    const tip = replyText(item, `a tip of ${name}`).toLowerCase();
    const colon = tip.indexOf(':');
    const value = tip.slice(colon + 1);
    if (tip.startsWith('request_policy:')) requestPolicy = REQUEST_POLICIES.has(value) ? (value as RequestPolicy) : 'special';
    else if (tip.startsWith('response_policy:')) responsePolicy = RESPONSE_POLICIES.has(value) ? (value as ResponsePolicy) : 'special';
  }
  return { requestPolicy, responsePolicy };
}

/** One entry of COMMAND: [name, arity, flags, firstkey, lastkey, step, acl categories, tips, key specs, subcommands]. */
function parseEntry(reply: Reply): { name: string; draft: Draft } {
  const entry = replyItems(reply, 'a command entry');
  const fullName = replyText(entry[0], 'a command name').toUpperCase();
  const name = fullName.slice(fullName.indexOf('|') + 1);
  const flags = new Set(replyItems(entry[2], `the flags of ${fullName}`).map((flag) => replyText(flag, `a flag of ${fullName}`).toLowerCase()));
  const keySpecs = entry.length > 8 ? replyItems(entry[8], `the key specs of ${fullName}`).map((spec) => parseKeySpec(spec, fullName)) : legacyKeySpecs(entry, fullName);
  const subEntries = replyItems(entry[9], `the subcommands of ${fullName}`);
  return {
    name,
    draft: {
      keySpecs,
      ...parseTips(entry[7], fullName),
      readOnly: flags.has('readonly'),
      learnt: true,
      ...(subEntries.length > 0 && { subcommands: new Map(subEntries.map(parseEntry).map(({ name: sub, draft }) => [sub, draft])) }),
    },
  };
}

/** The drafts of a COMMAND (or COMMAND INFO) reply, by upper case name; null entries (COMMAND INFO of an unknown name) are skipped. */
function parseDrafts(reply: Reply): Map<string, Draft> {
  const drafts = new Map<string, Draft>();
  for (const entry of replyItems(reply, 'the reply')) {
    if (entry === null) continue;
    const { name, draft } = parseEntry(entry);
    drafts.set(name, draft);
  }
  return drafts;
}

/**
 * The rows a `COMMAND` (or `COMMAND INFO ...`) reply describes, RESP2 or
 * RESP3, by upper case name — what the server says alone, without the
 * table's connection rules. Redis 7 entries give key specs, tips and
 * subcommands; older ones give their first key, last key and step as one
 * range spec. Throws `TypeError` when the reply is not a COMMAND reply.
 */
export function parseCommandReply(reply: Reply): ReadonlyMap<string, CommandInfo> {
  const rows = new Map<string, CommandInfo>();
  for (const [name, draft] of parseDrafts(reply)) rows.set(name, compile(name, draft));
  return rows;
}

/**
 * `server`'s row merged into the current one: the connection rules (state,
 * sharing, push kind) stay the table's, the key specs, tips and readOnly
 * flag become the server's; subcommands merge the same way, one by one.
 */
function merge(current: Draft | undefined, server: Draft): Draft {
  const subs = new Map<string, Draft>(current?.subcommands ?? []);
  for (const [sub, draft] of server.subcommands ?? []) subs.set(sub, merge(current?.subcommands?.get(sub), draft));
  return { ...server, ...connectionRules(current), ...(subs.size > 0 && { subcommands: subs }) };
}

/** A row back to its draft (subcommands by upper case name only). */
function draftOfRow(row: Row): Draft {
  const subs = row.subcommands === undefined ? undefined : new Map([...row.subcommands].filter(([sub]) => sub === sub.toUpperCase()).map(([sub, subRow]) => [sub, draftOfRow(subRow)]));
  return { ...row, ...(subs !== undefined && { subcommands: subs }) };
}

/**
 * Completes the table from the reply of `COMMAND` (or `COMMAND INFO ...`),
 * RESP2 or RESP3: a command or subcommand the table lacks gets the
 * server's key specs, tips and readonly flag; a built-in one keeps its
 * connection rules (state, sharing, push kind) and takes the server's key
 * specs, tips and readonly flag. Idempotent: learning the same reply again
 * changes nothing. Rows are replaced, never mutated, and lookups stay one
 * map access. Returns the number of commands learnt. Throws `TypeError`
 * (leaving the table as it was) when the reply is not a COMMAND reply.
 */
export function learnCommands(reply: Reply): number {
  const drafts = parseDrafts(reply);
  for (const [name, draft] of drafts) {
    const current = BY_NAME.get(name);
    install(name, compile(name, merge(current === undefined ? undefined : draftOfRow(current), draft)));
  }
  return drafts.size;
}

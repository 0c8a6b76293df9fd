/**
 * Where the keys are and how a cluster routes a command, checked against a
 * real redis-server: the built-in rows' key positions against COMMAND
 * GETKEYS for many argument shapes of every built-in command, their key
 * specs, tips and readonly flags against COMMAND, learning from COMMAND
 * (RESP2 and RESP3) for commands without a built-in row, and the
 * TypeErrors of argument shapes that do not fit a key spec.
 *
 * The tests run in order: the built-in table first, then learning.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  commandInfo,
  isReadOnly,
  keyIndexes,
  learnCommands,
  parseCommandReply,
  routeOf,
  sharedRefusal,
  stateChangeOf,
  type CommandInfo,
} from '../src/commands.js';
import type { Conn } from '../src/conn.js';
import { dial } from '../src/dial.js';
import { RedisError } from '../src/errors.js';
import type { Reply } from '../src/resp/decode.js';
import type { Arg } from '../src/resp/encode.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { guardProcessErrors, thrownBy, useServerWithConn } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let conn: Conn;
useServerWithConn((started) => ({ server, conn } = started));

/** The server's COMMAND reply (RESP2) and what it says, parsed. */
let commandReply: Reply;
let serverRows: ReadonlyMap<string, CommandInfo>;
beforeAll(async () => {
  commandReply = await conn.do('COMMAND');
  serverRows = parseCommandReply(commandReply);
});

const MIGRATE_HEAD = ['127.0.0.1', '1', '', '0', '5'];

/**
 * Argument shapes per command ('CONTAINER SUB' for a subcommand: its
 * arguments after the subcommand name). Keys are named k1, k2, dst...,
 * never equal to another argument, so comparing names compares positions.
 */
const SAMPLES: Readonly<Record<string, readonly (readonly Arg[])[]>> = {
  WATCH: [['k1'], ['k1', 'k2', 'k3']],
  UNWATCH: [[]],
  MULTI: [[]],
  EXEC: [[]],
  DISCARD: [[]],
  SELECT: [['1']],
  HELLO: [[], ['3']],
  AUTH: [['pw'], ['user', 'pw']],
  RESET: [[]],
  READONLY: [[]],
  READWRITE: [[]],
  QUIT: [[]],
  SWAPDB: [['0', '1']],
  MONITOR: [[]],
  SYNC: [[]],
  PSYNC: [['?', '-1']],
  DEBUG: [['SLEEP', '0']],
  SHUTDOWN: [[], ['NOSAVE']],
  WAIT: [['0', '0']],
  PING: [[], ['hi']],
  ECHO: [['hi']],
  SUBSCRIBE: [['c1', 'c2']],
  PSUBSCRIBE: [['p*']],
  UNSUBSCRIBE: [[], ['c1']],
  PUNSUBSCRIBE: [[], ['p*']],
  // Shard channels: the server reports no key (its specs say not_key); see 'shard channels route like keys'.
  SSUBSCRIBE: [['c1', 'c2']],
  SUNSUBSCRIBE: [['c1'], ['c1', 'c2']],
  SPUBLISH: [['c1', 'message']],
  GET: [['k1'], [Buffer.from('k1')]],
  SET: [['k1', 'v'], ['k1', 'v', 'EX', 10, 'GET']],
  SETEX: [['k1', '10', 'v']],
  PSETEX: [['k1', '10', 'v']],
  SETNX: [['k1', 'v']],
  GETSET: [['k1', 'v']],
  GETDEL: [['k1']],
  GETEX: [['k1'], ['k1', 'PERSIST']],
  INCR: [['k1']],
  INCRBY: [['k1', 2]],
  INCRBYFLOAT: [['k1', 1.5]],
  DECR: [['k1']],
  DECRBY: [['k1', '2']],
  APPEND: [['k1', 'v']],
  STRLEN: [['k1']],
  GETRANGE: [['k1', '0', '-1']],
  SETRANGE: [['k1', '0', 'v']],
  MGET: [['k1'], ['k1', 'k2', 'k3']],
  MSET: [['k1', 'v1'], ['k1', 'v1', 'k2', 'v2', 'k3', 'v3']],
  MSETNX: [['k1', 'v1'], ['k1', 'v1', 'k2', 'v2']],
  BITOP: [['AND', 'dst', 'k1'], ['OR', 'dst', 'k1', 'k2', 'k3']],
  BITCOUNT: [['k1'], ['k1', '0', '-1', 'BIT']],
  SETBIT: [['k1', '7', '1']],
  GETBIT: [['k1', '7']],
  PFADD: [['k1'], ['k1', 'a', 'b']],
  PFCOUNT: [['k1'], ['k1', 'k2']],
  PFMERGE: [['dst', 'k1'], ['dst', 'k1', 'k2']],
  DEL: [['k1'], ['k1', 'k2', 'k3']],
  UNLINK: [['k1'], ['k1', 'k2']],
  EXISTS: [['k1'], ['k1', 'k2']],
  TOUCH: [['k1'], ['k1', 'k2']],
  EXPIRE: [['k1', '10'], ['k1', '10', 'NX']],
  PEXPIRE: [['k1', '10']],
  EXPIREAT: [['k1', '10']],
  PEXPIREAT: [['k1', '10', 'GT']],
  EXPIRETIME: [['k1']],
  PEXPIRETIME: [['k1']],
  TTL: [['k1']],
  PTTL: [['k1']],
  PERSIST: [['k1']],
  TYPE: [['k1']],
  RENAME: [['k1', 'k2']],
  RENAMENX: [['k1', 'k2']],
  COPY: [['k1', 'k2'], ['k1', 'k2', 'DB', '1', 'REPLACE']],
  MOVE: [['k1', '1']],
  DUMP: [['k1']],
  RESTORE: [['k1', '0', 'payload'], ['k1', '0', 'payload', 'REPLACE', 'IDLETIME', '5']],
  MIGRATE: [
    ['127.0.0.1', '1', 'k1', '0', '5'],
    ['127.0.0.1', '1', 'k1', '0', '5', 'COPY', 'REPLACE'],
    [...MIGRATE_HEAD, 'KEYS', 'k1'],
    [...MIGRATE_HEAD, 'COPY', 'REPLACE', 'KEYS', 'k1', 'k2', 'k3'],
    [...MIGRATE_HEAD, 'AUTH', 'keys', 'KEYS', 'k1', 'k2'],
    [...MIGRATE_HEAD, 'AUTH2', 'keys', 'KEYS', 'keys', 'k1'],
    ['127.0.0.1', '1', 'keys', '0', '5'],
  ],
  SORT: [
    ['k1'],
    ['k1', 'ALPHA', 'DESC'],
    ['k1', 'STORE', 'dst'],
    ['k1', 'BY', 'w_*', 'GET', '#', 'GET', 'o_*', 'STORE', 'dst'],
    ['k1', 'LIMIT', '0', '10', 'STORE', 'dst'],
    ['k1', 'STORE', 'dst1', 'STORE', 'dst2'],
    ['k1', 'GET', 'store', 'STORE', 'dst'],
    ['k1', 'LIMIT', 'store', 'x', 'ASC'],
    ['k1', 'LIMIT', '0', 'STORE', 'dst'],
    ['k1', 'STORE'],
    ['k1', Buffer.from('store'), 'dst'],
  ],
  KEYS: [['*']],
  SCAN: [['0'], ['0', 'MATCH', 'k*', 'COUNT', '10']],
  RANDOMKEY: [[]],
  DBSIZE: [[]],
  FLUSHALL: [[], ['ASYNC']],
  FLUSHDB: [[], ['SYNC']],
  HSET: [['k1', 'f', 'v'], ['k1', 'f', 'v', 'g', 'w']],
  HSETNX: [['k1', 'f', 'v']],
  HGET: [['k1', 'f']],
  HMSET: [['k1', 'f', 'v']],
  HMGET: [['k1', 'f', 'g']],
  HDEL: [['k1', 'f'], ['k1', 'f', 'g']],
  HEXISTS: [['k1', 'f']],
  HGETALL: [['k1']],
  HKEYS: [['k1']],
  HVALS: [['k1']],
  HLEN: [['k1']],
  HINCRBY: [['k1', 'f', '1']],
  HINCRBYFLOAT: [['k1', 'f', '1.5']],
  HSTRLEN: [['k1', 'f']],
  HRANDFIELD: [['k1'], ['k1', '2', 'WITHVALUES']],
  HSCAN: [['k1', '0'], ['k1', '0', 'MATCH', 'f*']],
  LPUSH: [['k1', 'a'], ['k1', 'a', 'b']],
  RPUSH: [['k1', 'a'], ['k1', 'a', 'b']],
  LPUSHX: [['k1', 'a']],
  RPUSHX: [['k1', 'a', 'b']],
  LPOP: [['k1'], ['k1', '2']],
  RPOP: [['k1'], ['k1', '2']],
  LLEN: [['k1']],
  LRANGE: [['k1', '0', '-1']],
  LINDEX: [['k1', '0']],
  LSET: [['k1', '0', 'v']],
  LINSERT: [['k1', 'BEFORE', 'a', 'b']],
  LREM: [['k1', '0', 'a']],
  LTRIM: [['k1', '0', '1']],
  LPOS: [['k1', 'a'], ['k1', 'a', 'RANK', '1', 'COUNT', '0']],
  LMOVE: [['k1', 'k2', 'LEFT', 'RIGHT']],
  RPOPLPUSH: [['k1', 'k2']],
  LMPOP: [['1', 'k1', 'LEFT'], ['2', 'k1', 'k2', 'RIGHT', 'COUNT', '3'], [3, 'k1', 'k2', 'k3', 'LEFT']],
  BLPOP: [['k1', '0'], ['k1', 'k2', 'k3', '1.5']],
  BRPOP: [['k1', '0'], ['k1', 'k2', '0']],
  BLMOVE: [['k1', 'k2', 'LEFT', 'RIGHT', '0']],
  BRPOPLPUSH: [['k1', 'k2', '0']],
  BLMPOP: [['0', '1', 'k1', 'LEFT'], ['0', '2', 'k1', 'k2', 'RIGHT', 'COUNT', '3']],
  SADD: [['k1', 'a'], ['k1', 'a', 'b']],
  SREM: [['k1', 'a'], ['k1', 'a', 'b']],
  SMEMBERS: [['k1']],
  SISMEMBER: [['k1', 'a']],
  SMISMEMBER: [['k1', 'a', 'b']],
  SCARD: [['k1']],
  SPOP: [['k1'], ['k1', '2']],
  SRANDMEMBER: [['k1'], ['k1', '-2']],
  SINTER: [['k1'], ['k1', 'k2', 'k3']],
  SUNION: [['k1'], ['k1', 'k2']],
  SDIFF: [['k1'], ['k1', 'k2']],
  SINTERSTORE: [['dst', 'k1'], ['dst', 'k1', 'k2']],
  SUNIONSTORE: [['dst', 'k1'], ['dst', 'k1', 'k2']],
  SDIFFSTORE: [['dst', 'k1'], ['dst', 'k1', 'k2', 'k3']],
  SMOVE: [['k1', 'k2', 'a']],
  SSCAN: [['k1', '0']],
  ZADD: [['k1', '1', 'a'], ['k1', 'NX', 'CH', '1', 'a', '2', 'b']],
  ZREM: [['k1', 'a']],
  ZSCORE: [['k1', 'a']],
  ZMSCORE: [['k1', 'a', 'b']],
  ZINCRBY: [['k1', '1', 'a']],
  ZCARD: [['k1']],
  ZCOUNT: [['k1', '-inf', '+inf']],
  ZLEXCOUNT: [['k1', '-', '+']],
  ZRANK: [['k1', 'a']],
  ZREVRANK: [['k1', 'a']],
  ZRANGE: [['k1', '0', '-1'], ['k1', '0', '-1', 'WITHSCORES'], ['k1', '(1', '+inf', 'BYSCORE', 'LIMIT', '0', '5']],
  ZREVRANGE: [['k1', '0', '-1']],
  ZRANGEBYSCORE: [['k1', '0', '1']],
  ZREVRANGEBYSCORE: [['k1', '1', '0', 'WITHSCORES']],
  ZRANGEBYLEX: [['k1', '-', '+']],
  ZREVRANGEBYLEX: [['k1', '+', '-']],
  ZREMRANGEBYRANK: [['k1', '0', '1']],
  ZREMRANGEBYSCORE: [['k1', '0', '1']],
  ZREMRANGEBYLEX: [['k1', '-', '+']],
  ZPOPMIN: [['k1'], ['k1', '2']],
  ZPOPMAX: [['k1'], ['k1', '2']],
  ZRANDMEMBER: [['k1'], ['k1', '2', 'WITHSCORES']],
  ZSCAN: [['k1', '0']],
  ZUNIONSTORE: [['dst', '1', 'k1'], ['dst', '2', 'k1', 'k2', 'WEIGHTS', '1', '2', 'AGGREGATE', 'MAX']],
  ZINTERSTORE: [['dst', '1', 'k1'], ['dst', 3, 'k1', 'k2', 'k3']],
  ZDIFFSTORE: [['dst', '1', 'k1'], ['dst', '2', 'k1', 'k2']],
  ZUNION: [['1', 'k1'], ['2', 'k1', 'k2', 'WITHSCORES']],
  ZINTER: [['1', 'k1'], ['2', 'k1', 'k2', 'AGGREGATE', 'MIN']],
  ZDIFF: [['1', 'k1'], ['2', 'k1', 'k2', 'WITHSCORES']],
  ZRANGESTORE: [['dst', 'k1', '0', '-1'], ['dst', 'k1', '0', '1', 'BYSCORE']],
  ZMPOP: [['1', 'k1', 'MIN'], ['2', 'k1', 'k2', 'MAX', 'COUNT', '2']],
  BZPOPMIN: [['k1', '0'], ['k1', 'k2', '0']],
  BZPOPMAX: [['k1', '0']],
  BZMPOP: [['0', '1', 'k1', 'MIN'], ['0', '2', 'k1', 'k2', 'MAX', 'COUNT', '2']],
  XADD: [['k1', '*', 'f', 'v'], ['k1', 'MAXLEN', '~', '10', '*', 'f', 'v']],
  XRANGE: [['k1', '-', '+'], ['k1', '-', '+', 'COUNT', '1']],
  XREVRANGE: [['k1', '+', '-']],
  XREAD: [
    ['STREAMS', 'k1', '0'],
    ['COUNT', '1', 'BLOCK', '0', 'STREAMS', 'k1', 'k2', '0', '0'],
    ['streams', 'streams', '0'],
    [Buffer.from('Streams'), 'k1', 'k2', 'k3', '0', '$', '+'],
  ],
  XREADGROUP: [
    ['GROUP', 'g', 'c', 'STREAMS', 'k1', '>'],
    ['GROUP', 'g', 'c', 'COUNT', '1', 'NOACK', 'STREAMS', 'k1', 'k2', '>', '>'],
  ],
  XACK: [['k1', 'g', '1-0'], ['k1', 'g', '1-0', '2-0']],
  XLEN: [['k1']],
  XTRIM: [['k1', 'MAXLEN', '10']],
  XDEL: [['k1', '1-0']],
  XSETID: [['k1', '1-0']],
  XCLAIM: [['k1', 'g', 'c', '0', '1-0']],
  XAUTOCLAIM: [['k1', 'g', 'c', '0', '0-0']],
  XPENDING: [['k1', 'g'], ['k1', 'g', '-', '+', '10']],
  'XGROUP CREATE': [['k1', 'g', '$'], ['k1', 'g', '$', 'MKSTREAM']],
  'XGROUP SETID': [['k1', 'g', '$']],
  'XGROUP DESTROY': [['k1', 'g']],
  'XGROUP CREATECONSUMER': [['k1', 'g', 'c']],
  'XGROUP DELCONSUMER': [['k1', 'g', 'c']],
  'XINFO STREAM': [['k1'], ['k1', 'FULL']],
  'XINFO GROUPS': [['k1']],
  'XINFO CONSUMERS': [['k1', 'g']],
  GEOADD: [['k1', '13.3', '38.1', 'a']],
  GEODIST: [['k1', 'a', 'b']],
  GEOHASH: [['k1', 'a']],
  GEOPOS: [['k1', 'a']],
  GEOSEARCH: [['k1', 'FROMMEMBER', 'a', 'BYRADIUS', '1', 'km']],
  GEOSEARCHSTORE: [['dst', 'k1', 'FROMMEMBER', 'a', 'BYRADIUS', '1', 'km']],
  GEORADIUS: [
    ['k1', '15', '37', '200', 'km'],
    ['k1', '15', '37', '200', 'km', 'STORE', 'dst'],
    ['k1', '15', '37', '200', 'km', 'STOREDIST', 'dst2'],
    ['k1', '15', '37', '200', 'km', 'COUNT', '5', 'STORE', 'dst', 'STOREDIST', 'dst2'],
  ],
  GEORADIUSBYMEMBER: [['k1', 'a', '200', 'km'], ['k1', 'a', '200', 'km', 'STORE', 'dst']],
  GEORADIUS_RO: [['k1', '15', '37', '200', 'km']],
  GEORADIUSBYMEMBER_RO: [['k1', 'a', '200', 'km', 'WITHDIST']],
  EVAL: [['return 1', '0'], ['return 1', '2', 'k1', 'k2', 'arg'], ['return 1', 1, Buffer.from('k1')]],
  EVALSHA: [['e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '0'], ['e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '1', 'k1', 'arg']],
  EVAL_RO: [['return 1', '0'], ['return 1', '1', 'k1']],
  EVALSHA_RO: [['e0e1f9fabfc9d4800c877a703b823ac0578ff8db', '2', 'k1', 'k2']],
  FCALL: [['f', '0'], ['f', '1', 'k1', 'arg']],
  FCALL_RO: [['f', '0'], ['f', '2', 'k1', 'k2']],
  'SCRIPT EXISTS': [['sha1'], ['sha1', 'sha2']],
  'SCRIPT LOAD': [['return 1']],
  'SCRIPT FLUSH': [[], ['ASYNC']],
  'SCRIPT KILL': [[]],
  'FUNCTION LOAD': [['#!lua name=lib\n']],
  'FUNCTION FLUSH': [[]],
  'FUNCTION DELETE': [['lib']],
  'FUNCTION KILL': [[]],
  'FUNCTION LIST': [[]],
  'FUNCTION DUMP': [[]],
  'FUNCTION RESTORE': [['payload']],
  'FUNCTION STATS': [[]],
  'CLIENT SETNAME': [['x']],
  'CLIENT TRACKING': [['on']],
  'CLIENT REPLY': [['ON']],
  'CLIENT NO-EVICT': [['on']],
  'CLIENT CACHING': [['yes']],
  'CLIENT GETNAME': [[]],
  'CLIENT ID': [[]],
  'CLIENT INFO': [[]],
  'CLIENT LIST': [[]],
  'CLIENT KILL': [['ID', '1']],
  'CLIENT PAUSE': [['10']],
  'CLIENT UNPAUSE': [[]],
  'CONFIG GET': [['maxmemory']],
  'CONFIG SET': [['maxmemory', '0']],
  'CONFIG RESETSTAT': [[]],
  'CONFIG REWRITE': [[]],
  INFO: [[], ['server']],
  TIME: [[]],
  LASTSAVE: [[]],
  'MEMORY USAGE': [['k1'], ['k1', 'SAMPLES', '5']],
  'MEMORY STATS': [[]],
  'MEMORY DOCTOR': [[]],
  'MEMORY PURGE': [[]],
  'MEMORY MALLOC-STATS': [[]],
  'OBJECT ENCODING': [['k1']],
  'OBJECT IDLETIME': [['k1']],
  'OBJECT REFCOUNT': [['k1']],
  'SLOWLOG GET': [[], ['10']],
  'SLOWLOG LEN': [[]],
  'SLOWLOG RESET': [[]],
};

/** Shapes for commands without a built-in row, for after learning. */
const LEARNT_SAMPLES: Readonly<Record<string, readonly (readonly Arg[])[]>> = {
  LCS: [['k1', 'k2'], ['k1', 'k2', 'LEN']],
  SINTERCARD: [['1', 'k1'], ['2', 'k1', 'k2', 'LIMIT', '1']],
  ZINTERCARD: [['2', 'k1', 'k2']],
  'OBJECT FREQ': [['k1']],
  SORT_RO: [['k1'], ['k1', 'BY', 'w_*', 'GET', '#']],
  BITFIELD: [['k1', 'GET', 'u8', '0']],
  BITFIELD_RO: [['k1', 'GET', 'u8', '0']],
  BITPOS: [['k1', '1']],
  SUBSTR: [['k1', '0', '1']],
  'RESTORE-ASKING': [['k1', '0', 'payload']],
  PUBLISH: [['c1', 'message']],
  'PUBSUB NUMSUB': [['c1']],
  'CLIENT UNBLOCK': [['1']],
};

/** The rows whose key specs name shard channels: COMMAND GETKEYS reports none, we report them on purpose. */
const CHANNEL_ROWS = new Set(['SSUBSCRIBE', 'SUNSUBSCRIBE', 'SPUBLISH']);
/** Built-in rows Redis 7.0.15 does not know (newer commands): connection rules only. */
const NEWER_ROWS = ['WAITAOF', 'CLIENT NO-TOUCH', 'CLIENT SETINFO'];

/** One call to check: the command, its arguments (a container's start with the subcommand). */
interface Call {
  row: string;
  cmd: string;
  args: readonly Arg[];
}

function callsOf(samples: Readonly<Record<string, readonly (readonly Arg[])[]>>): Call[] {
  return Object.entries(samples).flatMap(([row, shapes]) => {
    const [cmd, sub] = row.split(' ') as [string, string | undefined];
    return shapes.map((shape) => ({ row, cmd, args: sub === undefined ? shape : [sub, ...shape] }));
  });
}

function argName(arg: Arg): string {
  if (arg instanceof Uint8Array) return Buffer.from(arg).toString('latin1');
  return String(arg);
}

/** What COMMAND GETKEYS says for each call: key names, [] for "no key arguments", or the error text. */
async function serverKeys(calls: readonly Call[]): Promise<(string[] | string)[]> {
  const asked = calls.filter((call) => call.args.length > 0);
  for (const { cmd, args } of asked) conn.send('COMMAND', 'GETKEYS', cmd, ...args);
  const replies = asked.length === 0 ? [] : ((await conn.do('')) as Reply[]);
  let next = 0;
  return calls.map((call) => (call.args.length > 0 ? keyNames(replies[next++] as Reply) : unasked(call)));
}

function keyNames(reply: Reply): string[] | string {
  if (reply instanceof RedisError) return /has no key arguments/.test(reply.message) ? [] : reply.message;
  return (reply as Buffer[]).map((name) => name.toString('latin1'));
}

/** COMMAND GETKEYS needs an argument after the name: for a call with none, [] when the server's row has no key spec. */
function unasked(call: Call): string[] | string {
  return rowByName(serverRows, call.row)?.keySpecs.length === 0 ? [] : 'COMMAND GETKEYS cannot tell';
}

/** Our keys of each call, as names (or the error). */
function ourKeys(calls: readonly Call[]): (string[] | string)[] {
  return calls.map(({ cmd, args }) => {
    try {
      return keyIndexes(cmd, args).map((i) => argName(args[i] as Arg));
    } catch (err) {
      return String(err);
    }
  });
}

async function expectKeysAsServer(calls: readonly Call[]): Promise<void> {
  const theirs = await serverKeys(calls);
  const ours = ourKeys(calls);
  const differences = calls.flatMap((call, i) =>
    JSON.stringify(ours[i]) === JSON.stringify(theirs[i]) ? [] : [{ call: [call.cmd, ...call.args.map(argName)].join(' '), ours: ours[i], redis: theirs[i] }],
  );
  expect(differences).toEqual([]);
}

/** Built-in rows the server knows, as 'CMD' and 'CMD SUB' names, read before any learning. */
function builtInRowNames(): string[] {
  const names: string[] = [];
  for (const [name, server] of serverRows) {
    const row = commandInfo(name);
    if (row === undefined) continue;
    if (row.subcommands === undefined || server.subcommands === undefined) names.push(name);
    else for (const sub of uniqueSubs(row)) if (server.subcommands.has(sub)) names.push(`${name} ${sub}`);
  }
  return names;
}

function uniqueSubs(row: CommandInfo): string[] {
  return [...(row.subcommands?.keys() ?? [])].filter((sub) => sub === sub.toUpperCase());
}

function rowByName(rows: ReadonlyMap<string, CommandInfo> | null, name: string): CommandInfo | undefined {
  const [cmd, sub] = name.split(' ') as [string, string | undefined];
  const row = rows === null ? commandInfo(cmd) : rows.get(cmd);
  return sub === undefined ? row : row?.subcommands?.get(sub);
}

describe('the built-in rows', () => {
  it('have argument shapes to check for every built-in command and subcommand', () => {
    const names = builtInRowNames();
    expect(names.length).toBeGreaterThan(200);
    expect(names.filter((name) => !(name in SAMPLES))).toEqual([]);
    expect(Object.keys(SAMPLES).filter((name) => !names.includes(name))).toEqual([]);
  });

  it('find the keys COMMAND GETKEYS finds, for every sample', async () => {
    await expectKeysAsServer(callsOf(SAMPLES).filter((call) => !CHANNEL_ROWS.has(call.row)));
  });

  it('route shard channels like keys, where the server reports no key', async () => {
    const calls = callsOf(SAMPLES).filter((call) => CHANNEL_ROWS.has(call.row));
    expect((await serverKeys(calls)).every((keys) => Array.isArray(keys) && keys.length === 0)).toBe(true);
    expect(keyIndexes('SPUBLISH', ['c1', 'message'])).toEqual([0]);
    expect(keyIndexes('SSUBSCRIBE', ['c1', 'c2'])).toEqual([0, 1]);
    expect(keyIndexes('sunsubscribe', ['c1'])).toEqual([0]);
    expect(keyIndexes('SUNSUBSCRIBE', [])).toEqual([]);
    expect(commandInfo('SPUBLISH')?.keySpecs.every((spec) => spec.channel === true)).toBe(true);
    expect(keyIndexes('PUBLISH', ['c1', 'message'])).toEqual([]);
  });

  it('never split MSETNX, though its tips say multi_shard (all or nothing holds on one node only)', () => {
    expect(rowByName(serverRows, 'MSETNX')?.requestPolicy).toBe('multi_shard');
    expect(routeOf('MSETNX', ['a', '1', 'b', '2'])).toMatchObject({ keys: [0, 2], requestPolicy: undefined });
  });

  it('have the key specs, tips and readonly flag COMMAND reports', () => {
    const names = builtInRowNames().filter((name) => name !== 'MSETNX');
    const ours = names.map((name) => summary(rowByName(null, name)));
    const theirs = names.map((name) => summary(rowByName(serverRows, name)));
    expect(ours).toEqual(theirs);
    // Checked by hand too: tips the cluster code relies on.
    expect(routeOf('DBSIZE', [])).toMatchObject({ requestPolicy: 'all_shards', responsePolicy: 'agg_sum', readOnly: true });
    expect(routeOf('SCRIPT', ['EXISTS', 'a'])).toMatchObject({ requestPolicy: 'all_shards', responsePolicy: 'agg_logical_and' });
    expect(routeOf('script', ['load', 'return 1'])).toMatchObject({ requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' });
    expect(routeOf('CONFIG', ['SET', 'x', 'y'])).toMatchObject({ requestPolicy: 'all_nodes', responsePolicy: 'all_succeeded' });
    expect(routeOf('CONFIG', ['GET', 'x'])).toMatchObject({ keys: [], requestPolicy: undefined, responsePolicy: undefined });
    expect(routeOf('MGET', ['a', 'b'])).toMatchObject({ keys: [0, 1], requestPolicy: 'multi_shard', responsePolicy: undefined, readOnly: true });
    expect(routeOf('MSET', ['a', '1', 'b', '2'])).toMatchObject({ keys: [0, 2], requestPolicy: 'multi_shard', responsePolicy: 'all_succeeded', readOnly: false });
  });

  it('keep the rows newer than this server as connection rules only', () => {
    for (const name of NEWER_ROWS) {
      expect(rowByName(serverRows, name), name).toBeUndefined();
      expect(rowByName(null, name), name).toMatchObject({ keySpecs: [], requestPolicy: undefined, readOnly: false, keyless: true, learnt: false });
    }
  });

  it('know which commands are keyless and read-only, container commands by subcommand', () => {
    expect(commandInfo('PING')?.keyless).toBe(true);
    expect(commandInfo('GET')?.keyless).toBe(false);
    expect(commandInfo('OBJECT')?.keyless).toBe(false);
    expect(commandInfo('CONFIG')?.keyless).toBe(true);
    expect(isReadOnly('GET')).toBe(true);
    expect(isReadOnly('get')).toBe(true);
    expect(isReadOnly('SET')).toBe(false);
    expect(isReadOnly('XINFO', ['STREAM', 'k'])).toBe(true);
    expect(isReadOnly('XINFO')).toBe(false);
    expect(isReadOnly('XGROUP', ['CREATE', 'k', 'g', '$'])).toBe(false);
    expect(isReadOnly('NOSUCHCOMMAND')).toBe(false);
    expect(keyIndexes('OBJECT', ['ENCODING', 'k'])).toEqual([1]);
    expect(keyIndexes('object', [Buffer.from('encoding'), 'k'])).toEqual([1]);
    expect(keyIndexes('OBJECT', ['FREQ', 'k'])).toEqual([]); // not built in: the container's row, keyless
    expect(keyIndexes('MEMORY', ['usage', 'k', 'SAMPLES', '5'])).toEqual([1]);
  });

  it('share one frozen route for commands whose keys do not depend on the arguments', () => {
    const route = routeOf('GET', ['a']);
    expect(routeOf('get', ['b'])).toBe(route);
    expect(routeOf('Get', [Buffer.from('c')])).toBe(route);
    expect(route).toEqual({ keys: [0], requestPolicy: undefined, responsePolicy: undefined, readOnly: true, known: true });
    expect(Object.isFrozen(route) && Object.isFrozen(route.keys)).toBe(true);
    expect(routeOf('SET', ['a', 'b', 'EX', '1'])).toBe(routeOf('SET', ['x', 'y']));
    expect(routeOf('LMOVE', ['a', 'b', 'LEFT', 'RIGHT']).keys).toEqual([0, 1]);
    expect(routeOf('PING', [])).toBe(routeOf('PING', ['x']));
    expect(routeOf('NOSUCHCOMMAND', ['a'])).toEqual({ keys: [], requestPolicy: undefined, responsePolicy: undefined, readOnly: false, known: false });
  });
});

describe('arguments that do not fit a key spec', () => {
  it.each([
    ['EVAL', ['return 1', '3', 'k1'], /numkeys is 3 but only 1 arguments follow it/],
    ['EVAL', ['return 1', '-1'], /numkeys must be a non-negative integer, got '-1'/],
    ['EVAL', ['return 1', 'two', 'k1', 'k2'], /numkeys must be a non-negative integer, got 'two'/],
    ['EVAL', ['return 1', '1.5', 'k1'], /numkeys must be a non-negative integer/],
    ['EVAL', ['return 1', '01', 'k1'], /numkeys must be a non-negative integer/],
    ['EVAL', ['return 1', null, 'k1'], /numkeys must be a non-negative integer, got ''/],
    ['EVALSHA', ['sha'], /numkeys argument \(2\) is missing/],
    ['FCALL_RO', ['f', 2, 'k1'], /numkeys is 2/],
    ['ZUNIONSTORE', ['dst', '2', 'k1'], /numkeys is 2/],
    ['BLMPOP', ['0', '1'], /numkeys is 1 but only 0 arguments/],
    ['LMPOP', [], /numkeys argument \(1\) is missing/],
    ['GET', [], /GET do not fit its key spec: it has a key at argument 1, but there are 0 arguments/],
    ['LMOVE', ['k1'], /LMOVE do not fit its key spec/],
    ['OBJECT', ['ENCODING'], /OBJECT ENCODING do not fit its key spec/],
    ['SORT', [], /SORT do not fit its key spec: the key is missing/],
    ['MIGRATE', ['h', '1', 'k1', '0', '5', 'KEYS', 'k2'], /MIGRATE do not fit its key spec: with KEYS, the key argument must be empty/],
    ['MIGRATE', ['h', '1'], /MIGRATE do not fit its key spec: it takes at least 5 arguments/],
    ['BITOP', ['AND'], /BITOP do not fit its key spec/],
  ] as const)('%s %j throws a TypeError', (cmd, args, message) => {
    const err = thrownBy(() => keyIndexes(cmd, [...args]));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).message).toMatch(message);
    expect(thrownBy(() => routeOf(cmd, [...args]))).toBeInstanceOf(TypeError);
  });

  it('a numkeys of 0 names no key', () => {
    expect(keyIndexes('EVAL', ['return 1', '0'])).toEqual([]);
    expect(keyIndexes('FCALL', ['f', 0, 'arg'])).toEqual([]);
    expect(routeOf('EVAL', ['return 1', 0])).toMatchObject({ keys: [], known: true, readOnly: false });
  });

  it('a missing keyword names no key (as in Redis: the command itself fails)', () => {
    expect(keyIndexes('XREAD', ['COUNT', '1'])).toEqual([]);
    expect(keyIndexes('GEORADIUS', ['k1', '15', '37', '200', 'km', 'STORE'])).toEqual([0]);
  });

  it('an empty range to the end names no key (Redis refuses the spec, the commands are valid)', async () => {
    expect(keyIndexes('SUNSUBSCRIBE', [])).toEqual([]);
    expect(keyIndexes('PFMERGE', ['dst'])).toEqual([0]);
    expect(await conn.do('PFMERGE', 'dst')).toBe('OK');
    expect(await serverKeys([{ row: 'PFMERGE', cmd: 'PFMERGE', args: ['dst'] }])).toEqual(['ERR Invalid arguments specified for command']);
    expect(keyIndexes('XREAD', ['COUNT', '1', 'STREAMS'])).toEqual([]);
    expect(keyIndexes('BLPOP', ['0'])).toEqual([]);
  });
});

describe('learning from COMMAND', () => {
  it('leaves commands without a built-in row unknown until then', () => {
    for (const name of Object.keys(LEARNT_SAMPLES)) expect(rowByName(null, name), name).toBeUndefined();
    expect(routeOf('LCS', ['k1', 'k2']).known).toBe(false);
  });

  it('parses RESP3 replies to the same rows as RESP2', async () => {
    const resp3 = await dial(server.addr, { protocol: 3 });
    try {
      const reply = await resp3.do('COMMAND');
      expect(reply).not.toEqual(commandReply); // maps and sets, not flat arrays
      expect(parseCommandReply(reply)).toEqual(serverRows);
      expect(parseCommandReply(await resp3.do('COMMAND', 'INFO', 'get', 'nosuchcommand', 'object'))).toEqual(
        new Map([
          ['GET', serverRows.get('GET')],
          ['OBJECT', serverRows.get('OBJECT')],
        ]),
      );
    } finally {
      await resp3.close();
    }
  });

  it('adds every command the server knows, with its keys as COMMAND GETKEYS finds them', async () => {
    expect(learnCommands(commandReply)).toBe(serverRows.size);
    for (const name of serverRows.keys()) expect(commandInfo(name)?.learnt, name).toBe(true);
    expect(commandInfo('lcs')).toMatchObject({ name: 'LCS', readOnly: true, keyless: false, learnt: true });
    expect(commandInfo('OBJECT')?.subcommands?.get('freq')).toMatchObject({ name: 'OBJECT FREQ', readOnly: true });
    await expectKeysAsServer(callsOf(LEARNT_SAMPLES));
  });

  it('keeps the built-in connection rules, and still finds the keys the server finds', async () => {
    expect(stateChangeOf('CLIENT', ['SETNAME', 'x'])).toEqual({ set: 16, clear: 0 });
    expect(stateChangeOf('CLIENT', ['NO-TOUCH', 'on'])).toEqual({ set: 16, clear: 0 });
    expect(stateChangeOf('CLIENT', ['UNBLOCK', '1'])).toBeUndefined();
    expect(stateChangeOf('WATCH', ['k'])).toEqual({ set: 1, clear: 0 });
    expect(commandInfo('SSUBSCRIBE')).toMatchObject({ push: 'ssubscribe', notShared: 'replies', learnt: true });
    expect(sharedRefusal('BLPOP', ['q', '0'])).not.toBeNull();
    expect(sharedRefusal('XREAD', ['STREAMS', 's', '0'])).toBeNull();
    expect(sharedRefusal('LCS', ['a', 'b'])).toBeNull();
    expect(commandInfo('WAITAOF')).toMatchObject({ notShared: 'blocks', learnt: false });
    expect(keyIndexes('SPUBLISH', ['c1', 'm'])).toEqual([0]);
    expect(routeOf('MSETNX', ['a', '1', 'b', '2']).requestPolicy).toBeUndefined();
    await expectKeysAsServer(callsOf(SAMPLES).filter((call) => !CHANNEL_ROWS.has(call.row)));
  });

  it('is idempotent, from RESP2 or RESP3', async () => {
    const names = [...serverRows.keys(), 'WAITAOF'];
    const before = names.map((name) => commandInfo(name));
    learnCommands(commandReply);
    const resp3 = await dial(server.addr, { protocol: 3 });
    try {
      learnCommands(await resp3.do('COMMAND'));
    } finally {
      await resp3.close();
    }
    expect(names.map((name) => commandInfo(name))).toEqual(before);
    expect(routeOf('GET', ['a'])).toBe(routeOf('GET', ['b']));
  });

  it('refuses a reply that is not a COMMAND reply, leaving the table as it was', () => {
    const before = commandInfo('GET');
    expect(thrownBy(() => learnCommands('OK'))).toBeInstanceOf(TypeError);
    expect(thrownBy(() => learnCommands([[42]]))).toBeInstanceOf(TypeError);
    expect(commandInfo('GET')).toBe(before);
  });

  it('reads pre-7 entries (no key specs) from their first key, last key and step', () => {
    const legacy = parseCommandReply([
      [Buffer.from('mset'), -3, ['write', 'denyoom'], 1, -1, 2],
      [Buffer.from('get'), 2, ['readonly', 'fast'], 1, 1, 1],
      [Buffer.from('ping'), -1, ['stale', 'fast'], 0, 0, 0],
    ]);
    expect(legacy.get('MSET')?.keySpecs).toEqual(serverRows.get('MSET')?.keySpecs);
    expect(legacy.get('GET')).toMatchObject({ keySpecs: serverRows.get('GET')?.keySpecs, readOnly: true });
    expect(legacy.get('PING')).toMatchObject({ keySpecs: [], keyless: true });
  });
});

/** What a row says about keys and routing. */
function summary(row: CommandInfo | undefined): unknown {
  if (row === undefined) return undefined;
  return { name: row.name, keySpecs: row.keySpecs, requestPolicy: row.requestPolicy, responsePolicy: row.responsePolicy, readOnly: row.readOnly, keyless: row.keyless };
}

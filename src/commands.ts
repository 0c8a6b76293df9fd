/**
 * The command table (redigo's commandinfo): for each command that is not a
 * plain stateless request, what it does to the connection, whether it may
 * run on the pool's shared connection, and the push kind of its replies.
 * Every rule about commands — the reset of a returned connection, the
 * refusals of the shared connection, which pushes answer a command, which
 * notifications are subscription confirmations — reads this one table.
 * A command absent from it is stateless, non-blocking and shared-safe.
 */
import type { Arg } from './resp/encode.js';

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

/** One row of the table. */
interface CommandInfo {
  /** State bits the command sets and clears. */
  readonly state?: StateChange;
  /** Subcommands (upper case) with their own state change (CLIENT SETNAME...). */
  readonly subcommands?: Readonly<Record<string, StateChange>>;
  /**
   * Why it may not run on the shared connection: it changes connection
   * state, blocks it (`'block-arg'`: only with a BLOCK argument), or answers
   * more than once. Absent: shared-safe.
   */
  readonly notShared?: 'state' | 'blocks' | 'block-arg' | 'replies';
  /** The push kind of its confirmations (subscribe commands). */
  readonly push?: SubscriptionKind;
}

const TAINTS: StateChange = { set: ConnState.Tainted, clear: 0 };
const sets = (bits: number): StateChange => ({ set: bits, clear: 0 });
const clears = (bits: number): StateChange => ({ set: 0, clear: bits });

const TABLE: Readonly<Record<string, CommandInfo>> = {
  WATCH: { state: sets(ConnState.Watch), notShared: 'state' },
  UNWATCH: { state: clears(ConnState.Watch), notShared: 'state' },
  MULTI: { state: sets(ConnState.Multi), notShared: 'state' },
  EXEC: { state: clears(ConnState.Watch | ConnState.Multi), notShared: 'state' },
  DISCARD: { state: clears(ConnState.Watch | ConnState.Multi), notShared: 'state' },
  SUBSCRIBE: { state: sets(ConnState.Subscribe), notShared: 'replies', push: 'subscribe' },
  PSUBSCRIBE: { state: sets(ConnState.Subscribe), notShared: 'replies', push: 'psubscribe' },
  SSUBSCRIBE: { state: sets(ConnState.ShardSubscribe), notShared: 'replies', push: 'ssubscribe' },
  UNSUBSCRIBE: { notShared: 'replies', push: 'unsubscribe' },
  PUNSUBSCRIBE: { notShared: 'replies', push: 'punsubscribe' },
  SUNSUBSCRIBE: { notShared: 'replies', push: 'sunsubscribe' },
  MONITOR: { state: TAINTS, notShared: 'replies' },
  SELECT: { state: TAINTS, notShared: 'state' },
  HELLO: { state: TAINTS, notShared: 'state' },
  AUTH: { state: TAINTS, notShared: 'state' },
  RESET: { state: TAINTS, notShared: 'state' },
  READONLY: { state: TAINTS, notShared: 'state' },
  READWRITE: { state: TAINTS, notShared: 'state' },
  QUIT: { notShared: 'state' },
  // The subcommands that leave state on the connection; the others (ID,
  // INFO, LIST, GETNAME, KILL...) are harmless on an exclusive connection.
  CLIENT: { notShared: 'state', subcommands: { SETNAME: TAINTS, TRACKING: TAINTS, REPLY: TAINTS, 'NO-EVICT': TAINTS, 'NO-TOUCH': TAINTS, SETINFO: TAINTS } },
  SWAPDB: { notShared: 'state' },
  BLPOP: { notShared: 'blocks' },
  BRPOP: { notShared: 'blocks' },
  BLMOVE: { notShared: 'blocks' },
  BRPOPLPUSH: { notShared: 'blocks' },
  BLMPOP: { notShared: 'blocks' },
  BZPOPMIN: { notShared: 'blocks' },
  BZPOPMAX: { notShared: 'blocks' },
  BZMPOP: { notShared: 'blocks' },
  WAIT: { notShared: 'blocks' },
  WAITAOF: { notShared: 'blocks' },
  DEBUG: { notShared: 'blocks' },
  SYNC: { notShared: 'replies' },
  PSYNC: { notShared: 'replies' },
  SHUTDOWN: { notShared: 'state' },
  XREAD: { notShared: 'block-arg' },
  XREADGROUP: { notShared: 'block-arg' },
};

/** The table keyed by upper and lower case names, so the usual spellings need no case folding. */
const BY_NAME: ReadonlyMap<string, CommandInfo> = new Map(Object.entries(TABLE).flatMap(([name, info]) => [[name, info], [name.toLowerCase(), info]] as const));
/** Name lengths in the table: most commands (GET, SET, ...) are ruled out by length alone. */
const LENGTHS: ReadonlySet<number> = new Set(Object.keys(TABLE).map((name) => name.length));

/** The row of `cmd`, case-insensitive; undefined for a plain stateless command (or a non-string). */
export function commandInfo(cmd: string): CommandInfo | undefined {
  if (typeof cmd !== 'string' || !LENGTHS.has(cmd.length)) return undefined;
  return BY_NAME.get(cmd) ?? BY_NAME.get(cmd.toUpperCase());
}

function upperText(arg: Arg | undefined): string {
  if (typeof arg === 'string') return arg.toUpperCase();
  return arg instanceof Uint8Array ? Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength).toString('latin1').toUpperCase() : '';
}

/** The state change `cmd args...` causes, or undefined. */
export function stateChangeOf(cmd: string, args: readonly Arg[]): StateChange | undefined {
  const info = commandInfo(cmd);
  if (info === undefined) return undefined;
  return info.subcommands === undefined ? info.state : info.subcommands[upperText(args[0])];
}

function isBlockArg(arg: Arg): boolean {
  return typeof arg === 'string' && arg.length === 5 && arg.toUpperCase() === 'BLOCK';
}

/**
 * Why `cmd` may not run on the shared connection, or null when it may: it
 * changes connection state, blocks it, or answers more than once.
 */
export function sharedRefusal(cmd: string, args: readonly Arg[]): string | null {
  const info = commandInfo(cmd);
  if (info?.notShared === undefined) return null;
  if (info.notShared === 'block-arg' && !args.some(isBlockArg)) return null;
  return `redisconn: ${cmd.toUpperCase()} changes or blocks the connection, so Pool.do cannot run it on the shared connection; borrow one with pool.get()`;
}

/** The push kinds that confirm a subscribe command (lower case, as the server sends them). */
export const SUBSCRIPTION_KINDS: ReadonlySet<string> = new Set(Object.values(TABLE).flatMap((info) => (info.push === undefined ? [] : [info.push])));

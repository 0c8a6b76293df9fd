/**
 * Commands a cluster runs on several nodes: a multi-key command split by
 * slot (MGET, DEL, MSET, ...), a keyless one run on every master (DBSIZE,
 * KEYS, FLUSHALL, ...), and the replies put back together as the command's
 * response policy (from its tips) says.
 */
import type { ResponsePolicy } from '../commands.js';
import type { Reply } from '../resp/decode.js';
import { wireArg, type Arg } from '../resp/encode.js';
import { slotOf } from './slot.js';

/** The arguments of one slot's share of a split command, and where its keys were. */
export interface SlotGroup {
  readonly slot: number;
  readonly args: Arg[];
  /** For each key of this group, its position among the command's keys. */
  readonly positions: number[];
}

/** A key argument (argument `index`) as the bytes or text the server will hash: exactly what is sent. */
export function keyArg(arg: Arg | undefined, index = 0): string | Uint8Array {
  return typeof arg === 'string' ? arg : wireArg(arg, index);
}

/**
 * Splits `args` by the slot of the keys at `keys`: each key takes the
 * arguments after it up to the next key (MSET's value); arguments before
 * the first key go to every group. Groups come in order of first key.
 */
export function splitBySlot(args: readonly Arg[], keys: readonly number[]): SlotGroup[] {
  const first = keys[0] ?? 0;
  // Each key takes the same number of arguments (MSET: a value): a key short of them would fail
  // on its node alone while the others ran, so the whole command is refused here.
  if (keys.length > 1) {
    const step = (keys[1] as number) - first;
    if (args.length - (keys[keys.length - 1] as number) !== step) throw new TypeError(`redisconn: wrong number of arguments: each key takes ${step - 1} argument(s) after it`);
  }
  const prefix = args.slice(0, first);
  const bySlot = new Map<number, SlotGroup>();
  for (let i = 0; i < keys.length; i++) {
    const at = keys[i] as number;
    const end = i + 1 < keys.length ? (keys[i + 1] as number) : args.length;
    const slot = slotOf(keyArg(args[at], at));
    let group = bySlot.get(slot);
    if (group === undefined) {
      group = { slot, args: [...prefix], positions: [] };
      bySlot.set(slot, group);
    }
    for (let j = at; j < end; j++) group.args.push(args[j]);
    group.positions.push(i);
  }
  return [...bySlot.values()];
}

function sum(replies: readonly Reply[]): Reply {
  let total = 0;
  for (const reply of replies) total += Number(reply);
  return total;
}

/** Element-wise (arrays, e.g. SCRIPT EXISTS) or plain and/or/min/max of integer replies. */
function combine(replies: readonly Reply[], op: (a: number, b: number) => number): Reply {
  const [first, ...rest] = replies;
  if (Array.isArray(first)) return first.map((value, i) => rest.reduce<number>((acc, reply) => op(acc, Number((reply as Reply[])[i])), Number(value)));
  return rest.reduce<number>((acc, reply) => op(acc, Number(reply)), Number(first));
}

/** Puts the replies of a split command back in key order (`count` keys). */
function inKeyOrder(replies: readonly Reply[], groups: readonly SlotGroup[], count: number): Reply[] {
  const out = new Array<Reply>(count).fill(null);
  groups.forEach((group, g) => {
    const reply = replies[g];
    const values = Array.isArray(reply) ? reply : [];
    group.positions.forEach((position, i) => {
      out[position] = values[i] ?? null;
    });
  });
  return out;
}

/**
 * One reply from the replies of every part, per the response policy:
 * sums, logical and/or, min/max; `all_succeeded`/`one_succeeded` → the
 * first reply (they all succeeded to get here); no policy → a split
 * command's arrays in key order (`groups` given), or every node's arrays
 * concatenated (KEYS), or the first reply.
 */
export function aggregate(policy: ResponsePolicy | undefined, replies: readonly Reply[], groups: readonly SlotGroup[] | null, keyCount: number): Reply {
  switch (policy) {
    case 'agg_sum':
      return sum(replies);
    case 'agg_min':
      return combine(replies, Math.min);
    case 'agg_max':
      return combine(replies, Math.max);
    case 'agg_logical_and':
      return combine(replies, (a, b) => (a && b ? 1 : 0));
    case 'agg_logical_or':
      return combine(replies, (a, b) => (a || b ? 1 : 0));
    case 'all_succeeded':
    case 'one_succeeded':
      return replies[0] ?? null;
    default:
      if (groups !== null) return inKeyOrder(replies, groups, keyCount);
      if (replies.every(Array.isArray)) return (replies as Reply[][]).flat(1);
      return replies[0] ?? null;
  }
}

/**
 * Why a keyless command whose request policy is `special` (SCAN: its
 * cursor belongs to one node) is refused on a cluster: no one node answers
 * it for the whole cluster, and a random master each call would mix cursors.
 */
export function noClusterWideNode(cmd: string): TypeError {
  const name = cmd.toUpperCase();
  return new TypeError(`redisconn: ${name} has no one node in a Redis Cluster (each master answers for its own keys, with its own cursor); run it on each master: dial the addrs cluster.stats().nodes lists with role 'master'`);
}

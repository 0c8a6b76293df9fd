/**
 * The subscriptions of a cluster connection: what it must send again to
 * follow them to another node (after its node died, or a shard channel's
 * slot moved), and which pushes are the echoes of doing so.
 */
import type { Reply } from '../resp/decode.js';
import type { Arg } from '../resp/encode.js';
import { keyArg } from './fanout.js';
import { slotOf } from './slot.js';

type Kind = 'SUBSCRIBE' | 'PSUBSCRIBE' | 'SSUBSCRIBE';

const SUBSCRIBES: Readonly<Record<string, Kind>> = { SUBSCRIBE: 'SUBSCRIBE', PSUBSCRIBE: 'PSUBSCRIBE', SSUBSCRIBE: 'SSUBSCRIBE' };
const UNSUBSCRIBES: Readonly<Record<string, Kind>> = { UNSUBSCRIBE: 'SUBSCRIBE', PUNSUBSCRIBE: 'PSUBSCRIBE', SUNSUBSCRIBE: 'SSUBSCRIBE' };
const CONFIRMATIONS: ReadonlySet<string> = new Set(['subscribe', 'psubscribe', 'ssubscribe']);

function nameOf(arg: Arg): string {
  const key = keyArg(arg);
  return typeof key === 'string' ? key : Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('utf8');
}

function textOf(reply: Reply | undefined): string | null {
  if (typeof reply === 'string') return reply;
  return Buffer.isBuffer(reply) ? reply.toString('utf8') : null;
}

/** Channels, patterns and shard channels subscribed, by name, with the argument the caller gave. */
export class Subscriptions {
  private readonly byKind: Record<Kind, Map<string, Arg>> = { SUBSCRIBE: new Map(), PSUBSCRIBE: new Map(), SSUBSCRIBE: new Map() };
  /** Confirmations of a re-subscription not yet read (they are not the caller's). */
  private echoes = 0;

  /** Notes a (un)subscribe command as sent. */
  note(cmd: string, args: readonly Arg[]): void {
    const upper = cmd.toUpperCase();
    const added = SUBSCRIBES[upper];
    if (added !== undefined) {
      for (const arg of args) this.byKind[added].set(nameOf(arg), arg);
      return;
    }
    const removed = UNSUBSCRIBES[upper];
    if (removed === undefined) return;
    if (args.length === 0) this.byKind[removed].clear();
    for (const arg of args) this.byKind[removed].delete(nameOf(arg));
  }

  /** Anything to follow. */
  get any(): boolean {
    return this.byKind.SUBSCRIBE.size + this.byKind.PSUBSCRIBE.size + this.byKind.SSUBSCRIBE.size > 0;
  }

  /** The slot of the shard channels (they share one), or -1. */
  shardSlot(): number {
    for (const name of this.byKind.SSUBSCRIBE.keys()) return slotOf(name);
    return -1;
  }

  /** The commands that subscribe to everything again; their confirmations become echoes to drop. */
  replay(): [cmd: Kind, args: Arg[]][] {
    const commands: [Kind, Arg[]][] = [];
    // A replay replaces the one before: that one's lease was dropped, its confirmations will never be read.
    this.echoes = 0;
    for (const kind of ['SUBSCRIBE', 'PSUBSCRIBE', 'SSUBSCRIBE'] as const) {
      const args = [...this.byKind[kind].values()];
      if (args.length === 0) continue;
      commands.push([kind, args]);
      this.echoes += args.length;
    }
    return commands;
  }

  /** Whether `reply` is the confirmation of a re-subscription (then it is counted as read). */
  isEcho(reply: Reply): boolean {
    if (this.echoes === 0 || !Array.isArray(reply) || !CONFIRMATIONS.has(textOf(reply[0]) ?? '')) return false;
    this.echoes--;
    return true;
  }

  /** Whether `reply` is a `sunsubscribe` the caller did not ask for: the channel's slot moved away. */
  isShardLoss(reply: Reply): boolean {
    if (!Array.isArray(reply) || textOf(reply[0]) !== 'sunsubscribe') return false;
    const channel = textOf(reply[1]);
    return channel !== null && this.byKind.SSUBSCRIBE.has(channel);
  }
}

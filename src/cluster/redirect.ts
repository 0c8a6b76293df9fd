/**
 * What a cluster node's error reply asks of the client: go to another node
 * for good (MOVED), for this one command (ASK), wait and retry (TRYAGAIN,
 * CLUSTERDOWN). The server ran none of those commands, so retrying them is
 * safe even for writes.
 */
import { RedisError } from '../errors.js';
import { hostOf, joinHostPort, mapAddress, type AddressMap } from './topology.js';

/** The redirect kinds, as counted in the stats. */
export type RedirectKind = 'moved' | 'ask' | 'tryagain' | 'clusterdown';

/** A redirect read from an error reply. */
export interface Redirect {
  readonly kind: RedirectKind;
  /** The slot named by MOVED/ASK; -1 otherwise. */
  readonly slot: number;
  /** The node to go to (after the address map) for MOVED/ASK; '' otherwise. */
  readonly addr: string;
}

const RETRY_TRYAGAIN: Redirect = { kind: 'tryagain', slot: -1, addr: '' };
const RETRY_CLUSTERDOWN: Redirect = { kind: 'clusterdown', slot: -1, addr: '' };

/**
 * The redirect `err` asks for, or null when it is not one (any other error,
 * a connection failure). `from` is the node that answered: a MOVED/ASK with
 * an empty host (`MOVED 3999 :6381`, a node whose endpoint type is unknown)
 * means that node's host, already an address we dial (the map is not
 * applied again).
 */
export function redirectOf(err: unknown, map: AddressMap | undefined, from?: string): Redirect | null {
  if (!(err instanceof RedisError)) return null;
  switch (err.code) {
    case 'MOVED':
    case 'ASK': {
      // "MOVED 3999 127.0.0.1:6381" (plus the hint RedisError appends).
      const [, slotText = '', addr = ''] = err.message.split(' ', 3);
      const slot = Number(slotText);
      if (!Number.isInteger(slot) || addr === '') return null;
      const kind = err.code === 'MOVED' ? 'moved' : 'ask';
      if (!addr.startsWith(':')) return { kind, slot, addr: mapAddress(map, addr) };
      const port = Number(addr.slice(1));
      if (from === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return null;
      return { kind, slot, addr: joinHostPort(hostOf(from), port) };
    }
    case 'TRYAGAIN':
      return RETRY_TRYAGAIN;
    case 'CLUSTERDOWN':
      return RETRY_CLUSTERDOWN;
    default:
      return null;
  }
}

/** The pause before retry `attempt` (1-based) of TRYAGAIN/CLUSTERDOWN: 10, 20, 40 ... 200 ms, ±25 % jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(200, 10 * 2 ** Math.min(attempt - 1, 5));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/**
 * What a cluster node's error reply asks of the client: go to another node
 * for good (MOVED), for this one command (ASK), wait and retry (TRYAGAIN,
 * CLUSTERDOWN). The server ran none of those commands, so retrying them is
 * safe even for writes.
 */
import { RedisError } from '../errors.js';
import { mapAddress, type AddressMap } from './topology.js';

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

/** The redirect `err` asks for, or null when it is not one (any other error, a connection failure). */
export function redirectOf(err: unknown, map: AddressMap | undefined): Redirect | null {
  if (!(err instanceof RedisError)) return null;
  switch (err.code) {
    case 'MOVED':
    case 'ASK': {
      // "MOVED 3999 127.0.0.1:6381" (plus the hint RedisError appends).
      const [, slotText = '', addr = ''] = err.message.split(' ', 3);
      const slot = Number(slotText);
      if (!Number.isInteger(slot) || addr === '') return null;
      return { kind: err.code === 'MOVED' ? 'moved' : 'ask', slot, addr: mapAddress(map, addr) };
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

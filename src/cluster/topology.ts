/**
 * The slot map of a Redis Cluster, read from `CLUSTER SLOTS`: which master
 * (and replicas) serve each of the 16384 slots, with node addresses passed
 * through the user's address map (NAT, Docker, announced hostnames).
 */
import { ProtocolError } from '../errors.js';
import type { Reply } from '../resp/decode.js';

/** The nodes serving a range of slots. */
export interface Shard {
  /** `host:port` of the master. */
  readonly master: string;
  /** `host:port` of each replica with a known endpoint. */
  readonly replicas: readonly string[];
}

/** A range of slots and its shard. */
export interface SlotRange {
  readonly start: number;
  readonly end: number;
  readonly shard: Shard;
}

/**
 * Maps an address the cluster announces (`host:port`) to the one to dial:
 * an object (addresses it lacks are kept) or a function.
 */
export type AddressMap = Readonly<Record<string, string>> | ((addr: string) => string);

/** `host:port`, with brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The host part of `host:port` / `[v6]:port`. */
export function hostOf(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const colon = addr.lastIndexOf(':');
  return colon < 0 ? addr : addr.slice(0, colon);
}

/** Applies `map` to `addr`; a function that throws or returns a non-address is a TypeError naming it. */
export function mapAddress(map: AddressMap | undefined, addr: string): string {
  if (map === undefined) return addr;
  const mapped = typeof map === 'function' ? map(addr) : (map[addr] ?? addr);
  if (typeof mapped !== 'string' || mapped === '') throw new TypeError(`redisconn: addressMap returned ${JSON.stringify(mapped)} for ${addr}; expected "host:port"`);
  return mapped;
}

function text(reply: Reply): string | null {
  if (typeof reply === 'string') return reply;
  if (reply instanceof Uint8Array) return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString();
  return null;
}

/**
 * The address of one node entry `[host, port, id, ...]`, or null when its
 * endpoint is unknown (`?`, null, port 0). An empty host means "the host you
 * asked" (`queriedHost`), as the cluster spec says.
 */
function endpointOf(entry: Reply, queriedHost: string, map: AddressMap | undefined): string | null {
  if (!Array.isArray(entry) || entry.length < 2) throw new ProtocolError('redisconn: CLUSTER SLOTS: a node entry is not [host, port, ...]');
  const host = entry[0] === null ? '?' : text(entry[0] as Reply);
  const port = entry[1];
  if (host === null || typeof port !== 'number') throw new ProtocolError('redisconn: CLUSTER SLOTS: a node entry is not [host, port, ...]');
  if (host === '?' || port <= 0) return null;
  return mapAddress(map, joinHostPort(host === '' ? queriedHost : host, port));
}

/**
 * Parses a `CLUSTER SLOTS` reply. Ranges whose master has no known endpoint
 * are left out (their slots stay unserved until a MOVED or a later refresh
 * tells). Throws ProtocolError on a reply of the wrong shape.
 */
export function parseClusterSlots(reply: Reply, queriedHost: string, map?: AddressMap): SlotRange[] {
  if (!Array.isArray(reply)) throw new ProtocolError('redisconn: CLUSTER SLOTS did not answer an array');
  const ranges: SlotRange[] = [];
  const shards = new Map<string, Shard>();
  for (const item of reply) {
    if (!Array.isArray(item) || item.length < 3 || typeof item[0] !== 'number' || typeof item[1] !== 'number') {
      throw new ProtocolError('redisconn: CLUSTER SLOTS: an entry is not [start, end, master, ...replicas]');
    }
    const master = endpointOf(item[2] as Reply, queriedHost, map);
    if (master === null) continue;
    const replicas: string[] = [];
    for (let i = 3; i < item.length; i++) {
      const replica = endpointOf(item[i] as Reply, queriedHost, map);
      if (replica !== null) replicas.push(replica);
    }
    // One Shard object per master, so ranges of one master share it.
    const key = `${master} ${replicas.join(' ')}`;
    let shard = shards.get(key);
    if (shard === undefined) {
      shard = { master, replicas };
      shards.set(key, shard);
    }
    ranges.push({ start: item[0], end: item[1], shard });
  }
  return ranges;
}

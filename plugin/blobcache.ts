/**
 * A Redis-backed blob cache (LUCI's caching.BlobCache): byte values under
 * namespaced keys `<prefix>.<ns>:<key>`, written with `SET key value PX ttl`.
 * Runs on any source of connections through `source.do` (a pool's shared,
 * auto-pipelined connection; on a cluster, the node of the key's slot). Also
 * an adapter that speaks the abstract-cache protocol, for
 * `@fastify/caching`'s `cache` option.
 */
import type { ConnSource } from '../src/index.js';
import { withHttpStatus } from './errors.js';

/** Key prefix used when none is configured. */
export const DEFAULT_BLOB_PREFIX = 'redisconn.blobcache';
/** Largest value accepted when none is configured: 1 MiB. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

function checkName(what: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`redisconn: blob cache ${what} must be a non-empty string`);
}

function checkTtl(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 0) {
    throw new RangeError(`redisconn: blob cache ttlMs must be a non-negative integer number of ms (0 = no expiry), got ${String(ttlMs)}`);
  }
}

function toBuffer(reply: unknown): Buffer | null {
  if (reply === null) return null;
  if (Buffer.isBuffer(reply)) return reply;
  if (typeof reply === 'string') return Buffer.from(reply, 'utf8');
  throw new TypeError(`redisconn: blob cache: unexpected reply type ${typeof reply}`);
}

/**
 * One namespace of the blob cache. Every method rejects with a client error
 * (with an HTTP `statusCode`) when Redis is unavailable; invalid input rejects
 * with TypeError/RangeError before anything is sent.
 */
export class BlobCache {
  private readonly keyPrefix: string;

  constructor(
    private readonly source: ConnSource,
    readonly namespace: string,
    prefix = DEFAULT_BLOB_PREFIX,
    readonly maxValueBytes = DEFAULT_MAX_VALUE_BYTES,
  ) {
    checkName('namespace', namespace);
    this.keyPrefix = `${prefix}.${namespace}:`;
  }

  /** The Redis key holding `key`. */
  redisKey(key: string): string {
    checkName('key', key);
    return this.keyPrefix + key;
  }

  /** The stored bytes, or null on a miss (absent or expired). */
  async get(key: string): Promise<Buffer | null> {
    const redisKey = this.redisKey(key);
    return toBuffer(await this.source.do('GET', redisKey).catch(rethrow));
  }

  /**
   * Stores `value` (bytes, or a string as UTF-8) for `ttlMs` ms; 0 keeps it
   * until deleted or evicted. A bad ttl or a value over `maxValueBytes`
   * rejects with RangeError and writes nothing.
   */
  async set(key: string, value: Uint8Array | string, ttlMs = 0): Promise<void> {
    const redisKey = this.redisKey(key);
    checkTtl(ttlMs);
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw new TypeError('redisconn: blob cache value must be a Buffer, Uint8Array or string');
    const size = typeof value === 'string' ? Buffer.byteLength(value) : value.byteLength;
    if (size > this.maxValueBytes) throw new RangeError(`redisconn: blob cache value of ${size} bytes exceeds maxValueBytes (${this.maxValueBytes})`);
    const done = ttlMs === 0 ? this.source.do('SET', redisKey, value) : this.source.do('SET', redisKey, value, 'PX', ttlMs);
    await done.catch(rethrow);
  }

  /** Whether `key` is stored (without fetching the value). */
  async has(key: string): Promise<boolean> {
    const redisKey = this.redisKey(key);
    return (await this.source.do('EXISTS', redisKey).catch(rethrow)) === 1;
  }

  /** Removes `key`; resolves whether or not it existed. */
  async delete(key: string): Promise<void> {
    const redisKey = this.redisKey(key);
    await this.source.do('DEL', redisKey).catch(rethrow);
  }
}

function rethrow(err: unknown): never {
  throw withHttpStatus(err);
}

/** A key of the abstract-cache protocol: a string, or an id within a segment. */
export type AbstractCacheKey = string | { id: string; segment: string };

/** What abstract-cache's `get` yields for a hit. */
export interface AbstractCacheEntry<T = unknown> {
  item: T;
  stored: number;
  ttl: number;
}

type Callback<T> = (err: Error | null, value?: T) => void;

/**
 * The abstract-cache protocol (as `@fastify/caching` uses it): every method
 * takes a callback as its last argument, or returns a promise without one.
 * Items are stored as JSON, so they must be JSON-serializable.
 */
export interface AbstractCache {
  get<T = unknown>(key: AbstractCacheKey): Promise<AbstractCacheEntry<T> | null>;
  get<T = unknown>(key: AbstractCacheKey, callback: Callback<AbstractCacheEntry<T> | null>): void;
  set(key: AbstractCacheKey, value: unknown, ttlMs: number): Promise<void>;
  set(key: AbstractCacheKey, value: unknown, ttlMs: number, callback: Callback<void>): void;
  has(key: AbstractCacheKey): Promise<boolean>;
  has(key: AbstractCacheKey, callback: Callback<boolean>): void;
  delete(key: AbstractCacheKey): Promise<void>;
  delete(key: AbstractCacheKey, callback: Callback<void>): void;
}

function flatKey(key: AbstractCacheKey): string {
  if (typeof key === 'string') return key;
  if (key !== null && typeof key === 'object' && typeof key.id === 'string' && typeof key.segment === 'string') return `${key.segment}:${key.id}`;
  throw new TypeError('redisconn: abstract-cache key must be a string or { id, segment }');
}

/** Runs `work`, answering through `callback` when one is given. */
function answer<T>(work: () => Promise<T>, callback: Callback<T> | undefined): Promise<T> | undefined {
  const result = Promise.resolve().then(work);
  if (callback === undefined) return result;
  result.then(
    (value) => callback(null, value),
    (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
  );
  return undefined;
}

/** Where the adapter reports entries it cannot read (a pino / Fastify logger fits). */
export interface DebugLogger {
  debug(obj: object, msg: string): void;
}

/** The entry `toAbstractCache` stored as `bytes`, or null when it is not one. */
function readEntry(bytes: Buffer): AbstractCacheEntry | null {
  let entry: unknown;
  try {
    entry = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof entry !== 'object' || entry === null || !('item' in entry)) return null;
  const { stored, ttl } = entry as Partial<AbstractCacheEntry>;
  return typeof stored === 'number' && typeof ttl === 'number' ? (entry as AbstractCacheEntry) : null;
}

/**
 * Wraps a {@link BlobCache} namespace in the abstract-cache protocol.
 *
 * `get` of a stored value that is not an entry this adapter wrote (not JSON,
 * or JSON without `item`, `stored` and `ttl`: written by something else, or
 * cut short) resolves as a miss (`null`), as a cache should: the caller
 * computes the value afresh and its `set` overwrites the bad one. It is
 * reported at debug level on `log` when one is given (key and size, never
 * the value). `has` still reports such a key as present.
 */
export function toAbstractCache(blobs: BlobCache, log?: DebugLogger): AbstractCache {
  const cache = {
    get(key: AbstractCacheKey, callback?: Callback<AbstractCacheEntry | null>) {
      return answer(async () => {
        const flat = flatKey(key);
        const bytes = await blobs.get(flat);
        if (bytes === null) return null;
        const entry = readEntry(bytes);
        if (entry === null) {
          log?.debug({ namespace: blobs.namespace, key: flat, bytes: bytes.length }, 'redisconn blob cache: stored value is not an abstract-cache entry; treating it as a miss');
        }
        return entry;
      }, callback);
    },
    set(key: AbstractCacheKey, value: unknown, ttlMs: number, callback?: Callback<void>) {
      return answer(async () => {
        const entry: AbstractCacheEntry = { item: value, stored: Date.now(), ttl: ttlMs };
        await blobs.set(flatKey(key), JSON.stringify(entry), ttlMs);
      }, callback);
    },
    has(key: AbstractCacheKey, callback?: Callback<boolean>) {
      return answer(() => blobs.has(flatKey(key)), callback);
    },
    delete(key: AbstractCacheKey, callback?: Callback<void>) {
      return answer(() => blobs.delete(flatKey(key)), callback);
    },
  };
  return cache as AbstractCache;
}

/**
 * Script: a Lua script run by its SHA-1 digest (EVALSHA), sent in full (EVAL)
 * only when the server does not have it cached (redigo's Script).
 */
import { createHash } from 'node:crypto';
import type { Conn } from './conn.js';

/** What runs a script: a connection, or a pool or cluster through its `do`. */
export type ScriptRunner = Pick<Conn, 'do'>;
import { RedisError } from './errors.js';
import type { Reply } from './resp/decode.js';
import type { Arg } from './resp/encode.js';

/**
 * A Lua script and how many of its arguments are keys. Immutable; one Script
 * may be used on any number of connections at once.
 */
export class Script {
  /** The hex SHA-1 digest of `src`, as EVALSHA and SCRIPT LOAD know it. */
  readonly hash: string;

  /**
   * `keyCount` is how many leading arguments are keys (KEYS[]); the rest are
   * ARGV[]. With -1 the first argument of each call is the key count itself.
   * Throws `RangeError` on a keyCount that is not an integer >= -1.
   */
  constructor(
    readonly keyCount: number,
    readonly src: string,
  ) {
    if (!Number.isInteger(keyCount) || keyCount < -1) throw new RangeError(`redisconn: script key count must be an integer >= -1, got ${keyCount}`);
    this.hash = createHash('sha1').update(src).digest('hex');
  }

  /**
   * Runs the script with EVALSHA, and with EVAL when the server answers
   * NOSCRIPT (which also caches it). Resolves the script's reply; rejects
   * with `TypeError` (too few arguments for the key count, nothing sent), a
   * {@link RedisError} from the script, or the connection's fatal error.
   * Like `Conn.do` it first reads replies still owed to `send`; a NOSCRIPT
   * among those would also trigger the EVAL, so read `sendHash` replies first.
   * `conn` may also be a pool or a cluster (their `do`): on a cluster both
   * calls go to the node of the keys, so the EVAL caches it where it runs.
   */
  async do(conn: ScriptRunner, ...keysAndArgs: Arg[]): Promise<Reply> {
    const args = this.args(keysAndArgs);
    try {
      return await conn.do('EVALSHA', this.hash, ...args);
    } catch (err) {
      if (!(err instanceof RedisError && err.code === 'NOSCRIPT')) throw err;
      return conn.do('EVAL', this.src, ...args);
    }
  }

  /** Buffers EVAL with the full source (see `Conn.send`); throws like it and on too few arguments. */
  send(conn: Conn, ...keysAndArgs: Arg[]): void {
    conn.send('EVAL', this.src, ...this.args(keysAndArgs));
  }

  /**
   * Buffers EVALSHA (see `Conn.send`); throws like it and on too few
   * arguments. The reply is a NOSCRIPT error unless the script was loaded.
   */
  sendHash(conn: Conn, ...keysAndArgs: Arg[]): void {
    conn.send('EVALSHA', this.hash, ...this.args(keysAndArgs));
  }

  /** Caches the script on the server (SCRIPT LOAD); rejects like `Conn.do`. */
  async load(conn: ScriptRunner): Promise<void> {
    await conn.do('SCRIPT', 'LOAD', this.src);
  }

  /** The arguments after the script: numkeys, keys, args. Throws `TypeError` on too few. */
  private args(keysAndArgs: Arg[]): Arg[] {
    if (this.keyCount >= 0) {
      if (keysAndArgs.length < this.keyCount) {
        throw new TypeError(`redisconn: script takes ${this.keyCount} keys, got ${keysAndArgs.length} arguments`);
      }
      return [this.keyCount, ...keysAndArgs];
    }
    const [count, ...rest] = keysAndArgs;
    if (!isKeyCount(count)) throw new TypeError('redisconn: script with key count -1 needs the key count (a non-negative integer) as first argument');
    if (rest.length < Number(count)) throw new TypeError(`redisconn: script call names ${count} keys, got ${rest.length} arguments after the count`);
    return keysAndArgs;
  }
}

function isKeyCount(value: Arg): value is number | bigint | string {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0;
  if (typeof value === 'bigint') return value >= 0n;
  return typeof value === 'string' && /^\d+$/.test(value);
}

/**
 * Asking Redis Sentinel: which node is the master (or the replicas) of a
 * name, and being told at once when that changes (`+switch-master`).
 */
import type { Conn } from '../conn.js';
import { dial, type DialOptions } from '../dial.js';
import { HandshakeError, SentinelError } from '../errors.js';
import { PubSubConn } from '../pubsub.js';
import type { Reply } from '../resp/decode.js';
import { joinHostPort } from '../cluster/topology.js';

function text(reply: Reply | undefined): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString();
  return typeof reply === 'number' ? String(reply) : '';
}

/** Field/value pairs of a RESP2 flat array or a RESP3 map, as strings. */
function fields(reply: Reply): Map<string, string> {
  const out = new Map<string, string>();
  if (reply instanceof Map) {
    for (const [key, value] of reply) out.set(text(key as Reply), text(value as Reply));
  } else if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) out.set(text(reply[i]), text(reply[i + 1]));
  }
  return out;
}

/**
 * `host:port` of a node a sentinel named, or null when what it sent is not
 * an address (an empty host, a port that is not 1-65535): a broken or
 * hostile sentinel must not send the pool to `:NaN`.
 */
function nodeAddr(host: string, port: string): string | null {
  const number = Number(port);
  return host !== '' && Number.isInteger(number) && number >= 1 && number <= 65535 ? joinHostPort(host, number) : null;
}

/** A sentinel's answer about the master name: the master's address, or null when it does not know the name. */
type MasterAnswer = string | null;

/** The sentinels of one master name; asks them in order, the last that answered first. */
export class Sentinels {
  private readonly addrs: string[];

  constructor(
    addrs: readonly string[],
    readonly masterName: string,
    private readonly dialOptions: DialOptions,
  ) {
    this.addrs = [...addrs];
  }

  /**
   * The master's `host:port` as the first sentinel that answers says it.
   * Rejects with SentinelError naming the master name when none knows it, or
   * each sentinel's error when none answers.
   */
  master(): Promise<string> {
    return this.ask(async (conn) => {
      const reply = await conn.do('SENTINEL', 'get-master-addr-by-name', this.masterName);
      if (reply === null) return null;
      const addr = Array.isArray(reply) && reply.length >= 2 ? nodeAddr(text(reply[0]), text(reply[1])) : null;
      if (addr === null) throw new SentinelError(`redisconn: sentinel answered ${JSON.stringify(Array.isArray(reply) ? reply.map(text) : reply)} for the master of ${JSON.stringify(this.masterName)}, not an address`);
      return addr;
    });
  }

  /** The replicas sentinels consider healthy (not down, not disconnected), as `host:port`. */
  replicas(): Promise<string[]> {
    let found: string[] = [];
    return this.ask(async (conn) => {
      const reply = await conn.do('SENTINEL', 'replicas', this.masterName);
      if (!Array.isArray(reply)) return null;
      found = reply
        .map(fields)
        .filter((replica) => !/s_down|o_down|disconnected/.test(replica.get('flags') ?? ''))
        .flatMap((replica) => nodeAddr(replica.get('ip') ?? '', replica.get('port') ?? '') ?? []);
      return 'ok';
    }).then(() => found);
  }

  /** Runs `query` on each sentinel in turn until one answers (non-null); that one is asked first next time. */
  private async ask(query: (conn: Conn) => Promise<MasterAnswer>): Promise<string> {
    const causes: Error[] = [];
    let unknown = 0;
    const tried = [...this.addrs];
    for (const addr of tried) {
      let conn: Conn | null = null;
      try {
        conn = await dial(addr, this.dialOptions);
        const answer = await query(conn);
        if (answer === null) {
          unknown++;
          causes.push(new SentinelError(`redisconn: sentinel ${addr} knows no master named ${JSON.stringify(this.masterName)}`));
          continue;
        }
        this.prefer(addr);
        return answer;
      } catch (err) {
        causes.push(err instanceof Error ? err : new Error(String(err)));
      } finally {
        void conn?.close();
      }
    }
    if (unknown === this.addrs.length) throw new SentinelError(`redisconn: no sentinel knows a master named ${JSON.stringify(this.masterName)} (asked ${this.addrs.join(', ')})`, causes);
    const detail = causes.map((cause, i) => sentinelCause(tried[i] as string, cause)).join('; ');
    throw new SentinelError(`redisconn: no sentinel gave the master of ${JSON.stringify(this.masterName)} (${detail})`, causes);
  }

  /** The sentinel that answered last named a node that is not the master: ask it last from now on. */
  distrust(): void {
    if (this.addrs.length > 1) this.addrs.push(this.addrs.shift() as string);
  }

  private prefer(addr: string): void {
    const at = this.addrs.indexOf(addr);
    if (at > 0) this.addrs.unshift(...this.addrs.splice(at, 1));
  }

  /**
   * Subscribes to `+switch-master` on one sentinel after another (the next
   * when one fails, with backoff) until `signal` aborts; calls `onSwitch`
   * with the new master of this name, and `onResubscribed` each time a
   * subscription starts (a switch may have been missed in between).
   */
  async watch(signal: AbortSignal, onSwitch: (addr: string) => void, onResubscribed: () => void): Promise<void> {
    for (let failures = 0; !signal.aborted; ) {
      const addr = this.addrs[failures % this.addrs.length] as string;
      let sub: PubSubConn | null = null;
      const stop = (): void => void sub?.close();
      signal.addEventListener('abort', stop, { once: true });
      try {
        sub = new PubSubConn(await dial(addr, { ...this.dialOptions, readTimeoutMs: 0 }));
        if (signal.aborted) break;
        await sub.subscribe('+switch-master');
        onResubscribed();
        for await (const message of sub) {
          failures = 0;
          if (message.kind !== 'message') continue;
          // "<name> <old-ip> <old-port> <new-ip> <new-port>"
          const [name, , , ip, port] = message.data.toString().split(' ');
          const addr = name === this.masterName ? nodeAddr(ip ?? '', port ?? '') : null;
          if (addr !== null) onSwitch(addr);
        }
      } catch {
        failures++;
      } finally {
        signal.removeEventListener('abort', stop);
        void sub?.close();
      }
      if (!signal.aborted) await pause(Math.min(1_000, 50 * 2 ** Math.min(failures, 5)), signal);
    }
  }
}

/**
 * What one sentinel's failure says in a SentinelError: with its address (a
 * dial error names it already), and a refused AUTH/HELLO pointing at the
 * sentinels' own credentials, not the data nodes' `password`/`username`.
 */
function sentinelCause(addr: string, cause: Error): string {
  if (cause instanceof HandshakeError && (cause.command === 'AUTH' || cause.command === 'HELLO')) {
    return `${addr}: ${cause.command} refused: ${cause.serverMessage} (check sentinelPassword and sentinelUsername, the sentinels' own credentials)`;
  }
  return (cause.message.includes(addr) ? cause.message : `${addr}: ${cause.message}`).replace(/^redisconn: (dial )?/, '');
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    timer.unref();
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * A Conn wrapper that logs every call through a pino logger at debug level
 * (redigo's NewLoggingConn): commands with their arguments, replies or errors,
 * and how long each took. Values are cut short, secrets are redacted.
 */
import { performance } from 'node:perf_hooks';
import pino, { type BaseLogger } from 'pino';
import type { Conn } from './conn.js';
import { RedisError } from './errors.js';
import type { Reply } from './resp/decode.js';
import type { Arg, RedisArgument } from './resp/encode.js';

/** What the wrapper needs of a logger: a pino logger or Fastify's `request.log` fit. */
export type LoggingConnLogger = Pick<BaseLogger, 'debug' | 'level'>;

/** Options of {@link newLoggingConn}. */
export interface LoggingConnOptions {
  /** Added to every entry as `conn`, to tell connections apart. */
  name?: string | undefined;
  /**
   * Decides which commands are logged: return false to skip one (its reply,
   * if read later by `receive`, is still logged). Sees the arguments before
   * redaction; must not throw. Default: log everything.
   */
  filter?: ((cmd: string, args: readonly Arg[]) => boolean) | undefined;
}

/** Longest string or byte string logged in full; longer ones are cut. */
const MAX_CHARS = 32;
/** Most array (set, map) elements logged; the rest are summarised. */
const MAX_ELEMENTS = 32;
const REDACTED = '[redacted]';
const DEBUG = pino.levels.values.debug ?? 20;

type Op = 'do' | 'doWithTimeout' | 'doWithSignal' | 'send' | 'flush' | 'receive' | 'receiveWithTimeout' | 'receiveWithSignal' | 'close';

/** The fields of one entry besides the outcome. */
interface Entry {
  op: Op;
  conn?: string;
  cmd?: string;
  args?: unknown[];
}

/**
 * Wraps `conn` so that each call is logged at debug level, one entry per call
 * after it completes: `{ op, conn?, cmd?, args?, reply | err, ms }`. Strings
 * and byte strings longer than 32 characters are cut (with `…` and the total
 * length), arrays after 32 elements. Arguments of AUTH, and the credentials in
 * HELLO ... AUTH, MIGRATE ... AUTH/AUTH2, CONFIG SET requirepass/masterauth
 * and ACL SETUSER password rules, are always replaced by `[redacted]`.
 * With debug disabled nothing is formatted. Results and errors pass through
 * unchanged; closing the wrapper closes `conn`. Concurrency as `conn`.
 */
export function newLoggingConn(conn: Conn, logger: LoggingConnLogger, options: LoggingConnOptions = {}): Conn {
  return new LoggingConn(conn, logger, options);
}

class LoggingConn implements Conn {
  constructor(
    private readonly conn: Conn,
    private readonly logger: LoggingConnLogger,
    private readonly options: LoggingConnOptions,
  ) {}

  get protocol(): 2 | 3 {
    return this.conn.protocol;
  }

  get readTimeoutMs(): number {
    return this.conn.readTimeoutMs;
  }

  inFlight(): number {
    return this.conn.inFlight();
  }

  err(): Error | null {
    return this.conn.err();
  }

  do(cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.command('do', cmd, args, () => this.conn.do(cmd, ...args));
  }

  doWithTimeout(timeoutMs: number, cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.command('doWithTimeout', cmd, args, () => this.conn.doWithTimeout(timeoutMs, cmd, ...args));
  }

  doWithSignal(signal: AbortSignal, cmd: string, ...args: Arg[]): Promise<Reply> {
    return this.command('doWithSignal', cmd, args, () => this.conn.doWithSignal(signal, cmd, ...args));
  }

  send(cmd: string, ...args: Arg[]): void {
    if (!this.logs(cmd, args)) {
      this.conn.send(cmd, ...args);
      return;
    }
    const entry = this.entry('send', cmd, args);
    const started = performance.now();
    try {
      this.conn.send(cmd, ...args);
    } catch (err) {
      this.write(entry, started, { err });
      throw err;
    }
    this.write(entry, started, {});
  }

  flush(): Promise<void> {
    return this.call('flush', () => this.conn.flush(), false);
  }

  receive(): Promise<Reply> {
    return this.call('receive', () => this.conn.receive(), true);
  }

  receiveWithTimeout(timeoutMs: number): Promise<Reply> {
    return this.call('receiveWithTimeout', () => this.conn.receiveWithTimeout(timeoutMs), true);
  }

  receiveWithSignal(signal: AbortSignal): Promise<Reply> {
    return this.call('receiveWithSignal', () => this.conn.receiveWithSignal(signal), true);
  }

  close(): Promise<void> {
    return this.call('close', () => this.conn.close(), false);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private command(op: Op, cmd: string, args: Arg[], run: () => Promise<Reply>): Promise<Reply> {
    if (!this.logs(cmd, args)) return run();
    return this.logged(this.entry(op, cmd, args), run, true);
  }

  private call<T extends Reply | void>(op: Op, run: () => Promise<T>, withReply: boolean): Promise<T> {
    if (!debugEnabled(this.logger)) return run();
    return this.logged(this.entry(op), run, withReply);
  }

  /** Runs `run` and logs its outcome under `entry`. */
  private async logged<T extends Reply | void>(entry: Entry, run: () => Promise<T>, withReply: boolean): Promise<T> {
    const started = performance.now();
    let result: T;
    try {
      result = await run();
    } catch (err) {
      this.write(entry, started, { err });
      throw err;
    }
    this.write(entry, started, withReply ? { reply: format(result as Reply) } : {});
    return result;
  }

  private logs(cmd: string, args: readonly Arg[]): boolean {
    const filter = this.options.filter;
    return debugEnabled(this.logger) && (filter === undefined || filter(cmd, args));
  }

  private entry(op: Op, cmd?: string, args?: readonly Arg[]): Entry {
    const entry: Entry = { op };
    if (this.options.name !== undefined) entry.conn = this.options.name;
    if (cmd !== undefined && args !== undefined) {
      entry.cmd = cmd;
      entry.args = formatList(redact(cmd, args));
    }
    return entry;
  }

  private write(entry: Entry, started: number, outcome: { reply?: unknown; err?: unknown }): void {
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    this.logger.debug({ ...entry, ...outcome, ms }, `redis ${entry.op}${entry.cmd === undefined ? '' : ` ${entry.cmd}`}`);
  }
}

/** Whether debug entries would be written (custom levels: assume yes). */
function debugEnabled(logger: LoggingConnLogger): boolean {
  const level = logger.level;
  if (level === 'silent') return false;
  const value = pino.levels.values[level];
  return value === undefined || value <= DEBUG;
}

/** `args` with credentials replaced by {@link REDACTED}. */
function redact(cmd: string, args: readonly Arg[]): readonly Arg[] {
  switch (cmd.toUpperCase()) {
    case 'AUTH':
      return args.map(() => REDACTED);
    case 'HELLO':
      return redactAfter(args, { AUTH: 2 });
    case 'MIGRATE':
      return redactAfter(args, { AUTH: 1, AUTH2: 2 });
    case 'CONFIG':
      return upper(args[0]) === 'SET' ? redactConfigSet(args) : args;
    case 'ACL':
      return upper(args[0]) === 'SETUSER' ? args.map((arg, i) => (i >= 2 && /^[<>#!]/.test(upper(arg)) ? REDACTED : arg)) : args;
  }
  return args;
}

/** Redacts the `n` arguments after each keyword in `keywords` (keyword → n). */
function redactAfter(args: readonly Arg[], keywords: Readonly<Record<string, number>>): Arg[] {
  const out = [...args];
  for (let i = 0; i < out.length; i++) {
    const n = keywords[upper(out[i])];
    if (n === undefined) continue;
    for (let j = i + 1; j <= i + n && j < out.length; j++) out[j] = REDACTED;
    i += n;
  }
  return out;
}

const SECRET_CONFIG = new Set(['REQUIREPASS', 'MASTERAUTH']);

/** CONFIG SET name value [name value ...]: redacts the values of secret parameters. */
function redactConfigSet(args: readonly Arg[]): Arg[] {
  return args.map((arg, i) => (i >= 2 && i % 2 === 0 && SECRET_CONFIG.has(upper(args[i - 1])) ? REDACTED : arg));
}

/** An argument as upper-case text, or '' when it is not text. */
function upper(arg: Arg | undefined): string {
  if (typeof arg === 'string') return arg.toUpperCase();
  return arg instanceof Uint8Array ? Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength).toString('latin1').toUpperCase() : '';
}

/** A reply or argument as a JSON-friendly value, cut to size. */
function format(value: Reply | Arg): unknown {
  if (typeof value === 'string') return cut(value);
  if (value instanceof Uint8Array) {
    const text = Buffer.from(value.buffer, value.byteOffset, Math.min(value.byteLength, MAX_CHARS)).toString('utf8');
    return value.byteLength > MAX_CHARS ? `${text}…(${value.byteLength} bytes)` : text;
  }
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || value === undefined || typeof value === 'boolean') return value ?? null;
  if (value instanceof RedisError) return cut(`(error) ${value.message}`);
  if (Array.isArray(value) || value instanceof Set) return formatList([...value]);
  if (value instanceof Map) return formatMap(value);
  return formatRedisArgument(value);
}

function cut(text: string): string {
  return text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)}…(${text.length} chars)` : text;
}

function formatList(items: readonly (Reply | Arg)[]): unknown[] {
  const out = items.slice(0, MAX_ELEMENTS).map(format);
  if (items.length > MAX_ELEMENTS) out.push(`…(${items.length} elements)`);
  return out;
}

function formatMap(map: Map<Reply, Reply>): Record<string, unknown> {
  const out: [string, unknown][] = [];
  for (const [key, value] of map) {
    if (out.length === MAX_ELEMENTS) {
      out.push(['…', `(${map.size} entries)`]);
      break;
    }
    out.push([String(format(key)), format(value)]);
  }
  return Object.fromEntries(out);
}

/** A `redisArg()` object as what it encodes to; one that throws shows as `[invalid argument]`. */
function formatRedisArgument(value: RedisArgument): unknown {
  try {
    return format(value.redisArg());
  } catch {
    return '[invalid argument]';
  }
}

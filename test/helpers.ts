/**
 * Shared helpers of the client test suites: a guard against stray process-level
 * errors, promise settling without unhandled rejections, timing helpers
 * (sleep, eventually, within), unique keys, a redis-server + conn fixture, a
 * counting dialer and pools over it, Fastify app helpers, CLIENT LIST parsing,
 * and a throwaway CA + server certificate for TLS tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { RedisconnOptions } from '../plugin/index.js';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Conn } from '../src/conn.js';
import { Pool, type PoolOptions } from '../src/pool.js';
import type { ConnSource } from '../src/source.js';
import { ProtocolError } from '../src/errors.js';
import { dial, type DialOptions } from '../src/dial.js';
import type { Reply } from '../src/resp/decode.js';
import { startRedisServer, type StartRedisServerOptions, type TestRedisServer } from '../src/testing/index.js';

/**
 * Records `unhandledRejection` / `uncaughtException` events from beforeAll on
 * and asserts in afterAll that none fired. Call it first in a file, so its
 * afterAll runs after the others (servers stopped, conns closed).
 */
export function guardProcessErrors(): void {
  const events: { kind: string; error: unknown }[] = [];
  const onRejection = (error: unknown): void => void events.push({ kind: 'unhandledRejection', error });
  const onException = (error: unknown): void => void events.push({ kind: 'uncaughtException', error });
  beforeAll(() => {
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
  });
  afterAll(async () => {
    // Let late socket events and rejections surface before checking.
    await sleep(100);
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    expect(events.map((e) => `${e.kind}: ${String(e.error instanceof Error ? e.error.stack : e.error)}`)).toEqual([]);
  });
}

/** Every text an error could show: String(), message, stack and JSON of it and its cause chain. */
export function errorTexts(err: unknown): string[] {
  const out: string[] = [];
  for (let at: unknown = err, depth = 0; at !== undefined && at !== null && depth < 10; depth++) {
    const e = at as Error;
    out.push(String(e), String(e.message), String(e.stack), JSON.stringify(e) ?? '');
    at = e.cause;
  }
  return out;
}

/** Resolves after `ms` (default 0: one macrotask turn, so every ready promise has settled). */
export function sleep(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for a macrotask turn (or `ms`); the same as {@link sleep}. */
export const tick = sleep;

/** Polls `check` every 10 ms until it is true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 2_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await sleep(10);
  }
}

/** `promise`, or a rejection naming `what` once `ms` have passed: a hang fails fast instead of at the test timeout. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a process `pid` exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** What `fn` throws synchronously; undefined when it returns. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/**
 * A maker of names no other test of the file uses: `<prefix>:<name>:<n>`, n
 * counting up (keys, channels, pattern prefixes).
 */
export function uniqueKeys(prefix: string): (name: string) => string {
  let seq = 0;
  return (name) => `${prefix}:${name}:${++seq}`;
}

/** A redis-server and one conn to it, made by {@link useServerWithConn}. */
export interface ServerWithConn {
  server: TestRedisServer;
  conn: Conn;
}

/**
 * Starts a redis-server and dials one conn to it in beforeAll (handing both to
 * `bind`), and closes the conn and stops the server in afterAll.
 */
export function useServerWithConn(bind: (started: ServerWithConn) => void, options?: StartRedisServerOptions): void {
  let server: TestRedisServer | undefined;
  let conn: Conn | undefined;
  beforeAll(async () => {
    server = await startRedisServer(options);
    conn = await dial(server.addr);
    bind({ server, conn });
  });
  afterAll(async () => {
    await conn?.close();
    await server?.stop();
  });
}

/** Runs `fn`, expecting a ProtocolError (code REDIS_PROTOCOL, message matching `message` if given); returns it. */
export function expectProtocolError(fn: () => unknown, message?: RegExp): ProtocolError {
  const thrown = thrownBy(fn);
  expect(thrown, 'expected a ProtocolError').toBeInstanceOf(ProtocolError);
  expect((thrown as ProtocolError).code).toBe('REDIS_PROTOCOL');
  if (message) expect((thrown as ProtocolError).message).toMatch(message);
  return thrown as ProtocolError;
}

/** Exclusive connections lent out by `pool` (the shared connection, counted in use, excluded). */
export function lent(pool: ConnSource | null | undefined): number {
  const stats = (pool as ConnSource).stats();
  return stats.inUseCount - stats.sharedCount;
}

/** Borrows a conn from `pool`, expects PONG to a PING on it, and returns it. */
export async function borrowAndPing(pool: Pool): Promise<void> {
  const conn = await pool.get();
  expect(await conn.do('PING')).toBe('PONG');
  await conn.close();
}

/** Counts dials and remembers the conns it made; can be told to fail or stall. */
export class CountingDialer {
  dials = 0;
  readonly conns: Conn[] = [];
  /** When set, the next dials reject with a numbered error after `failAfterMs`. */
  failing = false;
  failAfterMs = 0;
  /** Delay before really dialing. */
  delayMs = 0;
  constructor(
    /** The client name of every conn it dials. */
    readonly name: string,
    readonly addr: () => string,
    readonly options: DialOptions = {},
  ) {}

  readonly dial = async (): Promise<Conn> => {
    const n = ++this.dials;
    if (this.failing) {
      if (this.failAfterMs > 0) await sleep(this.failAfterMs);
      throw new Error(`dial #${n} refused`);
    }
    if (this.delayMs > 0) await sleep(this.delayMs);
    const conn = await dial(this.addr(), { clientName: this.name, ...this.options });
    this.conns.push(conn);
    return conn;
  };
}

let countingPoolSeq = 0;

/**
 * A pool over a {@link CountingDialer} to `addr` whose conns carry a client
 * name of their own, `<prefix>-<n>`; pushed on `pools` for the suite to close.
 */
export function countingPool(
  pools: Pool[],
  prefix: string,
  addr: () => string,
  options: Partial<PoolOptions> = {},
  dialOptions: DialOptions = {},
): { pool: Pool; dialer: CountingDialer; name: string } {
  const name = `${prefix}-${++countingPoolSeq}`;
  const dialer = new CountingDialer(name, addr, dialOptions);
  const pool = new Pool({ dial: dialer.dial, ...options });
  pools.push(pool);
  return { pool, dialer, name };
}

/** Closes `pool`, failing the test when that takes over `ms` (a close that hangs). */
export async function expectCloses(pool: Pool, ms = 3_000): Promise<void> {
  const closed = await Promise.race([pool.close().then(() => true), sleep(ms).then(() => false)]);
  expect(closed).toBe(true);
}

/** A JSON log line of a Fastify (pino) logger. */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A Fastify logger config (level info) writing JSON lines into `lines`. */
export function memoryLogger(lines: LogLine[]): FastifyServerOptions['logger'] {
  return { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } };
}

/**
 * The apps of the running test: push each app made onto the array returned.
 * After every test they are closed (and the array emptied), then `after` runs.
 */
export function useApps(after?: () => unknown): FastifyInstance[] {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await after?.();
  });
  return apps;
}

/** The outcome of a promise, captured at once so a rejection is never unhandled. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Attaches handlers right away; await the result later. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The rejection reason of `promise`; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  const result = await settle(promise);
  if (result.ok) throw new Error(`expected a rejection, got ${String(result.value)}`);
  return result.error;
}

/** A reply as text: Buffers decoded as UTF-8, strings as they are. */
export function text(reply: Reply | undefined): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw new TypeError(`expected a string or bulk reply, got ${reply === null ? 'null' : typeof reply}`);
}

/** Parses `CLIENT LIST` / `CLIENT INFO` output into one record per client. */
export function parseClientList(reply: Reply): Record<string, string>[] {
  return text(reply)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const fields: Record<string, string> = {};
      for (const pair of line.trim().split(' ')) {
        const eq = pair.indexOf('=');
        if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return fields;
    });
}

/** The clients the server sees, through `admin`. */
export async function clientList(admin: Conn): Promise<Record<string, string>[]> {
  return parseClientList(await admin.do('CLIENT', 'LIST'));
}

/** Whether a client of the server of `admin` is blocked in `command` (default BLPOP), as CLIENT LIST says. */
export async function someoneBlocked(admin: Conn, command = 'blpop'): Promise<boolean> {
  return (await clientList(admin)).some((client) => client.cmd === command && (client.flags ?? '').includes('b'));
}

/** The fields of `CLIENT INFO` for `conn` itself. */
export async function clientInfo(conn: Conn): Promise<Record<string, string>> {
  const [info] = parseClientList(await conn.do('CLIENT', 'INFO'));
  if (info === undefined) throw new Error('CLIENT INFO returned nothing');
  return info;
}

/** TLS material made by {@link makeCertificates}; paths plus the PEM texts. */
export interface TestCertificates {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** PEM of the CA that signed the server certificate. */
  ca: string;
  /** PEM of an unrelated CA (signs nothing we serve). */
  otherCa: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=redisconn ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/**
 * Generates, in a fresh temp dir, a CA, a server certificate it signs for
 * `localhost` and `127.0.0.1`, and a second unrelated CA.
 */
export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'redisconn-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  openssl(dir, ['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    otherCa: readFileSync(join(dir, 'other-ca.crt'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What `app.ready()` rejects with for a bad registration (an ErrBadOption, ErrUnreachable, ...). */
export type ReadyError = Error & { code?: string; statusCode?: number };

/** Fastify and the plugin, loaded on first use, so suites of the client alone do not load Fastify. */
async function fastifyAndPlugin(): Promise<[typeof import('fastify').default, typeof import('../plugin/index.js').default]> {
  const [{ default: Fastify }, { default: redisconn }] = await Promise.all([import('fastify'), import('../plugin/index.js')]);
  return [Fastify, redisconn];
}

/**
 * A new app (pushed on `apps` for the suite to close) with the plugin
 * registered and loaded (not yet ready: routes can still be added); no flags
 * or env, no metrics, unless `options` say so. An option given as undefined
 * is left out, so `{ metrics: undefined }` gets the plugin's own default.
 */
export async function makeApp(apps: FastifyInstance[], options: RedisconnOptions = {}, fastifyOptions: FastifyServerOptions = { logger: false }): Promise<FastifyInstance> {
  const [Fastify, redisconn] = await fastifyAndPlugin();
  const app = Fastify(fastifyOptions);
  apps.push(app);
  const merged = Object.entries({ argv: [], env: {}, metrics: false, ...options }).filter(([, value]) => value !== undefined);
  await app.register(redisconn, Object.fromEntries(merged) as RedisconnOptions);
  return app;
}

/**
 * Registers the plugin with `options` on a new app (pushed on `apps` for the
 * suite to close; no flags or env unless given, no metrics) and returns what
 * `ready()` rejects with; fails the test if it does not reject.
 */
export async function readyError(apps: FastifyInstance[], options: RedisconnOptions, lines?: LogLine[]): Promise<ReadyError> {
  const [Fastify, redisconn] = await fastifyAndPlugin();
  const app = Fastify({ logger: lines === undefined ? false : memoryLogger(lines) });
  apps.push(app);
  app.register(redisconn, { argv: [], env: {}, metrics: false, ...options });
  return (await rejection(Promise.resolve(app.ready()))) as ReadyError;
}

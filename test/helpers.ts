/**
 * Shared helpers of the client test suites: a guard against stray process-level
 * errors, promise settling without unhandled rejections, CLIENT LIST parsing,
 * and a throwaway CA + server certificate for TLS tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Conn } from '../src/conn.js';
import type { Reply } from '../src/resp/decode.js';

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
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    expect(events.map((e) => `${e.kind}: ${String(e.error instanceof Error ? e.error.stack : e.error)}`)).toEqual([]);
  });
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

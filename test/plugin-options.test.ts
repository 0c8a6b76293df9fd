/**
 * Plugin option errors: an addr with credentials never shows any piece of
 * them (through the option, `--redis-addr` or `REDIS_ADDR`, which the error
 * names), port range errors, and the option table's checks (timeouts by the
 * package's one rule, `resetTimeoutMs` and `maxReplyBytes`), each failing
 * `app.ready()` with FST_REDIS_BAD_OPTION naming the option. The options that
 * are accepted are checked against a real redis-server.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import redisconn, { ErrBadOption, ProtocolError, type Pool, type RedisconnOptions } from '../plugin/index.js';
import { MAX_TIMEOUT_MS } from '../src/deadline.js';
import { errorTexts, guardProcessErrors, type LogLine, readyError, rejection, useApps, useServerWithConn } from './helpers.js';
import type { TestRedisServer } from '../src/testing/index.js';
import type { Conn } from '../src/conn.js';

guardProcessErrors();

let server: TestRedisServer;
let raw: Conn;
const apps = useApps();

useServerWithConn((started) => ({ server, conn: raw } = started));



async function readyApp(options: RedisconnOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  apps.push(app);
  await app.register(redisconn, { argv: [], env: {}, metrics: false, ...options });
  return app;
}

/** The texts an error can show: message, String(), stack, JSON, down its cause chain. */

/** Fails when any text holds the secret, its percent-encoding or any 4-character piece of either. */
function expectNoSecret(texts: string[], secret: string): void {
  for (const form of new Set([secret, encodeURIComponent(secret)])) {
    for (let i = 0; i + 4 <= form.length; i++) {
      const piece = form.slice(i, i + 4);
      for (const text of texts) expect(text, `${JSON.stringify(piece)} of the password shows`).not.toContain(piece);
    }
  }
}

describe('an addr with credentials never shows them', () => {
  const PASSWORDS = ['WRONG-s3cr3t-pw/x', 'Kq7@Zv9:Wm', 'Jx4:Rt8:Pn@@Qd', 'Hb3%40Yc6%2FTd', 'Fg5?Nh2#Lk Vb'];
  /** Addrs that fail to parse, each holding `pw` somewhere in a userinfo. */
  function badAddrs(pw: string): string[] {
    const enc = encodeURIComponent(pw);
    return [
      `redis://app:${pw}@host:99999`,
      `redis://:${pw}@host:6379/x`,
      `rediss://app:${enc}@host:0`,
      `redis://app:${enc}@host/1/2`,
      `redis://:${enc}@/3`,
      `redis://${enc}%zz@host`,
      `valkey://app:${enc}@host:port`,
      `redis:app:${pw}@host`,
      `app:${pw}@host:6379`,
      `${pw}@host:6379`,
    ];
  }
  const sources: [string, (addr: string) => RedisconnOptions, RegExp][] = [
    ['option addr', (addr) => ({ addr }), /^redisconn: option addr is invalid: /],
    ['--redis-addr X', (addr) => ({ argv: ['node', 'app', '--redis-addr', addr] }), /^redisconn: --redis-addr is invalid: /],
    ['--redis-addr=X', (addr) => ({ argv: [`--redis-addr=${addr}`], env: { REDIS_ADDR: 'ignored:1' } }), /^redisconn: --redis-addr is invalid: /],
    ['REDIS_ADDR', (addr) => ({ env: { REDIS_ADDR: addr } }), /^redisconn: REDIS_ADDR is invalid: /],
  ];
  const cases = sources.flatMap(([source, options, named]) =>
    PASSWORDS.flatMap((pw) => badAddrs(pw).map((addr) => ({ source, addr, pw, options: options(addr), named }))),
  );

  it.each(cases)('$source $addr', async ({ pw, options, named }) => {
    const lines: LogLine[] = [];
    const err = await readyError(apps, options, lines);
    expect(err).toBeInstanceOf(ErrBadOption);
    expect(err.code).toBe('FST_REDIS_BAD_OPTION');
    expect(err.message).toMatch(named);
    expectNoSecret([...errorTexts(err), ...lines.map((line) => JSON.stringify(line))], pw);
  });

  it('the report: redis://app:WRONG-s3cr3t-pw/x@host:6379 shows as redis://***@host:6379', async () => {
    const err = await readyError(apps, { addr: 'redis://app:WRONG-s3cr3t-pw/x@host:6379' });
    expect(err.message).toContain('"redis://***@host:6379"');
    expect(err.message).not.toMatch(/WRONG|s3cr3t|pw\/x/);
  });

  it('a password outside a URL is refused, not dialed as part of the host', async () => {
    const err = await readyError(apps, { addr: 'Zp4s5w0rdQ@127.0.0.1:6379' });
    expect(err.message).toBe('redisconn: option addr is invalid: "***@127.0.0.1:6379": a user name or password needs a URL, e.g. redis://user:password@host:6379');
  });
});

describe('where a bad addr came from', () => {
  it.each([
    [{ addr: 'h:1:2' }, 'option addr'],
    [{ argv: ['--redis-addr', 'h:1:2'] }, '--redis-addr'],
    [{ argv: ['--redis-addr=h:1:2'], env: { REDIS_ADDR: 'h:1' } }, '--redis-addr'],
    [{ env: { REDIS_ADDR: 'h:1:2' } }, 'REDIS_ADDR'],
    [{ env: { REDIS_ADDR: 'redis://h/x' } }, 'REDIS_ADDR'],
  ] as [RedisconnOptions, string][])('%j names %s and nothing else', async (options, source) => {
    const err = await readyError(apps, options);
    expect(err.message.startsWith(`redisconn: ${source} is invalid: `)).toBe(true);
    for (const other of ['option addr', '--redis-addr', 'REDIS_ADDR'].filter((name) => name !== source)) expect(err.message).not.toContain(other);
  });

  it.each([
    ['redis://h:99999', 'port 99999 out of range'],
    ['redis://h:0/1', 'port 0 out of range'],
    ['valkeys://[::1]:65536', 'port 65536 out of range'],
    ['h:99999', 'port 99999 out of range'],
    ['h:0', 'port 0 out of range'],
    ['[::1]:70000', 'port 70000 out of range'],
  ])('%s: "%s", through the option, the flag and the variable', async (addr, says) => {
    for (const options of [{ addr }, { argv: ['--redis-addr', addr] }, { env: { REDIS_ADDR: addr } }]) {
      expect((await readyError(apps, options)).message).toContain(says);
    }
  });
});

describe('the option table', () => {
  const tooLong = MAX_TIMEOUT_MS + 1;
  it.each([
    [{ health: { timeoutMs: -5 } }, 'health.timeoutMs'],
    [{ health: { timeoutMs: Number.NaN } }, 'health.timeoutMs'],
    [{ health: { timeoutMs: 0 } }, 'health.timeoutMs'],
    [{ health: { timeoutMs: 3e9 } }, 'health.timeoutMs'],
    [{ health: { timeoutMs: '100' as unknown as number } }, 'health.timeoutMs'],
    [{ health: 'yes' as unknown as boolean }, 'health'],
    [{ health: { route: 42 as unknown as string } }, 'health.route'],
    [{ getTimeoutMs: 3e9 }, 'getTimeoutMs'],
    [{ getTimeoutMs: tooLong }, 'getTimeoutMs'],
    [{ closeTimeoutMs: 3e9 }, 'closeTimeoutMs'],
    [{ connectTimeoutMs: 3e9 }, 'connectTimeoutMs'],
    [{ connectTimeoutMs: 0 }, 'connectTimeoutMs'],
    [{ readTimeoutMs: 3e9 }, 'readTimeoutMs'],
    [{ writeTimeoutMs: 3e9 }, 'writeTimeoutMs'],
    [{ keepAliveMs: 3e9 }, 'keepAliveMs'],
    [{ idleTimeoutMs: 3e9 }, 'idleTimeoutMs'],
    [{ idleTimeoutMs: 1.5 }, 'idleTimeoutMs'],
    [{ resetTimeoutMs: 3e9 }, 'resetTimeoutMs'],
    [{ resetTimeoutMs: -1 }, 'resetTimeoutMs'],
    [{ resetTimeoutMs: 2.5 }, 'resetTimeoutMs'],
    [{ resetTimeoutMs: Number.POSITIVE_INFINITY }, 'resetTimeoutMs'],
    [{ metrics: { intervalMs: 3e9 } }, 'metrics.intervalMs'],
    [{ metrics: { intervalMs: -1 } }, 'metrics.intervalMs'],
    [{ maxReplyBytes: 0 }, 'maxReplyBytes'],
    [{ maxReplyBytes: -1 }, 'maxReplyBytes'],
    [{ maxReplyBytes: 1.5 }, 'maxReplyBytes'],
    [{ maxReplyBytes: Number.NaN }, 'maxReplyBytes'],
    [{ maxReplyBytes: '1024' as unknown as number }, 'maxReplyBytes'],
    [{ maxConnLifetimeMs: -1 }, 'maxConnLifetimeMs'],
    [{ testOnBorrow: 'ping' as unknown as () => void }, 'testOnBorrow'],
    [{ tls: 'on' as unknown as boolean }, 'tls'],
    [{ blobCache: { prefix: '' } }, 'blobCache.prefix'],
    [{ blobCache: true as unknown as false }, 'blobCache'],
    [{ admin: { authorize: () => true, prefix: 7 as unknown as string } }, 'admin.prefix'],
    [{ argv: 'node app' as unknown as string[] }, 'argv'],
  ] as [RedisconnOptions, string][])('%j fails ready() naming option %s', async (options, name) => {
    const err = await readyError(apps, { addr: server.addr, ...options });
    expect(err).toBeInstanceOf(ErrBadOption);
    expect(err.code).toBe('FST_REDIS_BAD_OPTION');
    expect(err.message).toMatch(new RegExp(`^redisconn: option ${name.replace('.', '\\.')} must be `));
  });

  it('a timeout out of range says the rule and keeps the RangeError as its cause', async () => {
    const err = await readyError(apps, { addr: server.addr, metrics: { intervalMs: 3e9 } });
    expect(err.message).toBe(`redisconn: option metrics.intervalMs must be a positive number of ms no greater than ${MAX_TIMEOUT_MS}, got 3000000000`);
    expect(err.cause).toBeInstanceOf(RangeError);
  });

  it('a password of the wrong type is not echoed', async () => {
    const err = await readyError(apps, { addr: server.addr, password: ['Zq8-hidden-pw'] as unknown as string });
    expect(err.message).toBe('redisconn: option password must be a string, got an array');
  });

  it('the largest timeouts and resetTimeoutMs / maxReplyBytes are accepted', async () => {
    const registry = new Registry();
    const app = await readyApp({
      addr: server.addr,
      resetTimeoutMs: 250,
      maxReplyBytes: 1 << 20,
      getTimeoutMs: MAX_TIMEOUT_MS,
      closeTimeoutMs: 1_000,
      health: { timeoutMs: MAX_TIMEOUT_MS },
      metrics: { registry, intervalMs: MAX_TIMEOUT_MS },
    });
    expect((app.redis.pool as Pool).resetTimeoutMs).toBe(250);
    await using conn = await app.redis.get();
    expect(await conn.do('PING')).toBe('PONG');
  });

  it('maxReplyBytes reaches the connections: a larger reply fails, the pool goes on', async () => {
    await raw.do('SET', 'plugin-options:big', Buffer.alloc(4096, 'x'));
    const app = await readyApp({ addr: server.addr, maxReplyBytes: 1024 });
    {
      await using conn = await app.redis.get();
      expect(await rejection(conn.do('GET', 'plugin-options:big'))).toBeInstanceOf(ProtocolError);
    }
    await using again = await app.redis.get();
    expect(await again.do('PING')).toBe('PONG');
  });
});

/**
 * Redis URLs: what parseURL reads out of them, the errors it gives (never
 * echoing a password), and dialURL against a real password-protected server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import type { Endpoint, DialOptions } from '../src/dial.js';
import { RedisError } from '../src/errors.js';
import { dialURL, parseURL, redactURL } from '../src/url.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientInfo, errorTexts, guardProcessErrors, rejection, text, thrownBy } from './helpers.js';

guardProcessErrors();

describe('parseURL', () => {
  const cases: [string, Endpoint, DialOptions][] = [
    ['redis://h', { host: 'h', port: 6379 }, {}],
    ['redis://h:6380', { host: 'h', port: 6380 }, {}],
    ['redis://:pw@h', { host: 'h', port: 6379 }, { password: 'pw' }],
    ['redis://pw@h', { host: 'h', port: 6379 }, { password: 'pw' }],
    ['redis://user:pw@h', { host: 'h', port: 6379 }, { username: 'user', password: 'pw' }],
    ['redis://user:@h', { host: 'h', port: 6379 }, { username: 'user' }],
    ['redis://h/0', { host: 'h', port: 6379 }, { db: 0 }],
    ['redis://h/', { host: 'h', port: 6379 }, {}],
    ['redis://h/99', { host: 'h', port: 6379 }, { db: 99 }],
    ['redis://h?db=2', { host: 'h', port: 6379 }, { db: 2 }],
    ['redis://h/?db=2', { host: 'h', port: 6379 }, { db: 2 }],
    ['redis://h/3?db=2', { host: 'h', port: 6379 }, { db: 3 }],
    ['rediss://h:6390/1', { host: 'h', port: 6390 }, { db: 1, tls: true }],
    ['valkey://u:p@h:7000', { host: 'h', port: 7000 }, { username: 'u', password: 'p' }],
    ['valkeys://h', { host: 'h', port: 6379 }, { tls: true }],
    ['REDIS://h:1', { host: 'h', port: 1 }, {}],
    ['redis://[::1]:6380', { host: '::1', port: 6380 }, {}],
    ['redis://[::1]', { host: '::1', port: 6379 }, {}],
    ['redis://:p%40ss%3Aw%2Fo%20rd@h', { host: 'h', port: 6379 }, { password: 'p@ss:w/o rd' }],
    ['redis://us%3Aer:p%25%23@h', { host: 'h', port: 6379 }, { username: 'us:er', password: 'p%#' }],
    ['redis://:p@ss@h', { host: 'h', port: 6379 }, { password: 'p@ss' }],
  ];

  it.each(cases)('%s', (url, endpoint, options) => {
    const parsed = parseURL(url);
    expect(parsed.endpoint).toEqual(endpoint);
    expect(parsed.options).toEqual(options);
  });

  it('user:@ means no AUTH: no password at all', () => {
    expect(parseURL('redis://user:@h').options.password).toBeUndefined();
    expect(parseURL('redis://@h').options).toEqual({});
  });

  it('unix:// gives a socket path and ?db', () => {
    expect(parseURL('unix:///tmp/x.sock?db=1')).toEqual({ endpoint: { path: '/tmp/x.sock' }, options: { db: 1 } });
    expect(parseURL('unix:///tmp/redis%20dir/x.sock')).toEqual({ endpoint: { path: '/tmp/redis dir/x.sock' }, options: {} });
  });

  const bad: [string, RegExp][] = [
    ['http://h:6379', /scheme/],
    ['redis:localhost', /opaque/],
    ['redis:localhost:6379', /opaque/],
    ['redis://h/x', /database/],
    ['redis://h/-1', /database/],
    ['redis://h/1.5', /database/],
    ['redis://h/1/2', /path/],
    ['redis://h?db=x', /database/],
    ['redis://', /host/],
    ['redis:///0', /host/],
    ['redis://h:0', /port 0 out of range/],
    ['redis://h:70000', /port 70000 out of range/],
    ['redis://[::1]:99999', /port 99999 out of range/],
    ['redis://h:99999999999999999999', /port 99999999999999999999 out of range/],
    ['redis://h:x1', /port "x1" is not a number/],
    ['redis://h/0?note=a@b', /"@" after the host/],
    ['unix://tmp/x.sock', /takes no host/],
    ['unix://', /socket path/],
    ['localhost:6379', /scheme/],
    ['', /scheme/],
  ];

  it.each(bad)('%j throws a TypeError naming the problem', (url, why) => {
    const caught = thrownBy(() => parseURL(url));
    expect(caught).toBeInstanceOf(TypeError);
    expect((caught as Error).message).toMatch(why);
  });

  const secret = 'hunter2secret';
  const leaky = [
    `http://:${secret}@h`,
    `http://user:${secret}@h`,
    `redis://:${secret}@h/x`,
    `redis://user:${secret}@h/-1`,
    `redis://${secret}@h?db=nope`,
    `redis://:${secret}@/0`,
    `redis://:${secret}@h:notaport`,
    `redis::${secret}@localhost`,
    `redis:user:${secret}@localhost`,
    `${secret}@localhost`,
    `ftp://:${secret}@h/1/2`,
    `redis://:${secret}%zz@h`,
    `redis://:pa/${secret}@h/1`,
    `redis://u:${secret}@h/x?note=a@b`,
  ];

  it.each(leaky)('the error for %s never contains the password', (url) => {
    const caught = thrownBy(() => parseURL(url));
    expect(caught).toBeInstanceOf(TypeError);
    expect((caught as Error).message).not.toContain(secret);
    expect(String((caught as Error).stack)).not.toContain(secret);
  });

  // Passwords with "/", "@", ":" and percent-encoded characters, raw (a
  // mangled URL) and encoded, in URLs that fail for one reason or another.
  const PASSWORDS = ['WRONG-s3cr3t-pw/x', 'Kq7@Zv9:Wm', 'Jx4:Rt8:Pn', 'Hb3%40Yc6%2FTd', 'Fg5?Nh2#Lk'];
  const mangled = PASSWORDS.flatMap((pw) => {
    const enc = encodeURIComponent(pw);
    return [
      `redis://app:${pw}@host:99999`,
      `redis://:${pw}@host:6379/x`,
      `redis://${pw}@host?db=nope`,
      `redis://app:${pw}@/0`,
      `rediss://app:${pw}@host:0`,
      `valkey://${pw}@[::1`,
      `redis://app:${enc}@host:99999`,
      `redis://app:${enc}@host/1/2`,
      `redis://:${enc}@/3`,
      `redis://:${enc}%zz@host`,
      `unix://app:${pw}@/tmp/x.sock`,
      `unix://:${enc}@h/tmp/x.sock`,
      `redis:app:${pw}@host`,
      `http://app:${pw}@host`,
    ];
  });

  it.each(mangled)('no 4-character piece of the password shows in the error for %s', (url) => {
    const caught = thrownBy(() => parseURL(url)) as Error;
    expect(caught).toBeInstanceOf(TypeError);
    expect(caught.cause).toBeUndefined();
    expectNoSecret(errorTexts(caught), PASSWORDS);
  });

  it('mangled userinfo: the examples of the leak report', () => {
    // Valid: the userinfo runs to the last "@" before the host.
    expect(parseURL('redis://user:pa:ss@host').options).toEqual({ username: 'user', password: 'pa:ss' });
    expect(parseURL('redis://:p@ss@host:6379')).toEqual({ endpoint: { host: 'host', port: 6379 }, options: { password: 'p@ss' } });
    // A "/" in the password: WHATWG URL would take "p%40ss" for a port.
    const caught = thrownBy(() => parseURL('redis://u:p%40ss/x@host')) as Error;
    expect(caught.message).toBe('redisconn: bad Redis URL "redis://***@host": an "@" after the host: percent-encode "/", "?", "#" and "@" in the user name and password (%2F, %3F, %23, %40)');
    const reported = thrownBy(() => parseURL('redis://app:WRONG-s3cr3t-pw/x@host:6379')) as Error;
    expect(reported.message).toContain('"redis://***@host:6379"');
    expectNoSecret(errorTexts(reported), ['WRONG-s3cr3t-pw/x']);
    // A "#" in the password: WHATWG URL reads "u:1234" as host:port, which a dial error would quote.
    expect((thrownBy(() => parseURL('redis://u:1234#abcd@host')) as Error).message).not.toMatch(/1234|abcd/);
  });

  it('a non-string URL is a TypeError', () => {
    expect(() => parseURL(42 as unknown as string)).toThrow(TypeError);
  });
});

/** The texts an error can show: message, String(), stack, JSON, down its cause chain. */

/** Fails when any text holds a secret, its percent-encoding or any 4-character piece of either. */
function expectNoSecret(texts: string[], secrets: string[]): void {
  for (const secret of secrets) {
    for (const form of new Set([secret, encodeURIComponent(secret), decodeURIComponent(secret)])) {
      for (let i = 0; i + 4 <= form.length; i++) {
        const piece = form.slice(i, i + 4);
        for (const text of texts) expect(text, `${JSON.stringify(piece)} of the password shows`).not.toContain(piece);
      }
    }
  }
}

describe('redactURL', () => {
  it.each([
    ['redis://app:WRONG-s3cr3t-pw/x@host:6379', 'redis://***@host:6379'],
    ['redis://:p@ss@host:6379/2', 'redis://***@host:6379/2'],
    ['redis://u:p%40ss/x@host', 'redis://***@host'],
    ['rediss://user:pa:ss@host', 'rediss://***@host'],
    ['redis://h:6379/0?x=a@b', 'redis://***@b'],
    ['redis:user:pw@host', 'redis:***@host'],
    ['pw@host:6379', '***@host:6379'],
    ['u:pw@x://y@host', '***@host'],
    ['redis://h:6379/0', 'redis://h:6379/0'],
    ['127.0.0.1:6379', '127.0.0.1:6379'],
    ['/tmp/redis.sock', '/tmp/redis.sock'],
    ['', ''],
  ])('%s → %s', (url, shown) => {
    expect(redactURL(url)).toBe(shown);
  });
});

describe('dialURL', () => {
  const PASSWORD = 'p@ss w:rd/1';
  let server: TestRedisServer;
  const conns: Conn[] = [];
  const encoded = encodeURIComponent(PASSWORD);

  async function connect(url: string, options: DialOptions = {}): Promise<Conn> {
    const conn = await dialURL(url, options);
    conns.push(conn);
    return conn;
  }

  beforeAll(async () => {
    server = await startRedisServer({ password: PASSWORD, unixSocket: true });
    const admin = await connect(`redis://:${encoded}@${server.addr}`);
    await admin.do('ACL', 'SETUSER', 'bob', 'on', '>bobpw', '~*', '+@all');
  });

  afterAll(async () => {
    await Promise.all(conns.map((conn) => conn.close()));
    await server?.stop();
  });

  it('password and db from the URL are used', async () => {
    const conn = await connect(`redis://:${encoded}@127.0.0.1:${server.port}/4`);
    const info = await clientInfo(conn);
    expect(info.db).toBe('4');
    expect(info.user).toBe('default');
    await conn.do('SET', 'url-test:k', 'in db 4');
    const db0 = await connect(`redis://${encoded}@${server.addr}`);
    expect(await db0.do('GET', 'url-test:k')).toBeNull();
  });

  it('user:password from the URL authenticates an ACL user', async () => {
    const conn = await connect(`valkey://bob:bobpw@${server.addr}?db=2`);
    expect(text(await conn.do('ACL', 'WHOAMI'))).toBe('bob');
    expect((await clientInfo(conn)).db).toBe('2');
  });

  it('user:@ sends no AUTH, so commands get NOAUTH', async () => {
    const conn = await connect(`redis://bob:@${server.addr}`);
    const err = await rejection(conn.do('PING'));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('NOAUTH');
  });

  it('options override what the URL says', async () => {
    const conn = await connect(`redis://:wrong@${server.addr}/4`, { password: PASSWORD, db: 6, clientName: 'from-options' });
    const info = await clientInfo(conn);
    expect(info.db).toBe('6');
    expect(info.name).toBe('from-options');
  });

  it('a wrong password in the URL rejects WRONGPASS', async () => {
    const err = await rejection(dialURL(`redis://:nope@${server.addr}`));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('WRONGPASS');
  });

  it('unix:// dials the socket path', async () => {
    const conn = await connect(`unix://${server.socketPath}?db=1`, { password: PASSWORD });
    const info = await clientInfo(conn);
    expect(info.flags).toContain('U');
    expect(info.db).toBe('1');
  });

  it('dial errors of a URL with a password never show it: refused, wrong password, mangled', async () => {
    const port = await freePort();
    const pw = 'Kq7@Zv9:Wm/Xp';
    const enc = encodeURIComponent(pw);
    const refused = await rejection(dialURL(`redis://app:${enc}@127.0.0.1:${port}/1`));
    expect((refused as Error).message).toMatch(/ECONNREFUSED/);
    const wrong = await rejection(dialURL(`redis://default:${enc}@${server.addr}`));
    expect(wrong).toBeInstanceOf(RedisError);
    const mangled = await rejection(dialURL(`redis://app:${pw}@${server.addr}`));
    expect(mangled).toBeInstanceOf(TypeError);
    expectNoSecret([...errorTexts(refused), ...errorTexts(wrong), ...errorTexts(mangled)], [pw]);
  });

  it('a bad URL rejects TypeError and nothing is dialed', async () => {
    const port = await freePort();
    const err = await rejection(dialURL(`redis://127.0.0.1:${port}/x`));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/database/);
    // A dial would have been refused with a ConnClosedError instead.
    expect((err as Error).message).not.toMatch(/ECONNREFUSED/);
  });
});

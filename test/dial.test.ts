/**
 * dial against real redis-server processes: the handshake (AUTH, ACL users,
 * CLIENT SETNAME, SELECT, HELLO 3), a refused step as a HandshakeError naming
 * the option to check, unix sockets, TLS with certificate verification, and
 * the ways dialing fails (refused, DNS, one deadline for connect and
 * handshake together, abort).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial, parseAddress, type DialOptions } from '../src/dial.js';
import { ConnClosedError, HandshakeError, RedisError, TimeoutError } from '../src/errors.js';
import { dialURL } from '../src/url.js';
import { freePort, startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { clientInfo, clientList, errorTexts, guardProcessErrors, makeCertificates, rejection, settle, text, type TestCertificates } from './helpers.js';

guardProcessErrors();

const PASSWORD = 'sekret pässword';
const BLACK_HOLE = '10.255.255.1:6379';

/**
 * True when a TCP connect to the non-routable {@link BLACK_HOLE} completes
 * at once: some sandboxes route every outbound connection through a
 * transparent proxy, and there a "non-routable" address answers.
 */
async function blackHoleAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(6379, '10.255.255.1');
    const done = (answered: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 300);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
const proxiedNetwork = await blackHoleAnswers();

let plain: TestRedisServer;
let secured: TestRedisServer;
const conns: Conn[] = [];

async function connect(address: string, options: DialOptions = {}): Promise<Conn> {
  const conn = await dial(address, options);
  conns.push(conn);
  return conn;
}

beforeAll(async () => {
  [plain, secured] = await Promise.all([startRedisServer({ unixSocket: true }), startRedisServer({ password: PASSWORD })]);
});

afterAll(async () => {
  await Promise.all(conns.map((conn) => conn.close()));
  await Promise.all([plain?.stop(), secured?.stop()]);
});

/** Waits until the server's client count drops back to `expected`. */
async function expectClientCount(admin: Conn, expected: number): Promise<void> {
  await expect.poll(async () => (await clientList(admin)).length, { timeout: 3000, interval: 20 }).toBe(expected);
}

describe('handshake', () => {
  it('without options dials and nothing else is sent', async () => {
    const conn = await connect(plain.addr);
    const info = await clientInfo(conn);
    expect(info.db).toBe('0');
    expect(info.name).toBe('');
    expect(info.resp).toBe('2');
    expect(info.cmd).toBe('client|info');
    expect(conn.protocol).toBe(2);
  });

  it('clientName is sent as CLIENT SETNAME and shows in CLIENT LIST', async () => {
    const admin = await connect(plain.addr);
    const conn = await connect(plain.addr, { clientName: 'dial-test-name' });
    const id = await conn.do('CLIENT', 'ID');
    const named = (await clientList(admin)).filter((client) => client.name === 'dial-test-name');
    expect(named.map((client) => client.id)).toEqual([String(id)]);
    expect(text(await conn.do('CLIENT', 'GETNAME'))).toBe('dial-test-name');
  });

  it('db selects the database (CLIENT INFO db=N, data kept apart)', async () => {
    const in5 = await connect(plain.addr, { db: 5 });
    const in0 = await connect(plain.addr);
    expect((await clientInfo(in5)).db).toBe('5');
    await in5.do('SET', 'dial-test:db', 'five');
    expect(await in0.do('GET', 'dial-test:db')).toBeNull();
    expect(text(await in5.do('GET', 'dial-test:db'))).toBe('five');
  });

  it('a db the server lacks (SELECT 99) rejects HandshakeError REDIS_HANDSHAKE naming the db option, and leaves no socket open', async () => {
    const admin = await connect(plain.addr);
    const before = (await clientList(admin)).length;
    const err = await rejection(dial(plain.addr, { db: 99, clientName: 'doomed-select' }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toBeInstanceOf(RedisError);
    const refused = err as HandshakeError;
    expect(refused.code).toBe('REDIS_HANDSHAKE');
    expect(refused.command).toBe('SELECT');
    expect(refused.serverMessage).toBe('ERR DB index is out of range');
    expect(refused.name).toBe('HandshakeError');
    expect(refused.message).toBe(`redisconn: dial ${plain.addr}: SELECT 99 refused: ERR DB index is out of range (check the db option)`);
    await expectClientCount(admin, before);
  });

  it('the refused step is told apart from the steps before it in the pipeline', async () => {
    const err = await rejection(dial(secured.addr, { password: PASSWORD, clientName: 'fine-name', db: 99 }));
    expect(err).toMatchObject({ command: 'SELECT', code: 'REDIS_HANDSHAKE' });
    for (const shown of errorTexts(err)) expect(shown).not.toContain(PASSWORD);
  });

  it('a client name the server refuses names the clientName option (RESP2 CLIENT SETNAME and RESP3 HELLO)', async () => {
    const setname = await rejection(dial(plain.addr, { clientName: 'has spaces' }));
    expect(setname).toBeInstanceOf(HandshakeError);
    expect(setname).toMatchObject({ command: 'CLIENT SETNAME', code: 'REDIS_HANDSHAKE' });
    expect((setname as Error).message).toMatch(/CLIENT SETNAME refused: ERR .*\(check the clientName option\)$/);
    const hello = await rejection(dial(plain.addr, { protocol: 3, clientName: 'has spaces' }));
    expect(hello).toMatchObject({ command: 'HELLO', code: 'REDIS_HANDSHAKE' });
    expect((hello as Error).message).toMatch(/HELLO 3 refused: ERR .*clientName/);
  });

  it('READONLY on a server without cluster support names the readOnly option', async () => {
    const err = await rejection(dial(plain.addr, { readOnly: true }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ command: 'READONLY', code: 'REDIS_HANDSHAKE' });
    expect((err as Error).message).toMatch(/READONLY refused: .*\(check the readOnly option\)$/);
  });

  it('decodeStrings returns bulk strings as strings', async () => {
    const conn = await connect(plain.addr, { decodeStrings: true });
    await conn.do('SET', 'dial-test:decode', 'text');
    expect(await conn.do('GET', 'dial-test:decode')).toBe('text');
  });

  it('bad options reject with RangeError before dialing', async () => {
    expect(await rejection(dial(plain.addr, { db: -1 }))).toBeInstanceOf(RangeError);
    expect(await rejection(dial(plain.addr, { db: 1.5 }))).toBeInstanceOf(RangeError);
    expect(await rejection(dial(plain.addr, { protocol: 4 as 2 }))).toBeInstanceOf(RangeError);
    expect(await rejection(dial(plain.addr, { connectTimeoutMs: NaN }))).toBeInstanceOf(RangeError);
  });

  it('a unix socket path dials over the unix socket', async () => {
    expect(plain.socketPath).toBeTruthy();
    const conn = await connect(plain.socketPath as string, { db: 2 });
    expect(await conn.do('PING')).toBe('PONG');
    const info = await clientInfo(conn);
    expect(info.flags).toContain('U');
    expect(info.db).toBe('2');
  });
});

describe('authentication', () => {
  let admin: Conn;
  beforeAll(async () => {
    admin = await connect(secured.addr, { password: PASSWORD });
    expect(await admin.do('ACL', 'SETUSER', 'alice', 'on', '>pw', '~*', '+@all')).toBe('OK');
  });

  it('the right password authenticates', async () => {
    const conn = await connect(secured.addr, { password: PASSWORD });
    expect(await conn.do('PING')).toBe('PONG');
    expect(text(await conn.do('ACL', 'WHOAMI'))).toBe('default');
  });

  it('no password: dial succeeds (nothing sent) but commands get NOAUTH', async () => {
    const conn = await connect(secured.addr);
    const err = await rejection(conn.do('GET', 'x'));
    expect(err).toBeInstanceOf(RedisError);
    expect((err as RedisError).code).toBe('NOAUTH');
  });

  it('a wrong password rejects HandshakeError WRONGPASS (command AUTH, never the password) and closes the socket', async () => {
    const before = (await clientList(admin)).length;
    const wrong = 'wrong-sekret';
    const err = await rejection(dial(secured.addr, { password: wrong, clientName: 'wrong-pass' }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toBeInstanceOf(RedisError);
    expect(err).toMatchObject({ code: 'WRONGPASS', command: 'AUTH' });
    expect((err as HandshakeError).serverMessage).toMatch(/^WRONGPASS /);
    expect((err as Error).message).toMatch(new RegExp(`^redisconn: dial ${secured.addr}: AUTH refused: WRONGPASS .*\\(check the password and username options\\)$`));
    for (const shown of errorTexts(err)) expect(shown).not.toContain(wrong);
    await expectClientCount(admin, before);
  });

  it('an ACL user authenticates with username + password', async () => {
    const conn = await connect(secured.addr, { username: 'alice', password: 'pw' });
    expect(text(await conn.do('ACL', 'WHOAMI'))).toBe('alice');
  });

  it('an ACL user with a wrong password is rejected and nothing stays open', async () => {
    const before = (await clientList(admin)).length;
    const err = await rejection(dial(secured.addr, { username: 'alice', password: 'nope' }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'WRONGPASS', command: 'AUTH' });
    for (const shown of errorTexts(err)) {
      expect(shown).not.toContain('nope');
      expect(shown).not.toContain('alice');
    }
    await expectClientCount(admin, before);
  });

  it('protocol 3 sends HELLO 3 with AUTH and SETNAME', async () => {
    const conn = await connect(secured.addr, { protocol: 3, username: 'alice', password: 'pw', clientName: 'resp3-client', db: 1 });
    expect(conn.protocol).toBe(3);
    const info = await clientInfo(conn);
    expect(info.resp).toBe('3');
    expect(info.user).toBe('alice');
    expect(info.name).toBe('resp3-client');
    expect(info.db).toBe('1');
    // A RESP3-only reply type comes through: HGETALL as a Map.
    await conn.do('HSET', 'dial-test:h', 'a', '1');
    expect(await conn.do('HGETALL', 'dial-test:h')).toBeInstanceOf(Map);
  });

  it('protocol 3 with the default user password', async () => {
    const conn = await connect(secured.addr, { protocol: 3, password: PASSWORD });
    expect(text(await conn.do('ACL', 'WHOAMI'))).toBe('default');
  });

  it('protocol 3 with a wrong password rejects HandshakeError WRONGPASS (command HELLO) and nothing stays open', async () => {
    const before = (await clientList(admin)).length;
    const err = await rejection(dial(secured.addr, { protocol: 3, password: 'wrong-sekret' }));
    expect(err).toBeInstanceOf(HandshakeError);
    expect(err).toMatchObject({ code: 'WRONGPASS', command: 'HELLO' });
    expect((err as Error).message).toMatch(/HELLO 3 refused: WRONGPASS .*\(check the password and username options\)$/);
    for (const shown of errorTexts(err)) expect(shown).not.toContain('wrong-sekret');
    await expectClientCount(admin, before);
  });

  it('protocol 3 without a password on a plain server', async () => {
    const conn = await connect(plain.addr, { protocol: 3 });
    expect((await clientInfo(conn)).resp).toBe('3');
  });
});

describe('TLS', () => {
  let certs: TestCertificates;
  let server: TestRedisServer;

  beforeAll(async () => {
    certs = makeCertificates();
    server = await startRedisServer({ tls: { certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile } });
  });

  afterAll(async () => {
    await server?.stop();
    certs?.remove();
  });

  it('rediss://localhost with the CA works', async () => {
    const conn = await dialURL(`rediss://localhost:${server.port}/3`, { tls: { ca: certs.ca } });
    conns.push(conn);
    expect(await conn.do('PING')).toBe('PONG');
    expect((await clientInfo(conn)).db).toBe('3');
  });

  it('dial host:port with tls options checks the IP SAN too', async () => {
    const conn = await connect(server.addr, { tls: { ca: certs.ca } });
    expect(await conn.do('ECHO', 'over tls')).toEqual(Buffer.from('over tls'));
  });

  it('without the CA the certificate is rejected (verification on by default)', async () => {
    const err = await rejection(dialURL(`rediss://localhost:${server.port}`));
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(`localhost:${server.port}`);
    expect(String(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code)).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('with tls: true (defaults) the certificate is rejected as well', async () => {
    const err = await rejection(dial(`localhost:${server.port}`, { tls: true }));
    expect((err as Error).message).toContain(`localhost:${server.port}`);
    expect(String(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code)).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('with a wrong CA the certificate is rejected', async () => {
    const err = await rejection(dialURL(`rediss://localhost:${server.port}`, { tls: { ca: certs.otherCa } }));
    expect((err as Error).message).toContain(`localhost:${server.port}`);
    expect(String(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code)).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('a name the certificate does not cover is rejected', async () => {
    const err = await rejection(dial(`127.0.0.1:${server.port}`, { tls: { ca: certs.ca, servername: 'elsewhere.example' } }));
    expect((err as Error).message).toContain(`127.0.0.1:${server.port}`);
    expect(String(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code)).toMatch(/ALTNAME|CERT/);
  });

  /**
   * A TCP proxy to the TLS server that delays everything the server sends by
   * `delayMs` (order kept): the TLS connect then takes about `delayMs`, and
   * so does the reply to each handshake command after it.
   */
  async function slowProxy(delayMs: number): Promise<{ addr: string; close(): Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.on('data', (chunk: Buffer) => setTimeout(() => client.write(chunk), delayMs));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    return {
      addr: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
      close: () => {
        for (const socket of sockets) socket.destroy();
        return new Promise((resolve) => proxy.close(() => resolve()));
      },
    };
  }

  it('connectTimeoutMs bounds connect and handshake together, not each of them', async () => {
    const proxy = await slowProxy(250);
    try {
      // Connect (~250 ms) and SELECT (~250 ms) each fit in 400 ms; together they do not.
      const connectOnly = await connect(proxy.addr, { tls: { ca: certs.ca }, connectTimeoutMs: 400 });
      expect(connectOnly.err()).toBeNull();
      const started = performance.now();
      const err = await rejection(dial(proxy.addr, { tls: { ca: certs.ca }, db: 1, connectTimeoutMs: 400 }));
      const took = performance.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toBe(`redisconn: dial ${proxy.addr}: connect and handshake timed out after 400 ms`);
      expect(took).toBeLessThan(400 + 1_000);
      // The same dial with room for both succeeds: the proxy itself works.
      const conn = await connect(proxy.addr, { tls: { ca: certs.ca }, db: 1, connectTimeoutMs: 5_000 });
      expect((await clientInfo(conn)).db).toBe('1');
    } finally {
      await proxy.close();
    }
  });

  it('plain TCP to the TLS port fails instead of hanging', async () => {
    const conn = await connect(server.addr, { readTimeoutMs: 2000 });
    const err = await rejection(conn.do('PING'));
    expect(err).toBeInstanceOf(Error);
    expect(conn.err()).not.toBeNull();
  });
});

describe('dial failures', () => {
  it('connection refused names the address', async () => {
    const port = await freePort();
    const err = await rejection(dial(`127.0.0.1:${port}`));
    expect(err).toBeInstanceOf(ConnClosedError);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });

  it('a name that does not resolve names the address', async () => {
    const err = await rejection(dial('nonexistent.invalid:6379', { connectTimeoutMs: 5000 }));
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('nonexistent.invalid:6379');
  });

  it('a bad address rejects TypeError before dialing', async () => {
    for (const address of ['', 'host:', 'host:0', 'host:65536', 'host:x', '::1', '[::1', '[::1]x']) {
      expect(await rejection(dial(address))).toBeInstanceOf(TypeError);
    }
  });

  it.skipIf(proxiedNetwork)(
    proxiedNetwork
      ? 'SKIPPED: outbound TCP is proxied here, so a non-routable address connects at once (the connect timeout is covered by the paused-server test)'
      : 'a non-routable address settles quickly with an error naming it',
    async () => {
    const started = Date.now();
    const err = await rejection(dial(BLACK_HOLE, { connectTimeoutMs: 200 }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(BLACK_HOLE);
    if (!(err instanceof TimeoutError)) {
      expect(((err as Error).cause as NodeJS.ErrnoException | undefined)?.code).toMatch(/UNREACH|ETIMEDOUT/);
    }
    },
  );

  describe('against a hung (paused) server', () => {
    let frozen: TestRedisServer;
    beforeAll(async () => {
      frozen = await startRedisServer();
      frozen.pause();
    });
    afterAll(async () => {
      frozen?.resume();
      await frozen?.stop();
    });

    it('connectTimeoutMs bounds a TLS connect that never completes', async () => {
      const started = Date.now();
      const err = await rejection(dial(frozen.addr, { tls: true, connectTimeoutMs: 200 }));
      expect(Date.now() - started).toBeLessThan(3000);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
      expect((err as Error).message).toBe(`redisconn: dial ${frozen.addr}: connect timed out after 200 ms`);
    });

    it('connectTimeoutMs bounds the handshake', async () => {
      const err = await rejection(dial(frozen.addr, { clientName: 'never-answered', connectTimeoutMs: 200 }));
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as Error).message).toBe(`redisconn: dial ${frozen.addr}: connect and handshake timed out after 200 ms`);
    });

    it('aborting during the TLS connect rejects with the reason', async () => {
      const controller = new AbortController();
      const reason = new Error('dial cancelled');
      const pending = settle(dial(frozen.addr, { tls: true, signal: controller.signal }));
      setTimeout(() => controller.abort(reason), 50);
      expect(await pending).toEqual({ ok: false, error: reason });
    });

    it('aborting during the handshake rejects with the reason', async () => {
      const controller = new AbortController();
      const reason = new Error('handshake cancelled');
      const pending = settle(dial(frozen.addr, { db: 3, signal: controller.signal }));
      setTimeout(() => controller.abort(reason), 50);
      expect(await pending).toEqual({ ok: false, error: reason });
    });
  });

  it('an already aborted signal rejects with its reason and dials nothing', async () => {
    const admin = await connect(plain.addr);
    const before = (await clientList(admin)).length;
    const reason = new Error('aborted before dial');
    expect(await rejection(dial(plain.addr, { signal: AbortSignal.abort(reason) }))).toBe(reason);
    expect((await clientList(admin)).length).toBe(before);
  });

  it('a signal aborted after a successful dial does not touch the conn', async () => {
    const controller = new AbortController();
    const conn = await connect(plain.addr, { db: 1, signal: controller.signal });
    controller.abort(new Error('too late to matter'));
    expect(conn.err()).toBeNull();
    expect(await conn.do('PING')).toBe('PONG');
  });
});

describe('parseAddress', () => {
  const cases: [string, unknown][] = [
    ['127.0.0.1:6380', { host: '127.0.0.1', port: 6380 }],
    ['localhost', { host: 'localhost', port: 6379 }],
    ['[::1]:6380', { host: '::1', port: 6380 }],
    ['[::1]', { host: '::1', port: 6379 }],
    ['/tmp/redis.sock', { path: '/tmp/redis.sock' }],
  ];
  it.each(cases)('%s', (address, expected) => {
    expect(parseAddress(address)).toEqual(expected);
  });

  it('round-trips through dial for IPv6 brackets in error messages', async () => {
    const port = await freePort();
    const err = await rejection(dial(`[::1]:${port}`, { connectTimeoutMs: 2000 }));
    expect((err as Error).message).toContain(`[::1]:${port}`);
  });
});

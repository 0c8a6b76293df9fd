/**
 * Reliability defects found by adversarial testing (issue 10), each proven
 * against a real redis-server or, where a real server cannot misbehave that
 * way, a hostile fake peer on loopback: a connection returned with a reply
 * still owed, slow-loris replies, replies without bound, timeout overflow,
 * and bad input reported as typed errors, never as synchronous throws.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { dial } from '../src/dial.js';
import { ConnClosedError, ProtocolError, TimeoutError } from '../src/errors.js';
import { MAX_TIMEOUT_MS } from '../src/deadline.js';
import type { Conn } from '../src/conn.js';
import { newPool, Pool } from '../src/pool.js';
import { decimal, encodeCommand } from '../src/resp/encode.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, rejection, sleep, text, useServerWithConn, within } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;

useServerWithConn((started) => ({ server, conn: admin } = started), { args: ['--enable-debug-command', 'yes'] });

/** A hostile peer: runs `behave` on each accepted socket. */
async function fakeServer(behave: (socket: net.Socket) => void): Promise<{ addr: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    behave(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  return {
    addr: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        srv.close(() => resolve());
      }),
  };
}

describe('a connection is never lent with a reply still owed', () => {
  it('close() during a BLPOP waits for its reply: the next borrower gets a clean connection at once', async () => {
    const pool = newPool(server.addr, 0, { maxIdle: 4 });
    try {
      const a = await pool.get();
      const blpop = a.do('BLPOP', 'reliability:q1', 1);
      const started = performance.now();
      await a.close();
      // close waited for the reply owed (about 1 s), which reached its caller.
      expect(performance.now() - started).toBeGreaterThan(700);
      expect(await blpop).toBeNull();
      const b = await pool.get();
      const pingStarted = performance.now();
      expect(await b.do('PING')).toBe('PONG');
      expect(performance.now() - pingStarted).toBeLessThan(200);
      await b.close();
      expect(pool.stats().dials).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('a get while the returned connection still waits gets another connection, never the busy one', async () => {
    const pool = newPool(server.addr, 0, { maxIdle: 4 });
    try {
      const a = await pool.get();
      const blpop = a.doWithTimeout(3_000, 'BLPOP', 'reliability:q2', 1);
      const closing = a.close();
      const b = await pool.get();
      const started = performance.now();
      expect(await b.do('PING')).toBe('PONG');
      expect(performance.now() - started).toBeLessThan(200);
      expect(pool.stats().dials).toBe(2);
      await b.close();
      await closing;
      expect(await blpop).toBeNull();
    } finally {
      await pool.close();
    }
  });

  it('a reply owed past the reset deadline: the call fails, the connection is closed instead of reused', async () => {
    const pool = newPool(server.addr, 0, { maxIdle: 4, resetTimeoutMs: 300 });
    try {
      const a = await pool.get();
      const blpop = rejection(a.do('BLPOP', 'reliability:q3', 0));
      await a.close();
      expect(await blpop).toBeInstanceOf(TimeoutError);
      expect(pool.stats()).toMatchObject({ activeCount: 0, idleCount: 0 });
      const b = await pool.get();
      expect(await b.do('PING')).toBe('PONG');
      await b.close();
      expect(pool.stats().dials).toBe(2);
    } finally {
      await pool.close();
    }
  });

  it('replies owed to send() are drained before the connection goes back', async () => {
    const pool = newPool(server.addr, 0, { maxIdle: 4 });
    try {
      const a = await pool.get();
      a.send('SET', 'reliability:k', 'v');
      a.send('GET', 'reliability:k');
      await a.flush();
      await a.close();
      const b = await pool.get();
      expect(await b.do('ECHO', 'mine')).toEqual(Buffer.from('mine'));
      await b.close();
      expect(pool.stats().dials).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('do("") waits its turn behind calls in flight', async () => {
    const conn = await dial(server.addr);
    try {
      const order: string[] = [];
      const slow = conn.do('BLPOP', 'reliability:q4', 0.3).then(() => order.push('blpop'));
      const drained = conn.do('').then(() => order.push('drain'));
      await Promise.all([slow, drained]);
      expect(order).toEqual(['blpop', 'drain']);
      expect(conn.inFlight()).toBe(0);
    } finally {
      await conn.close();
    }
  });

  it('inFlight() counts waiting calls and unread replies of send()', async () => {
    const conn = await dial(server.addr);
    try {
      expect(conn.inFlight()).toBe(0);
      const pending = conn.do('PING');
      expect(conn.inFlight()).toBe(1);
      await pending;
      conn.send('PING');
      expect(conn.inFlight()).toBe(1);
      await conn.do('');
      expect(conn.inFlight()).toBe(0);
    } finally {
      await conn.close();
    }
  });
});

describe('slow-loris: the read timeout bounds a whole reply', () => {
  it('a server that trickles one byte every 100 ms cannot hold a do() past readTimeoutMs', async () => {
    const reply = Buffer.from('$30\r\n012345678901234567890123456789\r\n');
    const fake = await fakeServer((socket) => {
      socket.once('data', () => {
        let i = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || i >= reply.length) return clearInterval(timer);
          socket.write(reply.subarray(i, ++i));
        }, 100);
        socket.on('close', () => clearInterval(timer));
      });
    });
    try {
      const conn = await dial(fake.addr, { readTimeoutMs: 600 });
      const started = performance.now();
      const err = await within(rejection(conn.do('GET', 'x')), 3_000, 'do on a trickling server');
      const elapsed = performance.now() - started;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(elapsed).toBeGreaterThan(550);
      expect(elapsed).toBeLessThan(1_200);
      expect(conn.err()).toBeInstanceOf(TimeoutError);
    } finally {
      await fake.close();
    }
  });

  it('each reply of a pipeline gets its own deadline: a steady stream of whole replies is not cut', async () => {
    // One whole reply every 150 ms, 8 replies: 1.2 s in all, above readTimeoutMs 400.
    const fake = await fakeServer((socket) => {
      let owed = 0;
      socket.on('data', (chunk) => {
        owed += chunk.toString('latin1').split('*1\r\n').length - 1;
      });
      const timer = setInterval(() => {
        if (owed > 0) {
          owed--;
          socket.write('+PONG\r\n');
        }
      }, 150);
      socket.on('close', () => clearInterval(timer));
    });
    try {
      const conn = await dial(fake.addr, { readTimeoutMs: 400 });
      for (let i = 0; i < 8; i++) conn.send('PING');
      const replies = await within(conn.do(''), 3_000, 'pipeline');
      expect(replies).toEqual(Array(8).fill('PONG'));
      await conn.close();
    } finally {
      await fake.close();
    }
  });

  it('the deadline starts when a call becomes the one awaited, not when it was queued', async () => {
    const conn = await dial(server.addr, { readTimeoutMs: 500 });
    try {
      // 300 ms of DEBUG SLEEP under its own deadline, then a PING queued behind it.
      const sleepy = conn.doWithTimeout(2_000, 'DEBUG', 'SLEEP', '0.3');
      const ping = conn.do('PING');
      await expect(sleepy).resolves.toBe('OK');
      await expect(ping).resolves.toBe('PONG');
      expect(conn.err()).toBeNull();
    } finally {
      await conn.close();
    }
  });

  it('a paused server still times out a do() in readTimeoutMs', async () => {
    const conn = await dial(server.addr, { readTimeoutMs: 300 });
    await server.pause();
    try {
      const started = performance.now();
      expect(await within(rejection(conn.do('PING')), 2_000, 'do on a paused server')).toBeInstanceOf(TimeoutError);
      expect(performance.now() - started).toBeLessThan(800);
    } finally {
      await server.resume();
    }
  });
});

describe('memory is bounded against a hostile server', () => {
  it('an endless aggregate breaks the connection with ProtocolError once maxReplyBytes is passed', async () => {
    const fake = await fakeServer((socket) => {
      socket.once('data', () => {
        socket.write('*2147483647\r\n');
        const chunk = Buffer.from(':1\r\n'.repeat(16_384));
        const pump = (): void => {
          while (!socket.destroyed && socket.write(chunk));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      });
    });
    try {
      const conn = await dial(fake.addr, { maxReplyBytes: 1 << 20 });
      const err = await within(rejection(conn.do('LRANGE', 'k', 0, -1)), 3_000, 'endless array');
      expect(err).toBeInstanceOf(ProtocolError);
      expect(String((err as Error).message)).toMatch(/maxReplyBytes/);
      expect(conn.err()).toBe(err);
    } finally {
      await fake.close();
    }
  });

  it('a 14-byte bulk header declaring ~500 MiB allocates nothing near that', async () => {
    const conns: Conn[] = [];
    let headersSent = 0;
    const fake = await fakeServer((socket) => {
      socket.once('data', () => socket.write('$500000000\r\nabc', () => headersSent++));
    });
    try {
      const before = process.memoryUsage().arrayBuffers;
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 8; i++) {
        const conn = await dial(fake.addr, { readTimeoutMs: 5_000 });
        conns.push(conn);
        calls.push(rejection(conn.do('GET', 'k')));
      }
      expect(await eventually(() => headersSent === 8)).toBe(true);
      // Reading them sends no event: a moment for the conns to take in what was sent.
      await sleep(50);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
      for (const conn of conns) await conn.close();
      for (const err of await Promise.all(calls)) expect(err).toBeInstanceOf(ConnClosedError);
    } finally {
      await fake.close();
    }
  });

  it('maxReplyBytes is validated', async () => {
    await expect(dial(server.addr, { maxReplyBytes: 0 })).rejects.toThrow(/maxReplyBytes/);
    await expect(dial(server.addr, { maxReplyBytes: 1.5 })).rejects.toThrow(/maxReplyBytes/);
  });
});

describe('timeouts beyond 2^31-1 ms are refused, never fire at once', () => {
  it('doWithTimeout / receiveWithTimeout: RangeError, and the connection stays healthy', async () => {
    const conn = await dial(server.addr);
    try {
      const err = await rejection(conn.doWithTimeout(3e9, 'PING'));
      expect(err).toBeInstanceOf(RangeError);
      expect(String(err)).toMatch(/timeoutMs/);
      expect(await rejection(conn.receiveWithTimeout(MAX_TIMEOUT_MS + 1))).toBeInstanceOf(RangeError);
      // A timer that does not fire sends no event: an over-long one armed anyway
      // would fire after 1 ms, well within this wait.
      await sleep(20);
      expect(conn.err()).toBeNull();
      expect(await conn.doWithTimeout(MAX_TIMEOUT_MS, 'PING')).toBe('PONG');
    } finally {
      await conn.close();
    }
  });

  it('pool.get({ timeoutMs: 3e9 }), dial and pool options: RangeError naming the option', async () => {
    const pool = newPool(server.addr);
    try {
      const err = await rejection(pool.get({ timeoutMs: 3e9 }));
      expect(err).toBeInstanceOf(RangeError);
      expect(String(err)).toMatch(/timeoutMs/);
      expect(pool.stats().activeCount).toBe(0);
    } finally {
      await pool.close();
    }
    for (const key of ['connectTimeoutMs', 'readTimeoutMs', 'writeTimeoutMs'] as const) {
      const dialErr = await rejection(dial(server.addr, { [key]: 3e9 }));
      expect(dialErr).toBeInstanceOf(RangeError);
      expect(String(dialErr)).toContain(key);
    }
    expect(() => new Pool({ dial: () => dial(server.addr), resetTimeoutMs: 3e9 })).toThrow(/resetTimeoutMs/);
    // A return is always bounded: 0 ("no deadline") would let close() wait forever on a hung reply.
    expect(() => new Pool({ dial: () => dial(server.addr), resetTimeoutMs: 0 })).toThrow(/resetTimeoutMs must be a positive/);
  });
});

describe('bad input: typed errors, as rejections, nothing written', () => {
  it('do(123), do(undefined), do(["GET","k"]) reject with TypeError and write nothing', async () => {
    const conn = await dial(server.addr);
    try {
      const call = conn.do as unknown as (...args: unknown[]) => Promise<unknown>;
      for (const bad of [123, undefined, ['GET', 'k'], null, {}]) {
        const err = await rejection(call.call(conn, bad));
        expect(err).toBeInstanceOf(TypeError);
        expect(String(err)).toMatch(/command name/);
      }
      expect(() => (conn.send as unknown as (cmd: unknown) => void)(42)).toThrow(TypeError);
      expect(conn.inFlight()).toBe(0);
      expect(await conn.do('ECHO', 'still in sync')).toEqual(Buffer.from('still in sync'));
      expect(conn.err()).toBeNull();
    } finally {
      await conn.close();
    }
  });

  it('pool.do and lease.do report bad input as rejected promises, never synchronous throws', async () => {
    const pool = newPool(server.addr);
    try {
      const poolDo = pool.do as unknown as (cmd: unknown) => Promise<unknown>;
      let promise: Promise<unknown> | undefined;
      expect(() => (promise = poolDo.call(pool, 123))).not.toThrow();
      expect(await rejection(promise as Promise<unknown>)).toBeInstanceOf(TypeError);
      const lease = pool.lease();
      const leaseDo = lease.do as unknown as (cmd: unknown) => Promise<unknown>;
      expect(() => (promise = leaseDo.call(lease, 123))).not.toThrow();
      expect(await rejection(promise as Promise<unknown>)).toBeInstanceOf(TypeError);
      expect(() => (lease.send as unknown as (cmd: unknown) => void)(123)).toThrow(TypeError);
      // A bad per-call deadline is refused before the lease borrows a connection for it.
      expect(await rejection(lease.doWithTimeout(3e9, 'PING'))).toBeInstanceOf(RangeError);
      expect(await rejection(lease.receiveWithTimeout(-1))).toBeInstanceOf(RangeError);
      expect(await rejection(lease.doWithSignal(AbortSignal.abort(new Error('gone')), 'PING'))).toMatchObject({ message: 'gone' });
      expect(pool.stats().leaseMoves).toBe(0);
      expect(await lease.do('PING')).toBe('PONG');
      await lease.close();
    } finally {
      await pool.close();
    }
  });

  it('Pool options of the wrong type are refused, naming the option', () => {
    const make = (extra: Record<string, unknown>): Pool => new Pool({ dial: () => dial(server.addr), ...extra });
    expect(() => make({ wait: 'no' })).toThrow(/wait must be a boolean/);
    expect(() => make({ testOnBorrow: 'yes' })).toThrow(/testOnBorrow must be a function/);
    expect(() => make({ maxActive: -1 })).toThrow(/maxActive/);
  });

  it('numbers go out in plain decimal, never exponent form', async () => {
    expect(decimal(1e21)).toBe('1000000000000000000000');
    expect(decimal(-1.5e22)).toBe('-15000000000000000000000');
    expect(decimal(1e-7)).toBe('0.0000001');
    expect(decimal(-2.5e-8)).toBe('-0.000000025');
    expect(decimal(1.2345e-10)).toBe('0.00000000012345');
    expect(decimal(123.456)).toBe('123.456');
    expect(decimal(0)).toBe('0');
    for (const n of [1e21, 1e-7, 1.7976931348623157e308, 5e-324, -3.14e-9]) expect(Number(decimal(n))).toBe(n);
    expect(encodeCommand('SET', 'k', 1e21).toString()).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$22\r\n1000000000000000000000\r\n');
    const conn = await dial(server.addr);
    try {
      await conn.do('SET', 'reliability:big', 1e21);
      expect(text(await conn.do('GET', 'reliability:big'))).toBe('1000000000000000000000');
      await conn.do('SET', 'reliability:small', 0);
      expect(text(await conn.do('INCRBYFLOAT', 'reliability:small', 1e-7))).toBe('0.0000001');
    } finally {
      await conn.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { ConnClosedError, newPool, PoolExhaustedError, RedisError, type Conn, type Pool } from '../src/index.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { clientList, guardProcessErrors, rejection, text, useServerWithConn } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;

useServerWithConn((started) => ({ server, conn: admin } = started));

/** Runs `body` with a fresh pool, then checks it closes clean. */
async function withPool(body: (pool: Pool) => Promise<void>, overrides: Parameters<typeof newPool>[2] = {}): Promise<void> {
  const pool = newPool(server.addr, 0, overrides);
  try {
    await body(pool);
  } finally {
    await pool.close();
  }
  expect(pool.stats().activeCount).toBe(0);
}

describe('Pool.lease (LazyConn)', () => {
  it('runs stateless commands on the shared connection: 100 leases, one dial', async () => {
    await withPool(async (pool) => {
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const conn = pool.lease();
          try {
            await conn.do('SET', `lease:${i}`, String(i));
            expect(text(await conn.do('GET', `lease:${i}`))).toBe(String(i));
          } finally {
            await conn.close();
          }
        }),
      );
      expect(pool.stats()).toMatchObject({ dials: 1, activeCount: 1, idleCount: 0 });
    });
  });

  it('keeps redigo semantics on the shared path: send/flush/receive, do("") with errors as values, do rejecting with the first error', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      await conn.do('SET', 'lease:str', 'x');
      conn.send('INCR', 'lease:n1');
      conn.send('LPUSH', 'lease:str', 'boom'); // WRONGTYPE
      conn.send('INCR', 'lease:n1');
      await conn.flush();
      expect(await conn.receive()).toBe(1);
      expect(await rejection(conn.receive())).toBeInstanceOf(RedisError);
      expect(await conn.receive()).toBe(2);

      conn.send('INCR', 'lease:n2');
      conn.send('LPUSH', 'lease:str', 'boom');
      const drained = (await conn.do('')) as unknown[];
      expect(drained[0]).toBe(1);
      expect(drained[1]).toBeInstanceOf(RedisError);

      conn.send('LPUSH', 'lease:str', 'boom');
      const err = await rejection(conn.do('INCR', 'lease:n2'));
      expect((err as RedisError).code).toBe('WRONGTYPE');
      expect(text(await conn.do('GET', 'lease:n2'))).toBe('2'); // the INCR after the error still ran
      await conn.close();
      expect(pool.stats().dials).toBe(1);
    });
  });

  it('moves to an exclusive connection for MULTI, in order, and returns it on close', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      await conn.do('DEL', 'lease:tx');
      conn.send('INCR', 'lease:tx');
      conn.send('INCR', 'lease:tx');
      await conn.flush();
      expect(await conn.do('MULTI')).toBe('OK'); // reads the two INCR replies first
      expect(await conn.do('INCR', 'lease:tx')).toBe('QUEUED');
      expect(await conn.do('EXEC')).toEqual([3]);
      expect(pool.stats()).toMatchObject({ activeCount: 2, inUseCount: 2, idleCount: 0 });
      await conn.close();
      expect(pool.stats()).toMatchObject({ activeCount: 2, idleCount: 1 });
    });
  });

  it('replays buffered sends on the exclusive connection: send MULTI … EXEC then do("")', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      conn.send('MULTI');
      conn.send('SET', 'lease:m', 'v');
      conn.send('EXEC');
      expect(await conn.do('')).toEqual(['OK', 'QUEUED', ['OK']]);
      await conn.close();
    });
  });

  it('moves for a blocking command, a per-call timeout, and a receive with nothing owed', async () => {
    await withPool(async (pool) => {
      const blocking = pool.lease();
      const popped = blocking.do('BLPOP', 'lease:q', 0);
      const other = pool.lease();
      expect(await other.do('PING')).toBe('PONG'); // the shared connection is not blocked
      await other.do('LPUSH', 'lease:q', 'job');
      expect((await popped as Buffer[]).map(String)).toEqual(['lease:q', 'job']);
      await blocking.close();
      await other.close();

      const timed = pool.lease();
      expect(await timed.doWithTimeout(1000, 'PING')).toBe('PONG');
      await timed.close();

      const listener = pool.lease();
      listener.send('SUBSCRIBE', 'lease:ch');
      await listener.flush();
      expect((await listener.receive() as unknown[]).map(String)).toEqual(['subscribe', 'lease:ch', '1']);
      await admin.do('PUBLISH', 'lease:ch', 'hi');
      expect((await listener.receive() as unknown[]).map(String)).toEqual(['message', 'lease:ch', 'hi']);
      await listener.close();
      // Returned clean: no client is left subscribed.
      const subscribed = (await clientList(admin)).filter((client) => client.sub !== '0');
      expect(subscribed).toEqual([]);
    });
  });

  it('a move that cannot get a connection rejects that call; the lease may retry later', async () => {
    await withPool(
      async (pool) => {
        const holder = await pool.get();
        const conn = pool.lease();
        expect(await conn.do('PING')).toBe('PONG'); // shared: no slot needed
        expect(await rejection(conn.do('MULTI'))).toBeInstanceOf(PoolExhaustedError);
        await holder.close();
        expect(await conn.do('MULTI')).toBe('OK');
        expect(await conn.do('EXEC')).toEqual([]);
        await conn.close();
      },
      { maxActive: 1, wait: false },
    );
  });

  it('rejects bad arguments with TypeError, in send (thrown) and do (rejected), nothing sent', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      expect(() => conn.send('SET', 'k', {} as never)).toThrow(TypeError);
      expect(await rejection(conn.do('SET', 'k', Symbol('x') as never))).toBeInstanceOf(TypeError);
      expect(await conn.do('')).toEqual([]);
      await conn.close();
    });
  });

  it('after close: every call rejects ConnClosedError, close is harmless twice, owed errors do not leak', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      await conn.do('SET', 'lease:s', 'x');
      conn.send('LPUSH', 'lease:s', 'boom'); // an error reply nobody will read
      await conn.flush();
      await conn.close();
      await conn.close();
      expect(conn.err()).toBeInstanceOf(ConnClosedError);
      expect(await rejection(conn.do('PING'))).toBeInstanceOf(ConnClosedError);
      expect(await rejection(conn.receive())).toBeInstanceOf(ConnClosedError);
      expect(() => conn.send('PING')).toThrow(ConnClosedError);
    });
  });

  it('a killed shared connection fails the calls in flight with ConnClosedError; the next lease works', async () => {
    await withPool(async (pool) => {
      const conn = pool.lease();
      await conn.do('PING');
      const victim = (await clientList(admin)).find((client) => client.cmd === 'ping');
      await admin.do('CLIENT', 'KILL', 'ID', victim?.id ?? '');
      const settled = await conn.do('PING').then(
        () => 'ok',
        (err: unknown) => err,
      );
      if (settled !== 'ok') expect(settled).toBeInstanceOf(ConnClosedError);
      const next = pool.lease();
      expect(await next.do('PING')).toBe('PONG');
      await next.close();
      await conn.close();
    });
  });
});

/**
 * Reply order and deadlines in the corners a review found: unasked RESP3
 * pushes must not extend a read deadline; a receive queued behind a do('')
 * still gets a parked push; a lease's do('') owns the replies owed when it
 * was called; a lease closed during a move still writes what was flushed.
 */
import { describe, expect, it } from 'vitest';
import type { Conn } from '../src/conn.js';
import { dial } from '../src/dial.js';
import { TimeoutError } from '../src/errors.js';
import { newPool } from '../src/pool.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, rejection, someoneBlocked, text, useServerWithConn, within } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;
useServerWithConn((started) => ({ server, conn: admin } = started));

describe('connection', () => {
  it('unasked RESP3 pushes do not extend the read deadline of the awaited reply', async () => {
    const conn = await dial(server.addr, { protocol: 3, readTimeoutMs: 300 });
    conn.send('SUBSCRIBE', 'ordering:ch');
    await conn.flush();
    await conn.receive(); // the confirmation
    const publisher = setInterval(() => void admin.do('PUBLISH', 'ordering:ch', 'tick').catch(() => {}), 100);
    try {
      const started = performance.now();
      const err = await within(rejection(conn.do('BLPOP', 'ordering:nokey', 0)), 2_000, 'BLPOP under pushes');
      expect(err).toBeInstanceOf(TimeoutError);
      expect(performance.now() - started).toBeLessThan(800);
    } finally {
      clearInterval(publisher);
      await conn.close();
    }
  });

  it('a receive queued behind a do("") gets the push parked while the do before them waited', async () => {
    const conn = await dial(server.addr, { protocol: 3 });
    try {
      conn.send('SUBSCRIBE', 'ordering:ch2');
      await conn.flush();
      await conn.receive();
      const blpop = conn.do('BLPOP', 'ordering:k2', 0);
      const drained = conn.do('');
      const received = conn.receive();
      // The push comes while the BLPOP is blocked …
      expect(await eventually(() => someoneBlocked(admin))).toBe(true);
      await admin.do('PUBLISH', 'ordering:ch2', 'm1');
      // … and, PUBLISH answered before RPUSH is sent, on the wire before the BLPOP reply.
      await admin.do('RPUSH', 'ordering:k2', 'v');
      await blpop;
      await drained;
      const message = (await within(received, 1_000, 'receive behind do("")')) as unknown[];
      expect(message.map((part) => text(part as Buffer))).toEqual(['message', 'ordering:ch2', 'm1']);
    } finally {
      await conn.close();
    }
  });
});

describe('lease', () => {
  it('do("") on the shared path resolves the replies owed when it was called, not later ones', async () => {
    const pool = newPool(server.addr);
    try {
      await admin.do('MSET', 'ordering:a', 'A', 'ordering:b', 'B');
      const lease = pool.lease();
      const first = lease.do('GET', 'ordering:a');
      lease.send('GET', 'ordering:a');
      const drained = lease.do('');
      lease.send('GET', 'ordering:b');
      await lease.flush();
      const later = lease.receive();
      expect(text((await first) as Buffer)).toBe('A');
      expect(((await drained) as Buffer[]).map((reply) => text(reply))).toEqual(['A']);
      expect(text((await later) as Buffer)).toBe('B');
      await lease.close();
    } finally {
      await pool.close();
    }
  });

  it('do("") during a move keeps its replies from a later do, and settles when closed right after', async () => {
    const pool = newPool(server.addr);
    try {
      const lease = pool.lease();
      lease.send('WATCH', 'ordering:w');
      lease.send('INCR', 'ordering:n1');
      const drained = lease.do('');
      const later = lease.do('GET', 'ordering:n1');
      expect(await drained).toEqual(['OK', expect.any(Number)]);
      expect(text((await later) as Buffer)).toMatch(/^\d+$/);
      await lease.close();

      const again = pool.lease();
      again.send('WATCH', 'ordering:w');
      const closingDrain = again.do('');
      const closed = again.close();
      expect(await closingDrain).toEqual(['OK']);
      await closed;
    } finally {
      await pool.close();
    }
  });

  it('close() during a move still writes what was sent and flushed', async () => {
    const pool = newPool(server.addr);
    try {
      await admin.do('DEL', 'ordering:k3');
      const lease = pool.lease();
      lease.send('MULTI');
      lease.send('SET', 'ordering:k3', 'v');
      lease.send('EXEC');
      const flushed = lease.flush();
      await lease.close();
      await flushed;
      expect(text((await admin.do('GET', 'ordering:k3')) as Buffer)).toBe('v');
    } finally {
      await pool.close();
    }
  });
});

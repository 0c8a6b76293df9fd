import { describe, expect, it } from 'vitest';
import { dial, type Conn } from '../src/index.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { eventually, someoneBlocked, useServerWithConn } from './helpers.js';

describe('RESP3 pushes and replies sharing one connection', () => {
  let server: TestRedisServer;
  let other: Conn;
  useServerWithConn((started) => ({ server, conn: other } = started));

  it('a message arriving during a blocking do() goes to the receive queued behind it', async () => {
    const conn = await dial(server.addr, { protocol: 3 });
    conn.send('SUBSCRIBE', 'news');
    await conn.flush();
    expect(await conn.receive()).toEqual([Buffer.from('subscribe'), Buffer.from('news'), 1]);

    const popped = conn.do('BLPOP', 'queue', 0);
    const message = conn.receiveWithTimeout(5000);
    // Wait until the BLPOP is really blocked, then publish before unblocking it.
    expect(await eventually(() => someoneBlocked(other))).toBe(true);
    expect(await other.do('PUBLISH', 'news', 'hello')).toBe(1);
    await other.do('LPUSH', 'queue', 'job');

    expect(await popped).toEqual([Buffer.from('queue'), Buffer.from('job')]);
    expect(await message).toEqual([Buffer.from('message'), Buffer.from('news'), Buffer.from('hello')]);
    expect(conn.err()).toBeNull();
    await conn.close();
  });
});

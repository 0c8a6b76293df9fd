import { describe, expect, it } from 'vitest';
import { ConnClosedError, dial, newPool, Pool, PoolClosedError, type Conn } from '../src/index.js';
import { sharedRefusal } from '../src/commands.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { clientList, guardProcessErrors, rejection, settle, useServerWithConn, within } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;

useServerWithConn((started) => ({ server, conn: admin } = started));

/** Kills the server-side client currently running or last ran `cmd`. */
async function killClientWhoseLastCommandWas(cmd: string): Promise<void> {
  const victim = (await clientList(admin)).find((client) => client.cmd === cmd);
  expect(victim, `a client whose last command was ${cmd}`).toBeDefined();
  await admin.do('CLIENT', 'KILL', 'ID', victim?.id ?? '');
}

describe('Pool.do (the shared connection)', () => {
  it('a purge during a slow shared dial: the newer dial keeps the slot, the late one is released, close() does not hang', async () => {
    // The first dial is held until the test opens it; later dials go through at once.
    let openFirst: () => void = () => {};
    const firstHeld = new Promise<void>((resolve) => (openFirst = resolve));
    let dials = 0;
    const pool = new Pool({
      dial: async () => {
        const conn = await dial(server.addr);
        if (++dials === 1) await firstHeld;
        return conn;
      },
    });
    const first = settle(pool.do('PING'));
    pool.purge(); // a failover, say: the dial in flight is given up
    expect(await pool.do('PING')).toBe('PONG'); // a newer dial, landing first
    openFirst();
    const late = await first;
    expect(late.ok ? late.value : late.error).toBeInstanceOf(ConnClosedError);
    // The newer connection stays the shared one; the late one was released, not counted.
    expect(await pool.do('PING')).toBe('PONG');
    expect(pool.stats()).toMatchObject({ activeCount: 1, inUseCount: 1, dials: 2 });
    await within(pool.close(), 2_000, 'pool.close() after a purge raced a dial');
    expect(pool.stats().activeCount).toBe(0);
    await expect.poll(async () => (await clientList(admin)).length, { timeout: 2_000, interval: 20 }).toBe(1);
  });

  it('runs commands without a borrow, on one connection, and counts it as in use', async () => {
    const pool = newPool(server.addr, 0);
    await pool.do('SET', 'shared:k', 'v');
    expect((await pool.do('GET', 'shared:k'))?.toString()).toBe('v');
    expect(pool.stats()).toMatchObject({ activeCount: 1, idleCount: 0, inUseCount: 1, dials: 1 });
    await pool.close();
    expect(pool.stats().activeCount).toBe(0);
  });

  it('auto-pipelines: 1000 commands issued in one tick go out on one connection, replies in order', async () => {
    const pool = newPool(server.addr, 0);
    await pool.do('DEL', 'shared:n');
    const before = Number(/total_commands_processed:(\d+)/.exec(String(await admin.do('INFO', 'stats')))?.[1]);
    const replies = await Promise.all(Array.from({ length: 1000 }, () => pool.do('INCR', 'shared:n')));
    expect(replies).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const after = Number(/total_commands_processed:(\d+)/.exec(String(await admin.do('INFO', 'stats')))?.[1]);
    expect(after - before).toBe(1000 + 1); // + our own INFO
    expect(pool.stats().dials).toBe(1);
    await pool.close();
  });

  it.each([
    ['MULTI', []],
    ['exec', []],
    ['Watch', ['k']],
    ['SUBSCRIBE', ['ch']],
    ['psubscribe', ['c*']],
    ['MONITOR', []],
    ['select', ['1']],
    ['BLPOP', ['k', '0']],
    ['brpop', ['k', '0']],
    ['BLMOVE', ['a', 'b', 'LEFT', 'RIGHT', '0']],
    ['XREAD', ['block', '0', 'STREAMS', 's', '$']],
    ['CLIENT', ['SETNAME', 'x']],
    ['WAIT', ['1', '0']],
  ] as const)('refuses %s with a TypeError pointing to pool.get()', async (cmd, args) => {
    const pool = newPool(server.addr, 0);
    const err = await rejection(pool.do(cmd, ...args));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain('pool.get()');
    expect(pool.stats().dials).toBe(0); // refused before anything was dialed
    await pool.close();
  });

  it('lets XREAD without BLOCK and ordinary commands in any case through', () => {
    expect(sharedRefusal('XREAD', ['COUNT', '1', 'STREAMS', 's', '0'])).toBeNull();
    expect(sharedRefusal('get', ['k'])).toBeNull();
    expect(sharedRefusal('Get', ['k'])).toBeNull();
    expect(sharedRefusal('HSET', ['h', 'f', 'v'])).toBeNull();
  });

  it('recovers from a killed shared connection: calls in flight fail, the next one redials', async () => {
    const pool = newPool(server.addr, 0);
    await pool.do('PING');
    await killClientWhoseLastCommandWas('ping');
    // The first call after the kill may still be written to the dead socket.
    const first = await settle(pool.do('ECHO', 'a'));
    if (!first.ok) expect(first.error).toBeInstanceOf(ConnClosedError);
    expect((await pool.do('ECHO', 'b'))?.toString()).toBe('b');
    expect(pool.stats()).toMatchObject({ activeCount: 1, inUseCount: 1 });
    expect(pool.stats().dials).toBe(2);
    await pool.close();
  });

  it('sits outside maxActive: replacing it never hands a slot to a waiting get()', async () => {
    const pool = new Pool({ dial: () => dial(server.addr), maxActive: 1 });
    const held = await pool.get();
    const waiting = settle(pool.get());
    await pool.do('ECHO', 'first');
    await killClientWhoseLastCommandWas('echo');
    await settle(pool.do('PING'));
    await pool.do('PING'); // a new shared connection
    // A get that stays waiting sends no event: give a wrong hand-off (a dial for it) a moment to show.
    const raced = await Promise.race([waiting, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 100))]);
    expect(raced).toBe('still waiting');
    expect(pool.stats()).toMatchObject({ activeCount: 2, idleCount: 0, inUseCount: 2 });
    await held.close();
    const next = await waiting;
    expect(next.ok).toBe(true);
    if (next.ok) await next.value.close();
    await pool.close();
  });

  it('rejects with PoolClosedError after close, and close waits for the shared connection', async () => {
    const pool = newPool(server.addr, 0);
    await pool.do('PING');
    await pool.close();
    expect(pool.stats().activeCount).toBe(0);
    expect(await rejection(pool.do('PING'))).toBeInstanceOf(PoolClosedError);
  });

  it('surfaces a dial error to the caller and counts it', async () => {
    const pool = newPool('127.0.0.1:1', 0, { connectTimeoutMs: 1000 });
    const err = await rejection(pool.do('PING'));
    expect((err as Error).message).toContain('127.0.0.1:1');
    expect(pool.stats()).toMatchObject({ activeCount: 0, dials: 1, dialErrors: 1 });
    await pool.close();
  });
});

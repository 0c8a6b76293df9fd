/**
 * The command table: one home for what each command does to a connection,
 * read by the pool's reset, the shared connection's refusals, the push
 * dispatch and pub/sub. Table-driven checks, then the behaviours it drives
 * on a real redis-server (state left by a borrower never reaches the next).
 */
import { describe, expect, it } from 'vitest';
import { ConnState, SUBSCRIPTION_KINDS, commandInfo, sharedRefusal, stateChangeOf } from '../src/commands.js';
import type { Conn } from '../src/conn.js';
import { newPool } from '../src/pool.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { guardProcessErrors, text, useServerWithConn } from './helpers.js';

guardProcessErrors();

let server: TestRedisServer;
let admin: Conn;
useServerWithConn((started) => ({ server, conn: admin } = started));

describe('the table', () => {
  it.each([
    ['WATCH', [], { set: ConnState.Watch, clear: 0 }],
    ['multi', [], { set: ConnState.Multi, clear: 0 }],
    ['Exec', [], { set: 0, clear: ConnState.Watch | ConnState.Multi }],
    ['SUBSCRIBE', ['c'], { set: ConnState.Subscribe, clear: 0 }],
    ['SSUBSCRIBE', ['c'], { set: ConnState.ShardSubscribe, clear: 0 }],
    ['SELECT', ['1'], { set: ConnState.Tainted, clear: 0 }],
    ['CLIENT', ['SETNAME', 'x'], { set: ConnState.Tainted, clear: 0 }],
    ['client', ['tracking', 'on'], { set: ConnState.Tainted, clear: 0 }],
    ['CLIENT', [Buffer.from('reply'), 'OFF'], { set: ConnState.Tainted, clear: 0 }],
    ['READONLY', [], { set: ConnState.Tainted, clear: 0 }],
  ] as const)('%s %j changes the state', (cmd, args, change) => {
    expect(stateChangeOf(cmd, [...args])).toEqual(change);
  });

  it.each([
    ['GET', ['k']],
    ['CLIENT', ['GETNAME']],
    ['CLIENT', ['ID']],
    ['UNSUBSCRIBE', []],
    ['BLPOP', ['q', '1']],
  ] as const)('%s %j leaves no state to reset', (cmd, args) => {
    expect(stateChangeOf(cmd, [...args])).toBeUndefined();
  });

  it('refusals of the shared connection: state, blocking, several replies; XREAD only with BLOCK', () => {
    for (const cmd of ['MULTI', 'watch', 'SUBSCRIBE', 'SELECT', 'CLIENT', 'BLPOP', 'BZMPOP', 'WAIT', 'MONITOR', 'QUIT']) {
      expect(sharedRefusal(cmd, []), cmd).toMatch(/borrow one with pool.get\(\)/);
    }
    expect(sharedRefusal('XREAD', ['BLOCK', '0', 'STREAMS', 's', '$'])).not.toBeNull();
    expect(sharedRefusal('XREAD', ['COUNT', '1', 'STREAMS', 's', '0'])).toBeNull();
    for (const cmd of ['GET', 'set', 'EVALSHA', 'PUBLISH', 'SPUBLISH']) expect(sharedRefusal(cmd, []), cmd).toBeNull();
    expect(sharedRefusal(123 as unknown as string, [])).toBeNull();
  });

  it('rows that only say where the keys are leave no state and are shared-safe', () => {
    for (const [cmd, args] of [['GET', ['k']], ['hset', ['h', 'f', 'v']], ['EVAL', ['return 1', '0']], ['OBJECT', ['ENCODING', 'k']], ['SPUBLISH', ['c', 'm']]] as const) {
      expect(commandInfo(cmd), cmd).toBeDefined();
      expect(stateChangeOf(cmd, [...args]), cmd).toBeUndefined();
      expect(sharedRefusal(cmd, [...args]), cmd).toBeNull();
    }
    // A container's state comes from its subcommand row; an unknown subcommand leaves none.
    expect(stateChangeOf('CLIENT', ['NO-SUCH-SUBCOMMAND'])).toBeUndefined();
    expect(stateChangeOf('CLIENT', [])).toBeUndefined();
  });

  it('subscription confirmations come from the table', () => {
    expect([...SUBSCRIPTION_KINDS].sort()).toEqual(['psubscribe', 'punsubscribe', 'ssubscribe', 'subscribe', 'sunsubscribe', 'unsubscribe']);
    expect(commandInfo('PUBLISH')).toBeUndefined();
  });
});

describe('what the table drives on a real server', () => {
  it('CLIENT SETNAME on a borrowed connection never reaches the next borrower', async () => {
    const pool = newPool(server.addr, 0, { clientName: 'table-test' });
    try {
      const first = await pool.get();
      await first.do('CLIENT', 'SETNAME', 'renamed-by-borrower');
      await first.close();
      const next = await pool.get();
      expect(text(await next.do('CLIENT', 'GETNAME'))).toBe('table-test');
      await next.close();
      // The renamed connection was closed, not reused.
      const names = text(await admin.do('CLIENT', 'LIST'));
      expect(names).not.toContain('renamed-by-borrower');
    } finally {
      await pool.close();
    }
  });

  it('a lease that moved for CLIENT SETNAME returns a connection no one else gets', async () => {
    const pool = newPool(server.addr, 0, { clientName: 'table-test' });
    try {
      const lease = pool.lease();
      await lease.do('CLIENT', 'SETNAME', 'renamed-by-lease');
      expect(text(await lease.do('CLIENT', 'GETNAME'))).toBe('renamed-by-lease');
      await lease.close();
      const next = await pool.get();
      expect(text(await next.do('CLIENT', 'GETNAME'))).toBe('table-test');
      await next.close();
    } finally {
      await pool.close();
    }
  });
});

/**
 * The sentinel-backed pool against real master/replica/sentinel processes:
 * finding the master, following it across failovers under load, the
 * sentinels it survives losing, and the errors when it cannot.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ConnClosedError, dial, newSentinelPool, RedisError, SentinelError, TimeoutError, type SentinelPool } from '../src/index.js';
import { startRedisSentinel, type TestRedisSentinel } from '../src/testing/index.js';
import { eventually, guardProcessErrors, rejection, sleep, text, within } from './helpers.js';

guardProcessErrors();

let deployment: TestRedisSentinel;

beforeAll(async () => {
  deployment = await startRedisSentinel({ replicas: 1, sentinels: 3 });
}, 60_000);

afterAll(async () => {
  await deployment?.stop();
});

function pool(overrides: Partial<Parameters<typeof newSentinelPool>[0]> = {}): SentinelPool {
  return newSentinelPool({ sentinels: deployment.sentinels, masterName: deployment.masterName, connectTimeoutMs: 500, readTimeoutMs: 1_000, ...overrides });
}

async function roleOf(addr: string): Promise<string> {
  const conn = await dial(addr);
  try {
    return text(((await conn.do('ROLE')) as Buffer[])[0]);
  } finally {
    await conn.close();
  }
}

/** Errors a caller may see while the master is switched: all typed, none a hang. */
function isTypedSwitchError(err: unknown): boolean {
  return err instanceof ConnClosedError || err instanceof TimeoutError || err instanceof SentinelError || (err instanceof RedisError && ['READONLY', 'LOADING', 'MASTERDOWN'].includes(err.code)) || (err as { code?: string }).code === 'REDIS_CONN_CLOSED';
}

describe('newSentinelPool', () => {
  it('finds the master through the sentinels and runs do, get and leases on it', async () => {
    const source = pool();
    try {
      expect(await source.do('SET', 'sentinel:k', 'v')).toBe('OK');
      await using conn = await source.get();
      expect(text(await conn.do('GET', 'sentinel:k'))).toBe('v');
      const lease = source.lease();
      await lease.do('MULTI');
      await lease.do('INCR', 'sentinel:n');
      expect(await lease.do('EXEC')).toEqual([1]);
      await lease.close();
      expect(source.master).toBe(await deployment.currentMaster());
      expect(source.stats()).toMatchObject({ master: source.master, failovers: 0 });
      await source.check(1_000);
    } finally {
      await source.close();
    }
  });

  it('names the master name no sentinel knows, promptly', async () => {
    const source = pool({ masterName: 'no-such-master' });
    try {
      const started = performance.now();
      const err = await rejection(source.do('PING'));
      expect(err).toBeInstanceOf(SentinelError);
      expect(String(err)).toContain('"no-such-master"');
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await source.close();
    }
  });

  it('says why when no sentinel answers, naming each', async () => {
    const source = newSentinelPool({ sentinels: ['127.0.0.1:1', '127.0.0.1:2'], masterName: 'mymaster', connectTimeoutMs: 300 });
    try {
      const err = (await rejection(source.do('PING'))) as SentinelError;
      expect(err).toBeInstanceOf(SentinelError);
      expect(err.causes).toHaveLength(2);
      expect(err.message).toContain('127.0.0.1:1');
      expect(err.message).toContain('127.0.0.1:2');
    } finally {
      await source.close();
    }
  });

  it('works with every sentinel but one down (dead ones listed first)', async () => {
    const source = newSentinelPool({ sentinels: ['127.0.0.1:1', '127.0.0.1:2', deployment.sentinels[2] as string], masterName: deployment.masterName, connectTimeoutMs: 300 });
    try {
      expect(await source.do('SET', 'sentinel:one', '1')).toBe('OK');
    } finally {
      await source.close();
    }
  });
});

/**
 * A sentinel that lies: it names `addr` as the master whatever it is asked.
 * A real sentinel cannot be made to; this is the protocol edge case the ROLE
 * check exists for.
 */
async function lyingSentinel(addr: string): Promise<{ addr: string; close(): Promise<void> }> {
  const [host, port] = addr.split(':') as [string, string];
  const answer = `*2\r\n$${host.length}\r\n${host}\r\n$${port.length}\r\n${port}\r\n`;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => socket.write(answer));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    addr: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('trust', () => {
  it('catches a sentinel that names a replica (ROLE check), and asks the others', async () => {
    const replica = deployment.replicas().find((node) => node.addr !== undefined) as { addr: string };
    expect(await roleOf(replica.addr)).toBe('slave');
    const liar = await lyingSentinel(replica.addr);
    const alone = newSentinelPool({ sentinels: [liar.addr], masterName: deployment.masterName, connectTimeoutMs: 500 });
    const withHonest = newSentinelPool({ sentinels: [liar.addr, ...deployment.sentinels], masterName: deployment.masterName, connectTimeoutMs: 500 });
    try {
      const err = await rejection(alone.do('SET', 'sentinel:lie', '1'));
      expect(err).toBeInstanceOf(SentinelError);
      expect(String(err)).toMatch(/says ROLE slave, not master/);
      expect(await withHonest.do('SET', 'sentinel:lie', '1')).toBe('OK');
      expect(withHonest.master).toBe(await deployment.currentMaster());
    } finally {
      await Promise.all([alone.close(), withHonest.close()]);
      await liar.close();
    }
  });

  it('a sentinel naming no address (empty host, bad port) is passed over, not dialed', async () => {
    const garbled = await lyingSentinel(':x');
    const alone = newSentinelPool({ sentinels: [garbled.addr], masterName: deployment.masterName, connectTimeoutMs: 500 });
    const withHonest = newSentinelPool({ sentinels: [garbled.addr, ...deployment.sentinels], masterName: deployment.masterName, connectTimeoutMs: 500 });
    try {
      const err = await rejection(alone.do('PING'));
      expect(err).toBeInstanceOf(SentinelError);
      expect(String(err)).toMatch(/answered \[.*\] for the master of .*, not an address/);
      expect(await withHonest.do('SET', 'sentinel:garbled', '1')).toBe('OK');
      expect(withHonest.master).toBe(await deployment.currentMaster());
    } finally {
      await Promise.all([alone.close(), withHonest.close()]);
      await garbled.close();
    }
  });

  it('authenticates to password-protected sentinels and data nodes', async () => {
    const secured = await startRedisSentinel({ replicas: 0, sentinels: 1, password: 'data pass', sentinelPassword: 'sentinel-pass' });
    try {
      const refused = newSentinelPool({ sentinels: secured.sentinels, masterName: secured.masterName, connectTimeoutMs: 500 });
      expect(await rejection(refused.do('PING'))).toBeInstanceOf(SentinelError);
      await refused.close();
      // A wrong sentinel password points at the sentinels' own credentials, never shows them.
      const wrong = newSentinelPool({ sentinels: secured.sentinels, masterName: secured.masterName, sentinelPassword: 'wrong-sentinel-pass', password: 'data pass', connectTimeoutMs: 500 });
      const err = await rejection(wrong.do('PING'));
      await wrong.close();
      expect(err).toBeInstanceOf(SentinelError);
      expect((err as Error).message).toContain(`${secured.sentinels[0]}: AUTH refused: WRONGPASS`);
      expect((err as Error).message).toContain('check sentinelPassword and sentinelUsername');
      expect((err as Error).message).not.toContain('wrong-sentinel-pass');
      const source = newSentinelPool({ sentinels: secured.sentinels, masterName: secured.masterName, sentinelPassword: 'sentinel-pass', password: 'data pass', connectTimeoutMs: 500 });
      try {
        expect(await source.do('SET', 'sentinel:auth', '1')).toBe('OK');
      } finally {
        await source.close();
      }
    } finally {
      await secured.stop();
    }
  }, 30_000);
});

describe('failover', () => {
  it('follows kill -9 of the master under 20 writers: typed errors only, back within 2 s of the announcement, nothing acknowledged by a demoted node', async () => {
    // When this test outlives its timeout, say which phase took the time.
    const started = performance.now();
    const phases: string[] = [];
    const phase = (name: string): void => void phases.push(`${name} at ${Math.round(performance.now() - started)} ms`);
    onTestFailed(() => console.log(`sentinel kill -9 phases: ${phases.join(', ')}`));
    const source = pool();
    const before = await deployment.currentMaster();
    await source.do('PING');
    let stop = false;
    const errors: unknown[] = [];
    const acked: { at: number; writer: number; value: number }[] = [];
    const writers = Array.from({ length: 20 }, async (_, writer) => {
      while (!stop) {
        try {
          const value = (await source.do('INCR', `sentinel:w:${writer}`)) as number;
          acked.push({ at: performance.now(), writer, value });
        } catch (err) {
          errors.push(err);
          await sleep(20); // no busy loop while the master is away
        }
      }
    });
    // Every writer is writing.
    expect(await eventually(() => new Set(acked.map((write) => write.writer)).size === 20, 5_000)).toBe(true);
    phase('writing');
    await deployment.killMaster();
    const { newMaster } = await deployment.waitForFailover(before, { timeoutMs: 15_000 });
    const announced = performance.now();
    phase('failover announced');
    // Traffic resumes: the first acknowledgment after the announcement.
    await eventually(() => acked.some((write) => write.at > announced), 5_000);
    const firstAfter = acked.find((write) => write.at > announced);
    // More traffic after the switch: until every writer has been acknowledged again (at most 5 s).
    await eventually(() => new Set(acked.filter((write) => write.at > announced).map((write) => write.writer)).size === 20, 5_000);
    stop = true;
    await Promise.all(writers);
    phase('writers stopped');
    try {
      expect(firstAfter, 'a write acknowledged after the failover').toBeDefined();
      expect((firstAfter?.at ?? Infinity) - announced).toBeLessThan(2_000);
      expect(errors.filter((err) => !isTypedSwitchError(err))).toEqual([]);
      expect(source.master).toBe(newMaster);
      expect(source.stats().failovers).toBe(1);
      // Every write acknowledged after the switch is on the new master.
      const conn = await dial(newMaster);
      try {
        for (let writer = 0; writer < 20; writer++) {
          const last = acked.filter((write) => write.writer === writer && write.at > announced).at(-1);
          if (last === undefined) continue;
          expect(Number(text(await conn.do('GET', `sentinel:w:${writer}`)))).toBeGreaterThanOrEqual(last.value);
        }
      } finally {
        await conn.close();
      }
      // The old master comes back as a replica; the pool keeps writing to the new one.
      await deployment.restartNode(before);
      phase('old master restarted and settled');
      expect(await roleOf(before)).toBe('slave');
      expect(await source.do('SET', 'sentinel:after', '1')).toBe('OK');
      expect(source.master).toBe(newMaster);
      console.log(`sentinel kill -9: ${errors.length} typed errors, first write ${Math.round((firstAfter?.at ?? 0) - announced)} ms after the sentinels named ${newMaster}`);
    } finally {
      await within(source.close(), 5_000, 'closing the sentinel pool');
      phase('closed');
    }
  }, 60_000);

  it('follows a graceful failover (the old master demoted while alive), never writing to it', async () => {
    const source = pool();
    try {
      await source.do('SET', 'sentinel:g', '0');
      const { old, newMaster } = await deployment.failover();
      // The switch is announced; a write right after goes to the new master.
      await eventually(() => source.master === newMaster, 3_000);
      expect(source.master).toBe(newMaster);
      expect(await source.do('SET', 'sentinel:g', '1')).toBe('OK');
      expect(await roleOf(old)).toBe('slave');
      const conn = await dial(newMaster);
      try {
        expect(text(await conn.do('GET', 'sentinel:g'))).toBe('1');
      } finally {
        await conn.close();
      }
    } finally {
      await source.close();
    }
  }, 30_000);
});

/**
 * The throwaway Redis Sentinel launcher: it forms a master, replicas and
 * sentinels that all see each other; a killed master is failed over (and
 * +switch-master published), comes back as a replica of the new one when
 * restarted; failover() promotes gracefully; sentinels can be killed and
 * restarted; passwords work end to end; stop() really stops. One deployment
 * per suite.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial } from '../src/dial.js';
import { RedisError } from '../src/errors.js';
import { PubSubConn, type PubSubMessage } from '../src/pubsub.js';
import type { Reply } from '../src/resp/decode.js';
import { startRedisSentinel, type TestRedisSentinel } from '../src/testing/index.js';
import { eventually, guardProcessErrors, rejection, text } from './helpers.js';

guardProcessErrors();

/** One command on a fresh connection (bulk strings as text). */
async function on(addr: string, password: string | undefined, cmd: string, ...args: (string | number)[]): Promise<Reply> {
  const conn = await dial(addr, { decodeStrings: true, password });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** A RESP2 field/value array as a record. */
function fields(reply: Reply): Record<string, string> {
  const list = reply as Reply[];
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[text(list[i])] = text(list[i + 1]);
  return out;
}

/** ROLE as [role, master host:port] (the latter only for a replica). */
async function roleOf(addr: string, password?: string): Promise<[string, string?]> {
  const reply = (await on(addr, password, 'ROLE')) as Reply[];
  const role = text(reply[0]);
  return role === 'slave' ? [role, `${text(reply[1])}:${String(reply[2])}`] : [role];
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    return process.kill(pid, 0);
  } catch {
    return false;
  }
}

/** Pids of this process's redis-server children. */
function redisChildren(): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes('redis-server') || line.includes('run.sh'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** The next published message on `psc`, skipping subscription confirmations. */
async function nextMessage(psc: PubSubConn, timeoutMs: number): Promise<PubSubMessage> {
  for (;;) {
    const notification = await psc.receiveWithTimeout(timeoutMs);
    if (notification.kind === 'message') return notification;
  }
}

describe('startRedisSentinel', () => {
  let deployment: TestRedisSentinel;
  let startupMs = 0;

  beforeAll(async () => {
    const started = Date.now();
    deployment = await startRedisSentinel();
    startupMs = Date.now() - started;
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it('forms a master, a replica and three sentinels that all see each other, in a few seconds', async () => {
    expect(startupMs).toBeLessThan(10_000);
    expect(deployment.masterName).toBe('mymaster');
    expect(deployment.sentinels).toHaveLength(3);
    expect(deployment.sentinels).toEqual(deployment.sentinelNodes.map((node) => node.addr));
    expect(deployment.dataNodes()).toHaveLength(2);
    const [master, replica] = deployment.dataNodes();
    expect(deployment.master()).toBe(master);
    expect(deployment.replicas()).toEqual([replica]);
    for (const node of [...deployment.dataNodes(), ...deployment.sentinelNodes]) expect(alive(node.pid)).toBe(true);
    expect(new Set([...deployment.sentinels, master?.addr, replica?.addr]).size).toBe(5);

    expect(await deployment.currentMaster()).toBe(master?.addr);
    for (const addr of deployment.sentinels) {
      const view = fields(await on(addr, undefined, 'SENTINEL', 'MASTER', 'mymaster'));
      expect(view).toMatchObject({ flags: 'master', ip: '127.0.0.1', port: String(master?.port), quorum: '2', 'num-other-sentinels': '2', 'num-slaves': '1' });
      expect(view['down-after-milliseconds']).toBe('1000');
      expect(view['failover-timeout']).toBe('3000');
    }
    expect(await roleOf(master?.addr ?? '')).toEqual(['master']);
    expect(await roleOf(replica?.addr ?? '')).toEqual(['slave', master?.addr]);
  });

  it('fails over when the master is killed, and the sentinels publish +switch-master', async () => {
    const [master, replica] = deployment.dataNodes();
    const psc = new PubSubConn(await dial(deployment.sentinels[1] ?? '', { decodeStrings: true }));
    try {
      await psc.subscribe('+switch-master');
      expect(await psc.receiveWithTimeout(2_000)).toMatchObject({ kind: 'subscribe', channel: '+switch-master' });

      const { old } = await deployment.killMaster();
      expect(old).toBe(master?.addr);
      expect(alive(master?.pid ?? 0)).toBe(false);
      const { newMaster, ms } = await deployment.waitForFailover(old);
      expect(newMaster).toBe(replica?.addr);
      // down-after-milliseconds 1000, then the vote: a few seconds at most.
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(10_000);

      const message = await nextMessage(psc, 5_000);
      expect(message.channel).toBe('+switch-master');
      expect(message.data.toString()).toBe(`mymaster 127.0.0.1 ${master?.port} 127.0.0.1 ${replica?.port}`);
    } finally {
      await psc.close();
    }
    expect(deployment.master()).toBe(replica);
    expect(deployment.replicas()).toEqual([master]);
    expect(await deployment.currentMaster()).toBe(replica?.addr);
    expect(await roleOf(replica?.addr ?? '')).toEqual(['master']);
  });

  it('brings the restarted old master back as a replica of the new master', async () => {
    const [oldMaster, newMaster] = deployment.dataNodes();
    const oldPid = oldMaster?.pid;
    await deployment.restartNode(oldMaster?.addr ?? '');
    const restarted = deployment.dataNodes()[0];
    expect(restarted?.addr).toBe(oldMaster?.addr);
    expect(restarted?.pid).not.toBe(oldPid);
    expect(alive(restarted?.pid ?? 0)).toBe(true);
    // The sentinels turn it into a replica; give their reconfiguration a bounded moment if it races the check.
    let role: unknown = null;
    await eventually(async () => JSON.stringify((role = await roleOf(restarted?.addr ?? ''))) === JSON.stringify(['slave', newMaster?.addr]), 5_000);
    expect(role).toEqual(['slave', newMaster?.addr]);
    expect(deployment.master().addr).toBe(newMaster?.addr);
    for (const addr of deployment.sentinels) {
      const replicas = ((await on(addr, undefined, 'SENTINEL', 'REPLICAS', 'mymaster')) as Reply[]).map(fields);
      expect(replicas.map((r) => ({ addr: `${r.ip}:${r.port}`, flags: r.flags }))).toEqual([{ addr: restarted?.addr, flags: 'slave' }]);
    }
  });

  it('fails over gracefully with failover(), keeping acknowledged writes', async () => {
    const before = deployment.master();
    await on(before.addr, undefined, 'SET', 'sentinel-test:key', 'kept');
    expect(await on(before.addr, undefined, 'WAIT', 1, 2_000)).toBe(1);

    const { old, newMaster, ms } = await deployment.failover();
    expect(old).toBe(before.addr);
    expect(newMaster).not.toBe(before.addr);
    expect(deployment.dataNodes().map((node) => node.addr)).toContain(newMaster);
    expect(ms).toBeLessThan(10_000);
    expect(deployment.master().addr).toBe(newMaster);
    expect(await deployment.currentMaster()).toBe(newMaster);
    // The old master is still up: failover() waited for the sentinels to make it a replica.
    expect(await roleOf(newMaster)).toEqual(['master']);
    expect(await roleOf(old)).toEqual(['slave', newMaster]);
    expect(text(await on(newMaster, undefined, 'GET', 'sentinel-test:key'))).toBe('kept');
  });

  it('answers with a sentinel down and takes it back when restarted', async () => {
    const [first, second] = deployment.sentinels;
    const oldPid = deployment.sentinelNodes[0]?.pid ?? 0;
    await deployment.killSentinel(first ?? '');
    expect(alive(oldPid)).toBe(false);
    expect(await deployment.currentMaster()).toBe(deployment.master().addr);

    await deployment.restartSentinel(first ?? '');
    const restarted = deployment.sentinelNodes[0];
    expect(restarted?.addr).toBe(first);
    expect(restarted?.pid).not.toBe(oldPid);
    const view = fields(await on(first ?? '', undefined, 'SENTINEL', 'MASTER', 'mymaster'));
    expect(view).toMatchObject({ flags: 'master', port: String(deployment.master().port), 'num-other-sentinels': '2', 'num-slaves': '1' });
    const peers = ((await on(second ?? '', undefined, 'SENTINEL', 'SENTINELS', 'mymaster')) as Reply[]).map(fields);
    expect(peers.find((p) => `${p.ip}:${p.port}` === first)?.flags).not.toMatch(/s_down|disconnected/);
  });

  it('refuses to restart a running process or one it does not know', async () => {
    expect(String(await rejection(deployment.restartNode(deployment.master().addr)))).toMatch(/still running/);
    expect(String(await rejection(deployment.restartSentinel(deployment.sentinels[0] ?? '')))).toMatch(/still running/);
    expect(String(await rejection(deployment.restartNode('127.0.0.1:1')))).toMatch(/no data node at 127\.0\.0\.1:1/);
    expect(String(await rejection(deployment.killSentinel('127.0.0.1:1')))).toMatch(/no sentinel at/);
  });
});

describe('startRedisSentinel with passwords', () => {
  // Spaces and quotes: Redis 7.0 rewrites `sentinel auth-pass` unquoted, which the launcher repairs on restart.
  const password = `data pass "with' quotes`;
  const sentinelPassword = 'sentinel pass \\ $x';
  let deployment: TestRedisSentinel;

  beforeAll(async () => {
    deployment = await startRedisSentinel({ replicas: 2, password, sentinelPassword, masterName: 'authed' });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it('requires the data password on data nodes and the sentinel password on sentinels', async () => {
    for (const addr of [deployment.sentinels[0] ?? '', deployment.master().addr]) {
      const err = await rejection(on(addr, undefined, 'PING'));
      expect(err).toBeInstanceOf(RedisError);
      expect((err as RedisError).code).toBe('NOAUTH');
    }
    expect(await on(deployment.master().addr, password, 'PING')).toBe('PONG');
    const view = fields(await on(deployment.sentinels[0] ?? '', sentinelPassword, 'SENTINEL', 'MASTER', 'authed'));
    expect(view).toMatchObject({ flags: 'master', 'num-other-sentinels': '2', 'num-slaves': '2' });
    for (const replica of deployment.replicas()) expect(await roleOf(replica.addr, password)).toEqual(['slave', deployment.master().addr]);
  });

  it('fails over with authentication, and the other replica follows the new master', async () => {
    const { old } = await deployment.killMaster();
    const { newMaster } = await deployment.waitForFailover(old);
    expect(newMaster).not.toBe(old);
    expect(await roleOf(newMaster, password)).toEqual(['master']);
    await deployment.waitSettled();
    // Under load the sentinels may fail over once more before they settle (a
    // promotion slower than failover-timeout is retried with the other
    // replica): the master to check against is the one they settled on.
    const settled = deployment.master().addr;
    expect(settled).not.toBe(old);
    expect(await roleOf(settled, password)).toEqual(['master']);
    const others = deployment.dataNodes().filter((node) => node.addr !== old && node.addr !== settled);
    expect(others).toHaveLength(1);
    expect(await roleOf(others[0]?.addr ?? '', password)).toEqual(['slave', settled]);
  });

  it('restarts a sentinel whose rewritten config holds the data password', async () => {
    const addr = deployment.sentinels[2] ?? '';
    await deployment.killSentinel(addr);
    await deployment.restartSentinel(addr);
    const view = fields(await on(addr, sentinelPassword, 'SENTINEL', 'MASTER', 'authed'));
    expect(view).toMatchObject({ flags: 'master', port: String(deployment.master().port), 'num-other-sentinels': '2', 'num-slaves': '2' });
  });

  it('restarts a replica killed through its own handle, following the master the sentinels gave it', async () => {
    const master = deployment.master();
    const replica = deployment.replicas().find((node) => alive(node.pid));
    if (!replica) throw new Error('no live replica');
    await replica.kill();
    await deployment.restartNode(replica.addr);
    const restarted = deployment.dataNodes().find((node) => node.addr === replica.addr);
    expect(restarted?.pid).not.toBe(replica.pid);
    // Its config file holds the REPLICAOF the sentinels sent (and CONFIG REWRITE saved) during the failover.
    expect(readFileSync(join(replica.dir, 'redis.conf'), 'utf8')).toMatch(new RegExp(`^replicaof 127\\.0\\.0\\.1 ${master.port}$`, 'm'));
    expect(await roleOf(replica.addr, password)).toEqual(['slave', master.addr]);
  });
});

describe('startRedisSentinel lifecycle', () => {
  it('stop() kills every process and removes their dirs; it is safe twice', async () => {
    const deployment = await startRedisSentinel({ replicas: 0, sentinels: 1 });
    const nodes = [...deployment.dataNodes(), ...deployment.sentinelNodes];
    expect(nodes).toHaveLength(2);
    const view = fields(await on(deployment.sentinels[0] ?? '', undefined, 'SENTINEL', 'MASTER', 'mymaster'));
    expect(view).toMatchObject({ flags: 'master', quorum: '1', 'num-other-sentinels': '0', 'num-slaves': '0' });
    for (const node of nodes) expect(existsSync(node.dir)).toBe(true);
    await deployment.stop();
    await deployment.stop();
    for (const node of nodes) {
      expect(alive(node.pid)).toBe(false);
      expect(existsSync(node.dir)).toBe(false);
    }
    expect(redisChildren()).toEqual([]);
  });

  it('rejects bad options with RangeError before starting anything', async () => {
    for (const options of [{ replicas: -1 }, { sentinels: 0 }, { quorum: 4 }, { quorum: 0 }, { downAfterMs: 0 }, { failoverTimeoutMs: 1.5 }, { masterName: 'has space' }]) {
      expect(await rejection(startRedisSentinel(options))).toBeInstanceOf(RangeError);
    }
  });

  it('stops what it started when start-up does not finish in time', async () => {
    const err = await rejection(startRedisSentinel({ startTimeoutMs: 200 }));
    expect(String(err)).toMatch(/not reached within|did not answer PING in time/);
    expect(redisChildren()).toEqual([]);
  });
});

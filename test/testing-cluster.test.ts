/**
 * The throwaway Redis Cluster launcher: it forms 3 masters + 3 replicas with
 * every slot covered, routes as the cluster says, fails over, migrates slots
 * (with the ASK window observable), kills and restarts nodes, announces
 * hostnames, and stop() really stops. One cluster for the whole file.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dial } from '../src/dial.js';
import { RedisError } from '../src/errors.js';
import type { Reply } from '../src/resp/decode.js';
import { startRedisCluster, type TestClusterNode, type TestRedisCluster } from '../src/testing/index.js';
import { alive, eventually, guardProcessErrors, rejection, text } from './helpers.js';

guardProcessErrors();

let cluster: TestRedisCluster;
let formationMs = 0;

beforeAll(async () => {
  const started = Date.now();
  cluster = await startRedisCluster();
  formationMs = Date.now() - started;
});

afterAll(async () => {
  await cluster?.stop();
});

/** One command on a fresh connection to `node` (bulk strings as text). */
async function on(node: TestClusterNode | string, cmd: string, ...args: (string | number)[]): Promise<Reply> {
  const conn = await dial(typeof node === 'string' ? node : node.addr, { decodeStrings: true });
  try {
    return await conn.do(cmd, ...args);
  } finally {
    await conn.close();
  }
}

/** The slot of `key`, as a node computes it. */
async function keySlot(key: string): Promise<number> {
  return (await on(cluster.seeds[0] ?? '', 'CLUSTER', 'KEYSLOT', key)) as number;
}

/** A master other than `node`. */
function otherMaster(node: TestClusterNode): TestClusterNode {
  const other = cluster.masters().find((m) => m !== node && m.alive);
  if (!other) throw new Error('no other master');
  return other;
}

/** True while a process with this pid exists. */
describe('startRedisCluster', () => {
  it('forms 3 masters + 3 replicas with all 16384 slots covered, in a few seconds', async () => {
    expect(formationMs).toBeLessThan(10_000);
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.masters()).toHaveLength(3);
    expect(cluster.replicas()).toHaveLength(3);
    expect(cluster.seeds).toEqual(cluster.nodes.map((node) => node.addr));
    expect(cluster.seeds.slice(0, 3)).toEqual(cluster.masters().map((node) => node.addr));
    for (const node of cluster.nodes) {
      expect(node.id).toMatch(/^[0-9a-f]{40}$/);
      expect(alive(node.pid)).toBe(true);
      expect(text(await on(node, 'CLUSTER', 'MYID'))).toBe(node.id);
      const slots = (await on(node, 'CLUSTER', 'SLOTS')) as [number, number, ...unknown[]][];
      expect(slots.reduce((sum, [start, end]) => sum + end - start + 1, 0)).toBe(16384);
      // Every range lists its master and one replica on every node.
      for (const range of slots) expect(range).toHaveLength(4);
    }
    for (const replica of cluster.replicas()) {
      expect(cluster.masters().map((m) => m.id)).toContain(replica.masterId);
      expect(text(await on(replica, 'INFO', 'replication'))).toContain('master_link_status:up');
    }
  });

  it('writes a key on masterOf(its slot); another master redirects with MOVED', async () => {
    const slot = await keySlot('user:1');
    const owner = await cluster.masterOf(slot);
    expect(owner.role).toBe('master');
    expect(await on(owner, 'SET', 'user:1', 'ada')).toBe('OK');
    expect(await on(owner, 'GET', 'user:1')).toBe('ada');
    const moved = await rejection(on(otherMaster(owner), 'GET', 'user:1'));
    expect(moved).toBeInstanceOf(RedisError);
    expect((moved as RedisError).message).toMatch(new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${owner.port}\\b`));
  });

  it('failover() promotes the replica and demotes the old master', async () => {
    const slot = await keySlot('user:1');
    const oldMaster = await cluster.masterOf(slot);
    const newMaster = await cluster.failover(oldMaster);
    expect(newMaster).not.toBe(oldMaster);
    expect(newMaster.role).toBe('master');
    expect(oldMaster.role).toBe('replica');
    expect(oldMaster.masterId).toBe(newMaster.id);
    expect(await cluster.masterOf(slot)).toBe(newMaster);
    expect(((await on(newMaster, 'ROLE')) as Reply[])[0]).toBe('master');
    // The data came along: the replica was in sync.
    expect(await on(newMaster, 'GET', 'user:1')).toBe('ada');
    await expect(cluster.failover(oldMaster)).rejects.toThrow(/is not a master/);
  });

  it('failover() loses no acknowledged write made while it runs', async () => {
    const slot = await keySlot('counter');
    const master = await cluster.masterOf(slot);
    const conn = await dial(master.addr);
    let acked = 0;
    let refused: unknown;
    const writer = (async () => {
      for (;;) {
        try {
          await conn.do('INCR', 'counter');
          acked++;
        } catch (err) {
          refused = err;
          return;
        }
      }
    })();
    expect(await eventually(() => acked > 0)).toBe(true); // writes are flowing
    const newMaster = await cluster.failover(master);
    await writer;
    await conn.close();
    // Writes held by the pause are answered MOVED once the old master is a replica.
    expect((refused as RedisError).message).toMatch(new RegExp(`^MOVED ${slot} 127\\.0\\.0\\.1:${newMaster.port}\\b`));
    expect(acked).toBeGreaterThan(0);
    expect(await on(newMaster, 'GET', 'counter')).toBe(String(acked));
  });

  it('moveSlot() moves a slot with its keys to another master', async () => {
    const slot = await keySlot('{move}a');
    const from = await cluster.masterOf(slot);
    const to = otherMaster(from);
    await on(from, 'SET', '{move}a', 'one');
    await on(from, 'SET', '{move}b', 'two');
    await cluster.moveSlot(slot, to.addr);
    expect(await cluster.masterOf(slot)).toBe(to);
    expect(await on(to, 'GET', '{move}a')).toBe('one');
    expect(await on(to, 'GET', '{move}b')).toBe('two');
    expect(((await rejection(on(from, 'GET', '{move}a'))) as RedisError).message).toMatch(new RegExp(`^MOVED ${slot} `));
    expect(await on(to, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(2);
    expect(await on(from, 'CLUSTER', 'COUNTKEYSINSLOT', slot)).toBe(0);
  });

  it('a slot migration in steps shows ASK for migrated keys on the source', async () => {
    const slot = await keySlot('{mig}a');
    const source = await cluster.masterOf(slot);
    const target = otherMaster(source);
    await on(source, 'SET', '{mig}a', '1');
    await on(source, 'SET', '{mig}b', '2');
    const { from, to } = await cluster.beginSlotMigration(slot, target);
    expect([from, to]).toEqual([source, target]);
    expect(await cluster.migrateKeys(slot, { count: 1 })).toBe(1);
    const [moved] = (await on(source, 'CLUSTER', 'GETKEYSINSLOT', slot, 10)) as string[];
    const gone = moved === '{mig}a' ? '{mig}b' : '{mig}a';
    // The migrated key: ASK to the target; the one still here: served.
    const ask = (await rejection(on(source, 'GET', gone))) as RedisError;
    expect(ask.message).toMatch(new RegExp(`^ASK ${slot} 127\\.0\\.0\\.1:${target.port}\\b`));
    expect(await on(source, 'GET', moved ?? '')).not.toBeNull();
    await expect(cluster.beginSlotMigration(slot, target)).rejects.toThrow(/already being migrated/);
    expect(await cluster.migrateKeys(slot)).toBe(1);
    await cluster.finishSlotMigration(slot);
    expect(await cluster.masterOf(slot)).toBe(target);
    expect(await on(target, 'MGET', '{mig}a', '{mig}b')).toEqual(['1', '2']);
    await expect(cluster.migrateKeys(slot)).rejects.toThrow(/not being migrated/);
  });

  it('killNode() + restartNode(): a failed-over master rejoins as a replica', async () => {
    const master = cluster.masters()[0] as TestClusterNode;
    const { id, pid, port } = master;
    await cluster.killNode(master);
    expect(master.alive).toBe(false);
    expect(alive(pid)).toBe(false);
    const promoted = await cluster.failover(master);
    await cluster.restartNode(master.addr);
    expect(master.alive).toBe(true);
    expect(master.pid).not.toBe(pid);
    expect(alive(master.pid)).toBe(true);
    expect([master.id, master.port, master.role, master.masterId]).toEqual([id, port, 'replica', promoted.id]);
    expect(text(await on(master, 'CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    await cluster.waitForState();
  });

  it('waitForState() rejects naming the condition not reached', async () => {
    await expect(cluster.waitForState(() => false, { timeoutMs: 100 })).rejects.toThrow(/waitForState predicate not reached within/);
  });

  it('flushAll() empties every node', async () => {
    await cluster.flushAll();
    for (const node of cluster.nodes) expect(await on(node, 'DBSIZE')).toBe(0);
  });

  it('announceHostname() makes CLUSTER SLOTS report the hostnames', async () => {
    const hostname = (node: TestClusterNode): string => `node-${node.port}.redis.test`;
    await cluster.announceHostname(hostname);
    for (const node of cluster.nodes) {
      const slots = (await on(node, 'CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string, string[]][]][];
      for (const [, , ...endpoints] of slots) {
        for (const [host, port, id, meta] of endpoints) {
          const owner = cluster.nodes.find((n) => n.id === id) as TestClusterNode;
          expect([host, port]).toEqual([hostname(owner), owner.port]);
          expect(meta).toEqual(['ip', '127.0.0.1']);
        }
      }
    }
  });

  it('stop() ends every process and removes every dir; twice is harmless', async () => {
    const pids = cluster.nodes.map((node) => node.pid);
    const dirs = cluster.nodes.map((node) => node.server.dir);
    await cluster.stop();
    await cluster.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const dir of dirs) expect(existsSync(dir)).toBe(false);
    expect(cluster.nodes.every((node) => !node.alive)).toBe(true);
  });
});

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Cluster, ClusterError, CrossSlotError, dial, newCluster, newPool, PubSubConn, RedisError, Script, slotOf, type Conn, type PubSubMessage } from '../src/index.js';
import { startRedisCluster, type TestRedisCluster } from '../src/testing/index.js';
import { eventually, guardProcessErrors, rejection, someoneBlocked, text } from './helpers.js';

guardProcessErrors();

let cluster: TestRedisCluster;
let client: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

beforeEach(async () => {
  await cluster.flushAll();
  client = newCluster(cluster.seeds.slice(0, 1));
});

afterEach(async () => {
  await client.close();
});

/** Keys whose slots fall on every master: `count` keys, spread by their numbers. */
function keys(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}:${i}`);
}

/** Which master (by address) holds `key`, asked of the cluster itself. */
async function ownerOf(key: string): Promise<string> {
  return (await cluster.masterOf(slotOf(key))).addr;
}

/** The value of `key` read straight from the master that owns it. */
async function readDirect(key: string): Promise<string | null> {
  const conn = await dial(await ownerOf(key));
  try {
    const value = await conn.do('GET', key);
    return value === null ? null : text(value);
  } finally {
    await conn.close();
  }
}

/** How many times the masters ran COMMAND (the cluster learns its command table with it). */
async function commandCalls(): Promise<number> {
  let calls = 0;
  for (const master of cluster.masters()) {
    const conn = await dial(master.addr);
    try {
      calls += Number(/cmdstat_command:calls=(\d+)/.exec(text(await conn.do('INFO', 'commandstats')))?.[1] ?? 0);
    } finally {
      await conn.close();
    }
  }
  return calls;
}

describe('Cluster.do', () => {
  it('hashes a key as it is sent (a number in decimal, not exponent, form); NaN rejects', async () => {
    // A number whose exponent form ("2e+21") and sent form ("2000...") live on different masters.
    let n = 0;
    for (let m = 1; n === 0; m++) if ((await ownerOf(String(m * 1e21))) !== (await ownerOf(`${m}${'0'.repeat(21)}`))) n = m * 1e21;
    expect(await client.do('SET', n, 'big')).toBe('OK');
    expect(client.stats().redirects.moved).toBe(0);
    expect(await readDirect(`${n / 1e21}${'0'.repeat(21)}`)).toBe('big');
    const err = await rejection(client.do('GET', Number.NaN));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/argument 0 is NaN/);
  });

  it('refuses SCAN (a cursor of one node) on do() and on a cluster Conn, pointing at the masters, instead of asking a random master', async () => {
    const err = await rejection(client.do('SCAN', '0'));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toMatch(/^redisconn: SCAN has no one node in a Redis Cluster .*role 'master'/);
    const conn = await client.get();
    try {
      expect(() => conn.send('SCAN', '0', 'MATCH', 'k*')).toThrow(/SCAN has no one node/);
      expect(await conn.do('PING')).toBe('PONG');
    } finally {
      await conn.close();
    }
  });

  it('learns the command table on first use even when a periodic refresh mapped the slots first', async () => {
    const early = newCluster(cluster.seeds.slice(0, 1), { refreshIntervalMs: 20 });
    try {
      expect(await eventually(() => early.isMapped, 3_000)).toBe(true);
      const before = await commandCalls();
      expect(await early.do('SET', 'learned', '1')).toBe('OK');
      expect(await commandCalls()).toBe(before + 1);
    } finally {
      await early.close();
    }
  });

  it('routes each key to the master of its slot, on every master', async () => {
    const names = keys('route', 60);
    await Promise.all(names.map((key, i) => client.do('SET', key, `v${i}`)));
    const owners = new Set(await Promise.all(names.map(ownerOf)));
    expect(owners.size).toBe(3);
    for (const [i, key] of names.entries()) expect(await readDirect(key)).toBe(`v${i}`);
    const replies = await Promise.all(names.map((key) => client.do('GET', key)));
    expect(replies.map(text)).toEqual(names.map((_, i) => `v${i}`));
    const stats = client.stats();
    expect(stats.slotsCovered).toBe(16384);
    expect(stats.nodes.filter((node) => node.role === 'master')).toHaveLength(3);
    expect(stats.nodes.filter((node) => node.role === 'replica')).toHaveLength(3);
    expect(stats.redirects.moved).toBe(0);
  });

  it('splits MGET, MSET, DEL, EXISTS and TOUCH by slot and puts the replies back in key order', async () => {
    const names = keys('split', 20);
    expect(await client.do('MSET', ...names.flatMap((key, i) => [key, `v${i}`]))).toBe('OK');
    const values = (await client.do('MGET', ...names, 'split:missing')) as Buffer[];
    expect(values.map((value) => (value === null ? null : text(value)))).toEqual([...names.map((_, i) => `v${i}`), null]);
    expect(await client.do('EXISTS', ...names, 'split:missing')).toBe(20);
    expect(await client.do('TOUCH', ...names)).toBe(20);
    expect(await client.do('DEL', ...names.slice(0, 7))).toBe(7);
    expect(await client.do('UNLINK', ...names)).toBe(13);
    for (const key of names) expect(await readDirect(key)).toBeNull();
  });

  it('refuses other multi-key commands across slots with CrossSlotError before sending anything', async () => {
    const [a, b] = ['cross:a', 'cross:b'];
    expect(slotOf(a)).not.toBe(slotOf(b));
    await client.do('PING'); // reads the topology first
    const sentBefore = client.stats().sharedCommands;
    const err = await rejection(client.do('SUNIONSTORE', a, b));
    expect(err).toBeInstanceOf(CrossSlotError);
    expect(err).toMatchObject({ code: 'REDIS_CROSSSLOT' });
    expect(await rejection(client.do('MSETNX', a, '1', b, '2'))).toBeInstanceOf(CrossSlotError);
    expect(await rejection(client.do('RENAME', a, b))).toBeInstanceOf(CrossSlotError);
    expect(client.stats().sharedCommands).toBe(sentBefore);
    // With a hashtag they share a slot and run.
    expect(await client.do('MSETNX', '{cross}a', '1', '{cross}b', '2')).toBe(1);
  });

  it('runs all_shards commands on every master and aggregates them (DBSIZE, KEYS, FLUSHALL, SCRIPT EXISTS)', async () => {
    const names = keys('fan', 30);
    await client.do('MSET', ...names.flatMap((key) => [key, 'x']));
    expect(await client.do('DBSIZE')).toBe(30);
    const found = ((await client.do('KEYS', 'fan:*')) as Buffer[]).map(text).sort();
    expect(found).toEqual([...names].sort());
    const script = new Script(1, 'return redis.call("GET", KEYS[1])');
    expect(await client.do('SCRIPT', 'EXISTS', script.hash)).toEqual([0]);
    await script.load(client);
    expect(await client.do('SCRIPT', 'EXISTS', script.hash)).toEqual([1]);
    expect(await client.do('FLUSHALL')).toBe('OK');
    expect(await client.do('DBSIZE')).toBe(0);
  });

  it('refuses state-changing and blocking commands, pointing at get()', async () => {
    for (const cmd of [['MULTI'], ['WATCH', 'k'], ['BLPOP', 'k', '1'], ['SUBSCRIBE', 'c']]) {
      const err = await rejection(client.do(cmd[0] as string, ...cmd.slice(1)));
      expect(err).toBeInstanceOf(TypeError);
      expect(String(err)).toMatch(/cluster\.get\(\)/);
    }
  });

  it('runs a Script by its keys, loading it with EVAL on NOSCRIPT', async () => {
    const script = new Script(1, 'return redis.call("INCR", KEYS[1])');
    for (const key of keys('script', 9)) expect(await script.do(client, key)).toBe(1);
  });

  it('reads the topology from the first seed that answers, naming each failure when none does', async () => {
    const dead = ['127.0.0.1:1', '127.0.0.1:2'];
    const late = newCluster([...dead, cluster.seeds[0] as string], { connectTimeoutMs: 500 });
    try {
      expect(await late.do('SET', 'seeds:k', 'v')).toBe('OK');
    } finally {
      await late.close();
    }
    const none = newCluster(dead, { connectTimeoutMs: 500 });
    try {
      const err = await rejection(none.do('GET', 'k'));
      expect(err).toBeInstanceOf(ClusterError);
      expect((err as ClusterError).causes).toHaveLength(2);
      expect(String(err)).toContain('127.0.0.1:1');
      expect(String(err)).toContain('127.0.0.1:2');
    } finally {
      await none.close();
    }
  });
});

describe('Cluster.get (a Conn across the cluster)', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('pipelines across nodes with replies in the order sent', async () => {
    const names = keys('pipe', 12);
    for (const [i, key] of names.entries()) conn.send('SET', key, `v${i}`);
    for (const key of names) conn.send('GET', key);
    conn.send('MGET', ...names);
    const replies = (await conn.do('')) as unknown[];
    expect(replies).toHaveLength(25);
    expect(replies.slice(0, 12)).toEqual(names.map(() => 'OK'));
    expect(replies.slice(12, 24).map((reply) => text(reply as Buffer))).toEqual(names.map((_, i) => `v${i}`));
    expect((replies[24] as Buffer[]).map(text)).toEqual(names.map((_, i) => `v${i}`));
  });

  it('returns the last reply and rejects with the first error, like redigo Do', async () => {
    conn.send('SET', 'do:a', 'x');
    conn.send('INCR', 'do:a');
    const err = await rejection(conn.do('GET', 'do:b'));
    expect(err).toBeInstanceOf(RedisError);
    expect(await conn.do('GET', 'do:a').then(text)).toBe('x');
  });

  it('runs MULTI on the node of its first keyed command', async () => {
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('PING')).toBe('QUEUED');
    expect(await conn.do('INCR', '{tx}n')).toBe('QUEUED');
    expect(await conn.do('INCR', '{tx}n')).toBe('QUEUED');
    expect(await conn.do('EXEC')).toEqual(['PONG', 1, 2]);
    expect(await readDirect('{tx}n')).toBe('2');
  });

  it('refuses a key of another slot inside MULTI with CrossSlotError, and DISCARD ends it', async () => {
    await conn.do('MULTI');
    await conn.do('SET', '{a}k', '1');
    expect(await rejection(conn.do('SET', '{b}k', '1'))).toBeInstanceOf(CrossSlotError);
    expect(await conn.do('DISCARD')).toBe('OK');
    expect(await readDirect('{a}k')).toBeNull();
    // Unbound again: a key of any slot works.
    expect(await conn.do('SET', '{b}k', '2')).toBe('OK');
  });

  it('binds WATCH to its slot: EXEC fails when another client changes the watched key', async () => {
    await conn.do('SET', '{w}k', '1');
    await conn.do('WATCH', '{w}k');
    await client.do('SET', '{w}k', '2');
    await conn.do('MULTI');
    await conn.do('SET', '{w}k', '3');
    expect(await conn.do('EXEC')).toBeNull();
    expect(await readDirect('{w}k')).toBe('2');
  });

  it('runs a blocking command on the node of its key', async () => {
    const popped = conn.do('BLPOP', 'block:list', '5');
    const owner = await dial(await ownerOf('block:list'));
    try {
      expect(await eventually(() => someoneBlocked(owner))).toBe(true);
    } finally {
      await owner.close();
    }
    await client.do('RPUSH', 'block:list', 'item');
    expect(((await popped) as Buffer[]).map(text)).toEqual(['block:list', 'item']);
  });

  it('carries PubSubConn: SUBSCRIBE on one node, SSUBSCRIBE on the owner of the channel', async () => {
    const sub = new PubSubConn(conn);
    await sub.subscribe('news');
    expect(await sub.receive()).toMatchObject({ kind: 'subscribe', channel: 'news', count: 1 });
    await client.do('PUBLISH', 'news', 'hello');
    const message = (await sub.receive()) as PubSubMessage;
    expect(message).toMatchObject({ kind: 'message', channel: 'news' });
    expect(text(message.data)).toBe('hello');
    const sharded = new PubSubConn(await client.get());
    try {
      await sharded.ssubscribe('shard:chan');
      expect(await sharded.receive()).toMatchObject({ kind: 'ssubscribe', channel: 'shard:chan' });
      expect(await client.do('SPUBLISH', 'shard:chan', 'hi')).toBe(1);
      const got = (await sharded.receive()) as PubSubMessage;
      expect(text(got.data)).toBe('hi');
    } finally {
      await sharded.close();
    }
  });
});

describe('redirects and topology changes', () => {
  it('follows MOVED after a slot moves, patching the map', async () => {
    const key = 'moved:key';
    const slot = slotOf(key);
    await client.do('SET', key, 'before');
    const from = await cluster.masterOf(slot);
    const to = cluster.masters().find((node) => node.addr !== from.addr && node.alive);
    await cluster.moveSlot(slot, to?.addr as string);
    expect(text(await client.do('GET', key))).toBe('before');
    expect(client.stats().redirects.moved).toBeGreaterThanOrEqual(1);
    expect(await client.do('SET', key, 'after')).toBe('OK');
    expect(await readDirect(key)).toBe('after');
  });

  it('follows ASK (with ASKING) for a key already migrated, TRYAGAIN retried for multi-key commands', async () => {
    const slot = slotOf('{ask}a');
    await client.do('MSET', '{ask}a', '1', '{ask}b', '2');
    const from = await cluster.masterOf(slot);
    const to = cluster.masters().find((node) => node.addr !== from.addr && node.alive);
    await cluster.beginSlotMigration(slot, to?.addr as string);
    await cluster.migrateKeys(slot, { count: 1 });
    const values = await Promise.all([client.do('GET', '{ask}a'), client.do('GET', '{ask}b')]);
    expect(values.map(text).sort()).toEqual(['1', '2']);
    expect(client.stats().redirects.ask).toBeGreaterThanOrEqual(1);
    const tryagains = client.stats().redirects.tryagain;
    const mget = client.do('MGET', '{ask}a', '{ask}b');
    // The migration ends once the MGET has been told TRYAGAIN (and retries).
    expect(await eventually(() => client.stats().redirects.tryagain > tryagains)).toBe(true);
    await cluster.migrateKeys(slot);
    await cluster.finishSlotMigration(slot);
    expect(((await mget) as Buffer[]).map(text)).toEqual(['1', '2']);
    await cluster.waitForState();
  });

  it('says so when a plain pool meets a cluster node', async () => {
    const key = 'plain:k';
    const owner = await ownerOf(key);
    const other = cluster.masters().find((node) => node.addr !== owner && node.alive);
    const pool = newPool(other?.addr as string);
    try {
      const err = await rejection(pool.do('GET', key));
      expect(err).toMatchObject({ code: 'MOVED' });
      expect(String(err)).toMatch(/Redis Cluster node: use newCluster\(\)/);
    } finally {
      await pool.close();
    }
  });

  it('reads from replicas with readFrom: replica', async () => {
    const reader = newCluster(cluster.seeds, { readFrom: 'replica' });
    try {
      await client.do('SET', 'replica:k', 'v');
      const conn = await dial(await ownerOf('replica:k'));
      await conn.do('WAIT', 1, 1000);
      await conn.close();
      for (let i = 0; i < 5; i++) expect(text(await reader.do('GET', 'replica:k'))).toBe('v');
      const replicaCommands = reader.stats().nodes.filter((node) => node.role === 'replica').reduce((sum, node) => sum + node.stats.sharedCommands, 0);
      expect(replicaCommands).toBeGreaterThanOrEqual(5);
      // Writes still go to masters.
      expect(await reader.do('SET', 'replica:w', '1')).toBe('OK');
    } finally {
      await reader.close();
    }
  });
});

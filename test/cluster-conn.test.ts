/**
 * The Conn contract of one ClusterConn (`cluster.get()`, `cluster.lease()`)
 * on a healthy real cluster: pipelines that span nodes, split (multi_shard)
 * and fanned-out (all_shards) commands inside them, do / do('') / receive,
 * deadlines and signals, close() with work in flight, MULTI deferral, WATCH
 * binding, subscriptions, scripts, keyless commands, RESP3, decodeStrings,
 * bad arguments, the lease before the topology is known, and many conns at
 * once. Faults (failover, kill, reshard) live in cluster-faults.test.ts.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConnClosedError, CrossSlotError, dial, newCluster, PubSubConn, RedisError, Script, slotOf, TimeoutError, type Cluster, type Conn, type PubSubMessage, type Reply } from '../src/index.js';
import { startRedisCluster, type TestRedisCluster } from '../src/testing/index.js';
import { eventually, guardProcessErrors, parseClientList, rejection, settle, sleep, text, thrownBy, within } from './helpers.js';

guardProcessErrors();

/** CLIENT SETNAME of every connection the suite's clusters dial: CLIENT LIST tells ours apart. */
const NAME = 'cluster-conn-test';

let cluster: TestRedisCluster;
/** The masters' addresses, as started. */
let masters: string[];
/** One plain connection per master, for looking and interfering. */
const admins = new Map<string, Conn>();
/** The master of each slot. */
const ownerOfSlot: string[] = new Array<string>(16384);
/** The cluster client of the running test. */
let client: Cluster;
let seed: string;

beforeAll(async () => {
  cluster = await startRedisCluster({ args: ['--enable-debug-command', 'yes'] });
  masters = cluster.masters().map((node) => node.addr);
  seed = cluster.seeds[0] as string;
  for (const addr of masters) admins.set(addr, await dial(addr));
  const ranges = (await adminOf(masters[0] as string).do('CLUSTER', 'SLOTS')) as Reply[][];
  for (const range of ranges) {
    const [start, end, master] = range as [number, number, Reply[]];
    ownerOfSlot.fill(`${text(master[0])}:${String(master[1])}`, start, end + 1);
  }
}, 60_000);

afterAll(async () => {
  for (const admin of admins.values()) await admin.close();
  await cluster?.stop();
});

beforeEach(async () => {
  await cluster.flushAll();
  client = newCluster([seed], { clientName: NAME, resetTimeoutMs: 2_000 });
});

afterEach(async () => {
  await within(client.close(), 5_000, 'cluster close');
});

// ---- helpers ----------------------------------------------------------------

function adminOf(addr: string): Conn {
  return admins.get(addr) as Conn;
}

function ownerOf(key: string): string {
  return ownerOfSlot[slotOf(key)] as string;
}

/** A key named `${prefix}:<n>` served by `addr`. */
function keyOn(addr: string, prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}:${i}`;
    if (ownerOf(key) === addr) return key;
  }
}

/** One key per master, in the order of `masters`. */
function keysOnEachMaster(prefix: string): [string, string, string] {
  return masters.map((addr) => keyOn(addr, prefix)) as [string, string, string];
}

/** `count` keys `${prefix}#<i>`; with 12 or more, every master has some. */
function spread(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}#${i}`);
}

/** The value of `key` read straight from its master. */
async function readDirect(key: string): Promise<string | null> {
  const value = await adminOf(ownerOf(key)).do('GET', key);
  return value === null ? null : text(value);
}

function codeOf(err: unknown): string {
  expect(err).toBeInstanceOf(RedisError);
  return (err as RedisError).code;
}

/** Buffers to strings, recursively (arrays, Maps), for comparing replies. */
function plain(reply: unknown): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  if (Array.isArray(reply)) return reply.map(plain);
  if (reply instanceof Map) return new Map([...reply].map(([k, v]) => [plain(k), plain(v)]));
  if (reply instanceof RedisError) return `ERR:${reply.code}`;
  return reply;
}

/** Exclusive connections lent by the node pools of `source` (shared connections excluded). */
function lentOnNodes(source: Cluster): number {
  return source.stats().nodes.reduce((sum, node) => sum + node.stats.inUseCount - node.stats.sharedCount, 0);
}

/** What is wrong with our connections on the masters: blocked, in MULTI, subscribed, or more than the pools count. */
async function leftovers(source: Cluster): Promise<string[]> {
  const problems: string[] = [];
  for (const addr of masters) {
    const mine = parseClientList(await adminOf(addr).do('CLIENT', 'LIST')).filter((c) => c.name === NAME);
    const pool = source.stats().nodes.find((node) => node.addr === addr)?.stats;
    const open = pool?.activeCount ?? 0;
    if (mine.length > open) problems.push(`${addr}: ${mine.length} connections on the server, the pool counts ${open}`);
    for (const c of mine) {
      const flags = c.flags ?? '';
      if (/[bxP]/.test(flags) || c.multi !== '-1' || c.sub !== '0' || c.psub !== '0' || (c.ssub ?? '0') !== '0') {
        problems.push(`${addr}: id=${c.id} flags=${flags} multi=${c.multi} sub=${c.sub} psub=${c.psub} ssub=${c.ssub} cmd=${c.cmd}`);
      }
    }
  }
  return problems;
}

/** Nothing lent by any node pool, and the servers show our connections idle and clean. */
async function expectClean(source: Cluster): Promise<void> {
  expect(await eventually(() => lentOnNodes(source) === 0, 3_000), `lent: ${JSON.stringify(source.stats().nodes.map((n) => [n.addr, n.stats.inUseCount, n.stats.sharedCount]))}`).toBe(true);
  let problems: string[] = [];
  await eventually(async () => (problems = await leftovers(source)).length === 0, 3_000);
  expect(problems).toEqual([]);
}

/** Whether a client of ours is blocked (BLPOP) on `addr`. */
async function blockedOn(addr: string): Promise<boolean> {
  return parseClientList(await adminOf(addr).do('CLIENT', 'LIST')).some((c) => c.name === NAME && (c.flags ?? '').includes('b'));
}

/** Calls `call`, failing when it throws synchronously; returns its promise. */
function noSyncThrow(call: () => Promise<unknown>): Promise<unknown> {
  let promise: Promise<unknown> = Promise.resolve();
  const thrown = thrownBy(() => {
    promise = call();
  });
  expect(thrown, `threw synchronously: ${String(thrown)}`).toBeUndefined();
  return promise;
}

/** CLIENT PAUSE `ms` ALL on `addr`: its clients' commands wait (nothing is refused). */
async function pauseNode(addr: string, ms: number): Promise<void> {
  await adminOf(addr).do('CLIENT', 'PAUSE', ms, 'ALL');
}

// ---- tests --------------------------------------------------------------------

describe('ClusterConn: pipelines across nodes', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('keeps send order for single-key commands on every master, multi_shard splits and all_shards fan-outs in one pipeline', async () => {
    const [a, b, c] = keysOnEachMaster('pipe');
    const names = spread('pipe', 12);
    const script = new Script(0, `return 'pipeline ${Date.now()}'`);
    conn.send('SET', a, 'va');
    conn.send('SET', b, 'vb');
    conn.send('SET', c, 'vc');
    conn.send('MSET', ...names.flatMap((key, i) => [key, `m${i}`]));
    conn.send('DBSIZE');
    conn.send('MGET', c, a, 'pipe:missing', b, ...names);
    conn.send('SCRIPT', 'EXISTS', script.hash, script.hash);
    conn.send('GET', b);
    conn.send('DEL', a, b, ...names.slice(0, 4));
    conn.send('DBSIZE');
    conn.send('EXISTS', a, c, names[5] as string);
    conn.send('PING');
    const replies = plain(await conn.do(''));
    expect(replies).toEqual([
      'OK',
      'OK',
      'OK',
      'OK',
      15,
      ['vc', 'va', null, 'vb', ...names.map((_, i) => `m${i}`)],
      [0, 0],
      'vb',
      6,
      9,
      2,
      'PONG',
    ]);
    // The same through send + flush + receive, one reply at a time.
    conn.send('MGET', ...names.slice(4, 8), c);
    conn.send('DBSIZE');
    conn.send('GET', c);
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['m4', 'm5', 'm6', 'm7', 'vc']);
    expect(await conn.receive()).toBe(9);
    expect(plain(await conn.receive())).toBe('vc');
    expect(await conn.do('')).toEqual([]);
    expect(conn.inFlight()).toBe(0);
  });

  it("do('') keeps error replies in place as RedisError values; do() resolves the last reply or rejects with the first error", async () => {
    const [a, b, c] = keysOnEachMaster('err');
    await conn.do('SET', a, 'text');
    conn.send('LPUSH', a, 'x'); // WRONGTYPE on master 0
    conn.send('INCR', b); // 1 on master 1
    conn.send('INCR', a); // ERR not an integer
    conn.send('HSET', c, 'f', 'v'); // 1 on master 2
    conn.send('GET', c); // WRONGTYPE
    const all = (await conn.do('')) as Reply[];
    expect(all).toHaveLength(5);
    expect(codeOf(all[0])).toBe('WRONGTYPE');
    expect(all[1]).toBe(1);
    expect(codeOf(all[2])).toBe('ERR');
    expect(all[3]).toBe(1);
    expect(codeOf(all[4])).toBe('WRONGTYPE');

    conn.send('INCR', b); // 2
    expect(await conn.do('INCR', b)).toBe(3);
    conn.send('GET', c); // WRONGTYPE: the first error
    conn.send('INCR', a); // ERR
    expect(codeOf(await rejection(conn.do('INCR', b)))).toBe('WRONGTYPE'); // its own reply (4) is read too
    expect(await conn.do('')).toEqual([]);
    expect(await readDirect(b)).toBe('4');
    conn.send('INCR', b); // 5
    expect(codeOf(await rejection(conn.do('GET', c)))).toBe('WRONGTYPE');
    expect(await readDirect(b)).toBe('5');
    expect(conn.err()).toBeNull();
  });

  it('a failing part of a split (MGET) or of a fan-out (DBSIZE) fails that entry only, in place', async () => {
    const [a, b, c] = keysOnEachMaster('part');
    const victim = adminOf(masters[1] as string);
    await victim.do('ACL', 'SETUSER', 'default', '-mget', '-dbsize');
    try {
      conn.send('SET', a, '1');
      conn.send('MGET', a, b, c);
      conn.send('DBSIZE');
      conn.send('GET', a);
      const all = (await conn.do('')) as Reply[];
      expect(plain(all)).toEqual(['OK', 'ERR:NOPERM', 'ERR:NOPERM', '1']);

      conn.send('MGET', c, b, a);
      expect(codeOf(await rejection(conn.do('GET', a)))).toBe('NOPERM');
      expect(await conn.do('')).toEqual([]);

      conn.send('MGET', b, c);
      conn.send('GET', a);
      await conn.flush();
      expect(codeOf(await rejection(conn.receive()))).toBe('NOPERM');
      expect(text(await conn.receive())).toBe('1');
      expect(conn.err()).toBeNull();
    } finally {
      await victim.do('ACL', 'SETUSER', 'default', '+mget', '+dbsize');
    }
    expect(plain(await conn.do('MGET', a, b, c))).toEqual(['1', null, null]);
  });

  it('MSET with a key missing its value is refused whole, as one server refuses it (no partial write)', async () => {
    const [a, b] = keysOnEachMaster('odd');
    const outcome = await settle(conn.do('MSET', a, '1', b));
    expect(outcome.ok).toBe(false);
    // One server answers "wrong number of arguments" and writes nothing; split by slot, `a` is written.
    expect(await readDirect(a)).toBeNull();
    expect(await settle(client.do('MSET', a, '1', b)).then((r) => r.ok)).toBe(false);
    expect(await readDirect(a)).toBeNull();
  });

  it('10 000 pipelined commands across every master answer in order', async () => {
    const hot = spread('long', 9);
    const expected: Reply[] = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const key = hot[i % hot.length] as string;
      if (i % 1000 === 999) {
        conn.send('MGET', ...hot);
        expected.push(hot.map((k) => String(counts.get(k) ?? 0)));
        continue;
      }
      conn.send('INCR', key);
      const next = (counts.get(key) ?? 0) + 1;
      counts.set(key, next);
      expected.push(next);
    }
    const started = performance.now();
    const replies = plain(await conn.do(''));
    expect(replies).toEqual(expected);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(conn.inFlight()).toBe(0);
  });
});

describe('ClusterConn: the order of calls', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('200 concurrent do() calls on keys of every master each get their own reply', async () => {
    const keys = keysOnEachMaster('conc');
    const done = await Promise.all(Array.from({ length: 200 }, (_, i) => conn.do('INCR', keys[i % 3] as string)));
    expect(done).toEqual(Array.from({ length: 200 }, (_, i) => Math.floor(i / 3) + 1));
  });

  it('concurrent do() calls after a send() each resolve their own reply', async () => {
    const [a, b] = keysOnEachMaster('swap');
    await conn.do('SET', a, 'va');
    await conn.do('SET', b, 'vb');
    conn.send('INCR', 'swap:n');
    const [first, second] = await Promise.all([conn.do('GET', a), conn.do('GET', b)]);
    expect(plain([first, second])).toEqual(['va', 'vb']);
  });

  it('a split MGET and a concurrent GET on one of its nodes each get their own reply', async () => {
    const [a, b, c] = keysOnEachMaster('splitconc');
    await conn.do('MSET', a, '1', b, '2', c, '3');
    const [all, one] = await Promise.all([conn.do('MGET', a, b, c), conn.do('GET', b)]);
    expect(plain(all)).toEqual(['1', '2', '3']);
    expect(plain(one)).toBe('2');
  });

  it("calls settle in the order they were made: receive, do, do, do('')", async () => {
    const [a, b, c] = keysOnEachMaster('order');
    conn.send('INCR', a);
    await conn.flush();
    const order: string[] = [];
    await Promise.all([
      conn.receive().then(() => order.push('receive')),
      conn.do('INCR', b).then(() => order.push('do INCR')),
      conn.do('GET', c).then(() => order.push('do GET')),
      conn.do('').then(() => order.push('do("")')),
    ]);
    expect(order).toEqual(['receive', 'do INCR', 'do GET', 'do("")']);
  });

  it('receive() with nothing owed: a deadline rejects TimeoutError near it; then the conn is either broken or fully usable; nothing leaks', async () => {
    const started = performance.now();
    const err = await rejection(within(conn.receiveWithTimeout(150), 2_000, 'receive with nothing owed'));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(performance.now() - started).toBeLessThan(600);
    // conn.ts documents "passing it breaks the connection"; a cluster conn that lost no reply may stay usable instead.
    const broken = conn.err();
    if (broken !== null) {
      expect(await within(rejection(conn.do('PING')), 200, 'do after the break')).toBe(broken);
    } else {
      for (const key of keysOnEachMaster('afterwait')) expect(await conn.do('INCR', key)).toBe(1);
      conn.send('PING');
      expect(await conn.do('')).toEqual(['PONG']);
    }
    await conn.close();
    await expectClean(client);
  });

  it('receive() with nothing owed, waiting without a deadline, is rejected ConnClosedError by close() at once', async () => {
    const waiting = settle(conn.receive());
    await sleep(50);
    const started = performance.now();
    await within(conn.close(), 1_000, 'close');
    const outcome = await within(waiting, 1_000, 'the waiting receive');
    expect(outcome.ok ? 'resolved' : outcome.error).toBeInstanceOf(ConnClosedError);
    expect(performance.now() - started).toBeLessThan(300);
    await expectClean(client);
  });

  it('readTimeoutMs and protocol are right from the start, before any command', async () => {
    // newCluster → newPool: read timeout 5 s, known before the first dial (as pool.lease() reports it).
    const seen: Record<string, number> = { fresh: conn.readTimeoutMs, lease: client.lease().readTimeoutMs };
    await conn.do('GET', 'rt:k');
    seen.afterGet = conn.readTimeoutMs;
    const resp3 = newCluster([seed], { clientName: NAME, protocol: 3 });
    try {
      const fresh = await resp3.get();
      seen.protocolFresh = fresh.protocol;
      await fresh.do('GET', 'rt:k');
      seen.protocolAfterGet = fresh.protocol;
      await fresh.close();
    } finally {
      await resp3.close();
    }
    expect(seen).toEqual({ fresh: 5_000, lease: 5_000, afterGet: 5_000, protocolFresh: 3, protocolAfterGet: 3 });
  });
});

describe('ClusterConn: deadlines and signals', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('doWithTimeout(200, BLPOP on an empty list) rejects TimeoutError near 200 ms; the conn is broken, pools stay balanced', async () => {
    const q = keyOn(masters[1] as string, 'empty');
    expect(await conn.doWithTimeout(1_000, 'PING')).toBe('PONG');
    const started = performance.now();
    const err = await rejection(within(conn.doWithTimeout(200, 'BLPOP', q, 0), 2_000, 'BLPOP with a deadline'));
    const ms = performance.now() - started;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('REDIS_TIMEOUT');
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(500);
    expect(conn.err()).not.toBeNull();
    await conn.close();
    await expectClean(client);
  });

  it("once broken by a deadline, every later call fails at once with err(): do, do(''), flush, receive, send", async () => {
    const q = keyOn(masters[0] as string, 'empty');
    await rejection(conn.doWithTimeout(100, 'BLPOP', q, 0));
    const fatal = conn.err();
    expect(fatal).not.toBeNull();
    const outcomes: Record<string, unknown> = {};
    for (const [name, call] of [
      ['do', () => conn.do('PING')],
      ["do('')", () => conn.do('')],
      ['flush', () => conn.flush()],
      ['receive', () => conn.receive()],
      ['doWithTimeout', () => conn.doWithTimeout(100, 'GET', q)],
    ] as [string, () => Promise<unknown>][]) {
      const outcome = await within(settle(call()), 200, name);
      outcomes[name] = outcome.ok ? `resolved ${JSON.stringify(plain(outcome.value))}` : outcome.error === fatal ? 'fatal' : String(outcome.error);
    }
    outcomes.send = thrownBy(() => conn.send('PING')) === fatal ? 'fatal' : 'no throw';
    expect(outcomes).toEqual({ do: 'fatal', "do('')": 'fatal', flush: 'fatal', receive: 'fatal', doWithTimeout: 'fatal', send: 'fatal' });
  });

  it('doWithTimeout bounds a stateless command too (its node paused with CLIENT PAUSE)', async () => {
    const [a] = keysOnEachMaster('paused');
    expect(await conn.do('GET', a)).toBeNull();
    await pauseNode(masters[0] as string, 500);
    try {
      const started = performance.now();
      const outcome = await within(settle(conn.doWithTimeout(100, 'GET', a)), 2_000, 'GET with a deadline');
      const ms = performance.now() - started;
      expect(outcome.ok ? 'resolved' : outcome.error).toBeInstanceOf(TimeoutError);
      expect(ms).toBeLessThan(350);
      expect(conn.err()).not.toBeNull();
    } finally {
      await adminOf(masters[0] as string).do('PING'); // waits out the pause
    }
  });

  it('receiveWithTimeout bounds a reply owed on the shared path too (its node paused)', async () => {
    const [a] = keysOnEachMaster('rpaused');
    expect(await conn.do('GET', a)).toBeNull();
    await pauseNode(masters[0] as string, 500);
    try {
      conn.send('GET', a);
      await conn.flush();
      const started = performance.now();
      const outcome = await within(settle(conn.receiveWithTimeout(100)), 2_000, 'receive with a deadline');
      expect(outcome.ok ? 'resolved' : outcome.error).toBeInstanceOf(TimeoutError);
      expect(performance.now() - started).toBeLessThan(350);
    } finally {
      await adminOf(masters[0] as string).do('PING');
    }
  });

  it('a do() that could not get its node connection (PoolExhaustedError) does not run later, behind the caller', async () => {
    const small = newCluster([seed], { clientName: NAME, maxActive: 1, wait: false, resetTimeoutMs: 300, readTimeoutMs: 1_000 });
    const holder = await small.get();
    const other = await small.get();
    try {
      const src = keyOn(masters[0] as string, 'exhausted');
      const dst = `{${src}}dst`;
      await client.do('RPUSH', src, 'e');
      expect(await holder.do('MULTI')).toBe('OK');
      expect(await holder.do('GET', src)).toBe('QUEUED'); // holds node 0's only connection
      const failed = await settle(other.do('BLMOVE', src, dst, 'LEFT', 'LEFT', '0.01'));
      expect(failed.ok ? 'resolved' : (failed.error as Error).name).toBe('PoolExhaustedError');
      await holder.close();
      const started = performance.now();
      const later = await settle(other.do('GET', keyOn(masters[1] as string, 'exhausted')));
      const ms = performance.now() - started;
      await other.close();
      // The caller was told BLMOVE failed: the element must still be where it was, and the next
      // call either answers its own reply or fails at once because the conn is broken.
      const seen = {
        later: later.ok ? later.value : later.error === other.err() ? 'broken' : String(later.error),
        ms: Math.round(ms),
        src: await adminOf(masters[0] as string).do('LLEN', src),
      };
      expect((seen.later === null || seen.later === 'broken') && seen.ms < 500 && seen.src === 1, JSON.stringify(seen)).toBe(true);
    } finally {
      await holder.close();
      await other.close();
      await small.close();
    }
  });

  it('doWithSignal: an already aborted signal rejects with its reason and sends nothing; an abort in flight (BLPOP) rejects and breaks', async () => {
    const q = keyOn(masters[2] as string, 'sigq');
    const early = new Error('aborted before');
    const before = client.stats().sharedCommands;
    expect(await rejection(conn.doWithSignal(AbortSignal.abort(early), 'SET', q, 'x'))).toBe(early);
    expect(client.stats().sharedCommands).toBe(before);
    expect(conn.err()).toBeNull();
    expect(await conn.doWithSignal(new AbortController().signal, 'GET', q)).toBeNull();

    const controller = new AbortController();
    const reason = new Error('aborted in flight');
    const pending = settle(conn.doWithSignal(controller.signal, 'BLPOP', q, 5));
    expect(await eventually(() => blockedOn(masters[2] as string))).toBe(true);
    const started = performance.now();
    controller.abort(reason);
    expect(await within(pending, 1_000, 'aborted BLPOP')).toEqual({ ok: false, error: reason });
    expect(performance.now() - started).toBeLessThan(200);
    expect(conn.err()).not.toBeNull();
    await conn.close();
    await expectClean(client);
  });

  it('doWithSignal cancels a stateless command in flight too (its node paused)', async () => {
    const [a] = keysOnEachMaster('sigpause');
    expect(await conn.do('GET', a)).toBeNull();
    await pauseNode(masters[0] as string, 500);
    try {
      const controller = new AbortController();
      const reason = new Error('give up');
      const pending = settle(conn.doWithSignal(controller.signal, 'GET', a));
      setTimeout(() => controller.abort(reason), 100);
      const started = performance.now();
      expect(await within(pending, 2_000, 'aborted GET')).toEqual({ ok: false, error: reason });
      expect(performance.now() - started).toBeLessThan(300);
    } finally {
      await adminOf(masters[0] as string).do('PING');
    }
  });

  it('doWithTimeout bounds the wait for a node connection too (maxActive 1, the only one lent)', async () => {
    const small = newCluster([seed], { clientName: NAME, maxActive: 1, resetTimeoutMs: 300 });
    const holder = await small.get();
    const other = await small.get();
    try {
      const q = keyOn(masters[0] as string, 'held');
      expect(await holder.do('MULTI')).toBe('OK');
      expect(await holder.do('GET', q)).toBe('QUEUED'); // holds node 0's only exclusive connection
      const started = performance.now();
      const outcome = await settle(within(other.doWithTimeout(200, 'BLPOP', keyOn(masters[0] as string, 'held2'), 0), 800, 'BLPOP waiting for a connection'));
      expect(outcome.ok ? 'resolved' : outcome.error).toBeInstanceOf(TimeoutError);
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await holder.close();
      await other.close();
      await small.close();
    }
  });
});

describe('ClusterConn: close()', () => {
  it('with replies owed on several nodes and a MULTI open: the node connections go back clean, nothing lent', async () => {
    const conn = await client.get();
    const [a, b, c] = keysOnEachMaster('owed');
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('SET', a, '1')).toBe('QUEUED');
    expect(await conn.do('INCR', a)).toBe('QUEUED');
    await conn.close();
    const other = await client.get();
    other.send('SET', b, '1');
    other.send('GET', c);
    other.send('BLPOP', c, '0.05'); // exclusive on master 2
    other.send('SET', c, 'x');
    await other.flush();
    await within(other.close(), 3_000, 'close with replies owed');
    await within(Promise.all([other.close(), conn.close()]), 1_000, 'close again');
    expect(conn.err()).toBeInstanceOf(ConnClosedError);
    expect(await readDirect(a)).toBeNull(); // the transaction was discarded
    await expectClean(client);
  });

  it('with a BLPOP (1 s) in flight: the BLPOP still answers, close resolves after it, the connection is reused', async () => {
    const conn = await client.get();
    const q = keyOn(masters[1] as string, 'closeq');
    const popped = settle(conn.do('BLPOP', q, 1));
    expect(await eventually(() => blockedOn(masters[1] as string))).toBe(true);
    const closing = settle(conn.close());
    expect(conn.err()).toBeInstanceOf(ConnClosedError);
    expect(await rejection(conn.do('PING'))).toBeInstanceOf(ConnClosedError);
    expect(await within(popped, 3_000, 'BLPOP')).toEqual({ ok: true, value: null });
    expect(await within(closing, 3_000, 'close')).toEqual({ ok: true, value: undefined });
    await expectClean(client);
    const node = client.stats().nodes.find((n) => n.addr === masters[1]);
    expect(node?.stats.idleCount).toBe(1);
  });

  it('a do() in flight when close() is called never resolves another reply (here: null for a GET of a set key)', async () => {
    const conn = await client.get();
    const [a, b] = keysOnEachMaster('race');
    await conn.do('SET', a, 'v');
    conn.send('INCR', b);
    const got = settle(conn.do('GET', a));
    const closing = conn.close();
    const outcome = await within(got, 3_000, 'GET in flight');
    await closing;
    // Pooled semantics (the reply) or dialed semantics (ConnClosedError); never a wrong value.
    if (outcome.ok) expect(plain(outcome.value)).toBe('v');
    else expect(outcome.error).toBeInstanceOf(ConnClosedError);
  });

  it('a BLPOP in flight when close() is called does not lose the element it popped', async () => {
    const conn = await client.get();
    const q = keyOn(masters[2] as string, 'lost');
    const popped = settle(conn.do('BLPOP', q, 2));
    const closing = conn.close();
    expect(await eventually(() => blockedOn(masters[2] as string))).toBe(true);
    expect(await client.do('LPUSH', q, 'job')).toBe(1);
    const outcome = await within(popped, 3_000, 'BLPOP');
    await within(closing, 3_000, 'close');
    const left = await adminOf(masters[2] as string).do('LLEN', q);
    // Either the caller got the job, or it is still in the list.
    const got = outcome.ok ? plain(outcome.value) : null;
    expect({ got, left }).toEqual(got === null ? { got: null, left: 1 } : { got: [q, 'job'], left: 0 });
  });

  it('close twice is harmless; after close every call rejects ConnClosedError (send throws it)', async () => {
    const conn = await client.get();
    expect(await conn.do('SET', 'closed:k', '1')).toBe('OK');
    await Promise.all([conn.close(), conn.close()]);
    await conn.close();
    expect(conn.err()).toBeInstanceOf(ConnClosedError);
    const calls: [string, () => Promise<unknown>][] = [
      ['do', () => conn.do('PING')],
      ["do('')", () => conn.do('')],
      ['doWithTimeout', () => conn.doWithTimeout(100, 'GET', 'closed:k')],
      ['doWithSignal', () => conn.doWithSignal(new AbortController().signal, 'GET', 'closed:k')],
      ['flush', () => conn.flush()],
      ['receive', () => conn.receive()],
      ['receiveWithTimeout', () => conn.receiveWithTimeout(100)],
      ['receiveWithSignal', () => conn.receiveWithSignal(new AbortController().signal)],
    ];
    for (const [name, call] of calls) {
      const reason = await within(rejection(noSyncThrow(call)), 1_000, name);
      expect(reason, name).toBeInstanceOf(ConnClosedError);
      expect((reason as ConnClosedError).code, name).toBe('REDIS_CONN_CLOSED');
    }
    expect(thrownBy(() => conn.send('PING'))).toBeInstanceOf(ConnClosedError);
    await expectClean(client);
  });
});

describe('ClusterConn: MULTI and WATCH', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('MULTI, PING, GET k, EXEC: deferred to the node of k, answers as one server would (do and pipeline)', async () => {
    const k = keyOn(masters[2] as string, 'tx');
    await client.do('SET', k, 'v');
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('PING')).toBe('QUEUED');
    expect(await conn.do('GET', k)).toBe('QUEUED');
    expect(plain(await conn.do('EXEC'))).toEqual(['PONG', 'v']);

    const n = `{${k}}n`; // k's slot
    expect(slotOf(n)).toBe(slotOf(k));
    conn.send('MULTI');
    conn.send('PING');
    conn.send('INCR', n);
    conn.send('GET', k);
    conn.send('EXEC');
    expect(plain(await conn.do(''))).toEqual(['OK', 'QUEUED', 'QUEUED', 'QUEUED', ['PONG', 1, 'v']]);
    expect(conn.err()).toBeNull();
  });

  it('MULTI then EXEC with no command answers OK, []; MULTI, DISCARD answers OK, OK and borrows nothing', async () => {
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('EXEC')).toEqual([]);
    const moves = client.stats().leaseMoves;
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('PING')).toBe('QUEUED');
    expect(await conn.do('DISCARD')).toBe('OK');
    expect(client.stats().leaseMoves).toBe(moves);
    // Unbound again: keys of every master work.
    for (const key of keysOnEachMaster('after')) expect(await conn.do('SET', key, '1')).toBe('OK');
    conn.send('MULTI');
    conn.send('EXEC');
    expect(await conn.do('')).toEqual(['OK', []]);
  });

  it('EXEC fails with EXECABORT after a wrong-arity command was queued; the conn is unbound afterwards', async () => {
    const k = '{abort}k';
    const n = '{abort}n';
    expect(await conn.do('MULTI')).toBe('OK');
    expect(codeOf(await rejection(conn.do('SET', k)))).toBe('ERR'); // wrong number of arguments
    expect(await conn.do('INCR', n)).toBe('QUEUED');
    expect(codeOf(await rejection(conn.do('EXEC')))).toBe('EXECABORT');
    expect(await readDirect(n)).toBeNull();
    for (const key of keysOnEachMaster('unbound')) expect(await conn.do('INCR', key)).toBe(1);
    // A held (keyless) bad command is answered QUEUED client-side, but the transaction still aborts.
    expect(await conn.do('MULTI')).toBe('OK');
    expect(await conn.do('TIME', 'extra')).toBe('QUEUED'); // one server: ERR wrong number of arguments
    expect(await conn.do('INCR', n)).toBe('QUEUED');
    expect(codeOf(await rejection(conn.do('EXEC')))).toBe('EXECABORT');
    expect(await readDirect(n)).toBeNull();
  });

  it('WATCH k, then a key of another slot → CrossSlotError before anything is sent; after UNWATCH any slot works', async () => {
    const [a, b] = keysOnEachMaster('watch');
    expect(await conn.do('WATCH', a)).toBe('OK');
    const other = (): number => client.stats().nodes.find((n) => n.addr === masters[1])?.stats.sharedCommands ?? 0;
    const before = other();
    expect(await rejection(conn.do('SET', b, '1'))).toBeInstanceOf(CrossSlotError);
    expect(thrownBy(() => conn.send('GET', b))).toBeInstanceOf(CrossSlotError);
    expect(await rejection(conn.do('MGET', a, b))).toBeInstanceOf(CrossSlotError);
    expect(other()).toBe(before);
    expect(await readDirect(b)).toBeNull();
    expect(conn.err()).toBeNull();
    expect(await conn.do('GET', a)).toBeNull(); // same slot: fine
    expect(await conn.do('UNWATCH')).toBe('OK');
    expect(await conn.do('SET', b, '1')).toBe('OK');
    expect(plain(await conn.do('MGET', a, b))).toEqual([null, '1']);
  });

  it('WATCH binds keyed commands, but DBSIZE (all_shards) while watching still counts every master (or is refused)', async () => {
    const names = spread('dbsize', 30);
    await client.do('MSET', ...names.flatMap((key) => [key, 'x']));
    expect(await conn.do('DBSIZE')).toBe(30);
    expect(await conn.do('WATCH', names[0] as string)).toBe('OK');
    const outcome = await settle(conn.do('DBSIZE'));
    // One node's count (about 10) is a wrong answer.
    if (outcome.ok) expect(outcome.value).toBe(30);
    else expect(outcome.error).toBeInstanceOf(CrossSlotError);
    await conn.do('UNWATCH');
  });

  it('FLUSHALL (all_shards) queued in MULTI runs on every master (or is refused), never on one node only', async () => {
    const names = spread('flush', 30);
    await client.do('MSET', ...names.flatMap((key) => [key, 'x']));
    expect(await conn.do('MULTI')).toBe('OK');
    const queued = await settle(conn.do('FLUSHALL'));
    if (!queued.ok) {
      expect(queued.error).toBeInstanceOf(CrossSlotError);
      await conn.do('DISCARD');
      expect(await client.do('DBSIZE')).toBe(30);
      return;
    }
    await conn.do('SET', names[0] as string, 'y');
    await conn.do('EXEC');
    const left = (await client.do('DBSIZE')) as number;
    expect(left).toBe(1); // every master flushed, then the SET: one key
  });
});

describe('ClusterConn: subscriptions', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('SUBSCRIBE, a PUBLISH from another client, PSUBSCRIBE, PING while subscribed, UNSUBSCRIBE and PUNSUBSCRIBE all', async () => {
    conn.send('SUBSCRIBE', 'sub:a', 'sub:b');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['subscribe', 'sub:a', 1]);
    expect(plain(await conn.receive())).toEqual(['subscribe', 'sub:b', 2]);
    await client.do('PUBLISH', 'sub:a', 'hello');
    expect(plain(await within(conn.receive(), 2_000, 'message'))).toEqual(['message', 'sub:a', 'hello']);
    conn.send('PSUBSCRIBE', 'pat:*');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['psubscribe', 'pat:*', 3]);
    await client.do('PUBLISH', 'pat:1', 'p');
    expect(plain(await within(conn.receive(), 2_000, 'pmessage'))).toEqual(['pmessage', 'pat:*', 'pat:1', 'p']);
    expect(plain(await conn.do('PING'))).toEqual(['pong', '']);
    conn.send('UNSUBSCRIBE');
    await conn.flush();
    const unsubscribed = [plain(await conn.receive()), plain(await conn.receive())] as unknown[][];
    expect(unsubscribed.map((r) => r[0])).toEqual(['unsubscribe', 'unsubscribe']);
    expect(unsubscribed.map((r) => r[1]).sort()).toEqual(['sub:a', 'sub:b']);
    expect(unsubscribed.map((r) => r[2])).toEqual([2, 1]);
    conn.send('PUNSUBSCRIBE');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['punsubscribe', 'pat:*', 0]);
    await conn.close();
    await expectClean(client);
  });

  it('after unsubscribing from everything the conn is a plain conn again: keys of every master, pipelines', async () => {
    conn.send('SUBSCRIBE', 'gone');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['subscribe', 'gone', 1]);
    conn.send('UNSUBSCRIBE');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['unsubscribe', 'gone', 0]);
    const results: Record<string, unknown> = {};
    for (const key of keysOnEachMaster('plain')) {
      const outcome = await settle(conn.do('SET', key, 'v'));
      results[key] = outcome.ok ? outcome.value : String(outcome.error);
    }
    expect(Object.values(results)).toEqual(['OK', 'OK', 'OK']);
    const [a, b] = keysOnEachMaster('plain');
    conn.send('GET', a);
    conn.send('GET', b);
    expect(plain(await conn.do(''))).toEqual(['v', 'v']);
  });

  it('receiveWithTimeout while subscribed and quiet rejects TimeoutError near the deadline (no re-subscribing for seconds)', async () => {
    conn.send('SUBSCRIBE', 'quiet');
    await conn.flush();
    expect(plain(await conn.receive())).toEqual(['subscribe', 'quiet', 1]);
    const dialsBefore = client.stats().dials;
    const started = performance.now();
    const outcome = await within(settle(conn.receiveWithTimeout(150)), 2_000, 'receive while subscribed');
    const ms = performance.now() - started;
    expect(outcome.ok ? 'resolved' : outcome.error).toBeInstanceOf(TimeoutError);
    expect({ ms: ms < 500, newDials: client.stats().dials - dialsBefore }).toEqual({ ms: true, newDials: 0 });
    expect(conn.err()).not.toBeNull();
    await conn.close();
    await expectClean(client);
  });

  it('SSUBSCRIBE two channels of one slot; SPUBLISH reaches them; a channel of another slot → CrossSlotError', async () => {
    const sub = new PubSubConn(conn, { healthCheckMs: 0 });
    await sub.ssubscribe('{shard}a', '{shard}b');
    expect(await sub.receive()).toEqual({ kind: 'ssubscribe', channel: '{shard}a', count: 1 });
    expect(await sub.receive()).toEqual({ kind: 'ssubscribe', channel: '{shard}b', count: 2 });
    expect(await client.do('SPUBLISH', '{shard}b', 'hi')).toBe(1);
    const message = (await within(sub.receive(), 2_000, 'smessage')) as PubSubMessage;
    expect(message).toMatchObject({ kind: 'message', channel: '{shard}b' });
    expect(text(message.data)).toBe('hi');
    const other = 'elsewhere';
    expect(slotOf(other)).not.toBe(slotOf('{shard}a'));
    expect(await rejection(sub.ssubscribe(other))).toBeInstanceOf(CrossSlotError);
    expect(await client.do('SPUBLISH', '{shard}a', 'still')).toBe(1);
    expect(await within(sub.receive(), 2_000, 'smessage after the refusal')).toMatchObject({ kind: 'message', channel: '{shard}a' });
    await sub.sunsubscribe();
    const confirmations = [await sub.receive(), await sub.receive()];
    expect(confirmations.map((c) => c.kind)).toEqual(['sunsubscribe', 'sunsubscribe']);
    await sub.close();
    await expectClean(client);
  });

  it('PubSubConn over it with a 50 ms health check: quiet periods, a late message, ping, close leaves nothing behind', async () => {
    const sub = new PubSubConn(conn, { healthCheckMs: 50 });
    await sub.subscribe('hc');
    expect(await sub.receive()).toEqual({ kind: 'subscribe', channel: 'hc', count: 1 });
    const sends = vi.spyOn(conn, 'send');
    const next = settle(sub.receive());
    // A quiet period: a health PING goes out; its answer is swallowed.
    expect(await eventually(() => sends.mock.calls.some(([command]) => command === 'PING'))).toBe(true);
    sends.mockRestore();
    await client.do('PUBLISH', 'hc', 'late');
    const got = await within(next, 2_000, 'late message');
    expect(got.ok).toBe(true);
    expect((got as { value: PubSubMessage }).value).toMatchObject({ kind: 'message', channel: 'hc' });
    await sub.ping('x');
    const pong = await within(sub.receive(), 2_000, 'pong');
    expect(pong.kind).toBe('pong');
    expect(text((pong as { data: Buffer }).data)).toBe('x');
    expect(conn.err()).toBeNull();
    await sub.close();
    await expectClean(client);
  });
});

describe('ClusterConn: scripts and keyless commands', () => {
  let conn: Conn;
  beforeEach(async () => {
    conn = await client.get();
  });
  afterEach(async () => {
    await conn.close();
  });

  it('Script.do runs on the node of its keys (EVAL on NOSCRIPT), SCRIPT EXISTS then sees it on every master', async () => {
    const script = new Script(1, `return redis.call("INCR", KEYS[1]) -- ${Date.now()}`);
    expect(await conn.do('SCRIPT', 'EXISTS', script.hash)).toEqual([0]);
    for (const key of keysOnEachMaster('script')) {
      expect(await script.do(conn, key)).toBe(1);
      expect(await script.do(conn, key)).toBe(2);
    }
    expect(await conn.do('SCRIPT', 'EXISTS', script.hash)).toEqual([1]);
    const keyless = new Script(0, `return 42 -- ${Date.now()}`);
    expect(await keyless.do(conn)).toBe(42);
    // Inside MULTI a script is queued; its NOSCRIPT comes back inside EXEC's array.
    await conn.do('MULTI');
    await conn.do('SET', '{s}k', '1');
    expect(await conn.do('EVALSHA', 'f'.repeat(40), 1, '{s}k')).toBe('QUEUED');
    const exec = (await conn.do('EXEC')) as Reply[];
    expect(exec[0]).toBe('OK');
    expect(codeOf(exec[1])).toBe('NOSCRIPT');
  });

  it('INFO, TIME, CLUSTER INFO unbound; bound by WATCH or MULTI they run on the bound node', async () => {
    expect(text(await conn.do('INFO', 'server'))).toMatch(/redis_version:/);
    expect((await conn.do('TIME')) as unknown[]).toHaveLength(2);
    expect(text(await conn.do('CLUSTER', 'INFO'))).toMatch(/^cluster_state:ok/m);
    const ids = new Map(cluster.nodes.map((node) => [node.addr, node.id]));
    for (const addr of masters) {
      const k = keyOn(addr, 'bound');
      await conn.do('WATCH', k);
      expect(text(await conn.do('CLUSTER', 'MYID'))).toBe(ids.get(addr));
      expect(text(await conn.do('INFO', 'server'))).toContain(`tcp_port:${addr.split(':')[1]}`);
      expect((await conn.do('TIME')) as unknown[]).toHaveLength(2);
      await conn.do('UNWATCH');
      await conn.do('MULTI');
      expect(await conn.do('CLUSTER', 'MYID')).toBe('QUEUED');
      expect(await conn.do('SET', k, '1')).toBe('QUEUED');
      expect(plain(await conn.do('EXEC'))).toEqual([ids.get(addr), 'OK']);
    }
  });

  it('SCRIPT KILL (one_succeeded) succeeds when one master kills a script, as Cluster.do does', async () => {
    const victim = masters[2] as string;
    const k = keyOn(victim, 'busy');
    await adminOf(victim).do('CONFIG', 'SET', 'busy-reply-threshold', '100');
    expect(await conn.do('DBSIZE')).toBe(0); // every master's shared connection open before the node is busy
    const busyConn = await dial(victim);
    const busy = settle(
      busyConn.do('EVAL', 'local t0 = redis.call("TIME") while true do local t = redis.call("TIME") if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 2000000 then break end end return 1', 1, k),
    );
    try {
      // The script runs once the node answers others BUSY.
      const answersBusy = async (): Promise<boolean> => {
        const ping = await settle(adminOf(victim).do('PING'));
        return !ping.ok && String(ping.error).includes('BUSY');
      };
      expect(await eventually(answersBusy)).toBe(true);
      const outcome = await settle(conn.do('SCRIPT', 'KILL'));
      expect(outcome.ok ? outcome.value : String(outcome.error)).toBe('OK');
    } finally {
      await busy;
      await busyConn.close();
      await adminOf(victim).do('CONFIG', 'SET', 'busy-reply-threshold', '5000');
    }
  });
});

describe('ClusterConn: RESP3 and decodeStrings', () => {
  it('RESP3: maps, split and fanned-out replies, pushes through PubSubConn; protocol is 3', async () => {
    const resp3 = newCluster([seed], { clientName: NAME, protocol: 3, resetTimeoutMs: 2_000 });
    try {
      const conn = await resp3.get();
      const [a, b, c] = keysOnEachMaster('r3');
      await conn.do('HSET', a, 'f', 'v');
      expect(plain(await conn.do('HGETALL', a))).toEqual(new Map([['f', 'v']]));
      await conn.do('MSET', b, '2', c, '3');
      expect(plain(await conn.do('MGET', a, b, c, 'r3:none'))).toEqual([null, '2', '3', null]);
      expect(await conn.do('DBSIZE')).toBe(3);
      expect(await conn.do('EXISTS', a, b, c)).toBe(3);
      expect(conn.protocol).toBe(3);
      await conn.close();

      const sub = new PubSubConn(await resp3.get(), { healthCheckMs: 0 });
      await sub.subscribe('r3:ch');
      expect(await sub.receive()).toEqual({ kind: 'subscribe', channel: 'r3:ch', count: 1 });
      await resp3.do('PUBLISH', 'r3:ch', 'push');
      const message = (await within(sub.receive(), 2_000, 'RESP3 message')) as PubSubMessage;
      expect(text(message.data)).toBe('push');
      await sub.ping('p');
      expect(await within(sub.receive(), 2_000, 'RESP3 pong')).toMatchObject({ kind: 'pong' });
      await sub.unsubscribe();
      expect(await sub.receive()).toEqual({ kind: 'unsubscribe', channel: 'r3:ch', count: 0 });
      await sub.close();
      await expectClean(resp3);
    } finally {
      await resp3.close();
    }
  });

  it('decodeStrings: bulk strings as strings through single, split and fanned-out commands', async () => {
    const ds = newCluster([seed], { clientName: NAME, decodeStrings: true });
    try {
      const conn = await ds.get();
      const [a, b, c] = keysOnEachMaster('ds');
      conn.send('MSET', a, 'x', b, 'y', c, 'z');
      conn.send('GET', a);
      conn.send('MGET', c, b, a);
      conn.send('KEYS', 'ds:*');
      const [ok, got, mget, keys] = (await conn.do('')) as Reply[];
      expect(ok).toBe('OK');
      expect(got).toBe('x');
      expect(mget).toEqual(['z', 'y', 'x']);
      expect((keys as string[]).sort()).toEqual([a, b, c].sort());
      await conn.close();
    } finally {
      await ds.close();
    }
  });
});

describe('ClusterConn: bad arguments', () => {
  it('a bad command or argument rejects TypeError (no synchronous throw), sends nothing, and the conn stays usable', async () => {
    const conn = await client.get();
    const [a, b] = keysOnEachMaster('bad');
    await conn.do('PING');
    const before = client.stats().sharedCommands;
    const bad: [string, () => Promise<unknown>][] = [
      ['do(123)', () => conn.do(123 as never)],
      ['do(undefined)', () => conn.do(undefined as never)],
      ['object argument', () => conn.do('SET', a, {} as never)],
      ['symbol argument', () => conn.do('SET', a, Symbol('x') as never)],
      ['array argument', () => conn.do('MSET', a, [1] as never, b, '1')],
      ['a missing key', () => conn.do('GET')],
      ['doWithTimeout(…, 123)', () => conn.doWithTimeout(1_000, 123 as never)],
      ['doWithSignal object argument', () => conn.doWithSignal(new AbortController().signal, 'SET', a, {} as never)],
    ];
    for (const [name, call] of bad) {
      const reason = await within(rejection(noSyncThrow(call)), 1_000, name);
      expect(reason, name).toBeInstanceOf(TypeError);
    }
    expect(await rejection(conn.doWithTimeout(-1, 'PING'))).toBeInstanceOf(RangeError);
    expect(thrownBy(() => conn.send('SET', a, {} as never))).toBeInstanceOf(TypeError);
    expect(client.stats().sharedCommands).toBe(before);
    expect(conn.err()).toBeNull();
    expect(await conn.do('')).toEqual([]);
    conn.send('INCR', b);
    expect(await rejection(conn.do('SET', a, {} as never))).toBeInstanceOf(TypeError);
    await conn.flush();
    expect(await within(conn.receive(), 1_000, 'the owed INCR')).toBe(1);
    expect(await conn.do('GET', a)).toBeNull();
    await conn.close();
  });
});

describe('ClusterConn: cluster.lease()', () => {
  it('used before the topology is known: sends are buffered until mapped, then replies come in order', async () => {
    const fresh = newCluster([seed], { clientName: NAME });
    try {
      const lease = fresh.lease();
      expect(fresh.stats().slotsCovered).toBe(0);
      const [a, b, c] = keysOnEachMaster('early');
      lease.send('SET', a, '1');
      lease.send('SET', b, '2');
      lease.send('MGET', a, b, c);
      lease.send('DBSIZE');
      expect(plain(await lease.do('GET', b))).toBe('2');
      expect(await lease.do('')).toEqual([]);
      lease.send('INCR', a);
      lease.send('DEL', a, b);
      expect(plain(await lease.do(''))).toEqual([2, 2]);
      await lease.close();
      await expectClean(fresh);
    } finally {
      await fresh.close();
    }
  });

  it('before the topology is known, a cross-slot send still throws CrossSlotError at once and loses no other send', async () => {
    const fresh = newCluster([seed], { clientName: NAME });
    try {
      const lease = fresh.lease();
      const [a, b, c] = keysOnEachMaster('earlycross');
      lease.send('SET', a, '1');
      const thrown = thrownBy(() => lease.send('SUNIONSTORE', a, b));
      lease.send('SET', c, '3');
      const outcome = await settle(lease.do(''));
      expect({ thrown: thrown instanceof CrossSlotError, replies: outcome.ok ? outcome.value : String(outcome.error) }).toEqual({ thrown: true, replies: ['OK', 'OK'] });
      expect(await readDirect(c)).toBe('3');
      await lease.close();
    } finally {
      await fresh.close();
    }
  });
});

describe('ClusterConn: many at once', () => {
  it('200 concurrent callers (get and lease) each doing MULTI / INCR / EXEC then close: counts exact, pools balanced', async () => {
    const counters = keysOnEachMaster('many');
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const conn = i % 2 === 0 ? await client.get() : client.lease();
        const counter = counters[i % 3] as string;
        try {
          expect(await conn.do('MULTI')).toBe('OK');
          expect(await conn.do('INCR', counter)).toBe('QUEUED');
          const exec = (await conn.do('EXEC')) as number[];
          return [counter, exec[0]] as const;
        } finally {
          await conn.close();
        }
      }),
    );
    for (const [i, counter] of counters.entries()) {
      const seen = results.filter(([c]) => c === counter).map(([, n]) => n as number).sort((x, y) => x - y);
      const expected = Array.from({ length: 200 }, (_, j) => j).filter((j) => j % 3 === i).length;
      expect(seen).toEqual(Array.from({ length: expected }, (_, j) => j + 1));
      expect(await readDirect(counter)).toBe(String(expected));
    }
    await expectClean(client);
    for (const node of client.stats().nodes) expect(node.stats.inUseCount, node.addr).toBe(node.stats.sharedCount);
  });
});

/**
 * The pure parts of the cluster client: CLUSTER SLOTS parsing (endpoint
 * forms a local cluster does not produce on its own), redirect parsing and
 * reply aggregation. Everything that talks to Redis is in cluster*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ProtocolError, RedisError } from '../src/index.js';
import { parseClusterSlots, mapAddress } from '../src/cluster/topology.js';
import { backoffMs, redirectOf } from '../src/cluster/redirect.js';
import { aggregate, splitBySlot } from '../src/cluster/fanout.js';
import { slotOf } from '../src/cluster/slot.js';
import { thrownBy } from './helpers.js';

const node = (host: string | null, port: number, id = 'id'): unknown[] => [host === null ? null : Buffer.from(host), port, Buffer.from(id)];

describe('parseClusterSlots', () => {
  it('reads ranges, masters and replicas; one shard object per master', () => {
    const ranges = parseClusterSlots(
      [
        [0, 5460, node('10.0.0.1', 7000), node('10.0.0.4', 7003)],
        [5461, 10922, node('10.0.0.2', 7001)],
        [10923, 16383, node('10.0.0.1', 7000), node('10.0.0.4', 7003)],
      ] as never,
      '10.0.0.9',
    );
    expect(ranges.map((range) => [range.start, range.end, range.shard.master, range.shard.replicas])).toEqual([
      [0, 5460, '10.0.0.1:7000', ['10.0.0.4:7003']],
      [5461, 10922, '10.0.0.2:7001', []],
      [10923, 16383, '10.0.0.1:7000', ['10.0.0.4:7003']],
    ]);
    expect(ranges[0]?.shard).toBe(ranges[2]?.shard);
  });

  it('takes an empty host as the host asked, skips unknown (?) endpoints, brackets IPv6', () => {
    const ranges = parseClusterSlots([[0, 99, node('', 7000), node('?', 7003), node('::1', 7004)], [100, 199, node('?', 7001)], [200, 299, node(null, 7002)]] as never, 'redis.example');
    expect(ranges).toHaveLength(1);
    expect(ranges[0]?.shard).toEqual({ master: 'redis.example:7000', replicas: ['[::1]:7004'] });
  });

  it('maps announced addresses through addressMap (object or function)', () => {
    const reply = [[0, 16383, node('node-1.internal', 6379), node('node-2.internal', 6379)]] as never;
    expect(parseClusterSlots(reply, 'x', { 'node-1.internal:6379': '127.0.0.1:16379' })[0]?.shard).toEqual({ master: '127.0.0.1:16379', replicas: ['node-2.internal:6379'] });
    expect(parseClusterSlots(reply, 'x', (addr) => addr.replace('.internal', '.local'))[0]?.shard).toEqual({ master: 'node-1.local:6379', replicas: ['node-2.local:6379'] });
    expect(thrownBy(() => mapAddress(() => '', 'a:1'))).toBeInstanceOf(TypeError);
  });

  it('refuses replies of the wrong shape with ProtocolError', () => {
    for (const bad of ['OK', [[0]], [['a', 1, node('h', 1)]], [[0, 1, ['h']]], [[0, 1, [Buffer.from('h'), 'port']]]]) {
      expect(thrownBy(() => parseClusterSlots(bad as never, 'h'))).toBeInstanceOf(ProtocolError);
    }
  });
});

describe('redirectOf', () => {
  it('reads MOVED and ASK (slot, address through the map), TRYAGAIN and CLUSTERDOWN; nothing else', () => {
    expect(redirectOf(new RedisError('MOVED 3999 127.0.0.1:6381'), undefined)).toEqual({ kind: 'moved', slot: 3999, addr: '127.0.0.1:6381' });
    expect(redirectOf(new RedisError('ASK 12 node:7000'), { 'node:7000': '127.0.0.1:17000' })).toEqual({ kind: 'ask', slot: 12, addr: '127.0.0.1:17000' });
    expect(redirectOf(new RedisError('TRYAGAIN Multiple keys request during rehashing of slot'), undefined)?.kind).toBe('tryagain');
    expect(redirectOf(new RedisError('CLUSTERDOWN The cluster is down'), undefined)?.kind).toBe('clusterdown');
    expect(redirectOf(new RedisError('ERR nope'), undefined)).toBeNull();
    expect(redirectOf(new Error('MOVED 1 a:1'), undefined)).toBeNull();
    expect(redirectOf(new RedisError('MOVED x'), undefined)).toBeNull();
  });

  it('an empty host means the host of the node that answered (not mapped again); without one, or with a bad port, no redirect', () => {
    const map = { 'node:7000': '127.0.0.1:17000' };
    expect(redirectOf(new RedisError('MOVED 3999 :6381'), map, '10.0.0.5:7000')).toEqual({ kind: 'moved', slot: 3999, addr: '10.0.0.5:6381' });
    expect(redirectOf(new RedisError('ASK 12 :7001'), undefined, '[::1]:7000')).toEqual({ kind: 'ask', slot: 12, addr: '[::1]:7001' });
    expect(redirectOf(new RedisError('MOVED 3999 :6381'), undefined)).toBeNull();
    expect(redirectOf(new RedisError('MOVED 3999 :0'), undefined, '10.0.0.5:7000')).toBeNull();
    expect(redirectOf(new RedisError('MOVED 3999 :x'), undefined, '10.0.0.5:7000')).toBeNull();
  });

  it('says to use a cluster when a plain connection meets a redirect', () => {
    expect(new RedisError('MOVED 1 a:1').message).toMatch(/Redis Cluster node: use newCluster\(\)/);
    expect(new RedisError('MOVED 1 a:1').code).toBe('MOVED');
  });

  it('backs off 10 ms doubling to 200 ms, with jitter', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const base = Math.min(200, 10 * 2 ** (attempt - 1));
      const ms = backoffMs(attempt);
      expect(ms).toBeGreaterThanOrEqual(Math.floor(base * 0.75));
      expect(ms).toBeLessThanOrEqual(Math.ceil(base * 1.25));
    }
  });
});

describe('split and aggregate', () => {
  it('splits by slot keeping each key with its value, and puts replies back in key order', () => {
    const args = ['a', '1', 'b', '2', '{a}x', '3'];
    const groups = splitBySlot(args, [0, 2, 4]);
    expect(groups.map((group) => group.slot)).toEqual([...new Set([slotOf('a'), slotOf('b')])]);
    expect(groups[0]).toMatchObject({ args: ['a', '1', '{a}x', '3'], positions: [0, 2] });
    expect(aggregate(undefined, [['A', 'X'], ['B']], groups, 3)).toEqual(['A', 'B', 'X']);
  });

  it('sums, ands, ors, takes min/max element-wise, concatenates arrays without a policy', () => {
    expect(aggregate('agg_sum', [1, 2, 3], null, 0)).toBe(6);
    expect(aggregate('agg_logical_and', [[1, 1, 0], [1, 0, 0]], null, 0)).toEqual([1, 0, 0]);
    expect(aggregate('agg_logical_or', [[1, 0, 0], [0, 0, 1]], null, 0)).toEqual([1, 0, 1]);
    expect(aggregate('agg_min', [3, 1, 2], null, 0)).toBe(1);
    expect(aggregate('agg_max', [3, 1, 2], null, 0)).toBe(3);
    expect(aggregate('all_succeeded', ['OK', 'OK'], null, 0)).toBe('OK');
    expect(aggregate(undefined, [['a'], ['b', 'c']], null, 0)).toEqual(['a', 'b', 'c']);
  });
});

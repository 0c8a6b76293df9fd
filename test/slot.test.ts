/**
 * Hash slots: CRC16/XMODEM vectors, the hash tag rules of the Redis Cluster
 * spec, and 2,000 random keys (ASCII, UTF-8, binary; with and without braces)
 * against CLUSTER KEYSLOT of a real cluster-enabled redis-server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SLOT_COUNT, crc16, slotOf } from '../src/cluster/slot.js';
import type { Conn } from '../src/conn.js';
import { guardProcessErrors, useServerWithConn } from './helpers.js';
import { Rng } from './rng.js';

guardProcessErrors();

const configDir = mkdtempSync(join(tmpdir(), 'redisconn-slot-'));
afterAll(() => rmSync(configDir, { recursive: true, force: true }));

let conn: Conn;
useServerWithConn(
  (started) => {
    conn = started.conn;
  },
  { args: ['--cluster-enabled', 'yes', '--cluster-config-file', join(configDir, 'nodes.conf')] },
);

describe('crc16', () => {
  it('is CRC16/XMODEM', () => {
    expect(crc16('123456789')).toBe(0x31c3);
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(crc16('')).toBe(0);
    expect(crc16(new Uint8Array([0]))).toBe(0);
    expect(crc16('é')).toBe(crc16(Buffer.from([0xc3, 0xa9])));
  });
});

describe('slotOf', () => {
  it('hashes the key, or its hash tag, modulo 16384', () => {
    expect(SLOT_COUNT).toBe(16384);
    expect(slotOf('foo')).toBe(12182);
    expect(slotOf(Buffer.from('foo'))).toBe(12182);
    expect(slotOf('123456789')).toBe(0x31c3 % 16384);
    expect(slotOf('')).toBe(0);
  });

  it('follows the hash tag examples of the cluster spec', () => {
    // The same tag, the same slot.
    expect(slotOf('{user1000}.following')).toBe(slotOf('user1000'));
    expect(slotOf('{user1000}.followers')).toBe(slotOf('user1000'));
    // Only the first '{' and the first '}' after it count.
    expect(slotOf('foo{bar}{zap}')).toBe(slotOf('bar'));
    expect(slotOf('foo{{bar}}zap')).toBe(slotOf('{bar'));
    // An empty tag: the whole key is hashed.
    expect(slotOf('foo{}{bar}')).toBe(crc16('foo{}{bar}') % 16384);
    expect(slotOf('{}foo')).toBe(crc16('{}foo') % 16384);
    // No closing brace, or a '}' only before the '{': the whole key.
    expect(slotOf('foo{bar')).toBe(crc16('foo{bar') % 16384);
    expect(slotOf('}foo{')).toBe(crc16('}foo{') % 16384);
    // Binary keys and UTF-8 tags follow the same rules.
    expect(slotOf(Buffer.from('x{user1000}y'))).toBe(slotOf('user1000'));
    expect(slotOf('{ключ}a')).toBe(slotOf(Buffer.from('ключ')));
  });

  it('agrees with CLUSTER KEYSLOT on 2,000 random keys', async () => {
    const rng = new Rng(0x5107);
    const keys = Array.from({ length: 2000 }, () => randomKey(rng));
    for (const key of keys) conn.send('CLUSTER', 'KEYSLOT', key);
    const slots = (await conn.do('')) as unknown[];
    expect(slots).toHaveLength(keys.length);
    const mismatches = keys.flatMap((key, i) => (slotOf(key) === slots[i] ? [] : [{ key, ours: slotOf(key), redis: slots[i] }]));
    expect(mismatches).toEqual([]);
  });
});

const ASCII = 'abcxyzABCXYZ0189:._-{}{}{} ';
const UNICODE = ['é', 'ß', 'ключ', '键', '🔑', '😀', '{', '}', 'a', '\u0000', '\u07ff', '\u0800', '\uffff'];

/** A key of one of the shapes: ASCII, UTF-8, binary; braces are frequent in all of them. */
function randomKey(rng: Rng): string | Buffer {
  const length = rng.range(0, 24);
  switch (rng.int(3)) {
    case 0:
      return Array.from({ length }, () => rng.pick([...ASCII])).join('');
    case 1:
      return Array.from({ length }, () => rng.pick(UNICODE)).join('');
    default: {
      const bytes = rng.bytes(length);
      for (let i = 0; i < length; i++) if (rng.chance(0.15)) bytes[i] = rng.chance(0.5) ? 0x7b : 0x7d;
      return bytes;
    }
  }
}

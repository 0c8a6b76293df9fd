/** Writes the key set every client reads: KEY_COUNT 100-byte values and one 1 MiB value. */
import { dial, RedisError } from '../src/index.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { KEYS, LARGE_BYTES, LARGE_KEY, VALUE_BYTES } from './config.js';

export async function seed(server: TestRedisServer): Promise<void> {
  const conn = await dial(server.addr);
  try {
    const value = Buffer.alloc(VALUE_BYTES, 'v');
    for (const key of KEYS) conn.send('SET', key, value);
    conn.send('SET', LARGE_KEY, Buffer.alloc(LARGE_BYTES, 'L'));
    const replies = (await conn.do('')) as unknown[];
    const failed = replies.find((reply) => reply instanceof RedisError);
    if (failed !== undefined) throw failed;
  } finally {
    await conn.close();
  }
}

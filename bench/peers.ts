/**
 * The peer clients, connected to the bench server with their defaults. Every
 * client returns bulk strings as Buffers, as redisconn does by default, so all
 * do the same work per reply: ioredis through its `…Buffer` commands,
 * node-redis through the client-wide `typeMapping` command option.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { createClient, createClientPool, RESP_TYPES } from 'redis';
import type { TestRedisServer } from '../src/testing/index.js';

export async function connectIoredis(server: TestRedisServer, options: RedisOptions = {}): Promise<Redis> {
  const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, ...options });
  await client.connect();
  return client;
}

const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer } as const;

export async function connectNodeRedis(server: TestRedisServer) {
  const client = createClient({ socket: { host: server.host, port: server.port }, commandOptions: { typeMapping: BUFFERS } });
  await client.connect();
  return client;
}

/** A node-redis `createClientPool` of `size` connections, all opened up front. */
export async function connectNodeRedisPool(server: TestRedisServer, size: number) {
  const pool = createClientPool({ socket: { host: server.host, port: server.port }, commandOptions: { typeMapping: BUFFERS } }, { minimum: size, maximum: size });
  await pool.connect();
  return pool;
}

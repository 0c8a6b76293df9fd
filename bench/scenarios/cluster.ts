/**
 * cluster: a local Redis Cluster of 3 masters (no replicas), 50 concurrent
 * callers doing 80 % GET / 20 % SET of 100-byte values over 10,000 keys
 * `key:<n>`, spread over all three masters by their slots. Op i is a SET when
 * i % 5 == 4, else a GET, of key `key:<i mod 10000>`.
 *
 * redisconn `cluster.do` (each node's shared, auto-pipelined connection) and
 * `cluster.get()` (one call = get a Conn, do the one command, close it: what
 * pool-50 does with `pool.get()`), against ioredis `Cluster` (default options,
 * and with enableAutoPipelining as in shared-50), node-redis `createCluster`,
 * and `redis-benchmark --cluster -c 50` as the limit. redis-benchmark runs its
 * SET and GET tests one after the other (it cannot mix them; its keys carry a
 * hash tag of each node's): its figure is that of the 80/20 mix done as the
 * two phases, 1 / (0.8 / GET rate + 0.2 / SET rate).
 *
 * The cluster is the scenario's own (`setup`); the bench server is unused.
 */
import { Cluster as IoredisCluster, type ClusterOptions as IoredisClusterOptions } from 'ioredis';
import { createCluster, RESP_TYPES } from 'redis';
import { dial, newCluster, RedisError, type Cluster } from '../../src/index.js';
import { startRedisCluster, type TestRedisCluster } from '../../src/testing/index.js';
import { CONCURRENCY, scaled, VALUE_BYTES } from '../config.js';
import type { Contender, Scenario } from '../harness.js';
import { expectValue } from '../load.js';
import { redisBenchmarkRates } from '../redis-benchmark.js';
import { fifty } from './pool50.js';

const MASTERS = 3;
export const CLUSTER_KEY_COUNT = 10_000;
const CLUSTER_KEYS: readonly string[] = Array.from({ length: CLUSTER_KEY_COUNT }, (_, i) => `key:${i}`);
/** Every fifth op is a SET. */
const SET_SHARE = 0.2;
const VALUE = Buffer.alloc(VALUE_BYTES, 'c');

function keyOf(i: number): string {
  return CLUSTER_KEYS[i % CLUSTER_KEY_COUNT] as string;
}

function isSet(i: number): boolean {
  return i % 5 === 4;
}

/** The running cluster, between the scenario's setup and its stop. */
let cluster: TestRedisCluster | null = null;

function seeds(): string[] {
  if (cluster === null) throw new Error('bench: the cluster scenario ran without its setup');
  return cluster.seeds;
}

function hostPort(addr: string): { host: string; port: number } {
  const at = addr.lastIndexOf(':');
  return { host: addr.slice(0, at), port: Number(addr.slice(at + 1)) };
}

/** Starts the cluster and writes every key; resolves the function that stops it. */
async function setup(): Promise<() => Promise<void>> {
  const started = await startRedisCluster({ masters: MASTERS, replicasPerMaster: 0 });
  cluster = started;
  const stop = async () => {
    cluster = null;
    await started.stop();
  };
  try {
    const client = newCluster(started.seeds);
    try {
      for (let first = 0; first < CLUSTER_KEY_COUNT; first += 1000) {
        const replies = await Promise.all(CLUSTER_KEYS.slice(first, first + 1000).map((key) => client.do('SET', key, VALUE)));
        const failed = replies.find((reply) => reply instanceof RedisError);
        if (failed !== undefined) throw failed;
      }
      // Every master holds its share, so every client's traffic reaches all of them.
      for (const node of started.masters()) {
        const conn = await dial(node.addr);
        try {
          const size = Number(await conn.do('DBSIZE'));
          if (size < CLUSTER_KEY_COUNT / MASTERS / 2) throw new Error(`bench: cluster master ${node.addr} holds ${size} of the ${CLUSTER_KEY_COUNT} keys`);
        } finally {
          await conn.close();
        }
      }
    } finally {
      await client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

/** One op of the mix on redisconn (`cluster.do`, or a Conn's `do`). */
function op(target: { do(cmd: string, ...args: (string | Buffer)[]): Promise<unknown> }, i: number): Promise<unknown> {
  return isSet(i) ? target.do('SET', keyOf(i), VALUE) : target.do('GET', keyOf(i));
}

async function borrowOp(client: Cluster, i: number): Promise<unknown> {
  const conn = await client.get();
  try {
    return await op(conn, i);
  } finally {
    await conn.close();
  }
}

const redisconnDo: Contender = {
  client: 'redisconn',
  variant: 'cluster.do',
  async open() {
    const client = newCluster(seeds());
    expectValue(await client.do('GET', keyOf(0)), VALUE_BYTES, 'redisconn cluster.do');
    return { run: (n) => fifty(n, (i) => op(client, i)), close: () => client.close() };
  },
};

const redisconnGet: Contender = {
  client: 'redisconn',
  variant: 'cluster.get → do → close',
  async open() {
    const client = newCluster(seeds());
    // Dial up front, as the peers' connections are opened before timing.
    await fifty(CONCURRENCY * 4, (i) => borrowOp(client, i));
    const conn = await client.get();
    try {
      expectValue(await conn.do('GET', keyOf(0)), VALUE_BYTES, 'redisconn cluster.get');
    } finally {
      await conn.close();
    }
    return { run: (n) => fifty(n, (i) => borrowOp(client, i)), close: () => client.close() };
  },
};

function ioredis(variant: string, options: IoredisClusterOptions): Contender {
  return {
    client: 'ioredis',
    variant,
    async open() {
      const client = new IoredisCluster(seeds().map(hostPort), { lazyConnect: true, ...options });
      await client.connect();
      expectValue(await client.getBuffer(keyOf(0)), VALUE_BYTES, 'ioredis Cluster');
      const ioOp = (i: number) => (isSet(i) ? client.set(keyOf(i), VALUE) : client.getBuffer(keyOf(i)));
      return { run: (n) => fifty(n, ioOp), close: async () => void (await client.quit()) };
    },
  };
}

const nodeRedis: Contender = {
  client: 'node-redis',
  variant: 'createCluster',
  async open() {
    const client = createCluster({
      rootNodes: seeds().map((addr) => ({ url: `redis://${addr}` })),
      commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
    });
    await client.connect();
    expectValue(await client.get(keyOf(0)), VALUE_BYTES, 'node-redis createCluster');
    const nrOp = (i: number) => (isSet(i) ? client.set(keyOf(i), VALUE) : client.get(keyOf(i)));
    return { run: (n) => fifty(n, nrOp), close: () => client.close() };
  },
};

const redisBenchmark: Contender = {
  client: 'redis-benchmark',
  variant: '--cluster -c 50, SET then GET',
  open: async () => ({
    async run(n) {
      const { host, port } = hostPort(seeds()[0] as string);
      const args = ['--cluster', '-c', String(CONCURRENCY), '-n', String(n), '-r', String(CLUSTER_KEY_COUNT), '-d', String(VALUE_BYTES), '-t', 'set,get'];
      const rates = await redisBenchmarkRates(host, port, args);
      const get = rates.get('GET');
      const set = rates.get('SET');
      if (get === undefined || set === undefined) throw new Error(`bench: redis-benchmark --cluster gave ${JSON.stringify([...rates])}, expected GET and SET`);
      return { value: 1 / ((1 - SET_SHARE) / get + SET_SHARE / set), extras: { get, set } };
    },
    close: async () => {},
  }),
};

export const clusterScenario: Scenario = {
  name: 'cluster',
  unit: 'ops/s',
  warmup: scaled(50_000),
  work: scaled(200_000),
  setup,
  contenders: [redisconnDo, redisconnGet, ioredis('', {}), ioredis('auto-pipelining', { enableAutoPipelining: true }), nodeRedis, redisBenchmark],
  target: { text: '>=1.2x peer', met: (r) => (r.vsBestPeer ?? 0) >= 1.2 },
  note(r) {
    const get = r.contenders.find((c) => c.client === 'redisconn' && c.variant.startsWith('cluster.get'));
    const rb = r.redisBenchmark?.extras;
    const parts = [`80/20 GET/SET, ${MASTERS} masters`];
    if (get !== undefined && r.bestPeer !== undefined) parts.push(`cluster.get ${(get.median / r.bestPeer.median).toFixed(2)}x peer`);
    if (rb?.get !== undefined && rb.set !== undefined) parts.push(`rb GET ${Math.round(rb.get).toLocaleString('en-US')}, SET ${Math.round(rb.set).toLocaleString('en-US')}`);
    return parts.join(', ');
  },
};

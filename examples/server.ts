/**
 * The main job (`npm start`): the example app on a real port. Reads
 * `--redis-addr`, `--redis-cluster host:port,...`, `--redis-sentinel
 * host:port,...` with `--redis-master-name NAME`, `--redis-db`, `--port` and
 * REDIS_ADDR, REDIS_CLUSTER, REDIS_SENTINEL, REDIS_MASTER_NAME, REDIS_DB,
 * PORT, ADMIN_TOKEN. With no Redis address, cluster seeds or sentinels
 * configured it starts a throwaway redis-server (the embedded default) and
 * says so. SIGINT/SIGTERM shut it
 * down gracefully: in-flight requests finish, the pool closes, the child
 * redis-server stops.
 */
import { optionsFromFlags, parseURL, redactURL } from '../plugin/index.js';
import { startRedisServer, type TestRedisServer } from '../src/testing/index.js';
import { buildApp } from './app.js';

/** The db a Redis URL selects (`redis://host/2`), or undefined for a plain address. */
function urlDb(addr: string): number | undefined {
  if (!/^[a-z]+:\/\//i.test(addr)) return undefined;
  try {
    return parseURL(addr).options.db;
  } catch {
    return undefined;
  }
}

function flag(name: string): string | undefined {
  const argv = process.argv;
  const at = argv.indexOf(name);
  if (at >= 0) return argv[at + 1];
  return argv.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1);
}

async function main(): Promise<void> {
  const configured = optionsFromFlags();
  const { cluster, sentinel } = configured;
  let embedded: TestRedisServer | undefined;
  if (cluster === undefined && sentinel === undefined && (configured.addr === undefined || configured.addr.trim() === '')) embedded = await startRedisServer();
  // A configured address, seed or sentinel list is left to the plugin to
  // read from the flag or variable, so a bad one fails naming it.
  const app = await buildApp({
    redis: embedded ? { addr: embedded.addr, ...(configured.db === undefined ? {} : { db: configured.db }) } : {},
    adminToken: process.env.ADMIN_TOKEN,
  });
  // Never log a password: an addr, a seed or a sentinel may be a redis://user:password@host URL.
  const addr = redactURL(embedded?.addr ?? configured.addr ?? '');
  // The db the pool selects: the flag or variable, else a URL's /N, else 0.
  const db = configured.db ?? urlDb(configured.addr ?? '') ?? 0;
  if (embedded) {
    const given = configured.db === undefined ? {} : { db: configured.db };
    const inDb = configured.db === undefined ? '' : `, using db ${configured.db}`;
    app.log.info({ addr, ...given }, `no --redis-addr, --redis-cluster, --redis-sentinel, REDIS_ADDR, REDIS_CLUSTER or REDIS_SENTINEL given: started a throwaway redis-server at ${addr}${inDb} (data is lost on exit)`);
  } else if (cluster !== undefined) app.log.info({ cluster: cluster.map(redactURL) }, `using the configured Redis Cluster, seeds ${cluster.map(redactURL).join(',')}`);
  else if (sentinel !== undefined) {
    const sentinels = sentinel.sentinels.map(redactURL);
    app.log.info({ sentinels, masterName: sentinel.masterName, db }, `using the master ${JSON.stringify(sentinel.masterName)} of Redis Sentinel, sentinels ${sentinels.join(',')}, db ${db}`);
  } else app.log.info({ addr, db }, `using the configured Redis at ${addr} db ${db}`);

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'shutting down');
    let code = 0;
    try {
      await app.close();
      app.log.info('pool closed');
    } catch (err) {
      app.log.error({ err }, 'shutdown failed');
      code = 1;
    } finally {
      if (embedded) {
        await embedded.stop();
        app.log.info({ addr: embedded.addr }, 'redis-server stopped');
      }
      process.exit(code);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const port = Number(flag('--port') ?? process.env.PORT ?? 3000);
  await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

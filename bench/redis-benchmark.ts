/** The C baseline: `redis-benchmark` against the same server and keys, parsed from its CSV. */
import { spawn } from 'node:child_process';
import type { TestRedisServer } from '../src/testing/index.js';
import { KEY_COUNT } from './config.js';
import type { Contender } from './harness.js';

/** Runs redis-benchmark with `args`; resolves the requests/s of its one test. */
function redisBenchmark(server: TestRedisServer, args: string[]): Promise<number> {
  const argv = ['-h', server.host, '-p', String(server.port), '--csv', '-q', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      // "test","rps",… then one line per test: "GET","92165.90",…
      const row = out.split('\n').find((line) => line.startsWith('"') && !line.startsWith('"test"'));
      const rps = Number(row?.split(',')[1]?.replace(/"/g, ''));
      if (code === 0 && Number.isFinite(rps) && rps > 0) resolve(rps);
      else reject(new Error(`bench: redis-benchmark ${argv.join(' ')} exited ${code}: ${out.trim()}`));
    });
  });
}

/**
 * GETs of the shared key set (`-r`) over `clients` connections, `pipeline`
 * commands in flight on each; the work of a run is the number of requests.
 */
export function redisBenchmarkGet(clients: number, pipeline: number): Contender {
  const variant = `-c ${clients} -P ${pipeline}`;
  return {
    client: 'redis-benchmark',
    variant,
    open: async (server) => ({
      run: async (n) => ({ value: await redisBenchmark(server, ['-c', String(clients), '-P', String(pipeline), '-n', String(n), '-r', String(KEY_COUNT), '-t', 'get']) }),
      close: async () => {},
    }),
  };
}

/** One command, as given, over one connection; `scale` converts requests/s to the scenario's unit. */
export function redisBenchmarkCommand(command: string[], scale: number): Contender {
  return {
    client: 'redis-benchmark',
    variant: '-c 1 -P 1',
    open: async (server) => ({
      run: async (n) => ({ value: (await redisBenchmark(server, ['-c', '1', '-n', String(n), ...command])) * scale }),
      close: async () => {},
    }),
  };
}

/** The C baseline: `redis-benchmark` against the same server and keys, parsed from its CSV. */
import { spawn } from 'node:child_process';
import type { TestRedisServer } from '../src/testing/index.js';
import { KEY_COUNT } from './config.js';
import type { Contender } from './harness.js';

/**
 * Runs redis-benchmark against `host`:`port` with `args`; resolves the
 * requests/s of each of its tests, by test name (`GET`, `SET`, …), in order.
 */
export function redisBenchmarkRates(host: string, port: number, args: string[]): Promise<Map<string, number>> {
  const argv = ['-h', host, '-p', String(port), '--csv', '-q', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      // "test","rps",… then one line per test: "GET","92165.90",…
      const rates = new Map<string, number>();
      for (const line of out.split('\n')) {
        if (!line.startsWith('"') || line.startsWith('"test"')) continue;
        const [test, rps] = line.split(',').map((cell) => cell.replace(/"/g, ''));
        if (test !== undefined && Number.isFinite(Number(rps)) && Number(rps) > 0) rates.set(test, Number(rps));
      }
      if (code === 0 && rates.size > 0) resolve(rates);
      else reject(new Error(`bench: redis-benchmark ${argv.join(' ')} exited ${code}: ${out.trim()}`));
    });
  });
}

/** Runs redis-benchmark with `args`; resolves the requests/s of its one test. */
async function redisBenchmark(server: TestRedisServer, args: string[]): Promise<number> {
  const rates = await redisBenchmarkRates(server.host, server.port, args);
  return rates.values().next().value as number;
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

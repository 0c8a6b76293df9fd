/**
 * `npm run bench`: redisconn against ioredis, node-redis and redis-benchmark
 * on a throwaway redis-server. Prints one table and writes bench/results.json.
 *
 *   BENCH_QUICK=1   shorter runs (development)
 *   BENCH_ONLY=a,b  only these scenarios (`decode` selects all decoder ones)
 *   BENCH_TRACE=1   no-op subscribers on redisconn's TracingChannels (the cost of tracing)
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { startRedisServer } from '../src/testing/index.js';
import { QUICK, ROUNDS } from './config.js';
import { TRACING } from './trace.js';
import { seed } from './dataset.js';
import { runScenario, type ScenarioResult } from './harness.js';
import { selectScenarios } from './scenarios/index.js';
import { renderTable, resultsJson } from './table.js';

const RESULTS_FILE = fileURLToPath(new URL('../../bench/results.json', import.meta.url));

/** The commit measured, when run from a git checkout. */
function commit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

const started = Date.now();
const scenarios = selectScenarios(process.env.BENCH_ONLY);
const server = await startRedisServer();
const results: ScenarioResult[] = [];
try {
  await seed(server);
  for (const scenario of scenarios) {
    const result = await runScenario(scenario, server);
    results.push(result);
    console.error(`bench: ${scenario.name} done in ${result.seconds.toFixed(1)} s`);
  }
} finally {
  await server.stop();
}
const totalSeconds = (Date.now() - started) / 1000;

console.log(renderTable(results));
console.log(`\n${os.cpus().length} CPUs, node ${process.version}, medians of ${ROUNDS} or more interleaved rounds after a warm-up${QUICK ? ', BENCH_QUICK' : ''}${TRACING ? ', BENCH_TRACE' : ''}; total ${totalSeconds.toFixed(0)} s`);
writeFileSync(
  RESULTS_FILE,
  resultsJson(results, {
    date: new Date().toISOString(),
    commit: commit(),
    node: process.version,
    redisServer: execFileSync('redis-server', ['--version']).toString().trim(),
    cpus: os.cpus().length,
    quick: QUICK,
    tracing: TRACING,
    defaultRounds: ROUNDS,
    totalSeconds,
  }),
);
console.log(`results written to ${RESULTS_FILE}`);

/**
 * Runs only redisconn's side of one scenario, for profiling:
 *
 *   npm run build && node --cpu-prof --cpu-prof-dir=prof dist/bench/profile.js pool-50
 *   node dist/bench/profile-summary.js prof/*.cpuprofile
 *
 * (For the fastify-* scenarios — `fastify` selects all three — the redisconn
 * app, with the plugin's default options, runs in a child process that
 * inherits the node flags, so its own profile lands beside this one. For
 * `cluster` it is the first redisconn contender, `cluster.do`, against the
 * scenario's own 3-master cluster.)
 */
import { startRedisServer } from '../src/testing/index.js';
import { ROUNDS } from './config.js';
import './trace.js'; // BENCH_TRACE=1: no-op tracing subscribers
import { seed } from './dataset.js';
import { selectScenarios } from './scenarios/index.js';

const name = process.argv[2];
if (name === undefined) throw new Error('usage: node dist/bench/profile.js <scenario>');
const server = await startRedisServer();
try {
  await seed(server);
  for (const scenario of selectScenarios(name)) {
    const contender = scenario.contenders.find((c) => c.client === 'redisconn');
    if (contender === undefined) throw new Error(`bench: scenario ${scenario.name} has no redisconn contender`);
    const stop = await scenario.setup?.();
    try {
      const runner = await contender.open(server);
      try {
        await runner.run(scenario.warmup);
        for (let round = 0; round < (scenario.rounds ?? ROUNDS); round++) {
          const sample = await runner.run(scenario.work);
          console.error(`${scenario.name}: ${Math.round(sample.value)} ${scenario.unit}`);
        }
      } finally {
        await runner.close();
      }
    } finally {
      await stop?.();
    }
  }
} finally {
  await server.stop();
}

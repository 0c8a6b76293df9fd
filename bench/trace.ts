/**
 * BENCH_TRACE=1: subscribes no-op handlers to all three of redisconn's
 * TracingChannels (`redisconn:command`, `redisconn:pool:get`,
 * `redisconn:connect`) before anything runs, to measure what tracing costs
 * the client when someone listens. Imported for its effect by run.ts,
 * profile.ts and the fastify app (which inherits the environment).
 */
import { commandChannel, connectChannel, poolGetChannel } from '../src/diagnostics.js';

function ignore(): void {}

/** Whether BENCH_TRACE=1 subscribed the no-op handlers. */
export const TRACING = process.env.BENCH_TRACE === '1';

if (TRACING) {
  const handlers = { start: ignore, end: ignore, asyncStart: ignore, asyncEnd: ignore, error: ignore };
  commandChannel.subscribe(handlers);
  poolGetChannel.subscribe(handlers);
  connectChannel.subscribe(handlers);
}

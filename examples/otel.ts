/**
 * OpenTelemetry spans for redisconn: a recipe, not part of the package.
 * Copy it into your app (it needs `@opentelemetry/api`, which redisconn does
 * not depend on) and call it once at startup, after your OpenTelemetry SDK
 * is set up:
 *
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import { instrumentRedisconn } from './otel.js';
 *
 * const stop = instrumentRedisconn(trace.getTracer('redisconn'));
 * // ... on shutdown: stop();
 * ```
 *
 * It subscribes to redisconn's `node:diagnostics_channel` TracingChannels
 * (by name: no patching, and any copy of redisconn in the process is seen):
 *
 * - `redisconn:command` → one CLIENT span per command, named after it
 *   (`GET`), following the semantic conventions for Redis clients:
 *   `db.system.name` (and the older `db.system`) `redis`,
 *   `db.operation.name` the command, `db.namespace` the db index as a
 *   string, `server.address`, `server.port`; on failure status ERROR and
 *   `error.type` (the error's stable code: `WRONGTYPE`, `REDIS_TIMEOUT`...),
 *   plus `db.response.status_code` when the server answered with an error.
 *   Never argument values: no `db.query.text`, and no error message either
 *   (a server error can quote arguments, e.g. "unknown command ... with
 *   args beginning with").
 * - `redisconn:connect` → an INTERNAL span `redis connect` per dial
 *   (connect and handshake), with the server's attributes.
 * - `redisconn:pool:get` → an INTERNAL span `redis pool get` per borrow
 *   (with `poolGet: true`; off by default: a borrow that does not wait
 *   takes microseconds).
 *
 * Parenting: a span's parent is the context active when its `start` event
 * fires (`context.active()`), so with an HTTP instrumentation active (e.g.
 * `@opentelemetry/instrumentation-http` under Fastify) a handler's commands
 * nest under its request span. redisconn publishes a command's `start` in
 * the async context of the call that issued it (`do`, `send`, `pool.do`),
 * even when the write happens later in a batch with other callers'
 * commands, so each command lands under its own caller's span.
 */
import diagnostics from 'node:diagnostics_channel';
import { SpanKind, SpanStatusCode, context, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { RedisError, type CommandTraceContext, type ConnectTraceContext, type PoolGetTraceContext } from '../plugin/index.js';

/** What {@link instrumentRedisconn} traces besides commands. */
export interface InstrumentOptions {
  /** A span per dial (connect and handshake). Default true. */
  connect?: boolean;
  /** A span per borrow from a pool. Default false. */
  poolGet?: boolean;
}

/** The attributes every span about one server carries. */
function serverAttributes(event: { serverAddress: string; serverPort: number | undefined; db: number }): Attributes {
  const attributes: Attributes = {
    'db.system.name': 'redis',
    'db.system': 'redis',
    'db.namespace': String(event.db),
    'server.address': event.serverAddress,
  };
  if (event.serverPort !== undefined) attributes['server.port'] = event.serverPort;
  else attributes['network.transport'] = 'unix';
  return attributes;
}

/** Marks `span` failed with `error`: status ERROR and `error.type`, never the message. */
function recordFailure(span: Span, error: unknown, code: string | undefined): void {
  const type = code ?? (error instanceof Error ? error.name : '_OTHER');
  span.setAttribute('error.type', type);
  if (error instanceof RedisError && code !== undefined) span.setAttribute('db.response.status_code', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: type });
}

/** The code of an error that has one (redisconn's errors do). */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Subscribes a span maker to a TracingChannel: `begin` starts the span at
 * `start` (under the active context), `error` marks it, `asyncEnd` ends it.
 * Returns the unsubscribe.
 */
function spanPerEvent<C extends object>(
  name: string,
  begin: (event: C) => Span,
  fail: (span: Span, event: C & { error: unknown }) => void,
  finish: (span: Span, event: C) => void = () => {},
): () => void {
  const channel = diagnostics.tracingChannel<C, C>(name);
  // The span of each event in flight, keyed by its context object.
  const spans = new WeakMap<C, Span>();
  const subscribers = {
    start(event: C): void {
      spans.set(event, begin(event));
    },
    error(event: C & { error: unknown }): void {
      const span = spans.get(event);
      if (span !== undefined) fail(span, event);
    },
    asyncEnd(event: C): void {
      const span = spans.get(event);
      if (span === undefined) return;
      spans.delete(event);
      finish(span, event);
      span.end();
    },
  };
  channel.subscribe(subscribers);
  return () => channel.unsubscribe(subscribers);
}

/**
 * Turns redisconn's TracingChannels into OpenTelemetry spans made by
 * `tracer` (see the module doc). Returns what unsubscribes them all; spans
 * still open then are never ended (so never exported).
 */
export function instrumentRedisconn(tracer: Tracer, options: InstrumentOptions = {}): () => void {
  const stops = [
    spanPerEvent<CommandTraceContext>(
      'redisconn:command',
      (event) =>
        tracer.startSpan(
          event.command,
          {
            kind: SpanKind.CLIENT,
            attributes: { ...serverAttributes(event), 'db.operation.name': event.command, 'redisconn.connection': event.connection, 'redisconn.batch.size': event.batchSize },
          },
          context.active(),
        ),
      (span, event) => recordFailure(span, event.error, event.errorCode ?? codeOf(event.error)),
      // Read again at the end: `batchSize` is final once the batch is written.
      (span, event) => span.setAttribute('redisconn.batch.size', event.batchSize),
    ),
  ];
  if (options.connect !== false) {
    stops.push(
      spanPerEvent<ConnectTraceContext>(
        'redisconn:connect',
        (event) =>
          tracer.startSpan(
            'redis connect',
            { kind: SpanKind.INTERNAL, attributes: { ...serverAttributes(event), 'redisconn.tls': event.tls, 'redisconn.protocol': event.protocol } },
            context.active(),
          ),
        (span, event) => recordFailure(span, event.error, codeOf(event.error)),
      ),
    );
  }
  if (options.poolGet === true) {
    stops.push(
      spanPerEvent<PoolGetTraceContext>(
        'redisconn:pool:get',
        () => tracer.startSpan('redis pool get', { kind: SpanKind.INTERNAL, attributes: { 'db.system.name': 'redis', 'db.system': 'redis' } }, context.active()),
        (span, event) => recordFailure(span, event.error, codeOf(event.error)),
        (span, event) => span.setAttribute('redisconn.pool.waited', event.waited),
      ),
    );
  }
  return () => {
    for (const stop of stops) stop();
  };
}

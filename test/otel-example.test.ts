/**
 * The OpenTelemetry recipe (`examples/otel.ts`) against a real redis-server
 * and the OpenTelemetry SDK (BasicTracerProvider, InMemorySpanExporter,
 * SimpleSpanProcessor; an AsyncLocalStorage context manager, as the Node SDK
 * registers): a `do`, a pipeline, an error reply, a dial; each span's name,
 * kind, attributes and status per the database client conventions, never
 * argument values; spans parented under the span active when the command
 * was written (and roots without one), including two requests of a Fastify
 * app on the pool's shared connection at once; nothing after unsubscribing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, trace, type Context, type ContextManager, type Span } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrumentRedisconn } from '../examples/otel.js';
import redisconn, { dial, newPool, type Conn } from '../plugin/index.js';
import type { TestRedisServer } from '../src/testing/index.js';
import { eventually, guardProcessErrors, useApps, useServerWithConn } from './helpers.js';

guardProcessErrors();

/** The context manager the Node SDK installs, in a few lines: the active context follows async calls. */
class AsyncLocalStorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (self: unknown, args: unknown[]): unknown => this.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(self, args));
    return function (this: unknown, ...args: unknown[]) {
      return run(this, args);
    } as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    return this;
  }
}

let server: TestRedisServer;
let admin: Conn;
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('otel-example-test');
let stop: () => void = () => {};
const apps = useApps();

useServerWithConn((started) => ({ server, conn: admin } = started));

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager());
  stop = instrumentRedisconn(tracer);
});

afterAll(async () => {
  stop();
  context.disable();
  await provider.shutdown();
});

afterEach(async () => {
  await admin.do('FLUSHALL');
  exporter.reset();
});

/** Runs `fn` with `parent` as the active span. */
function under<T>(parent: Span, fn: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpan(context.active(), parent), fn);
}

/** The finished spans named `name`, once `count` of them are there (asyncEnd may trail a reply). */
async function spansNamed(name: string, count: number): Promise<ReadableSpan[]> {
  const named = (): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name);
  await eventually(() => named().length >= count);
  const found = named();
  expect(found.map((span) => span.name)).toEqual(Array(count).fill(name));
  return found;
}

function expectChildOf(span: ReadableSpan, parent: Span): void {
  expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
  expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
}

function serverAttributes(): Record<string, unknown> {
  return {
    'db.system.name': 'redis',
    'db.system': 'redis',
    'db.namespace': '0',
    'server.address': '127.0.0.1',
    'server.port': server.port,
  };
}

describe('examples/otel.ts: instrumentRedisconn', () => {
  it('a do: one CLIENT span named after the command, under the active span', async () => {
    const parent = tracer.startSpan('GET /thing');
    const conn = await under(parent, () => dial(server.addr));
    try {
      expect(await under(parent, () => conn.do('SET', 'otel:key', 'secret-value'))).toBe('OK');
      parent.end();
      const [span] = (await spansNamed('SET', 1)) as [ReadableSpan];
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes).toMatchObject({ ...serverAttributes(), 'db.operation.name': 'SET', 'redisconn.batch.size': 1 });
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expectChildOf(span, parent);
      // Never an argument value.
      expect(JSON.stringify(span.attributes)).not.toMatch(/otel:key|secret-value/);
      expect(span.attributes['db.query.text']).toBeUndefined();

      // The dial that made the connection has its own span, under the same parent.
      const [connect] = (await spansNamed('redis connect', 1)) as [ReadableSpan];
      expect(connect.attributes).toMatchObject({ ...serverAttributes(), 'redisconn.tls': false, 'redisconn.protocol': 2 });
      expectChildOf(connect, parent);
    } finally {
      await conn.close();
    }
  });

  it('a pipeline: a span per command, each with the batch it went out in', async () => {
    const conn = await dial(server.addr);
    try {
      const parent = tracer.startSpan('pipeline');
      await under(parent, async () => {
        conn.send('SET', 'otel:n', '1');
        conn.send('INCR', 'otel:n');
        conn.send('GET', 'otel:n');
        await conn.flush();
        expect(await conn.receive()).toBe('OK');
        expect(await conn.receive()).toBe(2);
        expect(String(await conn.receive())).toBe('2');
      });
      parent.end();
      for (const name of ['SET', 'INCR', 'GET']) {
        const [span] = (await spansNamed(name, 1)) as [ReadableSpan];
        expect(span.attributes).toMatchObject({ ...serverAttributes(), 'db.operation.name': name, 'redisconn.batch.size': 3 });
        expectChildOf(span, parent);
      }
    } finally {
      await conn.close();
    }
  });

  it('an error reply: status ERROR, error.type and db.response.status_code the code, no message', async () => {
    const conn = await dial(server.addr);
    try {
      await conn.do('SET', 'otel:string', 'x');
      await expect(conn.do('LPUSH', 'otel:string', 'secret-element')).rejects.toMatchObject({ code: 'WRONGTYPE' });
      const [span] = (await spansNamed('LPUSH', 1)) as [ReadableSpan];
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'WRONGTYPE' });
      expect(span.attributes).toMatchObject({ ...serverAttributes(), 'db.operation.name': 'LPUSH', 'error.type': 'WRONGTYPE', 'db.response.status_code': 'WRONGTYPE' });
      // Not under anything: no span was active.
      expect(span.parentSpanContext).toBeUndefined();
      expect(JSON.stringify([span.attributes, span.status, span.events])).not.toContain('secret-element');
      // The SET before it succeeded.
      const [set] = (await spansNamed('SET', 1)) as [ReadableSpan];
      expect(set.status.code).toBe(SpanStatusCode.UNSET);
      expect(set.attributes['error.type']).toBeUndefined();
    } finally {
      await conn.close();
    }
  });

  it('a db other than 0 is the span namespace', async () => {
    const conn = await dial(server.addr, { db: 3 });
    try {
      await conn.do('PING');
      const [span] = (await spansNamed('PING', 1)) as [ReadableSpan];
      expect(span.attributes['db.namespace']).toBe('3');
    } finally {
      await conn.close();
    }
  });

  it('two requests of a Fastify app at once, on the shared connection: each command under its own request span', async () => {
    // What an HTTP instrumentation does: each request is handled inside the context of its span.
    const requestSpans = new Map<string, Span>();
    const app = Fastify({
      logger: false,
      serverFactory: (handler) =>
        http.createServer((req, res) => {
          const span = tracer.startSpan(`GET ${req.url ?? ''}`, { kind: SpanKind.SERVER }, ROOT_CONTEXT);
          requestSpans.set(req.url ?? '', span);
          res.on('finish', () => span.end());
          context.with(trace.setSpan(ROOT_CONTEXT, span), () => handler(req, res));
        }),
    });
    apps.push(app);
    await app.register(redisconn, { addr: server.addr, argv: [], env: {}, metrics: false });
    let arrived = 0;
    let bothArrived: () => void = () => {};
    const together = new Promise<void>((resolve) => (bothArrived = resolve));
    app.get<{ Params: { key: string } }>('/get/:key', async (request) => {
      // Both handlers issue their GET in the same tick, so the shared connection writes them in one batch.
      if (++arrived === 2) bothArrived();
      await together;
      await using conn = await request.redis.get();
      return { value: await conn.do('GET', request.params.key) };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const responses = await Promise.all(['/get/one', '/get/two'].map((path) => fetch(`http://127.0.0.1:${port}${path}`)));
    expect(responses.map((response) => response.status)).toEqual([200, 200]);
    const spans = await spansNamed('GET', 2);
    // One write carried both: the parent cannot come from the context the write ran in.
    for (const span of spans) expect(span.attributes).toMatchObject({ 'redisconn.connection': 'shared', 'redisconn.batch.size': 2 });
    const parents = spans.map((span) => span.parentSpanContext?.spanId).sort();
    const expected = ['/get/one', '/get/two'].map((path) => requestSpans.get(path)?.spanContext().spanId).sort();
    expect(expected.every((id) => id !== undefined)).toBe(true);
    expect(parents).toEqual(expected);
  });

  it('poolGet: a span per borrow from a pool', async () => {
    const withPool = instrumentRedisconn(tracer, { connect: false, poolGet: true });
    const pool = newPool(server.addr, 0);
    try {
      const parent = tracer.startSpan('borrow');
      const conn = await under(parent, () => pool.get());
      await conn.close();
      parent.end();
      const [span] = (await spansNamed('redis pool get', 1)) as [ReadableSpan];
      expect(span.kind).toBe(SpanKind.INTERNAL);
      expect(span.attributes).toMatchObject({ 'db.system.name': 'redis', 'redisconn.pool.waited': expect.any(Boolean) });
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expectChildOf(span, parent);
    } finally {
      withPool();
      await pool.close();
    }
  });

  it('nothing after unsubscribing', async () => {
    const conn = await dial(server.addr);
    try {
      const again = instrumentRedisconn(tracer, { connect: false, poolGet: true });
      again();
      stop();
      exporter.reset();
      await conn.do('PING');
      await conn.do('SET', 'otel:after', '1');
      expect(exporter.getFinishedSpans().map((span) => [span.name, span.attributes['redisconn.connection']])).toEqual([]);
    } finally {
      stop = instrumentRedisconn(tracer);
      await conn.close();
    }
  });
});

/**
 * Admin and health routes, on any source of connections. Admin (LUCI's
 * single admin call): `POST <prefix>/flushall` with `{ async?: boolean }`,
 * only for requests that `authorize` accepts; everything else gets 403 and
 * an audit warning. FLUSHALL runs on every master of a cluster (its command
 * tips fan it out). Health: `GET <route>` runs `source.check()` within a
 * deadline → 200 (naming the master for a sentinel pool) or 503.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ConnSource, GetOptions } from '../src/index.js';
import { ErrNotConfigured, withHttpStatus } from './errors.js';
import type { AdminOptions, HealthOptions } from './options.js';

/** Default admin route prefix. */
export const DEFAULT_ADMIN_PREFIX = '/admin/redis';
/** Default health route. */
export const DEFAULT_HEALTH_ROUTE = '/healthz/redis';

interface FlushAllBody {
  async?: boolean;
}

/** Who called, for the audit lines (request.log already binds `reqId`: not repeated here). */
function caller(request: FastifyRequest): Record<string, unknown> {
  return { ip: request.ip, userAgent: request.headers['user-agent'] };
}

/** True when `authorize` accepts the request; one that throws denies (and is logged). */
async function authorized(request: FastifyRequest, options: Pick<AdminOptions, 'authorize'>): Promise<boolean> {
  try {
    return (await options.authorize?.(request)) === true;
  } catch (err) {
    request.log.warn({ err, ...caller(request) }, 'redisconn admin: authorize threw; denying');
    return false;
  }
}

/**
 * Registers `POST <prefix>/flushall`. `pool()` gives the current source
 * (null when unconfigured); `getOptions` bound the borrow (the plugin's
 * `getTimeoutMs`), so a full pool answers 503 instead of holding the call.
 */
export function registerAdminRoutes(app: FastifyInstance, options: AdminOptions & Required<Pick<AdminOptions, 'authorize'>>, pool: () => ConnSource | null, getOptions: GetOptions): void {
  const prefix = (options.prefix ?? DEFAULT_ADMIN_PREFIX).replace(/\/$/, '');
  app.post<{ Body: FlushAllBody | undefined }>(
    `${prefix}/flushall`,
    {
      // Authorize before validating, so every refused caller gets 403 (and an
      // audit line), whatever body it sent.
      preValidation: async (request, reply) => {
        if (!(await authorized(request, options))) {
          request.log.warn(caller(request), 'redisconn admin: FLUSHALL denied');
          return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'not authorized to use the Redis admin API' });
        }
        // No body at all means the defaults; validation then sees `{}`.
        request.body ??= {};
      },
      // Unknown properties must fail with 400, not be ignored: Fastify's
      // default Ajv (`removeAdditional: true`) strips them where
      // `additionalProperties: false` is the only guard, so name the allowed
      // properties with `propertyNames` too.
      schema: {
        body: {
          type: 'object',
          properties: { async: { type: 'boolean' } },
          propertyNames: { enum: ['async'] },
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const current = pool();
      if (current === null) throw new ErrNotConfigured();
      const async = request.body?.async === true;
      request.log.warn({ ...caller(request), async }, 'redisconn admin: FLUSHALL by authorized caller');
      await using conn = await current.get(getOptions).catch((err: unknown) => Promise.reject(withHttpStatus(err)));
      await (async ? conn.do('FLUSHALL', 'ASYNC') : conn.do('FLUSHALL')).catch((err: unknown) => Promise.reject(withHttpStatus(err)));
      return { status: 'ok', async };
    },
  );
}

/** The master a source follows (a sentinel pool's `master`), or undefined for any other source. */
function masterOf(source: ConnSource): string | undefined {
  // Not stats(): a health probe has no need of every counter (a cluster's walks its slot map).
  const master = (source as { master?: unknown }).master;
  return typeof master === 'string' && master !== '' ? master : undefined;
}

/**
 * Registers `GET <route>`: 200 `{ status: 'ok', latencyMs }` (to 0.1 ms;
 * plus `master`, `host:port`, for a source that follows a master through
 * Sentinel) or 503 `{ status: 'unavailable', error }`, by `source.check()`.
 */
export function registerHealthRoute(app: FastifyInstance, options: HealthOptions, pool: () => ConnSource | null): void {
  const timeoutMs = options.timeoutMs ?? 1000;
  app.get(options.route ?? DEFAULT_HEALTH_ROUTE, async (_request, reply) => {
    const current = pool();
    if (current === null) return reply.code(503).send({ status: 'unavailable', error: new ErrNotConfigured().message });
    const started = performance.now();
    try {
      await current.check(timeoutMs);
      const latencyMs = Math.round((performance.now() - started) * 10) / 10;
      const master = masterOf(current);
      return master === undefined ? { status: 'ok', latencyMs } : { status: 'ok', latencyMs, master };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', error: (err as Error).message });
    }
  });
}

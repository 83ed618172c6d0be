/**
 * Builds the HTTP app from its dependencies (nothing here listens; see server.ts). Routes parse,
 * authorise and call a service; business rules live in the services and the Lua scripts.
 */
import Fastify, { type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { DomainError } from '../domain/errors.ts';
import { metrics, registry } from '../metrics.ts';
import { inspectDurability } from '../redis/connection.ts';
import type { Actor } from './auth.ts';
import { sendProblem } from './problems.ts';
import { Problem } from './schemas.ts';
import { bookingRoutes } from './routes/bookings.ts';
import { cityRoutes } from './routes/cities.ts';
import { fleetRoutes, vehicleRoutes } from './routes/vehicles.ts';
import { eventRoutes } from './routes/events.ts';
import { searchRoutes } from './routes/search.ts';
import { batchRoutes } from './routes/batch.ts';
import { analyticsRoutes } from './routes/analytics.ts';
import { icalRoutes } from './routes/calendar-ics.ts';
import { offerRoutes } from './routes/offers.ts';
import { RateLimiter, registerRateLimits, type RateLimits } from './rate-limit.ts';
import { LIVE_PATH, LiveHub } from './live.ts';
import type { App, AppDeps, HttpLimits } from './types.ts';

export type { App, AppDeps } from './types.ts';

/** Requests per minute per caller, by role, and per address without a valid token (RATE_LIMIT_* in the environment). */
export const DEFAULT_RATE_LIMITS: RateLimits = { customer: 120, host: 1200, ops: 3000, admin: 3000, anonymous: 60 };

export const DEFAULT_HTTP_LIMITS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000, maxConnectionsPerIp: 256 };

/**
 * Connections: the header block must arrive within `headersTimeoutMs` (a client dribbling header
 * bytes is cut then, the check running every second), the whole request within `requestTimeoutMs`;
 * an idle keep-alive connection is closed after `keepAliveTimeoutMs`, which the server announces
 * (`Keep-Alive: timeout=`) so that clients stop reusing a connection before the server closes it,
 * and which stays below the header timeout so that it is always the keep-alive close, announced,
 * that ends an idle connection (an idle connection cut by the header timeout instead is reset
 * under a client that reuses it: ECONNRESET).
 */
function httpOptions(l: HttpLimits) {
  const headersTimeout = Math.max(l.headersTimeoutMs, l.keepAliveTimeoutMs + 1_000);
  const requestTimeout = Math.max(l.requestTimeoutMs, headersTimeout);
  return {
    keepAliveTimeout: l.keepAliveTimeoutMs,
    requestTimeout,
    http: { headersTimeout, requestTimeout, connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(l.headersTimeoutMs / 8))) },
  };
}

/** At most `max` concurrent connections per client address; more are dropped as they arrive. */
function limitConnectionsPerAddress(server: import('http').Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket) => {
    const address = socket.remoteAddress ?? '';
    const n = open.get(address) ?? 0;
    if (n >= max) {
      metrics.connectionsRefused.inc();
      socket.destroy();
      return;
    }
    open.set(address, n + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const httpLimits = { ...DEFAULT_HTTP_LIMITS, ...deps.http };
  const app = Fastify({
    ...httpOptions(httpLimits),
    logger: deps.logger ?? false,
    // Room for a full batch (1,000 vehicles), not much more.
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // Unknown fields are refused (400), never silently dropped; nothing is coerced behind the caller's back.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Errors the router raises before any route (bad URL, over-long parameter) get the same problem shape.
    frameworkErrors: (err, request, reply) => { sendProblem(request, reply, err); },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'fleet-inventory', version: '0.1.0', description: 'Real-time inventory of a multi-city vehicle rental marketplace' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.addSchema(Problem);

  // The caller, once authenticated; `actor` reads it, and refuses a route that has none.
  app.decorateRequest('caller', undefined);
  app.decorateRequest('actor', {
    getter(this: FastifyRequest): Actor {
      if (!this.caller) throw new DomainError('UNAUTHENTICATED', 'this route needs a signed-in caller');
      return this.caller;
    },
  });
  // JSON only: a text body is refused (415), never parsed into something else.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, err));

  // Authentication and per-caller budgets, before validation and routing (rate-limit.ts): every
  // request under /v1 is charged — malformed, unknown or unauthenticated ones too.
  const limiter = new RateLimiter({ redis: deps.redis, limits: deps.rateLimits ?? DEFAULT_RATE_LIMITS, authenticate: deps.authenticate, ...(deps.rateLimitShare !== undefined ? { localShare: deps.rateLimitShare } : {}) });
  registerRateLimits(app, limiter, deps.authenticate);
  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, new DomainError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  limitConnectionsPerAddress(app.server, httpLimits.maxConnectionsPerIp);

  // WebSocket upgrades never reach the router: the hub answers them on the raw server.
  const live = new LiveHub(deps.redis, deps.inventory, deps.authenticate, deps.readModel, {
    // WebSocket messages spend the same budget as HTTP requests.
    charge: async (actor, address, cost) => (await limiter.take(actor, address, cost)).allowed,
    ...deps.live,
  });
  live.attach(app.server);
  app.addHook('preClose', async () => { await live.close(); });
  app.decorate('live', live);

  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok', pid: process.pid }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const checks: Record<string, unknown> = {};
    let ready = true;
    try {
      await deps.redis.ping();
      checks.redis = { ok: true, ...deps.redisTopology, durability: await inspectDurability(deps.redis) };
    } catch (err) {
      ready = false;
      checks.redis = { ok: false, error: (err as Error).message };
    }
    // A failover's verification under way (as the city streams tell it): still serving, but say so.
    const failover = deps.readModel?.failoverState();
    if (failover) checks.failover = failover;
    if (deps.pool) {
      try {
        await deps.pool.query('SELECT 1');
        checks.postgres = { ok: true, ...('writer' in deps.pool && deps.pool.writer ? { writer: deps.pool.writer } : {}) };
      } catch (err) {
        // PostgreSQL down does not stop commands (they go to Redis); readiness says so plainly.
        checks.postgres = { ok: false, error: (err as Error).message };
      }
    }
    if (deps.lag) {
      const lag = await deps.lag().catch(() => []);
      checks.sync = { eventsBehind: lag.reduce((n, l) => n + l.eventsBehind, 0), secondsBehind: Math.max(0, ...lag.map((l) => l.secondsBehind)) };
    }
    return reply.code(ready ? 200 : 503).send({ status: ready ? (failover?.status === 'verifying' ? 'verifying' : 'ready') : 'unavailable', checks });
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await (deps.metrics ? deps.metrics() : registry.metrics())));

  await app.register(async (v1) => {
    for (const routes of [cityRoutes, bookingRoutes, vehicleRoutes, fleetRoutes, eventRoutes, searchRoutes, batchRoutes, analyticsRoutes, offerRoutes, icalRoutes]) {
      await v1.register(routes, deps);
    }
    v1.get(LIVE_PATH, {
      schema: {
        tags: ['live'], summary: 'Real-time events over WebSocket (send `Upgrade: websocket`); see docs/api.md for the protocol',
        description: 'Subscribe with {"type":"subscribe","topic":"city:<id>|vehicle:<id>|booking:<id>|host:<id>","after":"<event id>"?}. Events arrive as {"type":"event","topic","event":<CloudEvent>}, with heartbeats. The token may also be passed as ?access_token=.',
        response: { 401: { $ref: 'Problem#' }, 426: { $ref: 'Problem#' } },
      },
    }, async () => { throw new DomainError('UPGRADE_REQUIRED', 'GET /v1/live is a WebSocket: send Upgrade: websocket'); });
  });
  return app;
}

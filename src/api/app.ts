/**
 * Builds the HTTP app from its dependencies (nothing here listens; see server.ts). Routes parse,
 * authorise and call a service; business rules live in the services and the Lua scripts.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { defaults, offerPolicy, reservePolicy } from '../config.ts';
import { DomainError } from '../domain/errors.ts';
import { metrics } from '../metrics.ts';
import { unlessRevoked, type Actor } from './auth.ts';
import { asRequest } from '../services/audit.ts';
import { sendProblem } from './problems.ts';
import { requireScope } from './authorize.ts';
import { Problem } from './schemas.ts';
import { requestContext } from './route-kit.ts';
import { operationsRoutes } from './routes/operations.ts';
import { liveRoutes } from './routes/live.ts';
import { bookRoutes, bookingRoutes, holdRoutes, tripRoutes } from './routes/bookings.ts';
import { cityRoutes } from './routes/cities.ts';
import { blockRoutes, fleetRoutes, listingRoutes, vehicleRoutes } from './routes/vehicles.ts';
import { eventRoutes } from './routes/events.ts';
import { searchRoutes } from './routes/search.ts';
import { batchRoutes } from './routes/batch.ts';
import {
  citiesAnalyticsRoutes,
  conflictsAnalyticsRoutes,
  forecastAnalyticsRoutes,
  incentivesAnalyticsRoutes,
  utilizationAnalyticsRoutes,
} from './routes/analytics.ts';
import { ForecastDesk, SearchDemandLog } from '../services/forecast.ts';
import { LateReturnWatch } from '../services/late-returns.ts';
import { ReservePlanner } from '../services/reserve.ts';
import { icalRoutes } from './routes/calendar-ics.ts';
import { offerRoutes, standbyRoutes } from './routes/offers.ts';
import { adminRoutes } from './routes/admin.ts';
import { webhookDeliveryRoutes, webhookRoutes } from './routes/webhooks.ts';
import { gbfsRoutes } from './routes/gbfs.ts';
import { consoleRoutes } from './routes/console.ts';
import { cityConflictRoutes, cityReserveRoutes, cityVehicleRoutes } from './routes/market.ts';
import { tripListRoutes } from './routes/trips.ts';
import { regionRoutes, routeToRegions } from './routes/regions.ts';
import { RateLimiter, registerRateLimits, type RateLimits } from './rate-limit.ts';
import { LiveHub } from './live/hub.ts';
import type { App, AppDeps, HttpLimits } from './types.ts';
import { auditRoutes } from './routes/audit.ts';
import { apiClientRoutes, revocationRoutes } from './routes/api-clients.ts';
import { oauthRoutes } from './routes/oauth.ts';
import { ApiClientDesk } from '../services/api-clients.ts';
import { TokenRevocations } from '../services/token-revocations.ts';

export type { App, AppDeps } from './types.ts';

/** Requests per minute per caller, by role, and per address without a valid token (RATE_LIMIT_* in the environment). */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  customer: defaults.RATE_LIMIT_CUSTOMER,
  host: defaults.RATE_LIMIT_HOST,
  ops: defaults.RATE_LIMIT_OPS,
  admin: defaults.RATE_LIMIT_ADMIN,
  anonymous: defaults.RATE_LIMIT_ANONYMOUS,
};

/** Every /v1 route plugin, in the order the OpenAPI document lists them. */
const V1_ROUTES = [
  cityRoutes,
  regionRoutes,
  holdRoutes,
  bookRoutes,
  bookingRoutes,
  tripListRoutes,
  tripRoutes,
  vehicleRoutes,
  fleetRoutes,
  listingRoutes,
  blockRoutes,
  eventRoutes,
  auditRoutes,
  searchRoutes,
  cityVehicleRoutes,
  cityConflictRoutes,
  cityReserveRoutes,
  batchRoutes,
  conflictsAnalyticsRoutes,
  utilizationAnalyticsRoutes,
  citiesAnalyticsRoutes,
  forecastAnalyticsRoutes,
  incentivesAnalyticsRoutes,
  offerRoutes,
  standbyRoutes,
  icalRoutes,
  liveRoutes,
  adminRoutes,
  apiClientRoutes,
  revocationRoutes,
  oauthRoutes,
  webhookRoutes,
  webhookDeliveryRoutes,
];

/** Connection limits (HTTP_* in the environment); the defaults are config.ts's. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: defaults.HTTP_HEADERS_TIMEOUT_MS,
  requestTimeoutMs: defaults.HTTP_REQUEST_TIMEOUT_MS,
  keepAliveTimeoutMs: defaults.HTTP_KEEP_ALIVE_TIMEOUT_MS,
  maxConnectionsPerIp: defaults.HTTP_MAX_CONNECTIONS_PER_IP,
};

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
    http: {
      headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, Math.floor(l.headersTimeoutMs / 8))),
    },
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

/** Every answer counted and timed by route template (`unmatched` when no route matched: never the raw URL). */
function measureRequests(app: App): void {
  // On every answer, so kept cheap: a synchronous hook (no promise), and the labelled children
  // looked up once per route, method and status rather than hashed from labels each time.
  const counted = new Map<string, { inc(): void }>();
  const timed = new Map<string, { observe(v: number): void }>();
  app.addHook('onResponse', (request, reply, done) => {
    const method = request.method;
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const key = `${method} ${route}`;
    let timer = timed.get(key);
    if (!timer) {
      timer = metrics.httpDuration.labels({ method, route });
      timed.set(key, timer);
    }
    let counter = counted.get(`${key} ${status}`);
    if (!counter) {
      counter = metrics.httpRequests.labels({ method, route, status_code: String(status) });
      counted.set(`${key} ${status}`, counter);
    }
    counter.inc();
    timer.observe(reply.elapsedTime / 1000);
    done();
  });
}

/**
 * The services routes need that buildApp makes from the others when the caller gave none: demand
 * forecasts and the search counts (PostgreSQL; forecasts on the replica when there is one), the
 * late-return watch and the conflict reserve (the read model).
 */
function withDerivedDeps(app: App, deps: AppDeps): AppDeps {
  // Prediction (docs/prediction.md): forecasts read the replica when there is one; searches are
  // counted into the primary.
  const analyticsPool = deps.replicaPool ?? deps.pool;
  const forecasts =
    deps.forecasts ??
    (analyticsPool ? new ForecastDesk(analyticsPool, (id) => deps.inventory.cities.get(id)) : undefined);
  const searchDemand = deps.searchDemand ?? (deps.pool ? new SearchDemandLog(deps.pool) : undefined);
  if (searchDemand && !deps.searchDemand) app.addHook('onClose', async () => searchDemand.close());
  const lateReturns =
    deps.lateReturns ??
    (deps.conflicts && deps.readModel
      ? new LateReturnWatch(deps.redis, deps.inventory, deps.readModel, deps.conflicts, deps.pool)
      : undefined);
  // The reserve is read from the read model (the resolver places it, services/reserve.ts).
  const reserve =
    deps.reserve ??
    (deps.readModel
      ? new ReservePlanner(
          deps.redis,
          deps.inventory,
          deps.readModel,
          reservePolicy(deps.config),
          offerPolicy(deps.config),
        )
      : undefined);
  return {
    ...deps,
    ...(reserve ? { reserve } : {}),
    ...(lateReturns ? { lateReturns } : {}),
    ...(forecasts ? { forecasts } : {}),
    ...(searchDemand ? { searchDemand } : {}),
  };
}

/**
 * Token revocations (always: every process checks them; Redis) and the API client registry (with
 * PostgreSQL), made here when the caller gave none, and closed with the app.
 */
async function accessDeps(
  app: App,
  deps: AppDeps,
): Promise<{ revocations: TokenRevocations; clients: ApiClientDesk | undefined }> {
  let revocations = deps.revocations;
  if (!revocations) {
    const made = new TokenRevocations(deps.redis);
    app.addHook('onClose', async () => made.close());
    await made.start();
    revocations = made;
  }
  let clients = deps.clients;
  if (!clients && deps.pool) {
    const made = new ApiClientDesk(deps.pool, deps.redis, revocations);
    app.addHook('onClose', async () => made.close());
    clients = made;
  }
  return { revocations, clients };
}

/** A request id a caller may choose: printable, no spaces, at most 128 characters. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The route's scope, if it names one: a callback, not an async hook (nothing waits; a promise per request costs). */
function checkScope(request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  const scope = request.routeOptions.config.scope;
  try {
    if (scope) requireScope(request.actor, scope);
  } catch (err) {
    done(err instanceof Error ? err : new Error(String(err)));
    return;
  }
  done();
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const httpLimits = { ...DEFAULT_HTTP_LIMITS, ...deps.http };
  const app = Fastify({
    ...httpOptions(httpLimits),
    logger: deps.logger ?? false,
    // Each request's id (its logs, its events' `req`, the audit trail): the caller's own
    // `x-request-id` when it is a sane one, else a fresh UUID; answered in `x-request-id`.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Room for a full batch (1,000 vehicles), not much more.
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // Unknown fields are refused (400), never silently dropped; nothing is coerced behind the caller's back.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Errors the router raises before any route (bad URL, over-long parameter) get the same problem shape.
    frameworkErrors: (err, request, reply) => {
      sendProblem(request, reply, err);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();
  measureRequests(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fleet-inventory',
        version: '0.1.0',
        description: 'Real-time inventory of a multi-city vehicle rental marketplace',
      },
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
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  // Tokens revoked before they expire are refused on every path a token comes in by (HTTP and
  // WebSocket); API clients are charged to their own quotas.
  const { revocations, clients } = await accessDeps(app, deps);
  const authenticate = unlessRevoked(deps.authenticate, revocations);

  // Authentication and per-caller budgets, before validation and routing (rate-limit.ts): every
  // request under /v1 is charged — malformed, unknown or unauthenticated ones too.
  const limiter = new RateLimiter({
    redis: deps.redis,
    limits: deps.rateLimits ?? DEFAULT_RATE_LIMITS,
    authenticate,
    ...(clients ? { clients } : {}),
    ...(deps.rateLimitShare !== undefined ? { localShare: deps.rateLimitShare } : {}),
  });
  registerRateLimits(app, limiter, authenticate);
  // Counts not yet sent go out as the app closes (services/caller-budgets.ts close()).
  app.addHook('onClose', async () => limiter.budgets.close());
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      request,
      reply,
      new DomainError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );

  // Scopes: declared per route (`config.scope`), enforced once here after validation, and shown
  // in the OpenAPI document as the bearer scheme's scope.
  app.addHook('onRoute', (route) => {
    const scope = route.config?.scope;
    if (scope && route.schema) route.schema = { ...route.schema, security: [{ bearer: [scope] }] };
    // Every change a handler makes is recorded as the caller's, in this request (the audit
    // trail): the handler passes its context with its commands (`commandOptions`); under the
    // tests' check, a script that appends events without it throws (redis/call-context.ts).
    // Reads change nothing: only the handlers of methods that write are checked.
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => m === 'GET' || m === 'HEAD')) return;
    const handler = route.handler;
    route.handler = function inCallContext(request, reply) {
      return asRequest(requestContext(request), () => handler.call(this, request, reply));
    };
  });
  app.addHook('preHandler', checkScope);

  limitConnectionsPerAddress(app.server, httpLimits.maxConnectionsPerIp);

  // WebSocket upgrades never reach the router: the hub answers them on the raw server.
  const live = new LiveHub(deps.redis, deps.inventory, authenticate, deps.readModel, {
    // WebSocket messages spend the same budget as HTTP requests.
    charge: async (actor, address, cost) => (await limiter.take(actor, address, cost)).allowed,
    // A revoked token's open connections are closed as its requests are refused.
    revocations,
    ...(deps.regions ? { regions: deps.regions } : {}),
    ...deps.live,
  });
  live.attach(app.server);
  app.addHook('preClose', async () => {
    await live.close();
  });
  app.decorate('live', live);

  const routeDeps = withDerivedDeps(app, { ...deps, authenticate, revocations, ...(clients ? { clients } : {}) });

  // A city of another region: 307 to it (routes/regions.ts), for every route registered below.
  if (deps.regions) routeToRegions(app, deps.regions);
  await app.register(operationsRoutes, routeDeps);
  await app.register(gbfsRoutes, routeDeps);
  await app.register(consoleRoutes, routeDeps);
  await app.register(async (v1) => {
    for (const routes of V1_ROUTES) await v1.register(routes, routeDeps);
  });
  return app;
}

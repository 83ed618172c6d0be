/**
 * The route kit: what every route plugin shares (docs/api.md, "Conventions"). The problem
 * response its schemas name, the refusals a read or a command may answer, the city a request is
 * about, and the dependencies a plugin needs.
 *
 * Dependencies: a plugin that needs a service some processes lack (the read model, PostgreSQL,
 * the conflict desk...) is wrapped in `needs`. With them, it is registered as written, typed with
 * them present (no guard in its handlers). Without them, its routes are still declared — the
 * OpenAPI document is the same in every process — but each answers one 503 UNAVAILABLE naming
 * what is missing, and nothing of the plugin runs per request.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { City } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import type { FastifyRequest } from 'fastify';
import type { CallContext } from '../services/audit.ts';
import type { CommandOptions } from '../services/inventory.ts';
import { eventActorOf, type Actor } from './auth.ts';
import { notFound, requireCity } from './authorize.ts';
import type { AppDeps } from './types.ts';

/** An error response: RFC 9457 problem details (schemas.ts's `Problem`, added to the app once). */
export const problem = { $ref: 'Problem#' } as const;

/** What a read may answer besides its success: bad input, no token, a refused role, not found (or not the caller's). */
export const READ_PROBLEMS = { 400: problem, 401: problem, 403: problem, 404: problem } as const;

/** What a command may answer besides: a conflict, a lapsed hold, an unprocessable request, too many at once. */
export const COMMAND_PROBLEMS = { ...READ_PROBLEMS, 409: problem, 410: problem, 422: problem, 429: problem } as const;

/** A city this deployment serves, or 404. */
export function knownCity({ inventory }: Pick<AppDeps, 'inventory'>, id: string): City {
  const city = inventory.cities.get(id);
  if (!city) throw notFound('city', id);
  return city;
}

/** A city this deployment serves and the caller may see (authorize.ts, `requireCity`); 404 otherwise, alike. */
export function visibleCity(deps: Pick<AppDeps, 'inventory'>, actor: Actor, id: string): City {
  const city = knownCity(deps, id);
  requireCity(actor, id);
  return city;
}

/** The services a process may run without, and how a refusal names them. */
const OPTIONAL = {
  pool: 'PostgreSQL',
  readModel: 'the read model',
  conflicts: 'the conflict desk',
  webhooks: 'webhook subscriptions (PostgreSQL)',
  forecasts: 'demand forecasts (PostgreSQL)',
  lateReturns: 'the late-return watch (the read model and the conflict desk)',
  reserve: 'the conflict reserve (the read model)',
  clients: 'the API client registry (PostgreSQL)',
  revocations: 'token revocations (Redis)',
  tokenSecret: 'a token signing secret (JWT_SECRET)',
} as const satisfies { [K in keyof AppDeps]?: string };

export type OptionalDep = keyof typeof OPTIONAL;

/** The dependencies, with these present. */
export type With<K extends OptionalDep> = AppDeps & { [P in K]-?: NonNullable<AppDeps[P]> };

function present<K extends OptionalDep>(deps: AppDeps, keys: readonly K[]): deps is With<K> {
  return keys.every((k) => deps[k] !== undefined);
}

/**
 * Registers `plugin` when `deps` has every one of `keys`; otherwise declares its routes, each
 * answering 503 UNAVAILABLE ("<what> needs <missing>"). Either way each route documents 503.
 */
export function needs<K extends OptionalDep>(
  what: string,
  keys: readonly K[],
  plugin: FastifyPluginAsyncTypebox<With<K>>,
): FastifyPluginAsyncTypebox<AppDeps> {
  return async (app, deps) => {
    app.addHook('onRoute', (route) => {
      const response = route.schema?.response;
      if (route.schema && typeof response === 'object' && response !== null)
        route.schema = { ...route.schema, response: { 503: problem, ...response } };
    });
    if (present(deps, keys)) return plugin(app, deps);
    const missing = keys.filter((k) => deps[k] === undefined);
    const refusal = () =>
      new DomainError(
        'UNAVAILABLE',
        `${what} needs ${missing.map((k) => OPTIONAL[k]).join(' and ')}, which this process does not have`,
        { needs: missing },
      );
    // Before fastify sees a route, its handler is this one: the plugin's own never run.
    app.addHook('onRoute', (route) => {
      route.handler = async () => {
        throw refusal();
      };
    });
    const declared = { ...deps };
    standIns(declared, missing, refusal);
    await plugin(app, declared);
  };
}

/**
 * Fills the missing dependencies with stand-ins, so that the plugin can declare its routes: each
 * refuses any use with the plugin's 503. A plugin may keep one (`new TripLists(readModel)`), but
 * not use it while registering; its handlers, which would, are never registered.
 */
function standIns<K extends OptionalDep>(
  deps: AppDeps,
  missing: readonly K[],
  refusal: () => DomainError,
): asserts deps is With<K> {
  const refuse = () => {
    throw refusal();
  };
  const standIn = new Proxy(Object.freeze({}), { get: refuse, has: refuse, set: refuse });
  for (const key of missing) Object.defineProperty(deps, key, { value: standIn, enumerable: true });
}

const contexts = new WeakMap<FastifyRequest, CallContext>();

/** Who a request acts as, and the request: made once per request, passed to its commands. */
export function requestContext(request: FastifyRequest): CallContext {
  let ctx = contexts.get(request);
  if (!ctx) {
    ctx = { requestId: request.id, ...(request.caller ? { actor: eventActorOf(request.caller) } : {}) };
    contexts.set(request, ctx);
  }
  return ctx;
}

/**
 * The command options of a request: its idempotency key, scoped by the caller, and its call
 * context (who acts, in which request: written into every event its scripts append).
 */
export function commandOptions(request: FastifyRequest): CommandOptions {
  const key = request.headers['idempotency-key'];
  return {
    actorId: request.actor.id,
    commandId: request.id,
    context: requestContext(request),
    ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
  };
}

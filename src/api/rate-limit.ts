/**
 * Per-caller budgets for every request under /v1 (architecture.md §7), charged before anything else runs:
 * before validation and before routing, so a flood of malformed requests or of unknown routes
 * spends the caller's budget like any other. The caller is the verified token's subject (budget by
 * role), or — for requests without a valid token — the client address (RATE_LIMIT_ANONYMOUS). An
 * API client's token (`client_id`) is charged to that client's own quota per minute and burst per
 * second (services/api-clients.ts), and its usage is counted per minute (services/client-usage.ts).
 *
 * Requests cost by weight: 1 by default, and `request.charge(n)` adds more once the body says
 * how much work it is (a batch of n items costs n). WebSocket messages are charged to the same
 * budget (live/hub.ts). Answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`;
 * past the limit, 429 RATE_LIMITED with `Retry-After`, counted in `fleet_rate_limited_total{caller}`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/errors.ts';
import { metrics } from '../metrics.ts';
import type { RedisConnection } from '../services/stores.ts';
import type { Actor, Role } from './auth.ts';
import { CallerBudgets, type Taken } from '../services/caller-budgets.ts';
import type { ApiClientDesk } from '../services/api-clients.ts';

export type RateLimits = Record<Role, number> & { anonymous?: number };

export interface RateLimitOptions {
  redis: RedisConnection;
  limits: RateLimits;
  windowMs?: number;
  /** Fraction of a limit one process admits between syncs with Redis (services/caller-budgets.ts). */
  localShare?: number;
  authenticate: (authorization: string | undefined) => Promise<Actor>;
  /** The API clients' quotas and usage; without, an API client's token is charged by its role. */
  clients?: Pick<ApiClientDesk, 'quotaOf' | 'usage'>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Charges `cost` more to the caller's budget (429 RATE_LIMITED past it). */
    charge(cost: number): Promise<void>;
  }
}

export const WINDOW_MS = 60_000;
/** An API client's burst: requests in one second. */
export const BURST_WINDOW_MS = 1_000;

/** The budget a caller draws from, for HTTP requests and WebSocket messages alike. */
export class RateLimiter {
  readonly budgets: CallerBudgets;
  readonly windowMs: number;

  constructor(private readonly o: RateLimitOptions) {
    this.windowMs = o.windowMs ?? WINDOW_MS;
    this.budgets = new CallerBudgets({
      redis: o.redis,
      ...(o.localShare !== undefined ? { localShare: o.localShare } : {}),
    });
  }

  keyOf(actor: Actor | undefined, address: string): { key: string; limit: number } {
    if (actor) return { key: `${actor.role}:${actor.id}`, limit: this.o.limits[actor.role] };
    return { key: `ip:${address}`, limit: this.o.limits.anonymous ?? this.o.limits.customer };
  }

  /**
   * Charges `cost` to the caller. `request`: the charge is a request's own (or a WebSocket
   * message's), not more weight added to one (`request.charge`): only those count against an API
   * client's burst and as its requests.
   */
  async take(actor: Actor | undefined, address: string, cost: number, request = true): Promise<Taken> {
    const clientId = actor?.client?.id;
    const quota = clientId ? await this.o.clients?.quotaOf(clientId) : undefined;
    if (!clientId || !quota) {
      const { key, limit } = this.keyOf(actor, address);
      const taken = await this.budgets.take(key, cost, limit, this.windowMs);
      if (!taken.allowed) metrics.rateLimited.inc({ caller: actor?.role ?? 'anonymous' });
      return taken;
    }
    const [minute, second] = await Promise.all([
      this.budgets.take(`client:${clientId}`, cost, quota.quotaPerMinute, this.windowMs),
      request ? this.budgets.take(`client:${clientId}:s`, 1, quota.burst, BURST_WINDOW_MS) : undefined,
    ]);
    const refused = !minute.allowed ? minute : second && !second.allowed ? second : undefined;
    this.o.clients?.usage.record(clientId, { requests: request ? 1 : 0, units: cost, refused: refused ? 1 : 0 });
    if (refused) metrics.rateLimited.inc({ caller: actor?.role ?? 'anonymous' });
    return refused ?? minute;
  }

  /** 429 RATE_LIMITED for a refused charge. */
  refusal(t: Taken): DomainError {
    const retryAfter = Math.max(1, Math.ceil(t.resetMs / 1000));
    const per = t.windowMs === this.windowMs ? 'per minute' : "in a second (the API client's burst)";
    return new DomainError('RATE_LIMITED', `more than ${t.limit} requests ${per}; retry in ${retryAfter} s`, {
      limit: t.limit,
      retryAfter,
      retryAfterMs: retryAfter * 1000,
    });
  }
}

/** Authenticates, charges the budget, then refuses what must be refused — in that order. */
export function registerRateLimits(
  app: FastifyInstance,
  limiter: RateLimiter,
  authenticate: RateLimitOptions['authenticate'],
): void {
  app.decorateRequest('charge', async function charge(this: FastifyRequest, cost: number) {
    if (cost <= 0) return;
    const t = await limiter.take(this.caller, this.ip, cost, false);
    if (!t.allowed) throw limiter.refusal(t);
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    let refused: unknown;
    const known = !!request.routeOptions.url;
    if (!request.routeOptions.config?.public && (known || request.headers.authorization)) {
      try {
        request.caller = await authenticate(request.headers.authorization);
      } catch (err) {
        // Counted against the address first. An unknown route stays a 404 whatever the token.
        if (known) refused = err;
      }
    }
    const t = await limiter.take(request.caller, request.ip, 1);
    void reply.header('ratelimit-limit', t.limit);
    void reply.header('ratelimit-remaining', Math.max(0, t.limit - t.current));
    void reply.header('ratelimit-reset', Math.ceil(t.resetMs / 1000));
    if (!t.allowed) throw limiter.refusal(t);
    if (refused) throw refused;
  });
}

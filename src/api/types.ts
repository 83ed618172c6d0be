/**
 * What the HTTP layer is made of, for app.ts and every route plugin alike (routes import this,
 * never app.ts): the dependencies a route may use, and what requests carry.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { ConflictDesk } from '../services/conflicts.ts';
import type { Inventory } from '../services/inventory.ts';
import type { WebhookDesk } from '../services/webhooks.ts';
import type { ApiClientDesk } from '../services/api-clients.ts';
import type { TokenRevocations } from '../services/token-revocations.ts';
import type { ForecastDesk, SearchDemandLog } from '../services/forecast.ts';
import type { LateReturnWatch } from '../services/late-returns.ts';
import type { ReadModel } from '../services/read-model.ts';
import type { RegionMap } from '../services/regions.ts';
import type { ReservePlanner } from '../services/reserve.ts';
import type { CityLag, PgPool, RedisConnection } from '../services/stores.ts';
import type { Actor, Scope } from './auth.ts';
import type { LiveHub } from './live/hub.ts';
import type { LiveOptions } from './live/protocol.ts';
import type { RateLimits } from './rate-limit.ts';

export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnectionsPerIp: number;
}

export interface AppDeps {
  /** Demo mode: the console's three identities are minted with this secret (`GET /v1/demo/identities`). */
  demo?: { secret: Uint8Array; hostId: string };
  /** Webhook subscriptions (needs PostgreSQL); without it those routes answer 503. */
  webhooks?: WebhookDesk;
  /** The running configuration (admin's `GET /v1/admin/config`). */
  config?: Config;
  inventory: Inventory;
  redis: RedisConnection;
  pool?: PgPool;
  /** A read replica for heavy reads (analytics); falls back to `pool`. */
  replicaPool?: PgPool;
  authenticate: (authorization: string | undefined) => Promise<Actor>;
  lag?: () => Promise<CityLag[]>;
  logger?: boolean;
  bodyLimit?: number;
  rateLimits?: RateLimits;
  /** Fraction of a caller's limit one process admits between syncs with Redis (RATE_LIMIT_LOCAL_SHARE). */
  rateLimitShare?: number;
  /** The search read model; without it, search answers 503. */
  readModel?: ReadModel;
  /** The text `/metrics` answers; by default this process's registry (a cluster passes the sum of its processes). */
  metrics?: () => Promise<string>;
  /** The conflict reserve (GET /v1/cities/{city}/reserve). */
  reserve?: ReservePlanner;
  /** The conflict desk (offers: read, accept, decline); without it those routes answer 503. */
  conflicts?: ConflictDesk;
  /** WebSocket options for `GET /v1/live`. */
  live?: LiveOptions;
  /** Connection limits (HTTP_* in the environment; docs/api.md, "Limits"). */
  http?: Partial<HttpLimits>;
  /** At-risk bookings (switch to the standby vehicle); built by buildApp from `conflicts` and `readModel` when absent. */
  lateReturns?: LateReturnWatch;
  /** Demand forecasts (needs PostgreSQL); built by buildApp from `replicaPool ?? pool` when absent. */
  forecasts?: ForecastDesk;
  /** Counts searches for the forecast's unserved demand (needs PostgreSQL); built by buildApp likewise. */
  searchDemand?: SearchDemandLog;
  /** API clients (docs/api.md, "API clients"; registry in PostgreSQL); built by buildApp from `pool` when absent. */
  clients?: ApiClientDesk;
  /** Tokens revoked before they expire (Redis); built by buildApp when absent, and checked on every request. */
  revocations?: TokenRevocations;
  /** The HS256 secret API clients' tokens are signed with (`JWT_SECRET`); without it `POST /v1/oauth/token` answers 503. */
  tokenSecret?: Uint8Array;
  /** The regions (docs/regions.md); without, one implicit region and nothing is routed away. */
  regions?: RegionMap;
  /** How long a list spanning regions waits for another region (REGION_FANOUT_TIMEOUT_MS). */
  regionFanoutTimeoutMs?: number;
  /** How Redis is deployed and how many replicas confirm each write (shown by /readyz). */
  redisTopology?: { mode: string; syncReplicas: number };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller, once authenticated (rate-limit.ts); undefined before, or for public routes. */
    caller: Actor | undefined;
    /** The verified caller; on a route that has none, UNAUTHENTICATED (a route never runs without one). */
    actor: Actor;
  }
  interface FastifyContextConfig {
    public?: boolean;
    /** The scope a `scope`-narrowed token needs for this route (authorize.ts, requireScope). */
    scope?: Scope;
  }
  interface FastifyInstance {
    live: LiveHub;
  }
}

export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

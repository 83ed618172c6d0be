/**
 * API clients and token revocation (admin only; docs/api.md, "API clients"): register a client
 * (its secret shown once), list, delete (every token it holds revoked), its usage over time, and
 * revoke tokens — one by its `jti`, or every token of a client.
 */
import { Type } from '@sinclair/typebox';
import { DomainError } from '../../domain/errors.ts';
import type { ApiClient } from '../../services/api-clients.ts';
import { SCOPES } from '../auth.ts';
import { requireAdmin } from '../authorize.ts';
import { READ_PROBLEMS, needs } from '../route-kit.ts';
import { EntityId, HostParams, IdParams, IsoTime } from '../schemas.ts';

const literals = <T extends readonly string[]>(xs: T) =>
  Type.Unsafe<T[number]>(Type.Union(xs.map((x) => Type.Literal(x))));

const CLIENT_ROLES = ['customer', 'host', 'ops'] as const;
const CityId = Type.String({ pattern: '^[a-z0-9]{2,16}$' });

const NewClient = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    role: literals(CLIENT_ROLES),
    hostId: Type.Optional({ ...HostParams.properties.hostId, description: 'the fleet a host client owns (host only)' }),
    scopes: Type.Optional(
      Type.Array(literals(SCOPES), {
        minItems: 1,
        uniqueItems: true,
        description: 'the only scopes its tokens carry; absent, every permission of the role',
      }),
    ),
    cities: Type.Optional(
      Type.Array(CityId, {
        minItems: 1,
        maxItems: 100,
        uniqueItems: true,
        description: 'ops only: the only cities it sees',
      }),
    ),
    quotaPerMinute: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'budget units per minute' }),
    burst: Type.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'requests in any one second (at most quotaPerMinute)',
    }),
  },
  { additionalProperties: false },
);

const Client = Type.Object(
  {
    clientId: Type.String(),
    name: Type.String(),
    role: literals(CLIENT_ROLES),
    hostId: Type.Optional(Type.String()),
    scopes: Type.Optional(Type.Array(Type.String())),
    cities: Type.Optional(Type.Array(Type.String())),
    quotaPerMinute: Type.Integer(),
    burst: Type.Integer(),
    createdBy: Type.String({ description: 'the admin who registered it (`sub`)' }),
    createdAt: IsoTime,
  },
  { $id: 'ApiClient' },
);

const out = (c: ApiClient) => ({
  clientId: c.id,
  name: c.name,
  role: c.role,
  quotaPerMinute: c.quotaPerMinute,
  burst: c.burst,
  createdBy: c.createdBy,
  createdAt: new Date(c.createdAt).toISOString(),
  ...(c.hostId !== undefined ? { hostId: c.hostId } : {}),
  ...(c.scopes ? { scopes: c.scopes } : {}),
  ...(c.cities ? { cities: c.cities } : {}),
});

const Counts = {
  requests: Type.Integer({
    description: 'requests and WebSocket messages charged to the client, refused ones included',
  }),
  units: Type.Integer({ description: 'budget units charged (a batch of n items: n)' }),
  refused: Type.Integer({ description: 'charges refused with 429' }),
};

const UsageQuery = Type.Object(
  {
    from: Type.Optional(IsoTime),
    to: Type.Optional(IsoTime),
    granularity: Type.Optional(literals(['minute', 'hour'] as const)),
  },
  { additionalProperties: false },
);

const Usage = Type.Object({
  clientId: Type.String(),
  granularity: literals(['minute', 'hour'] as const),
  from: IsoTime,
  to: IsoTime,
  buckets: Type.Array(Type.Object({ at: IsoTime, ...Counts })),
  totals: Type.Object(Counts),
});

export const apiClientRoutes = needs('API clients', ['clients'], async (app, { clients }) => {
  app.post(
    '/v1/admin/clients',
    {
      schema: {
        tags: ['admin'],
        summary: 'Register an API client; its secret is shown once (admin only)',
        body: NewClient,
        response: { 201: Type.Composite([Client, Type.Object({ clientSecret: Type.String() })]), ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      requireAdmin(request.actor);
      const { client, secret } = await clients.create(request.body, request.actor.id);
      return reply.code(201).send({ ...out(client), clientSecret: secret });
    },
  );

  app.get(
    '/v1/admin/clients',
    {
      schema: {
        tags: ['admin'],
        summary: 'Every API client, oldest first; no secrets (admin only)',
        response: { 200: Type.Object({ clients: Type.Array(Client) }), ...READ_PROBLEMS },
      },
    },
    async (request) => {
      requireAdmin(request.actor);
      return { clients: (await clients.list()).map(out) };
    },
  );

  app.delete(
    '/v1/admin/clients/:id',
    {
      schema: {
        tags: ['admin'],
        summary: 'Delete an API client; every token it holds is refused within a second (admin only)',
        params: IdParams,
        response: { 204: Type.Null(), ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      requireAdmin(request.actor);
      await clients.delete(request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/admin/clients/:id/usage',
    {
      schema: {
        tags: ['admin'],
        summary: "An API client's requests, units and refusals per minute or hour (admin only)",
        params: IdParams,
        querystring: UsageQuery,
        response: { 200: Usage, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      requireAdmin(request.actor);
      const client = await clients.get(request.params.id);
      const { from, to, granularity = 'minute' } = request.query;
      const r = await clients.usage.report(client.id, granularity, {
        ...(from ? { from: Date.parse(from) } : {}),
        ...(to ? { to: Date.parse(to) } : {}),
      });
      const iso = (ms: number) => new Date(ms).toISOString();
      return {
        clientId: client.id,
        granularity,
        from: iso(r.from),
        to: iso(r.to),
        buckets: r.buckets.map((b) => ({ ...b, at: iso(b.at) })),
        totals: r.totals,
      };
    },
  );
});

/** How long a token revoked by `jti` stays refused when its expiry is not given: the longest life this service signs. */
const DEFAULT_REVOCATION_MS = 24 * 3_600_000;
/** The longest a revocation by `jti` is kept. */
const MAX_REVOCATION_MS = 30 * 24 * 3_600_000;

const Revocation = Type.Object(
  {
    jti: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'revoke this token' })),
    expiresAt: Type.Optional({
      ...IsoTime,
      description: "with `jti`: the token's expiry (`exp`), until which it is refused; default 24 h from now",
    }),
    clientId: Type.Optional({ ...EntityId, description: 'revoke every token this API client holds now' }),
  },
  { additionalProperties: false },
);

export const revocationRoutes = needs('token revocation', ['clients', 'revocations'], async (app, deps) => {
  app.post(
    '/v1/admin/revocations',
    {
      schema: {
        tags: ['admin'],
        summary:
          'Revoke a token by its jti, or every token of an API client; refused everywhere within a second (admin only)',
        description: 'Exactly one of `jti` (with its `expiresAt`, when known) and `clientId`.',
        body: Revocation,
        response: {
          200: Type.Object({
            jti: Type.Optional(Type.String()),
            until: Type.Optional({ ...IsoTime, description: 'the token is refused until then' }),
            clientId: Type.Optional(Type.String()),
            generation: Type.Optional(
              Type.Integer({ description: "the generation of the client's next tokens; every older one is refused" }),
            ),
          }),
          ...READ_PROBLEMS,
        },
      },
    },
    async (request) => {
      requireAdmin(request.actor);
      const { jti, clientId, expiresAt } = request.body;
      const either = () =>
        new DomainError('VALIDATION', 'give either jti (and maybe expiresAt) or clientId', { field: 'jti' });
      if (clientId !== undefined) {
        if (jti !== undefined || expiresAt !== undefined) throw either();
        return { clientId, generation: await deps.clients.revokeTokens(clientId) };
      }
      if (jti === undefined) throw either();
      const now = Date.now();
      const until = expiresAt ? Date.parse(expiresAt) : now + DEFAULT_REVOCATION_MS;
      if (until > now + MAX_REVOCATION_MS)
        throw new DomainError('VALIDATION', 'a revocation is kept 30 days at most', { field: 'expiresAt' });
      await deps.revocations.revokeToken(jti, until);
      return { jti, until: new Date(until).toISOString() };
    },
  );
});

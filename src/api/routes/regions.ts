/**
 * Regions over HTTP (docs/regions.md): the public map (`GET /v1/regions`), the routing of a
 * request for another region's city (307 to that region, same method, path, query and body), and
 * the admin route `fleet dr failover` uses to tell a region where a lost region's cities are
 * served now.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../../domain/errors.ts';
import { parseId } from '../../domain/ids.ts';
import { publishServedBy, type RegionMap } from '../../services/regions.ts';
import { requireAdmin } from '../authorize.ts';
import type { AppDeps } from '../types.ts';
import { problem } from '../route-kit.ts';

const ServedBy = Type.Object({
  region: Type.String(),
  url: Type.String(),
  since: Type.Integer({ description: 'epoch ms' }),
});
const Region = Type.Object({
  name: Type.String(),
  cities: Type.Array(Type.String()),
  url: Type.String({ description: "the region's own URL" }),
  here: Type.Boolean({ description: 'the region of the deployment that answered' }),
  servedBy: Type.Union([ServedBy, Type.Null()], {
    description: "set after a disaster: the standby deployment serving the region's cities now",
  }),
});

const ID_FIELDS = ['id', 'vehicleId', 'bookingId', 'holdId', 'blockId'] as const;

/** The city a request is about, when one can be read from its path, query or body. */
export function cityOfRequest(request: FastifyRequest): string | undefined {
  const sources: unknown[] = [request.params, request.query, request.body];
  for (const source of sources) {
    if (typeof source !== 'object' || source === null || Array.isArray(source)) continue;
    if ('city' in source && typeof source.city === 'string') return source.city;
    for (const f of ID_FIELDS) {
      const v: unknown = Reflect.get(source, f);
      const city = typeof v === 'string' ? parseId(v)?.city : undefined;
      if (city) return city;
    }
  }
  return undefined;
}

/**
 * A request for a city another region serves is answered `307 Temporary Redirect` to the same path
 * and query there: the method and body are kept, so every HTTP client that follows redirects works
 * unchanged. Checked once the body is parsed, before validation and before any store is touched.
 */
export function routeToRegions(app: FastifyInstance, regions: RegionMap): void {
  if (!regions.multi) return;
  app.addHook('preValidation', async (request, reply) => {
    const city = cityOfRequest(request);
    if (!city) return;
    const route = regions.route(city);
    if (route.kind !== 'elsewhere') return;
    return reply
      .code(307)
      .header('location', `${route.url}${request.url}`)
      .header('x-fleet-region', route.region)
      .send({ region: route.region, url: route.url });
  });
}

export const regionRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { regions, redis }) => {
  app.get(
    '/v1/regions',
    {
      config: { public: true },
      schema: {
        tags: ['regions'],
        summary: 'The regions, their cities and URLs, and which are served by a standby after a disaster',
        security: [],
        response: { 200: Type.Object({ region: Type.String(), regions: Type.Array(Region) }) },
      },
    },
    async () => ({ region: regions?.here ?? 'default', regions: regions?.view() ?? [] }),
  );

  app.put(
    '/v1/admin/regions/:region/served-by',
    {
      schema: {
        tags: ['admin'],
        summary: "Admin: a lost region's cities are served by its standby now (fleet dr failover)",
        params: Type.Object({ region: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }) }),
        body: Type.Object(
          { region: Type.String({ minLength: 1, maxLength: 32 }), url: Type.String({ format: 'uri', maxLength: 500 }) },
          { additionalProperties: false },
        ),
        response: { 200: ServedBy, 400: problem, 401: problem, 403: problem, 404: problem },
      },
    },
    async (request) => {
      requireAdmin(request.actor);
      knownRegion(regions, request.params.region);
      const servedBy = { ...request.body, since: Date.now() };
      await publishServedBy(redis, request.params.region, servedBy);
      await regions?.refresh();
      return servedBy;
    },
  );

  app.delete(
    '/v1/admin/regions/:region/served-by',
    {
      schema: {
        tags: ['admin'],
        summary: "Admin: a region's cities are served by the region itself again (fleet dr failback)",
        params: Type.Object({ region: Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }) }),
        response: { 204: Type.Null(), 401: problem, 403: problem, 404: problem },
      },
    },
    async (request, reply) => {
      requireAdmin(request.actor);
      knownRegion(regions, request.params.region);
      await publishServedBy(redis, request.params.region, null);
      await regions?.refresh();
      return reply.code(204).send(null);
    },
  );
};

function knownRegion(regions: RegionMap | undefined, name: string): void {
  if (!regions?.view().some((r) => r.name === name))
    throw new DomainError('NOT_FOUND', `region ${name} not found`, { entity: 'region', id: name });
}

/** What operations watch: every vehicle of a city with its status now, and the open conflicts. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DomainError } from '../../domain/errors.ts';
import { requireCity, requireRole } from '../authorize.ts';
import { Offers, offersOut } from '../schemas.ts';
import type { AppDeps } from '../types.ts';

const problem = { $ref: 'Problem#' } as const;
const CityParams = Type.Object({ city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }) });
const errors = { 401: problem, 403: problem, 404: problem, 503: problem };

export const marketRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory, readModel, conflicts }) => {
  const servedCity = (actor: Parameters<typeof requireCity>[0], city: string) => {
    requireRole(actor, 'ops', 'admin');
    if (!inventory.cities.get(city))
      throw new DomainError('NOT_FOUND', `city ${city} not found`, { entity: 'city', id: city });
    requireCity(actor, city);
  };

  app.get(
    '/v1/cities/:city/vehicles',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary: "Every vehicle of a city with its location and status now (the city's map)",
        params: CityParams,
        response: {
          200: Type.Object({
            vehicles: Type.Array(
              Type.Object({
                id: Type.String(),
                hostId: Type.String(),
                category: Type.String(),
                listing: Type.String(),
                status: Type.String(),
                location: Type.Object({ lat: Type.Number(), lng: Type.Number() }),
              }),
            ),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      servedCity(request.actor, request.params.city);
      if (!readModel) throw new DomainError('UNAVAILABLE', 'the read model is not enabled in this process');
      const rows = await readModel.statuses(request.params.city);
      return {
        vehicles: rows.map(({ lat, lng, ...v }) => ({ ...v, location: { lat, lng } })),
      };
    },
  );

  app.get(
    '/v1/cities/:city/conflicts',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['offers'],
        summary: "A city's conflicts whose offers are open, soonest to lapse first",
        params: CityParams,
        response: { 200: Type.Object({ conflicts: Type.Array(Offers) }), ...errors },
      },
    },
    async (request) => {
      servedCity(request.actor, request.params.city);
      if (!conflicts) throw new DomainError('UNAVAILABLE', 'offers are not enabled in this process');
      return { conflicts: (await conflicts.openOffers(request.params.city)).map(offersOut) };
    },
  );
};

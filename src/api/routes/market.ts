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

export const marketRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (
  app,
  { inventory, readModel, conflicts, reserve },
) => {
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
        summary: "A city's conflicts under way (offers open, or waiting for a car), soonest deadline first",
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

  app.get(
    '/v1/cities/:city/reserve',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['offers'],
        summary:
          'The conflict reserve held in a city now: vehicles kept back for displaced customers, by area, category and hour',
        params: CityParams,
        response: {
          200: Type.Object({
            reserve: Type.Array(
              Type.Object({
                holdId: Type.String(),
                vehicleId: Type.String(),
                area: Type.String(),
                category: Type.String(),
                hour: Type.String({ format: 'date-time' }),
                releasesAt: Type.String({ format: 'date-time', description: 'back to search from then on' }),
              }),
            ),
          }),
          ...errors,
        },
      },
    },
    async (request) => {
      servedCity(request.actor, request.params.city);
      if (!reserve) throw new DomainError('UNAVAILABLE', 'the reserve is not readable in this process');
      const held = await reserve.held(request.params.city);
      return {
        reserve: held.map((s) => ({
          ...s,
          hour: new Date(s.hour).toISOString(),
          releasesAt: new Date(s.releasesAt).toISOString(),
        })),
      };
    },
  );
};

/** What operations watch: every vehicle of a city with its status now, and the open conflicts. */
import { Type } from '@sinclair/typebox';
import type { Actor } from '../auth.ts';
import { requireRole } from '../authorize.ts';
import { needs, problem, visibleCity } from '../route-kit.ts';
import { Offers, offersOut } from '../schemas.ts';
import type { AppDeps } from '../types.ts';

const CityParams = Type.Object({ city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }) });
/** Staff reads of a city; 503 when this process lacks the service (route-kit.ts, `needs`). */
const errors = { 401: problem, 403: problem, 404: problem };

/** Staff of the city (others: 403; a city the caller may not see: 404). */
function staffCity(deps: AppDeps, actor: Actor, city: string): void {
  requireRole(actor, 'ops', 'admin');
  visibleCity(deps, actor, city);
}

/** The city's map (the read model). */
export const cityVehicleRoutes = needs("a city's map", ['readModel'], async (app, deps) => {
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
      staffCity(deps, request.actor, request.params.city);
      const rows = await deps.readModel.statuses(request.params.city);
      return {
        vehicles: rows.map(({ lat, lng, ...v }) => ({ ...v, location: { lat, lng } })),
      };
    },
  );
});

/** The conflicts under way in a city (the conflict desk). */
export const cityConflictRoutes = needs("a city's conflicts", ['conflicts'], async (app, deps) => {
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
      staffCity(deps, request.actor, request.params.city);
      return { conflicts: (await deps.conflicts.openOffers(request.params.city)).map(offersOut) };
    },
  );
});

/** The conflict reserve held in a city. */
export const cityReserveRoutes = needs('the reserve', ['reserve'], async (app, deps) => {
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
      staffCity(deps, request.actor, request.params.city);
      const held = await deps.reserve.held(request.params.city);
      return {
        reserve: held.map((s) => ({
          ...s,
          hour: new Date(s.hour).toISOString(),
          releasesAt: new Date(s.releasesAt).toISOString(),
        })),
      };
    },
  );
});

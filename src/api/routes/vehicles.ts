/** Vehicles: anyone signed in may read one; its calendar belongs to its host and to staff. */
import { Type } from '@sinclair/typebox';
import type { App, AppDeps } from '../app.ts';
import { isStaff, notFound } from '../authorize.ts';
import { CalendarItem, CalendarQuery, IdParams, VehicleOut, calendarOut, toMs, vehicleOut } from '../schemas.ts';

const problem = { $ref: 'Problem#' } as const;

export function vehicleRoutes(app: App, { inventory }: AppDeps): void {
  app.get('/v1/vehicles/:id', {
    schema: { tags: ['vehicles'], summary: 'A vehicle and its status now', params: IdParams, response: { 200: VehicleOut, 401: problem, 404: problem } },
  }, async (request) => vehicleOut((await inventory.getVehicleState(request.params.id)).vehicle));

  app.get('/v1/vehicles/:id/calendar', {
    schema: {
      tags: ['vehicles'], summary: "A vehicle's calendar (holds, bookings, blocks) overlapping [from, to)", params: IdParams, querystring: CalendarQuery,
      response: { 200: Type.Object({ vehicleId: Type.String(), entries: Type.Array(CalendarItem) }), 401: problem, 403: problem, 404: problem },
    },
  }, async (request) => {
    const state = await inventory.getVehicleState(request.params.id);
    if (!isStaff(request.actor) && !(request.actor.role === 'host' && state.vehicle.hostId === request.actor.hostId)) {
      throw notFound('vehicle calendar', request.params.id);
    }
    const from = request.query.from ? toMs(request.query.from) : Number.NEGATIVE_INFINITY;
    const to = request.query.to ? toMs(request.query.to) : Number.POSITIVE_INFINITY;
    const entries = state.entries.filter((e) => e.from < to && (e.to ?? Number.POSITIVE_INFINITY) > from);
    return { vehicleId: state.vehicle.id, entries: entries.map(calendarOut) };
  });
}

/** Vehicles: anyone signed in may read one; its calendar belongs to its host and to staff. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import type { Actor } from '../auth.ts';
import type { Inventory } from '../../services/inventory.ts';
import {
  citiesOf,
  mayWriteThePast,
  notFound,
  requireBlockClearer,
  requireHostScope,
  requireRole,
  requireVehicleManager,
} from '../authorize.ts';
import {
  BlockCreate,
  BlockOut,
  BlockParams,
  CalendarItem,
  CalendarQuery,
  HostParams,
  IdParams,
  VehicleCreate,
  VehicleOut,
  VehiclePatch,
  blockOut,
  calendarOut,
  toMs,
  vehicleOut,
} from '../schemas.ts';
import { IdempotencyHeaders } from './bookings.ts';
import { commandOptions } from '../route-kit.ts';
import { problem } from '../route-kit.ts';

export const vehicleRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.get(
    '/v1/vehicles/:id',
    {
      schema: {
        tags: ['vehicles'],
        summary: 'A vehicle and its status now',
        params: IdParams,
        response: { 200: VehicleOut, 401: problem, 404: problem },
      },
    },
    async (request) => vehicleOut((await inventory.getVehicleState(request.params.id)).vehicle),
  );

  app.get(
    '/v1/vehicles/:id/calendar',
    {
      config: { scope: 'fleet:read' },
      schema: {
        tags: ['vehicles'],
        summary: "A vehicle's calendar (holds, bookings, blocks) overlapping [from, to)",
        params: IdParams,
        querystring: CalendarQuery,
        response: {
          200: Type.Object({ vehicleId: Type.String(), entries: Type.Array(CalendarItem) }),
          401: problem,
          403: problem,
          404: problem,
        },
      },
    },
    async (request) => {
      const state = await inventory.getVehicleState(request.params.id);
      requireVehicleManager(request.actor, state.vehicle, 'vehicle calendar');
      const from = request.query.from ? toMs(request.query.from) : Number.NEGATIVE_INFINITY;
      const to = request.query.to ? toMs(request.query.to) : Number.POSITIVE_INFINITY;
      const entries = state.entries.filter((e) => e.from < to && (e.to ?? Number.POSITIVE_INFINITY) > from);
      return { vehicleId: state.vehicle.id, entries: entries.map(calendarOut) };
    },
  );
};
/** The vehicle exists and the caller is its host or staff (others: not found). */
async function ownVehicle(inventory: Inventory, actor: Actor, vehicleId: string): Promise<void> {
  requireRole(actor, 'host', 'ops', 'admin');
  requireVehicleManager(actor, (await inventory.getVehicleState(vehicleId)).vehicle);
}

export const fleetRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.post(
    '/v1/vehicles',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['vehicles'],
        summary: 'List a vehicle (the host comes from the token)',
        headers: IdempotencyHeaders,
        body: VehicleCreate,
        response: { 201: VehicleOut, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
      },
    },
    async (request, reply) => {
      requireRole(request.actor, 'host');
      const { city, ...spec } = request.body;
      const r = await inventory.createVehicle(city, { ...spec, hostId: request.actor.hostId }, commandOptions(request));
      return reply.code(201).send(vehicleOut((await inventory.getVehicleState(r.vehicleId)).vehicle));
    },
  );

  app.patch(
    '/v1/vehicles/:id',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['vehicles'],
        summary: "Change a vehicle's spec; `If-Match: <version>` makes it conditional",
        params: IdParams,
        body: VehiclePatch,
        headers: Type.Object({ 'if-match': Type.Optional(Type.String({ pattern: '^(W/)?"?[0-9]{1,12}"?$' })) }),
        response: { 200: VehicleOut, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem },
      },
    },
    async (request) => {
      await ownVehicle(inventory, request.actor, request.params.id);
      const ifMatch = request.headers['if-match'];
      const expected = typeof ifMatch === 'string' ? Number(ifMatch.replace(/\D/g, '')) : undefined;
      await inventory.updateVehicle(request.params.id, request.body, expected, commandOptions(request));
      return vehicleOut((await inventory.getVehicleState(request.params.id)).vehicle);
    },
  );

  app.get(
    '/v1/hosts/:hostId/vehicles',
    {
      config: { scope: 'fleet:read' },
      schema: {
        tags: ['vehicles'],
        summary: "A host's fleet, in every city",
        params: HostParams,
        response: { 200: Type.Object({ vehicles: Type.Array(VehicleOut) }), 401: problem, 403: problem },
      },
    },
    async (request) => {
      requireHostScope(request.actor, request.params.hostId);
      const cities = citiesOf(request.actor);
      const fleet = await inventory.vehiclesOfHost(request.params.hostId);
      return { vehicles: fleet.filter((v) => !cities || cities.has(v.city)).map(vehicleOut) };
    },
  );
};

/** On and off the market: delist, relist, retire (for good). */
export const listingRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  const ListingBody = Type.Object(
    { reason: Type.Optional(Type.String({ maxLength: 512 })) },
    { additionalProperties: false },
  );
  for (const [action, summary] of [
    ['delist', 'Take a vehicle off the market; its bookings to come become conflicts with offers'],
    ['relist', 'Put a delisted vehicle back on the market'],
  ] as const) {
    app.post(
      `/v1/vehicles/:id/${action}`,
      {
        config: { scope: 'fleet:write' },
        schema: {
          tags: ['vehicles'],
          summary,
          params: IdParams,
          headers: IdempotencyHeaders,
          body: ListingBody,
          response: { 200: VehicleOut, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem },
        },
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => {
        await ownVehicle(inventory, request.actor, request.params.id);
        const reason = request.body?.reason ?? '';
        if (action === 'delist') await inventory.delist(request.params.id, reason, commandOptions(request));
        else await inventory.relist(request.params.id, reason, commandOptions(request));
        return vehicleOut((await inventory.getVehicleState(request.params.id)).vehicle);
      },
    );
  }

  app.delete(
    '/v1/vehicles/:id',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['vehicles'],
        summary:
          'Retire a vehicle for good; refused (409 HAS_FUTURE_BOOKINGS) while trips are to come, unless `force=true`, which turns them into conflicts with offers',
        params: IdParams,
        querystring: Type.Object(
          {
            force: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
            reason: Type.Optional(Type.String({ maxLength: 512 })),
          },
          { additionalProperties: false },
        ),
        headers: IdempotencyHeaders,
        response: { 200: VehicleOut, 400: problem, 401: problem, 403: problem, 404: problem, 409: problem },
      },
    },
    async (request) => {
      await ownVehicle(inventory, request.actor, request.params.id);
      await inventory.retire(
        request.params.id,
        request.query.force === 'true',
        request.query.reason ?? '',
        commandOptions(request),
      );
      return vehicleOut((await inventory.getVehicleState(request.params.id)).vehicle);
    },
  );
};

/** Blocks: a host blocks its own vehicles; accidents are cleared by staff. */
export const blockRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.post(
    '/v1/vehicles/:id/blocks',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['blocks'],
        summary: 'Block a vehicle: accident (open-ended from now), maintenance, host',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: BlockCreate,
        response: { 201: BlockOut, 400: problem, 401: problem, 403: problem, 404: problem, 422: problem },
      },
    },
    async (request, reply) => {
      await ownVehicle(inventory, request.actor, request.params.id);
      const b = request.body;
      const r = await inventory.placeBlock(
        {
          vehicleId: request.params.id,
          reason: b.reason,
          ...(b.from ? { from: toMs(b.from) } : {}),
          ...(b.to ? { to: toMs(b.to) } : {}),
          ...(b.note ? { note: b.note } : {}),
          allowPast: mayWriteThePast(request.actor),
        },
        commandOptions(request),
      );
      return reply.code(201).send(blockOut(r.block, request.params.id));
    },
  );

  app.delete(
    '/v1/vehicles/:id/blocks/:blockId',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['blocks'],
        summary: 'Clear a block (ends now) or cancel a future one; accidents are cleared by staff',
        params: BlockParams,
        response: { 200: BlockOut, 401: problem, 403: problem, 404: problem, 409: problem },
      },
    },
    async (request) => {
      await ownVehicle(inventory, request.actor, request.params.id);
      const { entry, vehicle } = await inventory.getEntry(request.params.blockId, 'block');
      if (vehicle.id !== request.params.id) throw notFound('block', request.params.blockId);
      requireBlockClearer(request.actor, entry);
      const r = await inventory.removeBlock(request.params.blockId, commandOptions(request));
      return blockOut(r.block, request.params.id);
    },
  );
};

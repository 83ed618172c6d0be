/** Holds and bookings: customers book for themselves; hosts run trips on their vehicles; staff all. */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { Inventory } from '../../services/inventory.ts';
import { bookingFromHistory } from '../../services/trips.ts';
import { DomainError } from '../../domain/errors.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { COMMAND_PROBLEMS, commandOptions } from '../route-kit.ts';
import type { AppDeps } from '../types.ts';
import {
  canSeeTrip,
  cancelReason,
  citiesOf,
  customerScope,
  requireCity,
  requireForceAllowed,
  requireRole,
  requireTripViewer,
} from '../authorize.ts';
import {
  Booking,
  BookingRequest,
  CancelRequest,
  ExtendRequest,
  Hold,
  HoldRequest,
  IdParams,
  bookingOut,
  holdOut,
  toMs,
} from '../schemas.ts';

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' })),
});

/** Holds: a customer places one for checkout and releases it (staff may release any). */
export const holdRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.post(
    '/v1/holds',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['holds'],
        summary: 'Hold a vehicle for checkout',
        headers: IdempotencyHeaders,
        body: HoldRequest,
        response: { 201: Hold, ...COMMAND_PROBLEMS },
      },
    },
    async (request, reply) => {
      requireRole(request.actor, 'customer');
      const r = await inventory.placeHold(
        {
          vehicleId: request.body.vehicleId,
          customerId: request.actor.id,
          from: toMs(request.body.from),
          to: toMs(request.body.to),
        },
        commandOptions(request),
      );
      return reply.code(201).send(holdOut(r.hold, request.body.vehicleId));
    },
  );

  app.delete(
    '/v1/holds/:id',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['holds'],
        summary: 'Release a hold',
        params: IdParams,
        response: { 200: Hold, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      if (citiesOf(request.actor)) requireCity(request.actor, (await inventory.locate(request.params.id, 'hold')).city);
      const r = await inventory.releaseHold(request.params.id, customerScope(request.actor), commandOptions(request));
      return holdOut(r.hold, (await inventory.locate(request.params.id, 'hold')).vehicleId);
    },
  );
};

/** Booking: directly, or from the customer's hold. */
export const bookRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.post(
    '/v1/bookings',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['bookings'],
        summary: 'Book a vehicle, directly or from a hold',
        headers: IdempotencyHeaders,
        body: BookingRequest,
        response: { 201: Booking, ...COMMAND_PROBLEMS },
      },
    },
    async (request, reply) => {
      requireRole(request.actor, 'customer');
      const b = request.body;
      const flex = b.flexibleMinutes ? { flexibleMinutes: b.flexibleMinutes } : {};
      const r =
        'holdId' in b
          ? await inventory.book({ holdId: b.holdId, customerId: request.actor.id, ...flex }, commandOptions(request))
          : await inventory.book(
              { vehicleId: b.vehicleId, customerId: request.actor.id, from: toMs(b.from), to: toMs(b.to), ...flex },
              commandOptions(request),
            );
      return reply.code(201).send(bookingOut(r.booking, r.vehicleId));
    },
  );

  /** The booking, if the caller may see it (its customer, the vehicle's host, staff). */
};

/** A booking's life: read it (history from PostgreSQL), cancel, start, complete, extend. */
/** The booking, if the caller may see it (its customer, the vehicle's host, staff); others: not found. */
async function visibleBooking(inventory: Inventory, request: FastifyRequest<{ Params: { id: string } }>) {
  const { entry, vehicle } = await inventory.getEntry(request.params.id, 'booking');
  requireTripViewer(request.actor, entry, vehicle);
  return { entry, vehicleId: vehicle.id };
}

export const bookingRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory, pool }) => {
  app.get(
    '/v1/bookings/:id',
    {
      config: { scope: 'bookings:read' },
      schema: {
        tags: ['bookings'],
        summary: 'A booking (past ones trimmed from Redis are read from PostgreSQL)',
        params: IdParams,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => {
      try {
        const { entry, vehicleId } = await visibleBooking(inventory, request);
        return bookingOut(entry, vehicleId);
      } catch (err) {
        // Past, final bookings leave Redis after the retention window; their history is PostgreSQL's.
        if (!(err instanceof DomainError) || err.code !== 'NOT_FOUND' || !pool) throw err;
        const past = await bookingFromHistory(pool, request.params.id);
        if (!past || !canSeeTrip(request.actor, past.booking, past)) throw err;
        return bookingOut(past.booking, past.vehicleId);
      }
    },
  );
};

/** A booking's moves: cancel, start (pickup), complete (return), extend. */
export const tripRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  const authorised = async (request: FastifyRequest<{ Params: { id: string } }>) =>
    (await visibleBooking(inventory, request)).vehicleId;

  app.post(
    '/v1/bookings/:id/cancel',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['bookings'],
        summary: 'Cancel a booking not yet started (body optional)',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: CancelRequest,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
      // The body is optional: an empty one means no reason given.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      const vehicleId = await authorised(request);
      const reason = cancelReason(request.actor, request.body?.reason);
      const r = await inventory.cancelBooking(
        request.params.id,
        customerScope(request.actor),
        reason,
        commandOptions(request),
      );
      return bookingOut(r.booking, vehicleId);
    },
  );

  app.post(
    '/v1/bookings/:id/start',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['bookings'],
        summary: 'Start the trip (pickup)',
        params: IdParams,
        headers: IdempotencyHeaders,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => {
      const vehicleId = await authorised(request);
      const r = await inventory.startTrip(request.params.id, customerScope(request.actor), commandOptions(request));
      return bookingOut(r.booking, vehicleId);
    },
  );

  app.post(
    '/v1/bookings/:id/complete',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['bookings'],
        summary: 'Complete the trip (return): early, on time or late',
        params: IdParams,
        headers: IdempotencyHeaders,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => {
      const vehicleId = await authorised(request);
      const r = await inventory.completeTrip(request.params.id, customerScope(request.actor), commandOptions(request));
      return bookingOut(r.booking, vehicleId);
    },
  );

  app.post(
    '/v1/bookings/:id/extend',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['bookings'],
        summary: 'Extend a booking; staff may force it over later bookings',
        params: IdParams,
        headers: IdempotencyHeaders,
        body: ExtendRequest,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      requireForceAllowed(request.actor, request.body.force);
      const vehicleId = await authorised(request);
      const r = await inventory.extendBooking(
        request.params.id,
        customerScope(request.actor),
        toMs(request.body.to),
        request.body.force ?? false,
        commandOptions(request),
      );
      return bookingOut(r.booking, vehicleId);
    },
  );
};

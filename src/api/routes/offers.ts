/**
 * A conflicted booking's offers: its customer (and staff) see them, accept one or decline all;
 * the vehicle's host may look. The moves themselves are single Lua scripts (see docs/conflicts.md).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { customerScope, requireOffersViewer, requireRole, requireTripViewer } from '../authorize.ts';
import { COMMAND_PROBLEMS, needs } from '../route-kit.ts';
import { Booking, Offers, bookingOut, offersOut } from '../schemas.ts';
import { IdempotencyHeaders } from './bookings.ts';
import { commandOptions } from '../route-kit.ts';
const BookingParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9_\\-]+$' }) });
const OfferParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9_\\-]+$' }),
  offerId: Type.String({ minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9_\\-]+$' }),
});
// Accept and decline take no body; an empty JSON object is fine too.
const NoBody = Type.Object({}, { additionalProperties: false });
const emptyBodyIsFine = async (request: FastifyRequest) => {
  request.body ??= {};
};

export const offerRoutes = needs('conflict offers', ['conflicts'], async (app, { conflicts }) => {
  /** The offers of a booking the caller may see (its customer, the host of its original vehicle, staff). */
  async function visibleOffers(request: FastifyRequest<{ Params: { id: string } }>) {
    const record = await conflicts.offersOf(request.params.id);
    requireOffersViewer(request.actor, record);
    return record;
  }

  app.get(
    '/v1/bookings/:id/offers',
    {
      config: { scope: 'bookings:read' },
      schema: {
        tags: ['offers'],
        summary: "A conflicted booking's offers: alternatives held for the customer, with incentives",
        params: BookingParams,
        response: { 200: Offers, ...COMMAND_PROBLEMS },
      },
    },
    async (request) => offersOut(await visibleOffers(request)),
  );

  app.post(
    '/v1/bookings/:id/offers/:offerId/accept',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['offers'],
        summary:
          'Take one offer: the booking moves to the offered vehicle (same id) in one step; the other holds are released',
        params: OfferParams,
        headers: IdempotencyHeaders,
        body: NoBody,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
      preValidation: emptyBodyIsFine,
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      await visibleOffers(request);
      const r = await conflicts.accept(
        request.params.id,
        request.params.offerId,
        customerScope(request.actor),
        commandOptions(request),
      );
      return bookingOut(
        r.booking,
        r.record.offers.find((o) => o.id === r.record.acceptedOfferId)?.vehicleId ?? r.record.vehicleId,
      );
    },
  );

  app.post(
    '/v1/bookings/:id/offers/decline',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['offers'],
        summary: 'Decline every offer: the booking is cancelled with a full refund and the holds released',
        params: BookingParams,
        headers: IdempotencyHeaders,
        body: NoBody,
        response: { 200: Offers, ...COMMAND_PROBLEMS },
      },
      preValidation: emptyBodyIsFine,
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      await visibleOffers(request);
      const r = await conflicts.decline(request.params.id, customerScope(request.actor), commandOptions(request));
      return offersOut(r.record);
    },
  );
});

/** An at-risk booking's switch to the vehicle held for it (docs/prediction.md). */
export const standbyRoutes = needs('at-risk switching', ['lateReturns'], async (app, { inventory, lateReturns }) => {
  app.post(
    '/v1/bookings/:id/switch',
    {
      config: { scope: 'bookings:write' },
      schema: {
        tags: ['offers'],
        summary: 'Switch an at-risk booking to the vehicle held for it (the trip before it may run late)',
        description:
          'A booking marked at risk (`booking.at_risk`: the car may not be back in time) has a similar vehicle held for its window. Switching moves the booking there at once, same id and window; not switching keeps it, and the held vehicle is released when the car comes back in time (docs/prediction.md).',
        params: BookingParams,
        headers: IdempotencyHeaders,
        body: NoBody,
        response: { 200: Booking, ...COMMAND_PROBLEMS },
      },
      preValidation: emptyBodyIsFine,
    },
    async (request) => {
      requireRole(request.actor, 'customer', 'ops', 'admin');
      const at = await inventory.getEntry(request.params.id, 'booking');
      const { entry, vehicle } = at;
      requireTripViewer(request.actor, entry, vehicle);
      const r = await lateReturns.switchToStandby(at, customerScope(request.actor), commandOptions(request));
      return bookingOut(r.booking, entry.atRisk?.standby?.vehicleId ?? vehicle.id);
    },
  );
});

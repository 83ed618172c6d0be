/**
 * Lists: a customer's bookings and live holds, the trips on a host's fleet. Each caller sees
 * exactly its own (staff: everything in their cities); services/trips.ts merges the live
 * calendars with PostgreSQL's history.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyRequest } from 'fastify';
import { defaults } from '../../config.ts';
import { BOOKING_STATUSES, TRIP_PHASES, type BookingStatus, type TripPhase } from '../../domain/calendar.ts';
import { pageAcrossRegions, REGION_SCOPE_HEADER, type AcrossRegions } from '../../services/regions.ts';
import { TripLists, type TripFilter } from '../../services/trips.ts';
import type { Actor } from '../auth.ts';
import { citiesOf, listedCustomer, requireHostScope, requireRole } from '../authorize.ts';
import { Booking, Hold, HostParams, IsoTime, bookingOut, holdOut, toMs } from '../schemas.ts';
import { needs, READ_PROBLEMS } from '../route-kit.ts';
import type { AppDeps } from '../types.ts';

const ListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.String({
        pattern: `^(${BOOKING_STATUSES.join('|')})(,(${BOOKING_STATUSES.join('|')})){0,5}$`,
        description: `comma-separated statuses: ${BOOKING_STATUSES.join(', ')}`,
      }),
    ),
    when: Type.Optional(
      Type.Unsafe<TripPhase>({
        type: 'string',
        enum: [...TRIP_PHASES],
        description: 'upcoming (confirmed or conflicted, not over), active (under way), past (the rest)',
      }),
    ),
    from: Type.Optional({ ...IsoTime, description: 'trips ending after this instant' }),
    to: Type.Optional({ ...IsoTime, description: 'trips starting before this instant' }),
    limit: Type.Optional(
      Type.String({ pattern: '^(?:[1-9][0-9]?|1[0-9][0-9]|200)$', description: '1 to 200 (default 50)' }),
    ),
    cursor: Type.Optional(
      Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'from the previous page' }),
    ),
  },
  { additionalProperties: false },
);
const CustomerListQuery = Type.Composite(
  [
    ListQuery,
    Type.Object({
      customerId: Type.Optional(
        Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$', description: 'staff: one customer' }),
      ),
    }),
  ],
  { additionalProperties: false },
);
const RegionsUnavailable = Type.Optional(
  Type.Array(Type.String(), {
    description: 'regions that did not answer in time: their items are missing from this page (docs/regions.md)',
  }),
);
const BookingList = Type.Object({
  bookings: Type.Array(Booking),
  cursor: Type.Union([Type.String(), Type.Null()]),
  regionsUnavailable: RegionsUnavailable,
});
const HoldList = Type.Object({ holds: Type.Array(Hold), regionsUnavailable: RegionsUnavailable });
type BookingOut = Static<typeof Booking>;
type HoldOut = Static<typeof Hold>;
const bookingKey = (b: BookingOut) => ({ key: Date.parse(b.from), id: b.id });
const holdKey = (h: HoldOut) => ({ key: Date.parse(h.from), id: h.id });

/** How this request asks the other regions for their part of a list (services/regions.ts). */
function acrossRegions(request: FastifyRequest, { regions, regionFanoutTimeoutMs }: AppDeps): AcrossRegions {
  const scope = request.headers[REGION_SCOPE_HEADER];
  return {
    regions,
    pathAndQuery: request.url,
    authorization: request.headers.authorization,
    scope: typeof scope === 'string' ? scope : undefined,
    timeoutMs: regionFanoutTimeoutMs ?? defaults.REGION_FANOUT_TIMEOUT_MS,
  };
}

/**
 * Another region's answer to the same list route, read as a page: checked against the route's own
 * schema (an answer of another shape adds nothing to the page).
 */
const BookingListCheck = TypeCompiler.Compile(BookingList);
const HoldListCheck = TypeCompiler.Compile(HoldList);
const bookingPageOf = (body: unknown) =>
  BookingListCheck.Check(body) ? { items: body.bookings, cursor: body.cursor } : { items: [], cursor: null };
const holdPageOf = (body: unknown) => ({ items: HoldListCheck.Check(body) ? body.holds : [], cursor: null });
const isBookingStatus = (s: string): s is BookingStatus => BOOKING_STATUSES.some((b) => b === s);

function filterOf(q: {
  status?: string;
  when?: TripPhase;
  from?: string;
  to?: string;
}): Omit<TripFilter, 'customerId' | 'hostId'> {
  return {
    ...(q.status ? { statuses: q.status.split(',').filter(isBookingStatus) } : {}),
    ...(q.when ? { phase: q.when } : {}),
    ...(q.from ? { from: toMs(q.from) } : {}),
    ...(q.to ? { to: toMs(q.to) } : {}),
  };
}

const unavailable = (page: { regionsUnavailable?: string[] }) =>
  page.regionsUnavailable ? { regionsUnavailable: page.regionsUnavailable } : {};

const scopeOf = (actor: Actor) => {
  const cities = citiesOf(actor);
  return cities ? { cities } : {};
};

export const tripListRoutes = needs('lists', ['readModel'], async (app, deps) => {
  const lists = new TripLists(deps.readModel, deps.pool);

  app.get(
    '/v1/bookings',
    {
      config: { scope: 'bookings:read' },
      schema: {
        tags: ['bookings'],
        summary: "The caller's bookings (staff: any customer's), upcoming and past, in start order",
        querystring: CustomerListQuery,
        response: { 200: BookingList, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const { actor } = request;
      requireRole(actor, 'customer', 'ops', 'admin');
      const customerId = listedCustomer(actor, request.query.customerId);
      const limit = Number(request.query.limit ?? 50);
      const local = lists
        .bookings(
          { ...filterOf(request.query), ...(customerId !== undefined ? { customerId } : {}), ...scopeOf(actor) },
          { limit, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) },
        )
        .then((page) => ({ items: page.trips.map((t) => bookingOut(t.booking, t.vehicleId)), cursor: page.cursor }));
      const page = await pageAcrossRegions(acrossRegions(request, deps), local, bookingPageOf, bookingKey, limit);
      return { bookings: page.items, cursor: page.cursor, ...unavailable(page) };
    },
  );

  app.get(
    '/v1/hosts/:hostId/bookings',
    {
      config: { scope: 'bookings:read' },
      schema: {
        tags: ['bookings'],
        summary: "The trips on a host's vehicles, upcoming, active and past, in start order",
        params: HostParams,
        querystring: ListQuery,
        response: { 200: BookingList, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      requireHostScope(request.actor, request.params.hostId);
      const limit = Number(request.query.limit ?? 50);
      const local = lists
        .bookings(
          { ...filterOf(request.query), hostId: request.params.hostId, ...scopeOf(request.actor) },
          { limit, ...(request.query.cursor ? { cursor: request.query.cursor } : {}) },
        )
        .then((page) => ({ items: page.trips.map((t) => bookingOut(t.booking, t.vehicleId)), cursor: page.cursor }));
      const page = await pageAcrossRegions(acrossRegions(request, deps), local, bookingPageOf, bookingKey, limit);
      return { bookings: page.items, cursor: page.cursor, ...unavailable(page) };
    },
  );

  app.get(
    '/v1/holds',
    {
      config: { scope: 'bookings:read' },
      schema: {
        tags: ['holds'],
        summary: "The caller's live holds, soonest first",
        response: { 200: HoldList, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      requireRole(request.actor, 'customer');
      const local = lists
        .holds(request.actor.id)
        .then((holds) => ({ items: holds.map((h) => holdOut(h.hold, h.vehicleId)), cursor: null }));
      const page = await pageAcrossRegions(
        acrossRegions(request, deps),
        local,
        holdPageOf,
        holdKey,
        Number.MAX_SAFE_INTEGER,
      );
      return { holds: page.items, ...unavailable(page) };
    },
  );
});

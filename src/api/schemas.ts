/**
 * The API's schemas: one definition drives request validation, response serialisation and the
 * OpenAPI document. Times are ISO 8601 strings with an offset; the engine speaks epoch ms.
 */
import { FormatRegistry, Type, type Static } from '@sinclair/typebox';
import {
  BLOCK_REASONS,
  BOOKING_STATUSES,
  HOLD_STATUSES,
  type BlockEntry,
  type BookingEntry,
  type CalendarEntry,
  type HoldEntry,
} from '../domain/calendar.ts';
import { CATEGORIES, FUELS, LISTING_STATES, TRANSMISSIONS, VEHICLE_STATUSES, type Vehicle } from '../domain/vehicle.ts';
import type { OfferRecord } from '../services/conflicts.ts';
import type { Price } from '../domain/pricing.ts';

const literals = <T extends readonly string[]>(xs: T) =>
  Type.Unsafe<T[number]>(Type.Union(xs.map((x) => Type.Literal(x))));

// The same meaning of `date-time` for TypeBox's own checks (batch items) as for fastify's Ajv.
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
if (!FormatRegistry.Has('date-time'))
  FormatRegistry.Set('date-time', (v) => ISO_DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)));

export const IsoTime = Type.String({
  format: 'date-time',
  maxLength: 40,
  description: 'ISO 8601 with offset, e.g. 2026-12-01T10:00:00Z',
});
export const EntityId = Type.String({ minLength: 1, maxLength: 80, pattern: '^[A-Za-z0-9_\\-]+$' });

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    instance: Type.Optional(Type.String()),
  },
  { additionalProperties: true, $id: 'Problem', description: 'RFC 9457 problem details with a stable `code`' },
);

const Minor = (description: string) => Type.Integer({ description });
const Currency = Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217' });

/** What the engine fixed when the hold, booking or offer was made (domain/pricing.ts; docs/api.md, "Prices"). */
export const PriceSchema = Type.Object(
  {
    currency: Currency,
    total: Minor('in minor units of the currency (INR: paise, JPY: yen): the breakdown plus the adjustment'),
    breakdown: Type.Array(
      Type.Object({
        from: IsoTime,
        to: IsoTime,
        hours: Type.Integer({ description: 'started hours in [from, to)' }),
        unitAmount: Minor('hourly: the hourly rate; daily_cap: the daily rate (minor units)'),
        amount: Minor('hourly: hours × unitAmount; daily_cap: unitAmount per 24 h period'),
        kind: Type.Union([Type.Literal('hourly'), Type.Literal('daily_cap')]),
      }),
    ),
    adjustment: Type.Optional(
      Type.Object(
        { amount: Minor('minor units, signed'), offerId: Type.String() },
        { description: 'a booking moved by an accepted offer: what the customer pays minus the alternative’s price' },
      ),
    ),
  },
  { $id: 'Price' },
);
const Amount = Type.Object({ currency: Currency, total: Minor('minor units of the currency') });

export const Hold = Type.Object(
  {
    id: Type.String(),
    vehicleId: Type.String(),
    customerId: Type.String(),
    status: literals(HOLD_STATUSES),
    from: IsoTime,
    to: IsoTime,
    expiresAt: IsoTime,
    bookingId: Type.Optional(Type.String()),
    price: Type.Optional(PriceSchema),
  },
  { $id: 'Hold' },
);

const IncentiveSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('free_upgrade'), Type.Literal('credit'), Type.Literal('refund')], {
      description: 'refund: a lower class, its price difference given back with a credit',
    }),
    amount: Type.Number(),
    reason: Type.String(),
  },
  { description: 'What the marketplace gives the displaced customer; amount = its cost, in the price currency' },
);

export const Booking = Type.Object(
  {
    id: Type.String(),
    vehicleId: Type.String(),
    customerId: Type.String(),
    status: literals(BOOKING_STATUSES),
    from: IsoTime,
    to: IsoTime,
    holdId: Type.Optional(Type.String()),
    flexibleMinutes: Type.Optional(Type.Integer({ description: 'how far offers may move the trip if displaced' })),
    startedAt: Type.Optional(IsoTime),
    completedAt: Type.Optional(IsoTime),
    completion: Type.Optional(Type.String()),
    scheduledTo: Type.Optional(IsoTime),
    conflictCause: Type.Optional(Type.String()),
    cancelReason: Type.Optional(Type.String()),
    refund: Type.Optional(Type.Literal('full')),
    credit: Type.Optional(IncentiveSchema),
    incentive: Type.Optional(IncentiveSchema),
    reaccommodatedFrom: Type.Optional(
      Type.Object({
        vehicleId: Type.String(),
        cause: Type.Optional(Type.String()),
        offerId: Type.String(),
        at: IsoTime,
      }),
    ),
    offers: Type.Optional(Type.Object({ count: Type.Integer(), expiresAt: IsoTime })),
    price: Type.Optional(PriceSchema),
  },
  { $id: 'Booking' },
);

export const Offers = Type.Object(
  {
    bookingId: Type.String(),
    city: Type.String(),
    vehicleId: Type.String({ description: 'the original vehicle' }),
    customerId: Type.String(),
    cause: Type.String(),
    conflictedAt: IsoTime,
    offeredAt: Type.Optional({ ...IsoTime, description: 'absent while the conflict waits' }),
    from: IsoTime,
    to: IsoTime,
    status: Type.Union(
      ['waiting', 'open', 'accepted', 'declined', 'lapsed', 'no_alternative'].map((x) => Type.Literal(x)),
      { description: 'waiting: nothing free yet; the first vehicle freed for it is offered (until waitUntil)' },
    ),
    waitingSince: Type.Optional(IsoTime),
    waitUntil: Type.Optional(IsoTime),
    expiresAt: Type.Optional(IsoTime),
    acceptedOfferId: Type.Optional(Type.String()),
    credit: Type.Optional(IncentiveSchema),
    resolvedAt: Type.Optional(IsoTime),
    offers: Type.Array(
      Type.Object({
        id: Type.String(),
        vehicleId: Type.String(),
        holdId: Type.String(),
        category: Type.String(),
        distanceKm: Type.Number(),
        incentive: IncentiveSchema,
        status: Type.String(),
        kind: Type.Optional(
          Type.String({
            description:
              'same_category, upgrade, shifted (a moved window), farther (delivered), downgrade (difference refunded), back_to_back (two vehicles)',
          }),
        ),
        from: Type.Optional(IsoTime),
        to: Type.Optional(IsoTime),
        shiftMinutes: Type.Optional(Type.Integer()),
        price: Type.Optional({ ...PriceSchema, description: "the alternative's price for the offered window" }),
        customerPays: Type.Optional({
          ...Amount,
          description:
            "what the customer pays if they take it: the booking's price less the incentive's credit or refund",
        }),
        legs: Type.Optional(
          Type.Object(
            {
              vehicleId: Type.String(),
              holdId: Type.String(),
              bookingId: Type.String({ description: 'the booking the rest of the trip becomes when accepted' }),
              at: IsoTime,
              category: Type.String(),
              distanceKm: Type.Number(),
            },
            { description: 'back_to_back: the second vehicle, from `at` to the end of the trip' },
          ),
        ),
      }),
    ),
  },
  { $id: 'Offers' },
);

export function offersOut(r: OfferRecord): Static<typeof Offers> {
  return {
    bookingId: r.bookingId,
    city: r.city,
    vehicleId: r.vehicleId,
    customerId: r.customerId,
    cause: r.cause,
    conflictedAt: iso(r.conflictedAt),
    ...(r.offeredAt ? { offeredAt: iso(r.offeredAt) } : {}),
    ...(r.waitingSince ? { waitingSince: iso(r.waitingSince) } : {}),
    ...(r.waitUntil ? { waitUntil: iso(r.waitUntil) } : {}),
    from: iso(r.from),
    to: iso(r.to),
    status: r.status,
    ...(r.expiresAt ? { expiresAt: iso(r.expiresAt) } : {}),
    ...(r.acceptedOfferId ? { acceptedOfferId: r.acceptedOfferId } : {}),
    ...(r.credit ? { credit: r.credit } : {}),
    ...(r.resolvedAt ? { resolvedAt: iso(r.resolvedAt) } : {}),
    offers: r.offers.map((o) => ({
      id: o.id,
      vehicleId: o.vehicleId,
      holdId: o.holdId,
      category: o.category,
      distanceKm: o.distanceKm,
      incentive: o.incentive,
      status: o.status,
      ...(o.kind ? { kind: o.kind } : {}),
      ...(o.from !== undefined ? { from: iso(o.from) } : {}),
      ...(o.to !== undefined ? { to: iso(o.to) } : {}),
      ...(o.shiftMinutes ? { shiftMinutes: o.shiftMinutes } : {}),
      ...(o.price ? { price: priceOut(o.price) } : {}),
      ...(o.customerPays ? { customerPays: o.customerPays } : {}),
      ...(o.legs ? { legs: { ...o.legs, at: iso(o.legs.at) } } : {}),
    })),
  };
}

export const CalendarItem = Type.Object({
  kind: Type.String(),
  id: Type.String(),
  status: Type.String(),
  from: IsoTime,
  to: Type.Union([IsoTime, Type.Null()]),
  reason: Type.Optional(Type.String()),
});

export const VehicleOut = Type.Object(
  {
    id: Type.String(),
    city: Type.String(),
    hostId: Type.String(),
    category: literals(CATEGORIES),
    seats: Type.Integer(),
    transmission: literals(TRANSMISSIONS),
    fuel: literals(FUELS),
    make: Type.String(),
    model: Type.String(),
    location: Type.Object({ lat: Type.Number(), lng: Type.Number() }),
    pricePerHour: Type.Number(),
    pricePerDay: Type.Optional(Type.Number({ description: 'the daily cap, when the vehicle has one' })),
    listing: literals(LISTING_STATES),
    status: literals(VEHICLE_STATUSES),
    version: Type.Integer(),
  },
  { $id: 'Vehicle' },
);

export const City = Type.Object({
  id: Type.String(),
  name: Type.String(),
  timeZone: Type.String(),
  turnaroundMinutes: Type.Integer(),
  currency: Type.Object({
    code: Currency,
    exponent: Type.Integer({ description: 'minor units: an amount of n is n × 10^-exponent of the currency' }),
  }),
});

export const HoldRequest = Type.Object(
  { vehicleId: EntityId, from: IsoTime, to: IsoTime },
  { additionalProperties: false },
);
const FlexibleMinutes = Type.Optional(
  Type.Integer({
    minimum: 0,
    maximum: 120,
    description: 'should the trip be displaced, offers may move it this many minutes earlier or later',
  }),
);
export const BookingRequest = Type.Union([
  Type.Object(
    { vehicleId: EntityId, from: IsoTime, to: IsoTime, flexibleMinutes: FlexibleMinutes },
    { additionalProperties: false },
  ),
  Type.Object({ holdId: EntityId, flexibleMinutes: FlexibleMinutes }, { additionalProperties: false }),
]);
export const ExtendRequest = Type.Object(
  { to: IsoTime, force: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
export const CancelRequest = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);
export const BlockReason = literals(BLOCK_REASONS);
export const IdParams = Type.Object({ id: EntityId });
export const BlockParams = Type.Object({ id: EntityId, blockId: EntityId });
export const HostParams = Type.Object({
  hostId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$' }),
});

const Location = Type.Object(
  { lat: Type.Number({ minimum: -90, maximum: 90 }), lng: Type.Number({ minimum: -180, maximum: 180 }) },
  { additionalProperties: false },
);
const specFields = {
  category: literals(CATEGORIES),
  seats: Type.Integer({ minimum: 1, maximum: 60 }),
  make: Type.String({ minLength: 1, maxLength: 64 }),
  model: Type.String({ minLength: 1, maxLength: 64 }),
  transmission: literals(TRANSMISSIONS),
  fuel: literals(FUELS),
  location: Location,
  // Whole minor units of the city's currency are checked by the domain (tolerant of binary
  // fractions), not by multipleOf.
  pricePerHour: Type.Number({
    minimum: 0,
    maximum: 10_000_000,
    description: "in the city's currency (major unit, e.g. 12.5 INR); a whole number of minor units",
  }),
};
const PricePerDay = Type.Number({
  minimum: 0,
  maximum: 10_000_000,
  description: 'the most one 24 h period costs (the daily cap), like pricePerHour; absent: no cap',
});
/** A host lists a vehicle; the owner comes from the token, never from the body. */
export const VehicleCreate = Type.Object(
  {
    city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }),
    ...specFields,
    pricePerDay: Type.Optional(PricePerDay),
  },
  { additionalProperties: false },
);
export const VehiclePatch = Type.Partial(
  Type.Object(
    { ...specFields, pricePerDay: Type.Union([PricePerDay, Type.Null()], { description: 'null removes the cap' }) },
    { additionalProperties: false },
  ),
  { additionalProperties: false, minProperties: 1 },
);
export const BlockCreate = Type.Object(
  {
    reason: literals(BLOCK_REASONS),
    from: Type.Optional(IsoTime),
    to: Type.Optional(IsoTime),
    note: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export const BlockOut = Type.Object(
  {
    id: Type.String(),
    vehicleId: Type.String(),
    reason: Type.String(),
    status: Type.String(),
    from: IsoTime,
    to: Type.Union([IsoTime, Type.Null()]),
    note: Type.Optional(Type.String()),
  },
  { $id: 'Block' },
);
export const EventsQuery = Type.Object(
  {
    city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }),
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}-[0-9]{1,10}$' })),
    // Query strings are strings; bodies are never coerced, so numbers here are spelled as digits.
    limit: Type.Optional(
      Type.String({ pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: '1 to 1000 (default 100)' }),
    ),
  },
  { additionalProperties: false },
);
export const CalendarQuery = Type.Object(
  { from: Type.Optional(IsoTime), to: Type.Optional(IsoTime) },
  { additionalProperties: false },
);

export type HoldRequestT = Static<typeof HoldRequest>;
export type BookingRequestT = Static<typeof BookingRequest>;

function iso(ms: number): string;
function iso(ms: number | undefined): string | undefined;
function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** ISO time to epoch ms; the schema has already checked the format. */
export function toMs(t: string): number {
  return Date.parse(t);
}

export function holdOut(h: HoldEntry, vehicleId: string): Static<typeof Hold> {
  return {
    id: h.id,
    vehicleId,
    customerId: h.customerId,
    status: h.status,
    from: iso(h.from),
    to: iso(h.to),
    expiresAt: iso(h.expiresAt),
    ...(h.bookingId ? { bookingId: h.bookingId } : {}),
    ...(h.price ? { price: priceOut(h.price) } : {}),
  };
}

/** A stored price as the API answers it: the same integers, times as ISO strings. */
export function priceOut(p: Price): Static<typeof PriceSchema> {
  return {
    currency: p.currency,
    total: p.total,
    breakdown: (Array.isArray(p.breakdown) ? p.breakdown : []).map((i) => ({ ...i, from: iso(i.from), to: iso(i.to) })),
    ...(p.adjustment ? { adjustment: p.adjustment } : {}),
  };
}

export function bookingOut(b: BookingEntry, vehicleId: string): Static<typeof Booking> {
  const opt = <K extends string>(k: K, v: string | undefined) => (v === undefined ? {} : { [k]: v });
  return {
    id: b.id,
    vehicleId,
    customerId: b.customerId,
    status: b.status,
    from: iso(b.from),
    to: iso(b.to),
    ...opt('holdId', b.holdId),
    ...opt('startedAt', iso(b.startedAt)),
    ...opt('completedAt', iso(b.completedAt)),
    ...opt('completion', b.completion),
    ...opt('scheduledTo', iso(b.scheduledTo)),
    ...opt('conflictCause', b.conflictCause),
    ...opt('cancelReason', b.cancelReason),
    ...(b.refund ? { refund: b.refund } : {}),
    ...(b.credit ? { credit: b.credit } : {}),
    ...(b.incentive ? { incentive: b.incentive } : {}),
    ...(b.flexMinutes ? { flexibleMinutes: b.flexMinutes } : {}),
    ...(b.reaccommodatedFrom
      ? { reaccommodatedFrom: { ...b.reaccommodatedFrom, at: iso(b.reaccommodatedFrom.at) } }
      : {}),
    ...(b.offers ? { offers: { count: b.offers.count, expiresAt: iso(b.offers.expiresAt) } } : {}),
    ...(b.price ? { price: priceOut(b.price) } : {}),
  };
}

export function calendarOut(e: CalendarEntry): Static<typeof CalendarItem> {
  return {
    kind: e.kind,
    id: e.id,
    status: e.status,
    from: iso(e.from),
    to: iso(e.to) ?? null,
    ...(e.kind === 'block' ? { reason: e.reason } : {}),
  };
}

export function vehicleOut(v: Vehicle): Static<typeof VehicleOut> {
  const { createdAt: _c, updatedAt: _u, ...rest } = v;
  return rest;
}

export function blockOut(b: BlockEntry, vehicleId: string): Static<typeof BlockOut> {
  return {
    id: b.id,
    vehicleId,
    reason: b.reason,
    status: b.status,
    from: iso(b.from),
    to: iso(b.to) ?? null,
    ...(b.note ? { note: b.note } : {}),
  };
}

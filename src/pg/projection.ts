/**
 * Applies city events to PostgreSQL. Events carry the state they left behind (`state`), so each
 * is an upsert of that state: the vehicle row, or the hold/booking/block row with its full
 * document; plus the event log row; for `booking.conflicted`, a conflicts row; for
 * `conflict.offers_ready`, one offers row per offer; and for the outcomes of a conflict
 * (`booking.reaccommodated`, `booking.cancelled` of a conflicted booking), the conflict's
 * resolution and its offers' statuses (docs/conflicts.md, "Tracking").
 */
import type pg from 'pg';
import { MalformedEventError, type StreamEvent } from '../redis/events.ts';
import { survived } from '../log.ts';
import { metrics } from '../metrics.ts';

/** What a batch leaves behind, collapsed: the last state of each vehicle and entry, and the conflict facts. */
interface BatchStates {
  vehicleDocs: Map<string, Record<string, unknown>>;
  lastByVehicle: Map<string, StreamEvent>;
  entries: Map<string, { vehicle: string; city: string; doc: Record<string, unknown> }>;
  conflicts: Record<string, unknown>[];
  offers: Record<string, unknown>[];
  outcomes: ConflictOutcome[];
}

function collect(events: readonly StreamEvent[]): BatchStates {
  const vehicleDocs = new Map<string, Record<string, unknown>>();
  const lastByVehicle = new Map<string, StreamEvent>();
  const entries: BatchStates['entries'] = new Map();
  const conflicts: Record<string, unknown>[] = [];
  const offers: Record<string, unknown>[] = [];
  const outcomes: ConflictOutcome[] = [];
  for (const e of events) {
    lastByVehicle.set(e.vehicle, e);
    collectConflictFacts(e, offers, outcomes);
    if (!e.state) continue;
    if (e.type.startsWith('vehicle.')) {
      vehicleDocs.set(e.vehicle, {
        ...e.state,
        city: e.city,
        id: e.vehicle,
        status: e.status,
        version: e.version,
        updatedAt: e.time,
      });
      continue;
    }
    if (e.state.kind !== 'booking' && e.state.kind !== 'hold' && e.state.kind !== 'block') {
      throw new MalformedEventError(`event ${e.city}/${e.id}: unknown state kind ${String(e.state.kind)}`);
    }
    entries.set(String(e.state.id), { vehicle: e.vehicle, city: e.city, doc: e.state });
    if (e.type === 'booking.conflicted') {
      conflicts.push({
        booking: e.state.id,
        id: e.id,
        city: e.city,
        vehicle: e.vehicle,
        cause: e.data.cause ?? e.state.conflictCause,
        by: e.data.by ?? e.state.conflictedBy ?? null,
        time: e.time,
      });
    }
  }
  return { vehicleDocs, lastByVehicle, entries, conflicts, offers, outcomes };
}

/**
 * Applies a batch of events in order. Each event carries the whole state it left behind, so the
 * batch collapses to the last state of each vehicle and entry, applied set-wise: one statement
 * per table, whatever the batch size.
 */
export async function applyEvents(
  db: pg.ClientBase,
  events: readonly StreamEvent[],
  midway?: () => void,
): Promise<void> {
  if (events.length === 0) return;
  await db.query(
    `INSERT INTO events (city, ms, seq, type, vehicle_id, subject, version, time, status, cmd, data, state,
                         actor, actor_sub, request_id, traceparent)
     SELECT e.city, e.ms, e.seq, e.type, e.vehicle, e.subject, e.version, to_timestamp(e.time::double precision / 1000),
            e.status, e.cmd, e.data, e.state, e.actor, e.actor->>'sub', e."requestId", e.traceparent
     FROM json_to_recordset($1::json) AS e(city text, ms bigint, seq bigint, type text, vehicle text, subject text,
          version bigint, time bigint, status text, cmd text, data json, state json, actor json, "requestId" text,
          traceparent text)
     ON CONFLICT DO NOTHING`,
    [JSON.stringify(events)],
  );
  // A test hook (the sync failpoints): the batch is half written here.
  midway?.();
  const b = collect(events);
  await checkVersionsFollow(db, events);
  await writeVehicles(db, b);
  await writeEntries(db, b.entries);
  await writeConflictFacts(db, b);
}

/**
 * States read from Redis (reconcile --repair, a failover's repair of PostgreSQL), written by the
 * same statements as the sync: the vehicle rows (never over a newer version) and the entries.
 */
export async function projectStates(
  db: pg.ClientBase,
  city: string,
  vehicles: readonly { doc: Record<string, unknown>; entries: readonly object[] }[],
): Promise<void> {
  const b: BatchStates = {
    vehicleDocs: new Map(),
    lastByVehicle: new Map(),
    entries: new Map(),
    conflicts: [],
    offers: [],
    outcomes: [],
  };
  for (const v of vehicles) {
    const vehicleId = String(v.doc.id);
    b.vehicleDocs.set(vehicleId, { ...v.doc, city });
    for (const entry of v.entries) {
      const doc: Record<string, unknown> = { ...entry };
      b.entries.set(String(doc.id), { vehicle: vehicleId, city, doc });
    }
  }
  await writeVehicles(db, b);
  await writeEntries(db, b.entries);
}

async function writeVehicles(db: pg.ClientBase, { vehicleDocs, lastByVehicle }: BatchStates): Promise<void> {
  if (vehicleDocs.size) await upsertVehicles(db, [...vehicleDocs.values()]);
  await db.query(
    `UPDATE vehicles v SET status = x.status, version = x.version, updated_at = to_timestamp(x.time::double precision / 1000)
     FROM jsonb_to_recordset($1::jsonb) AS x(vehicle text, status text, version bigint, time bigint)
     WHERE v.id = x.vehicle AND v.version < x.version`,
    [
      JSON.stringify(
        [...lastByVehicle.values()].map((e) => ({
          vehicle: e.vehicle,
          status: e.status,
          version: e.version,
          time: e.time,
        })),
      ),
    ],
  );
}

async function writeEntries(db: pg.ClientBase, entries: BatchStates['entries']): Promise<void> {
  const rows = (kind: string) =>
    JSON.stringify(
      [...entries.values()]
        .filter((x) => x.doc.kind === kind)
        .map((x) => ({ ...x.doc, vehicleId: x.vehicle, city: x.city })),
    );
  // A batch of bookings only needs no statement for holds or blocks (a round trip each, twice a batch).
  const kinds = new Set([...entries.values()].map((x) => x.doc.kind));
  const period = `tstzrange(to_timestamp(x."from"::double precision / 1000), CASE WHEN x."to" IS NULL THEN NULL ELSE to_timestamp(x."to"::double precision / 1000) END, '[)')`;
  const stamps = `to_timestamp(x."createdAt"::double precision / 1000), to_timestamp(x."updatedAt"::double precision / 1000)`;
  const cols = `id text, city text, "vehicleId" text, status text, "from" bigint, "to" bigint, "createdAt" bigint, "updatedAt" bigint`;
  // The price a hold or booking was fixed at (extended, or replaced by an accepted offer, since).
  const price = `d.doc->'price'->>'currency', (d.doc->'price'->>'total')::bigint`;
  if (kinds.has('booking'))
    await db.query(
      `INSERT INTO bookings (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id, currency, price_total)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x."customerId", ${price}
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, "customerId" text)
     ON CONFLICT (id) DO UPDATE SET vehicle_id = EXCLUDED.vehicle_id, status = EXCLUDED.status, period = EXCLUDED.period,
       doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at, currency = EXCLUDED.currency, price_total = EXCLUDED.price_total`,
      [rows('booking')],
    );
  if (kinds.has('hold'))
    await db.query(
      `INSERT INTO holds (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id, expires_at, currency, price_total)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x."customerId", to_timestamp(x."expiresAt"::double precision / 1000), ${price}
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, "customerId" text, "expiresAt" bigint)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at,
       currency = EXCLUDED.currency, price_total = EXCLUDED.price_total`,
      [rows('hold')],
    );
  if (kinds.has('block'))
    await db.query(
      `INSERT INTO blocks (id, city, vehicle_id, status, period, doc, created_at, updated_at, reason)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x.reason
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, reason text)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, period = EXCLUDED.period, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`,
      [rows('block')],
    );
}

async function writeConflictFacts(db: pg.ClientBase, { conflicts, offers, outcomes }: BatchStates): Promise<void> {
  if (conflicts.length) {
    await db.query(
      `INSERT INTO conflicts (booking_id, stream_id, city, vehicle_id, host_id, cause, caused_by, conflicted_at)
       SELECT x.booking, x.id, x.city, x.vehicle, v.host_id, x.cause, x.by, to_timestamp(x.time::double precision / 1000)
       FROM jsonb_to_recordset($1::jsonb) AS x(booking text, id text, city text, vehicle text, cause text, by text, time bigint)
       LEFT JOIN vehicles v ON v.id = x.vehicle
       ON CONFLICT DO NOTHING`,
      [JSON.stringify(conflicts)],
    );
  }
  // After the conflicts and before the outcomes: a batch may hold a conflict, its offers and
  // their outcome together, and each statement sees what the ones before it wrote.
  if (offers.length) {
    await db.query(
      `INSERT INTO offers (id, booking_id, city, vehicle_id, hold_id, incentive, alternative, shift_minutes, status, created_at, updated_at,
                           currency, price_total, customer_pays)
       SELECT x.id, x.booking, x.city, x.vehicle, x.hold, x.incentive, x.alternative, x.shift, 'open', to_timestamp(x.time::double precision / 1000), to_timestamp(x.time::double precision / 1000),
              x.currency, x."priceTotal", x."customerPays"
       FROM jsonb_to_recordset($1::jsonb) AS x(id text, booking text, city text, vehicle text, hold text, incentive jsonb, alternative text, shift integer, time bigint,
            currency text, "priceTotal" bigint, "customerPays" bigint)
       ON CONFLICT (id) DO NOTHING`,
      [JSON.stringify(offers)],
    );
  }
  if (outcomes.length) {
    const json = JSON.stringify(outcomes);
    // Each outcome closes the latest conflict of its booking at or before it (stream order). The
    // first outcome of a conflict wins, within the batch (DISTINCT ON, earliest first) and across
    // batches (`resolution IS NULL`): a re-delivered outcome changes nothing.
    await db.query(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(booking text, ms bigint, seq bigint, time bigint, resolution text, offer text)
       ), t AS (
         SELECT DISTINCT ON (c.booking_id, c.stream_id) c.booking_id, c.stream_id, x.resolution, x.time
         FROM x CROSS JOIN LATERAL (
           SELECT k.booking_id, k.stream_id FROM conflicts k
           WHERE k.booking_id = x.booking AND (${STREAM_POS('k')}) <= (x.ms, x.seq)
           ORDER BY ${STREAM_POS('k', ' DESC')} LIMIT 1) c
         ORDER BY c.booking_id, c.stream_id, x.ms, x.seq
       )
       UPDATE conflicts c SET resolution = t.resolution, resolved_at = to_timestamp(t.time::double precision / 1000)
       FROM t WHERE c.booking_id = t.booking_id AND c.stream_id = t.stream_id AND c.resolution IS NULL`,
      [json],
    );
    // The accepted offer becomes 'accepted'; every other offer of the booking still open (made
    // before the outcome) 'released'. An offer is settled by the first outcome that reaches it.
    await db.query(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(booking text, ms bigint, seq bigint, time bigint, resolution text, offer text)
       ), t AS (
         SELECT DISTINCT ON (o.id) o.id, CASE WHEN o.id = x.offer THEN 'accepted' ELSE 'released' END AS status, x.time
         FROM x JOIN offers o ON o.booking_id = x.booking AND (o.id = x.offer OR o.status = 'open')
           AND o.created_at <= to_timestamp(x.time::double precision / 1000)
         ORDER BY o.id, x.ms, x.seq
       )
       UPDATE offers o SET status = t.status, updated_at = to_timestamp(t.time::double precision / 1000)
       FROM t WHERE o.id = t.id AND o.status IS DISTINCT FROM t.status`,
      [json],
    );
  }
}

/**
 * The paired check of the projection: each vehicle's versions in the batch follow the version
 * PostgreSQL holds (previous + 1, then one more per command). A gap means an event was lost or
 * came twice — expected only around a failover's restore — and is counted and logged, not refused.
 */
async function checkVersionsFollow(db: pg.ClientBase, events: readonly StreamEvent[]): Promise<void> {
  const seen = new Map<string, number[]>();
  for (const e of events) {
    if (e.vehicle === '-') continue; // system events
    const list = seen.get(e.vehicle) ?? [];
    if (list.at(-1) !== e.version) list.push(e.version);
    seen.set(e.vehicle, list);
  }
  if (seen.size === 0) return;
  const { rows } = await db.query<{ id: string; version: string }>(
    'SELECT id, version FROM vehicles WHERE id = ANY($1)',
    [[...seen.keys()]],
  );
  const before = new Map(rows.map((r) => [r.id, Number(r.version)]));
  for (const [vehicle, versions] of seen) {
    const stored = before.get(vehicle);
    let expected = stored !== undefined ? stored + 1 : (versions[0] ?? 0);
    for (const v of versions) {
      // Versions at or below PostgreSQL's are a re-delivery the cursor let through: harmless.
      if (v < expected && stored !== undefined) continue;
      if (v !== expected) {
        metrics.versionGaps.inc({ city: events[0]?.city ?? '' });
        survived('projection.version-gap', new Error(`vehicle ${vehicle}: version ${v} after ${expected - 1}`));
      }
      expected = v + 1;
    }
  }
}

/** How a conflict ended, as the conflicts table records it. */
export type ConflictResolution = 'accepted' | 'declined' | 'lapsed' | 'no_alternative' | 'cancelled';

interface ConflictOutcome {
  booking: string;
  ms: number;
  seq: number;
  time: number;
  resolution: ConflictResolution;
  offer: string | null;
}

/** `booking.cancelled` reasons that close a conflict, and the resolution each records. */
export const CANCEL_RESOLUTIONS: Readonly<Record<string, ConflictResolution>> = {
  offers_declined: 'declined',
  offers_lapsed: 'lapsed',
  NO_ALTERNATIVE: 'no_alternative',
};

/**
 * The resolution a conflict outcome event records, or undefined when the event is none:
 * `booking.reaccommodated` → accepted; `booking.cancelled` by the offers' flow → declined, lapsed
 * or no_alternative; any other cancellation of a booking that was `conflicted` (the customer or
 * ops cancelling it while its offers were open) → cancelled.
 */
export function conflictResolutionOf(e: Pick<StreamEvent, 'type' | 'data'>): ConflictResolution | undefined {
  if (e.type === 'booking.reaccommodated') return 'accepted';
  if (e.type !== 'booking.cancelled') return undefined;
  const reason = typeof e.data.reason === 'string' ? e.data.reason : '';
  if (Object.hasOwn(CANCEL_RESOLUTIONS, reason)) return CANCEL_RESOLUTIONS[reason];
  return e.data.previousStatus === 'conflicted' ? 'cancelled' : undefined;
}

/** A conflicts row's stream position, (ms, seq), for ordering in SQL. */
const STREAM_POS = (t: string, dir = '') =>
  `split_part(${t}.stream_id, '-', 1)::bigint${dir}, split_part(${t}.stream_id, '-', 2)::bigint${dir}`;

function collectConflictFacts(e: StreamEvent, offers: Record<string, unknown>[], outcomes: ConflictOutcome[]): void {
  const booking = e.subject || (e.state ? String(e.state.id) : '');
  if (e.type === 'conflict.offers_ready') {
    const list = e.data.offers;
    // cjson writes an empty array as {}: no offers then (the script never emits that, but be lenient).
    if (
      list !== undefined &&
      !Array.isArray(list) &&
      !(typeof list === 'object' && list !== null && Object.keys(list).length === 0)
    ) {
      throw new MalformedEventError(`event ${e.city}/${e.id}: data.offers is not a list`);
    }
    for (const o of (Array.isArray(list) ? list : []) as Record<string, unknown>[]) {
      offers.push({
        id: o.id,
        booking,
        city: e.city,
        vehicle: o.vehicleId,
        hold: o.holdId ?? null,
        incentive: o.incentive ?? null,
        alternative: o.kind ?? null,
        shift: o.shiftMinutes ?? null,
        time: e.time,
        ...offerPrice(o),
      });
    }
    return;
  }
  const resolution = conflictResolutionOf(e);
  if (!resolution) return;
  const offer = resolution === 'accepted' && typeof e.data.offerId === 'string' ? e.data.offerId : null;
  outcomes.push({ booking, ms: e.ms, seq: e.seq, time: e.time, resolution, offer });
}

/**
 * The vehicle rows from vehicle documents (the `state` of vehicle events, or Redis' hashes), one
 * statement for the hosts and one for the vehicles, never over a newer version. One document per
 * vehicle (the batch keeps the last): a statement may not update a row twice.
 */
async function upsertVehicles(db: pg.ClientBase, docs: readonly Record<string, unknown>[]): Promise<void> {
  const rows = JSON.stringify(
    docs.map((s) => ({
      id: s.id,
      city: s.city,
      hostId: s.hostId,
      category: s.category,
      seats: Number(s.seats),
      transmission: s.transmission,
      fuel: s.fuel,
      make: s.make,
      model: s.model,
      lat: Number(s.lat),
      lng: Number(s.lng),
      pricePerHour: Number(s.pricePerHour),
      // '' (or absent) on a vehicle without a daily cap.
      pricePerDay:
        s.pricePerDay === undefined || s.pricePerDay === null || s.pricePerDay === '' ? null : Number(s.pricePerDay),
      listing: s.listing,
      status: s.status,
      version: Number(s.version),
      createdAt: Number(s.createdAt),
      updatedAt: Number(s.updatedAt ?? s.createdAt),
    })),
  );
  const x = `jsonb_to_recordset($1::jsonb) AS x(id text, city text, "hostId" text, category text, seats int, transmission text,
       fuel text, make text, model text, lat double precision, lng double precision, "pricePerHour" numeric, "pricePerDay" numeric, listing text,
       status text, version bigint, "createdAt" bigint, "updatedAt" bigint)`;
  await db.query(`INSERT INTO hosts (id) SELECT DISTINCT x."hostId" FROM ${x} ON CONFLICT DO NOTHING`, [rows]);
  await db.query(
    `INSERT INTO vehicles (id, city, host_id, category, seats, transmission, fuel, make, model, lat, lng, price_per_hour, price_per_day, listing, status, version, created_at, updated_at)
     SELECT x.id, x.city, x."hostId", x.category, x.seats, x.transmission, x.fuel, x.make, x.model, x.lat, x.lng, x."pricePerHour", x."pricePerDay",
            x.listing, x.status, x.version, to_timestamp(x."createdAt"::double precision / 1000), to_timestamp(x."updatedAt"::double precision / 1000)
     FROM ${x}
     ON CONFLICT (id) DO UPDATE SET category = EXCLUDED.category, seats = EXCLUDED.seats, transmission = EXCLUDED.transmission,
       fuel = EXCLUDED.fuel, make = EXCLUDED.make, model = EXCLUDED.model, lat = EXCLUDED.lat, lng = EXCLUDED.lng,
       price_per_hour = EXCLUDED.price_per_hour, price_per_day = EXCLUDED.price_per_day, listing = EXCLUDED.listing, status = EXCLUDED.status,
       version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
     WHERE vehicles.version <= EXCLUDED.version`,
    [rows],
  );
}

/** An offer's prices as the offers row keeps them (null on offers made before prices). */
function offerPrice(o: Record<string, unknown>): { currency: unknown; priceTotal: unknown; customerPays: unknown } {
  const field = (x: unknown, k: string): unknown =>
    typeof x === 'object' && x !== null && Object.hasOwn(x, k) ? Reflect.get(x, k) : null;
  return {
    currency: field(o.price, 'currency'),
    priceTotal: field(o.price, 'total'),
    customerPays: field(o.customerPays, 'total'),
  };
}

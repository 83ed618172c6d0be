/**
 * Applies city events to PostgreSQL. Events carry the state they left behind (`state`), so each
 * is an upsert of that state: the vehicle row, or the hold/booking/block row with its full
 * document; plus the event log row and, for `booking.conflicted`, a conflicts row.
 */
import type pg from 'pg';

export interface StreamEvent {
  id: string;
  ms: number;
  seq: number;
  city: string;
  type: string;
  vehicle: string;
  subject: string;
  version: number;
  time: number;
  status: string;
  cmd: string;
  data: Record<string, unknown>;
  state: Record<string, unknown> | null;
}

/** A stream entry that cannot be understood: poison, never retried as infrastructure. */
export class MalformedEventError extends Error {
  readonly sqlstate = '22000';
}

export function parseStreamId(id: string): [number, number] {
  const [ms, seq] = id.split('-');
  return [Number(ms), Number(seq ?? 0)];
}

export function compareStreamIds(a: string, b: string): number {
  const [am, as] = parseStreamId(a);
  const [bm, bs] = parseStreamId(b);
  return am - bm || as - bs;
}

export function parseStreamEntry(city: string, id: string, fields: string[]): StreamEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const [ms, seq] = parseStreamId(id);
  try {
    if (!f.type || !f.vehicle) throw new Error('type and vehicle are required');
    return {
      id, ms, seq, city: f.city ?? city, type: f.type, vehicle: f.vehicle, subject: f.subject ?? '',
      version: Number(f.version ?? 0), time: Number(f.time ?? ms), status: f.status ?? '', cmd: f.cmd ?? '',
      data: JSON.parse(f.data ?? '{}') as Record<string, unknown>,
      state: f.state ? (JSON.parse(f.state) as Record<string, unknown>) : null,
    };
  } catch (err) {
    throw new MalformedEventError(`event ${city}/${id}: ${(err as Error).message}`);
  }
}

const ts = 'to_timestamp($N::double precision / 1000)';
const at = (n: number) => ts.replace('$N', `$${n}`);
const range = (from: number, to: number) => `tstzrange(${at(from)}, CASE WHEN $${to}::bigint IS NULL THEN NULL ELSE ${at(to)} END, '[)')`;

/**
 * Applies a batch of events in order. Each event carries the whole state it left behind, so the
 * batch collapses to the last state of each vehicle and entry, applied set-wise: one statement
 * per table, whatever the batch size.
 */
export async function applyEvents(db: pg.ClientBase, events: readonly StreamEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db.query(
    `INSERT INTO events (city, stream_id, ms, seq, type, vehicle_id, subject, version, time, status, cmd, data, state)
     SELECT e.city, e.id, e.ms, e.seq, e.type, e.vehicle, e.subject, e.version, to_timestamp(e.time::double precision / 1000),
            e.status, e.cmd, e.data, e.state
     FROM jsonb_to_recordset($1::jsonb) AS e(city text, id text, ms bigint, seq bigint, type text, vehicle text, subject text,
          version bigint, time bigint, status text, cmd text, data jsonb, state jsonb)
     ON CONFLICT DO NOTHING`, [JSON.stringify(events)]);

  const vehicleDocs = new Map<string, Record<string, unknown>>();
  const lastByVehicle = new Map<string, StreamEvent>();
  const entries = new Map<string, { vehicle: string; city: string; doc: Record<string, unknown> }>();
  const conflicts: Record<string, unknown>[] = [];
  for (const e of events) {
    lastByVehicle.set(e.vehicle, e);
    if (!e.state) continue;
    if (e.type.startsWith('vehicle.')) {
      vehicleDocs.set(e.vehicle, { ...e.state, city: e.city, id: e.vehicle, status: e.status, version: e.version, updatedAt: e.time });
      continue;
    }
    if (e.state.kind !== 'booking' && e.state.kind !== 'hold' && e.state.kind !== 'block') {
      throw new MalformedEventError(`event ${e.city}/${e.id}: unknown state kind ${String(e.state.kind)}`);
    }
    entries.set(String(e.state.id), { vehicle: e.vehicle, city: e.city, doc: e.state });
    if (e.type === 'booking.conflicted') {
      conflicts.push({ booking: e.state.id, id: e.id, city: e.city, vehicle: e.vehicle, cause: e.data.cause ?? e.state.conflictCause, by: e.data.by ?? e.state.conflictedBy ?? null, time: e.time });
    }
  }
  for (const doc of vehicleDocs.values()) await upsertVehicle(db, doc);
  await db.query(
    `UPDATE vehicles v SET status = x.status, version = x.version, updated_at = to_timestamp(x.time::double precision / 1000)
     FROM jsonb_to_recordset($1::jsonb) AS x(vehicle text, status text, version bigint, time bigint)
     WHERE v.id = x.vehicle AND v.version < x.version`,
    [JSON.stringify([...lastByVehicle.values()].map((e) => ({ vehicle: e.vehicle, status: e.status, version: e.version, time: e.time })))]);
  const rows = (kind: string) => JSON.stringify([...entries.values()].filter((x) => x.doc.kind === kind).map((x) => ({ ...x.doc, vehicleId: x.vehicle, city: x.city })));
  const period = `tstzrange(to_timestamp(x."from"::double precision / 1000), CASE WHEN x."to" IS NULL THEN NULL ELSE to_timestamp(x."to"::double precision / 1000) END, '[)')`;
  const stamps = `to_timestamp(x."createdAt"::double precision / 1000), to_timestamp(x."updatedAt"::double precision / 1000)`;
  const cols = `id text, city text, "vehicleId" text, status text, "from" bigint, "to" bigint, "createdAt" bigint, "updatedAt" bigint`;
  await db.query(
    `INSERT INTO bookings (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x."customerId"
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, "customerId" text)
     ON CONFLICT (id) DO UPDATE SET vehicle_id = EXCLUDED.vehicle_id, status = EXCLUDED.status, period = EXCLUDED.period,
       doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`, [rows('booking')]);
  await db.query(
    `INSERT INTO holds (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id, expires_at)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x."customerId", to_timestamp(x."expiresAt"::double precision / 1000)
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, "customerId" text, "expiresAt" bigint)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`, [rows('hold')]);
  await db.query(
    `INSERT INTO blocks (id, city, vehicle_id, status, period, doc, created_at, updated_at, reason)
     SELECT x.id, x.city, x."vehicleId", x.status, ${period}, d.doc - 'vehicleId' - 'city', ${stamps}, x.reason
     FROM jsonb_array_elements($1::jsonb) AS d(doc), jsonb_to_record(d.doc) AS x(${cols}, reason text)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, period = EXCLUDED.period, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`, [rows('block')]);
  if (conflicts.length) {
    await db.query(
      `INSERT INTO conflicts (booking_id, stream_id, city, vehicle_id, host_id, cause, caused_by, conflicted_at)
       SELECT x.booking, x.id, x.city, x.vehicle, v.host_id, x.cause, x.by, to_timestamp(x.time::double precision / 1000)
       FROM jsonb_to_recordset($1::jsonb) AS x(booking text, id text, city text, vehicle text, cause text, by text, time bigint)
       LEFT JOIN vehicles v ON v.id = x.vehicle
       ON CONFLICT DO NOTHING`, [JSON.stringify(conflicts)]);
  }
}

/** The vehicle row from a vehicle document (the `state` of vehicle events, or Redis' hash). */
export async function upsertVehicle(db: pg.ClientBase, s: Record<string, unknown>): Promise<void> {
  await db.query('INSERT INTO hosts (id) VALUES ($1) ON CONFLICT DO NOTHING', [s.hostId]);
  await db.query(
    `INSERT INTO vehicles (id, city, host_id, category, seats, transmission, fuel, make, model, lat, lng, price_per_hour, listing, status, version, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, ${at(16)}, ${at(17)})
     ON CONFLICT (id) DO UPDATE SET category = EXCLUDED.category, seats = EXCLUDED.seats, transmission = EXCLUDED.transmission,
       fuel = EXCLUDED.fuel, make = EXCLUDED.make, model = EXCLUDED.model, lat = EXCLUDED.lat, lng = EXCLUDED.lng,
       price_per_hour = EXCLUDED.price_per_hour, listing = EXCLUDED.listing, status = EXCLUDED.status,
       version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
     WHERE vehicles.version <= EXCLUDED.version`,
    [s.id, s.city, s.hostId, s.category, Number(s.seats), s.transmission, s.fuel, s.make, s.model, Number(s.lat), Number(s.lng),
      Number(s.pricePerHour), s.listing, s.status, Number(s.version), Number(s.createdAt), Number(s.updatedAt ?? s.createdAt)]);
}

/** The hold, booking or block row from its document. */
export async function upsertEntry(db: pg.ClientBase, city: string, vehicleId: string, s: Record<string, unknown>): Promise<void> {
  const kind = s.kind;
  const now = Date.now();
  const common = [s.id, city, vehicleId, s.status, Number(s.from), s.to === undefined || s.to === null ? null : Number(s.to), s, Number(s.createdAt ?? now), Number(s.updatedAt ?? now)];
  if (kind === 'booking') {
    await db.query(
      `INSERT INTO bookings (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id)
       VALUES ($1, $2, $3, $4, ${range(5, 6)}, $7, ${at(8)}, ${at(9)}, $10)
       ON CONFLICT (id) DO UPDATE SET vehicle_id = EXCLUDED.vehicle_id, status = EXCLUDED.status, period = EXCLUDED.period,
         doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`,
      [...common, s.customerId]);
  } else if (kind === 'hold') {
    await db.query(
      `INSERT INTO holds (id, city, vehicle_id, status, period, doc, created_at, updated_at, customer_id, expires_at)
       VALUES ($1, $2, $3, $4, ${range(5, 6)}, $7, ${at(8)}, ${at(9)}, $10, ${at(11)})
       ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`,
      [...common, s.customerId, Number(s.expiresAt)]);
  } else if (kind === 'block') {
    await db.query(
      `INSERT INTO blocks (id, city, vehicle_id, status, period, doc, created_at, updated_at, reason)
       VALUES ($1, $2, $3, $4, ${range(5, 6)}, $7, ${at(8)}, ${at(9)}, $10)
       ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, period = EXCLUDED.period, doc = EXCLUDED.doc, updated_at = EXCLUDED.updated_at`,
      [...common, s.reason]);
  } else {
    throw new MalformedEventError(`entry ${String(s.id)} of ${city}: unknown kind ${String(kind)}`);
  }
}

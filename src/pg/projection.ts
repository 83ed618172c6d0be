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

export async function applyEvent(db: pg.ClientBase, e: StreamEvent): Promise<void> {
  await db.query(
    `INSERT INTO events (city, stream_id, ms, seq, type, vehicle_id, subject, version, time, status, cmd, data, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, ${at(9)}, $10, $11, $12, $13) ON CONFLICT DO NOTHING`,
    [e.city, e.id, e.ms, e.seq, e.type, e.vehicle, e.subject, e.version, e.time, e.status, e.cmd, e.data, e.state]);

  const s = e.state;
  if (s && e.type.startsWith('vehicle.')) {
    await upsertVehicle(db, { ...s, city: e.city, id: e.vehicle, status: e.status, version: e.version, updatedAt: e.time });
    return;
  }
  // Every change carries the vehicle's status and version after it.
  await db.query(`UPDATE vehicles SET status = $2, version = $3, updated_at = ${at(4)} WHERE id = $1 AND version < $3`,
    [e.vehicle, e.status, e.version, e.time]);
  if (!s) return;
  await upsertEntry(db, e.city, e.vehicle, s);
  if (e.type === 'booking.conflicted') {
    await db.query(
      `INSERT INTO conflicts (booking_id, stream_id, city, vehicle_id, host_id, cause, caused_by, conflicted_at)
       VALUES ($1, $2, $3, $4, (SELECT host_id FROM vehicles WHERE id = $4), $5, $6, ${at(7)}) ON CONFLICT DO NOTHING`,
      [s.id, e.id, e.city, e.vehicle, e.data.cause ?? s.conflictCause, e.data.by ?? s.conflictedBy ?? null, e.time]);
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

/** The durable event log (audit, replay): what the city streams no longer hold. */
import type pg from 'pg';
import { parseStreamEntry, type StreamEvent } from '../redis/events.ts';

/** The city's events after `after` (exclusive, a stream id), at most `limit`, in stream order. */
export async function loggedEventsAfter(
  pool: pg.Pool,
  city: string,
  after: string,
  limit: number,
): Promise<StreamEvent[]> {
  const [ms, seq] = after.split('-').map(Number);
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT ${EVENT_COLUMNS} FROM events WHERE city = $1 AND (ms, seq) > ($2::bigint, $3::bigint) ORDER BY ms, seq LIMIT $4`,
    [city, ms, seq, limit],
  );
  return rows.map((r) => eventOfRow(city, r));
}

const EVENT_COLUMNS = `city, ms || '-' || seq AS stream_id, type, vehicle_id, subject, version,
  (extract(epoch from time) * 1000)::bigint AS time, status, cmd, data, state, actor, request_id, traceparent`;

/** A row read back as a stream entry: one parser for both sources. */
function eventOfRow(city: string, r: Record<string, unknown>): StreamEvent {
  return parseStreamEntry(city, String(r.stream_id), [
    'type',
    String(r.type),
    'vehicle',
    String(r.vehicle_id),
    'subject',
    String(r.subject),
    'version',
    String(r.version),
    'time',
    String(r.time),
    'status',
    String(r.status),
    'cmd',
    String(r.cmd),
    'data',
    JSON.stringify(r.data),
    ...(r.state ? ['state', JSON.stringify(r.state)] : []),
    ...(r.actor ? ['actor', JSON.stringify(r.actor)] : []),
    ...(r.request_id ? ['req', String(r.request_id)] : []),
    ...(r.traceparent ? ['tp', String(r.traceparent)] : []),
  ]);
}

export interface AuditFilter {
  /** Only these cities (a staff member limited to some). */
  cities?: readonly string[];
  /** The actor's subject (`sub`), e.g. a customer's or `system:sweeper`. */
  actor?: string;
  /** The entry, vehicle or booking the event is about (its subject or its vehicle). */
  subject?: string;
  type?: string;
  from?: number;
  to?: number;
}

/** Where an audit page ended: the last event's (ms, seq, city). */
export interface AuditCursor {
  ms: number;
  seq: number;
  city: string;
}

/** The events that match, newest first, after `cursor`; at most `limit`. */
export async function auditTrail(
  pool: pg.Pool,
  filter: AuditFilter,
  cursor: AuditCursor | undefined,
  limit: number,
): Promise<StreamEvent[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (filter.cities) where.push(`city = ANY(${p(filter.cities)}::text[])`);
  if (filter.actor) where.push(`actor_sub = ${p(filter.actor)}`);
  if (filter.subject) {
    const s = p(filter.subject);
    where.push(`(subject = ${s} OR vehicle_id = ${s})`);
  }
  if (filter.type) where.push(`type = ${p(filter.type)}`);
  if (filter.from !== undefined) where.push(`time >= to_timestamp(${p(filter.from / 1000)})`);
  if (filter.to !== undefined) where.push(`time < to_timestamp(${p(filter.to / 1000)})`);
  if (cursor) where.push(`(ms, seq, city) < (${p(cursor.ms)}::bigint, ${p(cursor.seq)}::bigint, ${p(cursor.city)})`);
  const { rows } = await pool.query<Record<string, unknown>>(
    `SELECT ${EVENT_COLUMNS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY ms DESC, seq DESC, city DESC LIMIT ${p(limit)}`,
    params,
  );
  return rows.map((r) => eventOfRow(String(r.city), r));
}

/**
 * A city stream's entries (the outbox, architecture.md §2) as every consumer reads them: the
 * sync, the read models, the WebSocket hubs, the resolver, the webhooks, the event feed. Stream
 * ids are `<ms>-<seq>` and order the events of a city. Pure: src/redis/events.ts reads them.
 */
import { messageOf } from './errors.ts';

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
  /** Who the change was made for (absent on events written before the audit trail). */
  actor?: EventActor;
  /** The request that made it (`x-request-id`), when it came through the API. */
  requestId?: string;
  /** The W3C trace context it was made in, with tracing on. */
  traceparent?: string;
}

/** The one who acted: a signed-in caller, or a named part of the service (`system:sweeper` ...). */
export interface EventActor {
  sub: string;
  role: string;
  hostId?: string;
  customerId?: string;
  /** The token's id, when it has one. */
  jti?: string;
}

function actorOf(raw: string): EventActor {
  const a = JSON.parse(raw) as Record<string, unknown>;
  if (typeof a.sub !== 'string' || typeof a.role !== 'string') throw new Error('actor needs sub and role');
  // Assigned one by one, not spread: this runs for every event in every consumer.
  const actor: EventActor = { sub: a.sub, role: a.role };
  if (typeof a.hostId === 'string') actor.hostId = a.hostId;
  if (typeof a.customerId === 'string') actor.customerId = a.customerId;
  if (typeof a.jti === 'string') actor.jti = a.jti;
  return actor;
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

/** Events whose `data` a reader of states still needs (a restore's entries, a verification's report). */
const DATA_FOR_STATE = /^(vehicle\.restored|system\.failover_)/;

/**
 * A stream entry as an event. `stateOnly`: for a reader that keeps states (the search read model
 * with no one to tell): `data` is parsed only where a state reader needs it (else `{}`), the actor not at all.
 */
export function parseStreamEntry(city: string, id: string, fields: string[], stateOnly = false): StreamEvent {
  const f = fieldMap(fields);
  const [ms, seq] = parseStreamId(id);
  try {
    if (!f.type || !f.vehicle) throw new Error('type and vehicle are required');
    const event: StreamEvent = {
      id,
      ms,
      seq,
      city: f.city ?? city,
      type: f.type,
      vehicle: f.vehicle,
      subject: f.subject ?? '',
      version: Number(f.version ?? 0),
      time: Number(f.time ?? ms),
      status: f.status ?? '',
      cmd: f.cmd ?? '',
      data: stateOnly && !DATA_FOR_STATE.test(f.type) ? {} : (JSON.parse(f.data ?? '{}') as Record<string, unknown>),
      state: f.state ? (JSON.parse(f.state) as Record<string, unknown>) : null,
    };
    if (stateOnly) return event;
    if (f.actor) event.actor = actorOf(f.actor);
    if (f.req) event.requestId = f.req;
    if (f.tp) event.traceparent = f.tp;
    return event;
  } catch (err) {
    throw new MalformedEventError(`event ${city}/${id}: ${messageOf(err)}`);
  }
}

/** A stream entry's flat `[field, value, ...]` list as a record. */
export function fieldMap(fields: readonly string[]): Record<string, string> {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (name !== undefined && value !== undefined) f[name] = value;
  }
  return f;
}

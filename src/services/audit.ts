/**
 * The audit trail: who did what, when, in which request (docs/operations.md). Every event carries
 * its actor: the API passes the caller's with each request's commands (`CommandOptions.context`),
 * each worker sets its own (`system:*`) as the call context of src/redis/call-context.ts,
 * re-exported here for the layers above services.
 * Answered from PostgreSQL, newest first.
 */
import type pg from 'pg';
import { decodeCursor, encodeCursor } from '../domain/cursor.ts';
import { DomainError } from '../domain/errors.ts';
import type { StreamEvent } from '../domain/events.ts';
import { auditTrail, type AuditFilter } from '../pg/events.ts';

export {
  asRequest,
  callContext,
  systemActor,
  withCallContext,
  type CallContext,
  type EventActor,
} from '../redis/call-context.ts';
export type { AuditFilter } from '../pg/events.ts';

export class AuditTrail {
  constructor(private readonly pool: pg.Pool) {}

  /** One page of the events that match, newest first; `next` continues after its last. */
  async page(
    filter: AuditFilter,
    cursor: string | undefined,
    limit: number,
  ): Promise<{ events: StreamEvent[]; next: string | null }> {
    if (filter.from !== undefined && filter.to !== undefined && filter.from >= filter.to)
      throw new DomainError('INVALID_INTERVAL', 'from must be before to', { problem: 'order', field: 'from' });
    const after = cursor === undefined ? undefined : auditCursor(cursor);
    const rows = await auditTrail(this.pool, filter, after, limit + 1);
    const events = rows.slice(0, limit);
    const last = events.at(-1);
    return {
      events,
      next: rows.length > limit && last ? encodeCursor({ key: last.ms, id: `${last.seq}/${last.city}` }) : null,
    };
  }
}

function auditCursor(cursor: string): { ms: number; seq: number; city: string } {
  const k = decodeCursor(cursor);
  const [seq, city] = k.id.split('/');
  if (seq === undefined || city === undefined || !/^\d+$/.test(seq))
    throw new DomainError('VALIDATION', 'cursor is not one this API issued', { field: 'cursor' });
  return { ms: k.key, seq: Number(seq), city };
}

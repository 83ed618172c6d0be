/**
 * DR_ACK=remote (docs/regions.md): a write is acknowledged only once its events are committed in
 * PostgreSQL and applied on the cross-region DR standby. The sync commits each batch with
 * `synchronous_commit = remote_apply` (the DR standby named in `synchronous_standby_names`), and
 * PostgreSQL makes a commit visible to other sessions only after that wait; so a city's cursor,
 * read on the primary, at or past an event means the DR standby has applied it. Each process polls
 * the cursors of the cities it has writes waiting in, one query for all of them.
 */
import type pg from 'pg';
import { DomainError } from '../domain/errors.ts';
import { metrics } from '../metrics.ts';
import { readCursors } from '../pg/cursors.ts';
import { compareStreamIds } from '../redis/events.ts';
import { setTimeout as sleep } from 'node:timers/promises';

interface Waiter {
  id: string;
  deadline: number;
  started: number;
  resolve(): void;
  reject(err: Error): void;
}

export class RemoteAcks {
  private readonly waiting = new Map<string, Waiter[]>();
  private polling = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly timeoutMs: number,
    private readonly pollMs = 5,
  ) {}

  /** Resolves once every one of `eventIds` (stream ids of `city`) is applied on the DR standby. */
  waitFor(city: string, eventIds: readonly string[]): Promise<void> {
    const last = [...eventIds].sort(compareStreamIds).at(-1);
    if (!last) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const now = Date.now();
      const list = this.waiting.get(city) ?? [];
      list.push({ id: last, deadline: now + this.timeoutMs, started: now, resolve, reject });
      this.waiting.set(city, list);
      if (!this.polling) void this.poll();
    });
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      while (this.waiting.size > 0) {
        let cursors: Map<string, string> | undefined;
        try {
          cursors = await readCursors(this.pool, [...this.waiting.keys()]);
        } catch {
          cursors = undefined; // PostgreSQL away: the waits run into their deadline
        }
        this.settle(cursors ?? new Map());
        if (this.waiting.size > 0) await sleep(this.pollMs);
      }
    } finally {
      this.polling = false;
    }
  }

  private settle(cursors: Map<string, string>): void {
    const now = Date.now();
    for (const [city, list] of this.waiting) {
      const cursor = cursors.get(city);
      const left = list.filter((w) => {
        if (cursor && compareStreamIds(w.id, cursor) <= 0) {
          metrics.remoteAckWait.observe((now - w.started) / 1000);
          w.resolve();
          return false;
        }
        if (now >= w.deadline) {
          metrics.remoteAckTimeouts.inc();
          w.reject(
            new DomainError(
              'UNAVAILABLE',
              `not confirmed by the DR standby within ${this.timeoutMs} ms (DR_ACK=remote); retry with the same Idempotency-Key`,
              { outcome: 'unknown' },
            ),
          );
          return false;
        }
        return true;
      });
      if (left.length) this.waiting.set(city, left);
      else this.waiting.delete(city);
    }
  }
}

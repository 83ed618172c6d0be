/**
 * A connection kept checked out of a pool for a long time, for what lives in a session (an
 * advisory lock). Its server can die at any moment (a crash, a promotion): that is an event here,
 * `lost`, never an unhandled 'error' (node-postgres: a checked-out client must handle 'error').
 * The holder stops relying on the session as soon as it is lost — a session-level lock died with
 * it, and another process may hold it now — releases it, and takes a new one on whatever host the
 * pool reaches next.
 */
import type pg from 'pg';
import { messageOf } from '../domain/errors.ts';

export class HeldSession {
  private readonly lostWith = new AbortController();

  private constructor(readonly client: pg.PoolClient) {
    const lose = (why: unknown) => {
      if (!this.lostWith.signal.aborted) this.lostWith.abort(new Error(`PostgreSQL session lost: ${messageOf(why)}`));
    };
    client.on('error', lose);
    client.once('end', () => lose('connection ended'));
  }

  static async open(pool: pg.Pool): Promise<HeldSession> {
    return new HeldSession(await pool.connect());
  }

  /** True once the connection died: whatever the session held (locks) is gone. */
  get lost(): boolean {
    return this.lostWith.signal.aborted;
  }

  /** Aborted when the connection dies. */
  get signal(): AbortSignal {
    return this.lostWith.signal;
  }

  /** `pg_try_advisory_lock`: true when this session now holds the lock. */
  async tryAdvisoryLock(key: number): Promise<boolean> {
    const { rows } = await this.client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
    return rows[0]?.ok === true;
  }

  async advisoryUnlock(key: number): Promise<void> {
    if (!this.lost) await this.client.query('SELECT pg_advisory_unlock($1)', [key]);
  }

  /** Back to the pool, or dropped from it when the connection is lost. The listeners stay: a dead client may speak again. */
  release(): void {
    this.client.release(this.lost ? (this.signal.reason as Error) : undefined);
  }
}

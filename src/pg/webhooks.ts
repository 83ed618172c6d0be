/** Webhook subscriptions, their deliveries and attempts (migration 002; docs/webhooks.md). */
import type pg from 'pg';
import type { Subscription } from '../domain/webhooks.ts';

export interface StoredSubscription extends Subscription {
  secret: string;
  previousSecret?: string;
  previousSecretUntil?: number;
  disabledReason?: string;
  disabledAt?: number;
  createdAt: number;
}

interface SubscriptionRow {
  id: string;
  owner_id: string;
  owner_role: Subscription['ownerRole'];
  host_id: string | null;
  url: string;
  types: string[] | null;
  cities: string[] | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_until: Date | null;
  status: Subscription['status'];
  disabled_reason: string | null;
  disabled_at: Date | null;
  created_at: Date;
}

function fromRow(r: SubscriptionRow): StoredSubscription {
  return {
    id: r.id,
    ownerId: r.owner_id,
    ownerRole: r.owner_role,
    url: r.url,
    status: r.status,
    secret: r.secret,
    createdAt: r.created_at.getTime(),
    ...(r.host_id !== null ? { hostId: r.host_id } : {}),
    ...(r.types !== null ? { types: r.types } : {}),
    ...(r.cities !== null ? { cities: r.cities } : {}),
    ...(r.previous_secret !== null ? { previousSecret: r.previous_secret } : {}),
    ...(r.previous_secret_until !== null ? { previousSecretUntil: r.previous_secret_until.getTime() } : {}),
    ...(r.disabled_reason !== null ? { disabledReason: r.disabled_reason } : {}),
    ...(r.disabled_at !== null ? { disabledAt: r.disabled_at.getTime() } : {}),
  };
}

export async function insertSubscription(pool: pg.Pool, s: Omit<StoredSubscription, 'createdAt'>): Promise<void> {
  await pool.query(
    `INSERT INTO webhook_subscriptions (id, owner_id, owner_role, host_id, url, types, cities, secret, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [s.id, s.ownerId, s.ownerRole, s.hostId ?? null, s.url, s.types ?? null, s.cities ?? null, s.secret, s.status],
  );
}

/** Subscriptions of one owner, or every one (`ownerId` undefined). */
export async function listSubscriptions(pool: pg.Pool, ownerId?: string): Promise<StoredSubscription[]> {
  const { rows } = await pool.query<SubscriptionRow>(
    'SELECT * FROM webhook_subscriptions WHERE ($1::text IS NULL OR owner_id = $1) ORDER BY created_at, id',
    [ownerId ?? null],
  );
  return rows.map(fromRow);
}

export async function getSubscription(pool: pg.Pool, id: string): Promise<StoredSubscription | undefined> {
  const { rows } = await pool.query<SubscriptionRow>('SELECT * FROM webhook_subscriptions WHERE id = $1', [id]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function activeSubscriptions(pool: pg.Pool): Promise<StoredSubscription[]> {
  const { rows } = await pool.query<SubscriptionRow>("SELECT * FROM webhook_subscriptions WHERE status = 'active'");
  return rows.map(fromRow);
}

export async function deleteSubscription(pool: pg.Pool, id: string): Promise<void> {
  await pool.query('DELETE FROM webhook_subscriptions WHERE id = $1', [id]);
}

/** The new secret signs from now on; the old one keeps signing alongside until `graceUntil`. */
export async function rotateSecret(pool: pg.Pool, id: string, secret: string, graceUntil: number): Promise<void> {
  await pool.query(
    `UPDATE webhook_subscriptions SET previous_secret = secret, previous_secret_until = to_timestamp($3::float8 / 1000),
       secret = $2, updated_at = now() WHERE id = $1`,
    [id, secret, graceUntil],
  );
}

export async function disableSubscription(pool: pg.Pool, id: string, reason: string): Promise<void> {
  await pool.query(
    `UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = $2, disabled_at = now(), updated_at = now()
     WHERE id = $1 AND status = 'active'`,
    [id, reason],
  );
}

export interface NewDelivery {
  subscriptionId: string;
  messageId: string;
  city: string;
  streamId: string;
  type: string;
  body: unknown;
  replay: number;
}

/** One statement for a batch; a delivery already queued (the same event heard twice) is kept as it is. */
export async function enqueueDeliveries(db: pg.Pool | pg.PoolClient, rows: readonly NewDelivery[]): Promise<void> {
  if (!rows.length) return;
  await db.query(
    `INSERT INTO webhook_deliveries (subscription_id, message_id, city, stream_id, type, body, replay)
     SELECT d.subscription_id, d.message_id, d.city, d.stream_id, d.type, d.body, d.replay
     FROM jsonb_to_recordset($1::jsonb) AS d(subscription_id text, message_id text, city text, stream_id text, type text, body jsonb, replay bigint)
     ON CONFLICT (subscription_id, message_id, replay) DO NOTHING`,
    [
      JSON.stringify(
        rows.map((r) => ({
          subscription_id: r.subscriptionId,
          message_id: r.messageId,
          city: r.city,
          stream_id: r.streamId,
          type: r.type,
          body: r.body,
          replay: r.replay,
        })),
      ),
    ],
  );
}

export async function nextReplay(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("SELECT nextval('webhook_replays') AS n");
  return Number(rows[0]?.n ?? 0);
}

export interface DueDelivery {
  seq: number;
  subscriptionId: string;
  messageId: string;
  body: unknown;
  attempts: number;
  createdAt: number;
}

/**
 * The head of each active subscription's queue, when it is due: deliveries go out in order. Due
 * by PostgreSQL's now(), or by `at` (ms) when the dispatcher runs on a test's clock.
 */
export async function dueHeads(pool: pg.Pool, limit: number, at?: number): Promise<DueDelivery[]> {
  const { rows } = await pool.query<{
    seq: string;
    subscription_id: string;
    message_id: string;
    body: unknown;
    attempts: number;
    created_at: Date;
    next_attempt_at: Date;
  }>(
    `SELECT * FROM (
       SELECT DISTINCT ON (d.subscription_id) d.seq, d.subscription_id, d.message_id, d.body, d.attempts, d.created_at, d.next_attempt_at
       FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.status = 'active'
       WHERE d.status = 'pending' ORDER BY d.subscription_id, d.seq
     ) heads WHERE next_attempt_at <= COALESCE(to_timestamp($2::float8 / 1000), now()) ORDER BY seq LIMIT $1`,
    [limit, at ?? null],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    subscriptionId: r.subscription_id,
    messageId: r.message_id,
    body: r.body,
    attempts: r.attempts,
    createdAt: r.created_at.getTime(),
  }));
}

export interface AttemptOutcome {
  httpStatus?: number;
  latencyMs: number;
  error?: string;
  /** delivered, retry at `retryAt`, or dead (the dead letters). */
  result: 'delivered' | 'retry' | 'dead';
  retryAt?: number;
}

export async function recordAttempt(pool: pg.Pool, d: DueDelivery, o: AttemptOutcome): Promise<void> {
  await pool.query(
    `WITH a AS (
       INSERT INTO webhook_attempts (delivery_seq, attempt, http_status, latency_ms, error) VALUES ($1, $2, $3, $4, $5)
     )
     UPDATE webhook_deliveries SET attempts = $2,
       status = CASE $6 WHEN 'delivered' THEN 'delivered' WHEN 'dead' THEN 'dead' ELSE 'pending' END,
       delivered_at = CASE $6 WHEN 'delivered' THEN now() ELSE NULL END,
       next_attempt_at = COALESCE(to_timestamp($7::float8 / 1000), next_attempt_at)
     WHERE seq = $1`,
    [d.seq, d.attempts + 1, o.httpStatus ?? null, o.latencyMs, o.error ?? null, o.result, o.retryAt ?? null],
  );
}

export interface AttemptRecord {
  messageId: string;
  type: string;
  deliveryStatus: string;
  attempt: number;
  at: number;
  httpStatus: number | null;
  latencyMs: number;
  error: string | null;
}

/** The latest attempts of a subscription, newest first. */
export async function attemptsOf(pool: pg.Pool, subscriptionId: string, limit: number): Promise<AttemptRecord[]> {
  const { rows } = await pool.query<{
    message_id: string;
    type: string;
    status: string;
    attempt: number;
    at: Date;
    http_status: number | null;
    latency_ms: number;
    error: string | null;
  }>(
    `SELECT d.message_id, d.type, d.status, a.attempt, a.at, a.http_status, a.latency_ms, a.error
     FROM webhook_attempts a JOIN webhook_deliveries d ON d.seq = a.delivery_seq
     WHERE d.subscription_id = $1 ORDER BY a.at DESC, a.delivery_seq DESC, a.attempt DESC LIMIT $2`,
    [subscriptionId, limit],
  );
  return rows.map((r) => ({
    messageId: r.message_id,
    type: r.type,
    deliveryStatus: r.status,
    attempt: r.attempt,
    at: r.at.getTime(),
    httpStatus: r.http_status,
    latencyMs: r.latency_ms,
    error: r.error,
  }));
}

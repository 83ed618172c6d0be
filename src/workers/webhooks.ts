/**
 * The webhook dispatcher (docs/webhooks.md). Two loops, run by one leader at a time (a
 * PostgreSQL advisory lock; every `fleet serve` and `fleet worker` stands by to take over):
 *
 * - intake: the city streams are read through the consumer group `webhooks`; each event is matched
 *   against the active subscriptions and one delivery per hearing subscription is queued in
 *   PostgreSQL, in one statement, before the entries are acknowledged. A crash in between reads
 *   them again, and the queue ignores what it already holds: a restart misses nothing.
 * - delivery: the head of each subscription's queue is POSTed (Standard Webhooks 1.0 headers and
 *   signature; the body is the CloudEvent) when due. Deliveries of a subscription go out in
 *   order, at least once; a failure is retried with exponential back-off, and a delivery still
 *   failing after the horizon (25 h) goes to the dead letters and disables the endpoint.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { messageOf } from '../domain/errors.ts';
import { nextDelayMs, type RetryPolicy } from '../domain/webhooks.ts';
import {
  activeSubscriptions,
  disableSubscription,
  dueHeads,
  enqueueDeliveries,
  recordAttempt,
  type DueDelivery,
  type NewDelivery,
  type StoredSubscription,
} from '../pg/webhooks.ts';
import { metrics } from '../metrics.ts';
import { keys } from '../redis/keys.ts';
import { parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import type { Inventory } from '../services/inventory.ts';
import { EventMatcher, deliveryOf, privateAddressOf } from '../services/webhooks.ts';
import { survived } from '../log.ts';
import { HeldSession } from '../pg/session.ts';

export const WEBHOOK_GROUP = 'webhooks';
const LEADER_LOCK = 7_421_002;
const READ_BATCH = 500;
const SEND_BATCH = 32;

export interface DispatcherOptions {
  retry: RetryPolicy;
  timeoutMs: number;
  allowPrivate: boolean;
  pollMs?: number;
  log?: Logger;
  /**
   * The clock retries are scheduled and found due by; tests move it instead of waiting out the
   * back-off. Unset (production): PostgreSQL's now() says what is due, the system clock schedules.
   */
  clock?: { now(): number };
}

export class WebhookDispatcher {
  private readonly consumer = `${hostname()}-${process.pid}`;
  private readonly matcher: EventMatcher;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private subscriptions = new Map<string, StoredSubscription>();
  private groupsReady = false;
  /** The last intake left entries in a stream (a full batch): the next round comes at once. */
  private backlog = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly pool: pg.Pool,
    private readonly inventory: Inventory,
    private readonly opts: DispatcherOptions,
  ) {
    this.matcher = new EventMatcher(inventory);
  }

  /** Creates the group on every city stream, from now on (history is for `replay`). */
  async ensureGroups(): Promise<void> {
    if (this.groupsReady) return;
    for (const c of this.inventory.cities.all()) {
      await this.redis.xgroup('CREATE', keys.events(c.id), WEBHOOK_GROUP, '$', 'MKSTREAM').catch((err: unknown) => {
        if (!messageOf(err).includes('BUSYGROUP')) throw err;
      });
    }
    this.groupsReady = true;
  }

  start(): void {
    this.loop = this.lead();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** One round of both loops (tests, `drain`): returns how much was read and sent. */
  async runOnce(): Promise<{ read: number; sent: number }> {
    await this.ensureGroups();
    const read = await this.intake();
    const sent = await this.send();
    return { read, sent };
  }

  /**
   * Holds the leader lock (on a session of its own) while running both loops; stands by otherwise.
   * The lock lives as long as its connection: when PostgreSQL dies or fails over, the session is
   * lost, this loop stops leading at once and competes for the lock again on the next host.
   */
  private async lead(): Promise<void> {
    while (!this.stopped) {
      let session: HeldSession | undefined;
      try {
        session = await HeldSession.open(this.pool);
        if (await session.tryAdvisoryLock(LEADER_LOCK)) {
          this.setLeading(true);
          this.leaderships++;
          metrics.webhookLeaderships.inc();
          while (!this.stopped && !session.lost) {
            const { sent } = await this.runOnce();
            // Paced: a round per poll interval while nothing is waiting. After a round that sent,
            // the next comes at once: a subscription's deliveries go one at a time, in order, so a
            // pause after each would cap every subscription at ten events a second.
            if (!this.backlog && sent === 0) await sleep(this.opts.pollMs ?? 100);
          }
          this.setLeading(false);
          if (session.lost) this.opts.log?.warn('webhook dispatcher: leader lock lost with its PostgreSQL session');
          await session.advisoryUnlock(LEADER_LOCK);
        }
      } catch (err) {
        survived('webhooks.dispatcher', err);
      } finally {
        this.setLeading(false);
        session?.release();
      }
      if (!this.stopped) await sleep(1_000);
    }
  }

  /** True while this dispatcher holds the leader lock; how many times it took it. */
  leading = false;
  leaderships = 0;

  private setLeading(leading: boolean): void {
    this.leading = leading;
    metrics.webhookLeading.set(leading ? 1 : 0);
  }

  private async intake(): Promise<number> {
    // One read per city, all in flight at once (one round trip on the connection's pipeline).
    const read = (await Promise.all(this.inventory.cities.all().map((c) => this.readCity(c.id)))).filter(
      (r) => r.ids.length > 0,
    );
    if (!read.length) return 0;
    // Subscriptions are read after the events: every one created before an event was written hears it.
    this.subscriptions = new Map((await activeSubscriptions(this.pool)).map((s) => [s.id, s]));
    const rows: NewDelivery[] = [];
    for (const { events } of read)
      for (const e of events)
        for (const sub of this.subscriptions.values())
          if (await this.matcher.hears(sub, e)) rows.push(deliveryOf(sub.id, e, 0));
    await enqueueDeliveries(this.pool, rows);
    await Promise.all(read.map(({ stream, ids }) => this.redis.xack(stream, WEBHOOK_GROUP, ...ids)));
    this.backlog = read.some((r) => r.ids.length >= READ_BATCH);
    return read.reduce((n, r) => n + r.ids.length, 0);
  }

  /** Cities whose own unacknowledged entries (a crash) were read again since this dispatcher started. */
  private readonly recovered = new Set<string>();

  private async readCity(city: string): Promise<{ stream: string; ids: string[]; events: StreamEvent[] }> {
    const stream = keys.events(city);
    // First what this consumer read but did not acknowledge before a crash, then new entries.
    const from = this.recovered.has(city) ? '>' : '0';
    const res = (await this.redis.xreadgroup(
      'GROUP',
      WEBHOOK_GROUP,
      this.consumer,
      'COUNT',
      READ_BATCH,
      'STREAMS',
      stream,
      from,
    )) as [string, [string, string[] | null][]][] | null;
    const entries = res?.[0]?.[1] ?? [];
    if (from === '0' && entries.length === 0) this.recovered.add(city);
    const events: StreamEvent[] = [];
    for (const [id, fields] of entries) {
      if (!fields) continue;
      try {
        events.push(parseStreamEntry(city, id, fields));
      } catch (err) {
        survived('webhooks.parse', err);
      }
    }
    return { stream, ids: entries.map(([id]) => id), events };
  }

  private async send(): Promise<number> {
    const heads = await dueHeads(this.pool, SEND_BATCH, this.opts.clock?.now());
    if (!heads.length) return 0;
    const missing = heads.some((h) => !this.subscriptions.has(h.subscriptionId));
    if (missing) this.subscriptions = new Map((await activeSubscriptions(this.pool)).map((s) => [s.id, s]));
    await Promise.all(heads.map((h) => this.deliver(h)));
    return heads.length;
  }

  private async deliver(d: DueDelivery): Promise<void> {
    const sub = this.subscriptions.get(d.subscriptionId);
    if (!sub) return;
    const started = performance.now();
    let httpStatus: number | undefined;
    let error: string | undefined;
    try {
      await this.checkAddress(sub.url);
      const res = await fetch(sub.url, {
        method: 'POST',
        headers: this.headers(sub, d),
        body: JSON.stringify(d.body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      httpStatus = res.status;
      await res.body?.cancel();
      if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
    } catch (err) {
      error = messageOf(err).slice(0, 500);
    }
    const latencyMs = Math.round(performance.now() - started);
    const base = { latencyMs, ...(httpStatus !== undefined ? { httpStatus } : {}), ...(error ? { error } : {}) };
    if (!error) {
      metrics.webhookAttempts.inc({ result: 'delivered' });
      await recordAttempt(this.pool, d, { ...base, result: 'delivered' });
      return;
    }
    const retryAt = (this.opts.clock?.now() ?? Date.now()) + nextDelayMs(this.opts.retry, d.attempts + 1);
    if (retryAt - d.createdAt <= this.opts.retry.horizonMs) {
      metrics.webhookAttempts.inc({ result: 'retry' });
      await recordAttempt(this.pool, d, { ...base, result: 'retry', retryAt });
      return;
    }
    metrics.webhookAttempts.inc({ result: 'dead' });
    await recordAttempt(this.pool, d, { ...base, result: 'dead' });
    // An endpoint that failed for the whole horizon is switched off; its owner sees why (GET /v1/webhooks).
    const reason = `delivery ${d.messageId} failed for ${Math.round(this.opts.retry.horizonMs / 3_600_000)} h (last: ${error})`;
    await disableSubscription(this.pool, sub.id, reason);
    this.opts.log?.warn({ webhook: sub.id, owner: sub.ownerId, reason }, 'webhook endpoint disabled');
    await this.tellOwner(sub, reason);
  }

  /** The owner hears of it on their other live endpoints (and sees it on GET /v1/webhooks). */
  private async tellOwner(sub: StoredSubscription, reason: string): Promise<void> {
    const others = (await activeSubscriptions(this.pool)).filter((s) => s.ownerId === sub.ownerId && s.id !== sub.id);
    const at = new Date().toISOString();
    await enqueueDeliveries(
      this.pool,
      others.map((o) => ({
        subscriptionId: o.id,
        messageId: `msg_webhook_disabled_${sub.id}`,
        city: '',
        streamId: '',
        type: 'webhook.disabled',
        body: {
          specversion: '1.0',
          id: `webhook_disabled_${sub.id}`,
          source: `/webhooks/${sub.id}`,
          type: 'webhook.disabled',
          subject: sub.id,
          time: at,
          datacontenttype: 'application/json',
          data: { webhookId: sub.id, url: sub.url, reason },
        },
        replay: 0,
      })),
    );
  }

  /** Standard Webhooks 1.0: id, timestamp, and a v1 signature per live secret (two during a rotation). */
  private headers(sub: StoredSubscription, d: DueDelivery): Record<string, string> {
    const at = new Date();
    const body = JSON.stringify(d.body);
    const secrets = [sub.secret];
    if (sub.previousSecret && (sub.previousSecretUntil ?? 0) > at.getTime()) secrets.push(sub.previousSecret);
    return {
      'content-type': 'application/json',
      'webhook-id': d.messageId,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': secrets.map((s) => new Webhook(s).sign(d.messageId, at, body)).join(' '),
    };
  }

  /** DNS may have changed since the subscription was made: a private address is refused here too. */
  private async checkAddress(url: string): Promise<void> {
    if (this.opts.allowPrivate) return;
    const host = new URL(url).hostname;
    const refused = await privateAddressOf(host);
    if (refused) throw new Error(`${host} resolves to a private address (${refused})`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

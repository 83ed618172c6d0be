/**
 * The webhook dispatcher (docs/webhooks.md). Two loops, run by one leader at a time (a
 * PostgreSQL advisory lock; every `fleet serve` and `fleet worker` stands by to take over):
 *
 * - intake: the city streams are read through the consumer group `webhooks` (the one stream
 *   consumer, blocking until an event arrives); each event is matched against the active
 *   subscriptions and one delivery per hearing subscription is queued in PostgreSQL, in one
 *   statement, before the entries are acknowledged. A crash in between reads them again (a new
 *   leader takes over what a dead one left pending), and the queue ignores what it already holds:
 *   a restart misses nothing.
 * - delivery: the head of each subscription's queue is POSTed (Standard Webhooks 1.0 headers and
 *   signature; the body is the CloudEvent) when due. Woken by the intake as soon as it queues;
 *   otherwise it looks for retries that came due every `pollMs`. Deliveries of a subscription go
 *   out in order, at least once; a failure is retried with exponential back-off, and a delivery
 *   still failing after the horizon (25 h) goes to the dead letters and disables the endpoint.
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
import { defaults } from '../config.ts';
import { currentTraceparent, inSpan } from '../telemetry/spans.ts';
import { metrics } from '../metrics.ts';
import { parseStreamEntry, type StreamEvent } from '../redis/events.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { StreamConsumer, type StreamEntry } from '../redis/stream-consumer.ts';
import type { Inventory } from '../services/inventory.ts';
import { EventMatcher, deliveryOf, privateAddressOf } from '../services/webhooks.ts';
import { survived } from '../log.ts';
import { HeldSession } from '../pg/session.ts';

export const WEBHOOK_GROUP = 'webhooks';
const LEADER_LOCK = 7_421_002;
const READ_BATCH = 500;
const SEND_BATCH = 32;
/** Entries a dead leader left pending this long are taken over by the next one. */
const CLAIM_IDLE_MS = 30_000;

export interface DispatcherOptions {
  retry: RetryPolicy;
  timeoutMs: number;
  allowPrivate: boolean;
  /** How often the delivery loop looks for retries that came due while no new event woke it (WEBHOOK_POLL_MS). */
  pollMs?: number;
  log?: Logger;
  /**
   * The clock retries are scheduled and found due by; tests move it instead of waiting out the
   * back-off. Unset (production): PostgreSQL's now() says what is due, the system clock schedules.
   */
  clock?: { now(): number };
}

export class WebhookDispatcher {
  private readonly matcher: EventMatcher;
  private readonly reader: StreamConsumer;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private subscriptions = new Map<string, StoredSubscription>();
  /** Wakes the delivery loop's wait (the intake queued something, or `stop`). */
  private wake: (() => void) | undefined;
  /** Something was queued while the delivery loop was busy: its next wait returns at once. */
  private woken = false;

  constructor(
    redis: RedisConnection,
    private readonly pool: pg.Pool,
    inventory: Inventory,
    private readonly opts: DispatcherOptions,
  ) {
    this.matcher = new EventMatcher(inventory);
    this.reader = new StreamConsumer({
      name: 'webhooks',
      redis,
      cities: () => inventory.cities.all().map((c) => c.id),
      // From now on: history is for `replay`.
      group: { name: WEBHOOK_GROUP, consumer: `${hostname()}-${process.pid}`, start: '$', claimIdleMs: CLAIM_IDLE_MS },
      count: READ_BATCH,
      handle: (city, entries) => this.intake(city, entries),
    });
  }

  /** Creates the group on every city stream, from now on (history is for `replay`). */
  ensureGroups(): Promise<void> {
    return this.reader.ensureGroups();
  }

  start(): void {
    // Each result's series exists from the start, at 0: an alert on the increase of dead ones
    // sees the first (a series born at 1 has no increase).
    for (const result of ['delivered', 'retry', 'dead']) metrics.webhookAttempts.inc({ result }, 0);
    this.loop = this.lead();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeDelivery();
    await this.loop;
  }

  /** One round of both loops (tests, `drain`): returns how much was read and sent. */
  async runOnce(): Promise<{ read: number; sent: number }> {
    const read = await this.reader.consumeOnce();
    const sent = await this.send();
    return { read, sent };
  }

  /**
   * Holds the leader lock (on a session of its own) while reading and delivering; stands by
   * otherwise. The lock lives as long as its connection: when PostgreSQL dies or fails over, the
   * session is lost, this dispatcher stops leading within a poll interval and competes for the
   * lock again on the next host.
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
          await this.reader.ensureGroups();
          this.reader.start();
          try {
            while (!this.stopped && !session.lost) {
              // After a round that sent, the next comes at once: a subscription's deliveries go one
              // at a time, in order, so a pause after each would cap every subscription.
              if ((await this.send()) === 0) await this.waitForWork(this.opts.pollMs ?? defaults.WEBHOOK_POLL_MS);
            }
          } finally {
            await this.reader.stop();
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
      if (!this.stopped) await this.waitForWork(1_000);
    }
  }

  private async waitForWork(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
    this.woken = false;
  }

  private wakeDelivery(): void {
    this.woken = true;
    this.wake?.();
  }

  /** True while this dispatcher holds the leader lock; how many times it took it. */
  leading = false;
  leaderships = 0;

  private setLeading(leading: boolean): void {
    this.leading = leading;
    metrics.webhookLeading.set(leading ? 1 : 0);
  }

  /** One city's new entries: a delivery per hearing subscription, queued before they are acknowledged. */
  private async intake(city: string, entries: StreamEntry[]): Promise<string[]> {
    // Subscriptions are read after the events were: every one created before an event was written
    // hears it. With none, nothing is parsed: the entries are only acknowledged.
    this.subscriptions = new Map((await activeSubscriptions(this.pool)).map((s) => [s.id, s]));
    if (this.subscriptions.size === 0) return entries.map((e) => e.id);
    const events: StreamEvent[] = [];
    for (const { id, fields } of entries) {
      try {
        events.push(parseStreamEntry(city, id, fields));
      } catch (err) {
        survived('webhooks.parse', err); // counted; an entry no subscription can hear
      }
    }
    const rows: NewDelivery[] = [];
    for (const e of events)
      for (const sub of this.subscriptions.values())
        if (await this.matcher.hears(sub, e)) rows.push(deliveryOf(sub.id, e, 0));
    await enqueueDeliveries(this.pool, rows);
    if (rows.length) this.wakeDelivery();
    return entries.map((e) => e.id);
  }

  private async send(): Promise<number> {
    const heads = await dueHeads(this.pool, SEND_BATCH, this.opts.clock?.now());
    if (!heads.length) return 0;
    const missing = heads.some((h) => !this.subscriptions.has(h.subscriptionId));
    if (missing) this.subscriptions = new Map((await activeSubscriptions(this.pool)).map((s) => [s.id, s]));
    await Promise.all(heads.map((h) => this.deliver(h)));
    return heads.length;
  }

  /** One delivery, in the trace of the change it tells (tracing on). */
  private deliver(d: DueDelivery): Promise<void> {
    const span = { parent: traceparentOf(d.body), attributes: { 'fleet.webhook': d.subscriptionId } };
    return inSpan('webhook.deliver', span, () => this.deliverNow(d));
  }

  private async deliverNow(d: DueDelivery): Promise<void> {
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
      // The receiver's work joins the trace of the change (W3C Trace Context).
      ...withTraceparent(),
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

function withTraceparent(): Record<string, string> {
  const tp = currentTraceparent();
  return tp ? { traceparent: tp } : {};
}

/** The trace context a queued CloudEvent carries (its distributed-tracing extension). */
function traceparentOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('traceparent' in body)) return undefined;
  return typeof body.traceparent === 'string' ? body.traceparent : undefined;
}

/**
 * Webhook subscriptions, as their owners manage them (docs/webhooks.md): create (the secret shown
 * once), list, delete, rotate the secret, read the attempts, replay from an event. Who may see a
 * subscription: its owner, and admin (every one); anyone else is told it does not exist.
 */
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type pg from 'pg';
import { DomainError } from '../domain/errors.ts';
import { hears, isPrivateAddress, messageIdOf, parseMessageId, type Subscription } from '../domain/webhooks.ts';
import { loggedEventsAfter } from '../pg/events.ts';
import {
  attemptsOf,
  deleteSubscription,
  enqueueDeliveries,
  getSubscription,
  insertSubscription,
  listSubscriptions,
  nextReplay,
  rotateSecret,
  type NewDelivery,
  type StoredSubscription,
} from '../pg/webhooks.ts';
import type { CityCatalog } from '../domain/cities.ts';
import { toCloudEvent } from './cloud-events.ts';
import type { StreamEvent } from '../redis/events.ts';
import type { Inventory } from './inventory.ts';

export type { StoredSubscription } from '../pg/webhooks.ts';

/** The caller, as the webhook rules need it. */
export interface WebhookOwner {
  id: string;
  role: Subscription['ownerRole'];
  hostId?: string;
  /** Staff limited to cities. */
  cities?: ReadonlySet<string>;
}

/** The queued delivery of an event to a subscription (`replay` 0: the first; a replay's number else). */
export function deliveryOf(subscriptionId: string, e: StreamEvent, replay: number): NewDelivery {
  return {
    subscriptionId,
    messageId: messageIdOf(e.city, e.id),
    city: e.city,
    streamId: e.id,
    type: e.type,
    body: toCloudEvent(e),
    replay,
  };
}

/** The first private or loopback address `host` resolves to, if any. */
export async function privateAddressOf(host: string): Promise<string | undefined> {
  const addresses = await lookup(host.replace(/^\[|\]$/g, ''), { all: true });
  return addresses.find((a) => isPrivateAddress(a.address))?.address;
}

export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
const MAX_REPLAY = 10_000;

/**
 * A target must be http(s) and, unless private targets are allowed, resolve only to public
 * addresses (checked again at every delivery: DNS may change).
 */
export async function checkTarget(url: string, allowPrivate: boolean): Promise<void> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DomainError('VALIDATION', `url ${url.slice(0, 100)} is not a URL`, { field: 'url' });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    throw new DomainError('VALIDATION', 'a webhook url is http or https', { field: 'url' });
  if (u.username || u.password)
    throw new DomainError('VALIDATION', 'a webhook url carries no credentials', { field: 'url' });
  if (allowPrivate) return;
  const host = u.hostname;
  const refused = await privateAddressOf(host).catch(() => {
    throw new DomainError('VALIDATION', `the host ${host} does not resolve`, { field: 'url' });
  });
  if (refused)
    throw new DomainError('VALIDATION', `${host} resolves to ${refused}, a private or loopback address`, {
      field: 'url',
      reason: 'private_address',
    });
}

/** Who an event concerns: its customer (from the entry) and its vehicle's host (looked up once). */
export class EventMatcher {
  private readonly hosts = new Map<string, string | undefined>();
  constructor(private readonly inventory: Inventory) {}

  async hears(sub: StoredSubscription, e: StreamEvent): Promise<boolean> {
    const customerId = e.data.customerId ?? e.state?.customerId;
    return hears(sub, {
      type: e.type,
      city: e.city,
      ...(typeof customerId === 'string' ? { customerId } : {}),
      ...(sub.ownerRole === 'host' ? this.withHost(await this.hostOf(e)) : {}),
    });
  }

  private withHost(hostId: string | undefined) {
    return hostId ? { hostId } : {};
  }

  private async hostOf(e: StreamEvent): Promise<string | undefined> {
    if (typeof e.state?.hostId === 'string') return e.state.hostId;
    if (!this.hosts.has(e.vehicle)) {
      if (this.hosts.size > 100_000) this.hosts.clear();
      // A failed read fails the intake's batch, read again later: never matched without its host.
      this.hosts.set(e.vehicle, await this.inventory.hostOfVehicle(e.vehicle));
    }
    return this.hosts.get(e.vehicle);
  }
}

export class WebhookDesk {
  constructor(
    private readonly pool: pg.Pool,
    private readonly cities: CityCatalog,
    private readonly matcher: EventMatcher,
    private readonly opts: { allowPrivate: boolean; secretGraceMs: number },
  ) {}

  async create(
    owner: WebhookOwner,
    input: { url: string; types?: string[]; cities?: string[] },
  ): Promise<StoredSubscription> {
    const staff = owner.role === 'ops' || owner.role === 'admin';
    if (input.cities && !staff)
      throw new DomainError('FORBIDDEN', 'only staff subscribe by city', { field: 'cities', role: owner.role });
    for (const c of input.cities ?? []) {
      if (!this.cities.get(c) || (owner.cities && !owner.cities.has(c)))
        throw new DomainError('NOT_FOUND', `city ${c} not found`, { entity: 'city', id: c });
    }
    await checkTarget(input.url, this.opts.allowPrivate);
    const cities = input.cities ?? (owner.cities ? [...owner.cities].sort() : undefined);
    const sub: Omit<StoredSubscription, 'createdAt'> = {
      id: `whk_${randomBytes(12).toString('hex')}`,
      ownerId: owner.id,
      ownerRole: owner.role,
      url: input.url,
      status: 'active',
      secret: newSecret(),
      ...(owner.hostId ? { hostId: owner.hostId } : {}),
      ...(input.types ? { types: input.types } : {}),
      ...(cities ? { cities } : {}),
    };
    await insertSubscription(this.pool, sub);
    return { ...sub, createdAt: Date.now() };
  }

  async list(owner: WebhookOwner): Promise<StoredSubscription[]> {
    return listSubscriptions(this.pool, owner.role === 'admin' ? undefined : owner.id);
  }

  /** The subscription, if the caller owns it (or is admin); others: not found. */
  async get(owner: WebhookOwner, id: string): Promise<StoredSubscription> {
    const sub = await getSubscription(this.pool, id);
    if (!sub || (owner.role !== 'admin' && sub.ownerId !== owner.id))
      throw new DomainError('NOT_FOUND', `webhook ${id} not found`, { entity: 'webhook', id });
    return sub;
  }

  async delete(owner: WebhookOwner, id: string): Promise<void> {
    await this.get(owner, id);
    await deleteSubscription(this.pool, id);
  }

  async rotate(owner: WebhookOwner, id: string): Promise<{ sub: StoredSubscription; secret: string }> {
    await this.get(owner, id);
    const secret = newSecret();
    await rotateSecret(this.pool, id, secret, Date.now() + this.opts.secretGraceMs);
    return { sub: await this.get(owner, id), secret };
  }

  async attempts(owner: WebhookOwner, id: string, limit: number) {
    await this.get(owner, id);
    return attemptsOf(this.pool, id, limit);
  }

  /**
   * Queues again, in order, every event this subscription hears from `fromMessageId` on (that
   * event included), read from PostgreSQL's event log: in its city from that event, in the
   * others from the same instant. The copies keep their `webhook-id`, so receivers see them as
   * the same events. At most 10,000 per call.
   */
  async replay(owner: WebhookOwner, id: string, fromMessageId: string): Promise<{ queued: number }> {
    const sub = await this.get(owner, id);
    const from = parseMessageId(fromMessageId);
    if (!from || !this.cities.get(from.city))
      throw new DomainError('VALIDATION', `${fromMessageId} is not an event id of this service`, { field: 'from' });
    const [ms, seq] = from.streamId.split('-').map(Number) as [number, number];
    const before = seq > 0 ? `${ms}-${seq - 1}` : `${ms - 1}-999999999`;
    const replay = await nextReplay(this.pool);
    const heard: StreamEvent[] = [];
    for (const c of this.cities.all()) {
      if (sub.cities && !sub.cities.includes(c.id)) continue;
      const after = c.id === from.city ? before : `${ms - 1}-999999999`;
      for (const e of await loggedEventsAfter(this.pool, c.id, after, MAX_REPLAY))
        if (await this.matcher.hears(sub, e)) heard.push(e);
    }
    const rows = heard.sort((a, b) => a.ms - b.ms || a.seq - b.seq).map((e) => deliveryOf(sub.id, e, replay));
    await enqueueDeliveries(this.pool, rows.slice(0, MAX_REPLAY));
    return { queued: Math.min(rows.length, MAX_REPLAY) };
  }
}

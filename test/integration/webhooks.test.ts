/**
 * Outbound webhooks against a local receiver that verifies every signature with the
 * `standardwebhooks` package: the receiver fails (500) for 30 s, then recovers, and every event
 * arrives, in order per subscription, de-duplicable by `webhook-id`, none missing; a rotated
 * secret verifies; a loopback target is refused without WEBHOOK_ALLOW_PRIVATE; attempts and
 * replays are visible over the API.
 *
 * The outage and the back-off run on a clock the test moves (the dispatcher's `clock`), not on the
 * wall clock: a step of it makes every retry due at once.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { hears, messageIdOf } from '../../src/domain/webhooks.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { EventMatcher, WebhookDesk } from '../../src/services/webhooks.ts';
import { WebhookDispatcher } from '../../src/workers/webhooks.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { recordCities } from '../../src/services/durable.ts';
import { HOUR, addVehicle, catalogWith, futureHour, newInventory, readEvents, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { tenantTokens, type Tenant } from '../support/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const OUTAGE_MS = 30_000;
/** The dispatcher's retry policy: past `maxMs`, every delivery that failed is due again. */
const RETRY = { baseMs: 500, maxMs: 4_000, horizonMs: 3_600_000 };
/** The receiver's and the dispatcher's clock (no Redis connection: the scripts keep the real one). */
const clock = new ShiftedClock();
const city = testCity();
let stores: Stores;
let inv: Inventory;
let app: App;
let strict: App;
let base: string;
let strictBase: string;
let dispatcher: WebhookDispatcher;
let receiver: Server;
let receiverUrl: string;
let tok: Record<Tenant, string>;
let failUntil = 0;
/** Secrets the receiver verifies with, by subscription path. */
const secrets = new Map<string, string[]>();
/** What arrived and verified, by subscription path, in arrival order. */
const received = new Map<string, { id: string; type: string }[]>();
let unverified = 0;
let refusedWhileDown = 0;
/** Requests answered 500, by path. */
const refusals = new Map<string, number>();
/** Paths that always answer 500. */
const failPaths = new Set<string>();

async function call(token: string, method: string, path: string, body?: unknown, at = base) {
  const res = await fetch(`${at}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  await recordCities(stores.pool, [city]);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      if (clock.now() < failUntil || failPaths.has(req.url ?? '')) {
        refusedWhileDown++;
        refusals.set(req.url ?? '', (refusals.get(req.url ?? '') ?? 0) + 1);
        res.writeHead(500).end();
        return;
      }
      const path = req.url ?? '';
      const headers = {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      };
      const ok = (secrets.get(path) ?? []).every((s) => {
        try {
          new Webhook(s).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      if (!ok || !secrets.has(path)) {
        unverified++;
        res.writeHead(400).end();
        return;
      }
      const event = JSON.parse(body) as { type: string };
      if (!received.has(path)) received.set(path, []);
      received.get(path)?.push({ id: headers['webhook-id'], type: event.type });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const matcher = new EventMatcher(inv);
  const deps = {
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: { customer: 100_000, host: 100_000, ops: 100_000, admin: 100_000 },
  };
  app = await buildApp({
    ...deps,
    webhooks: new WebhookDesk(stores.pool, inv.cities, matcher, { allowPrivate: true, secretGraceMs: 60_000 }),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  strict = await buildApp({
    ...deps,
    webhooks: new WebhookDesk(stores.pool, inv.cities, matcher, { allowPrivate: false, secretGraceMs: 60_000 }),
  });
  strictBase = await strict.listen({ port: 0, host: '127.0.0.1' });
  dispatcher = new WebhookDispatcher(stores.redis, stores.pool, inv, {
    retry: RETRY,
    timeoutMs: 2_000,
    allowPrivate: true,
    pollMs: 50,
    clock,
  });
  await dispatcher.ensureGroups();
  dispatcher.start();
  tok = await tenantTokens(SECRET);
});

after(async () => {
  await dispatcher.stop();
  await app.close();
  await strict.close();
  await new Promise((r) => receiver.close(r));
  await stores.stop();
});

/** Polls until `check` holds, or fails after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function subscribe(who: Tenant, path: string, filters: { types?: string[]; cities?: string[] } = {}) {
  const r = await call(tok[who], 'POST', '/v1/webhooks', { url: `${receiverUrl}${path}`, ...filters });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.match(String(r.json.secret), /^whsec_/);
  secrets.set(path, [String(r.json.secret)]);
  return String(r.json.id);
}

test('a loopback target is refused without WEBHOOK_ALLOW_PRIVATE, and nothing is stored', async () => {
  for (const url of [`${receiverUrl}/x`, 'http://localhost:9/x', 'http://10.1.2.3/x', 'http://[::1]:80/x']) {
    const r = await call(tok.hostA, 'POST', '/v1/webhooks', { url }, strictBase);
    assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.code, 'VALIDATION');
  }
  assert.equal((await call(tok.hostA, 'POST', '/v1/webhooks', { url: 'ftp://example.com/x' })).status, 400);
  assert.equal(
    (await call(tok.hostA, 'POST', '/v1/webhooks', { url: `${receiverUrl}/c`, cities: [city.id] })).status,
    403,
    'only staff filter by city',
  );
  const list = await call(tok.hostA, 'GET', '/v1/webhooks');
  assert.deepEqual(list.json.webhooks, []);
});

test('the receiver fails for 30 s, then recovers: every event arrives, in order, de-duplicable, none missing', {
  timeout: 60_000,
}, async () => {
  const subs = {
    '/host-a': await subscribe('hostA', '/host-a'),
    '/alice': await subscribe('alice', '/alice'),
    '/ops': await subscribe('ops', '/ops', { types: ['booking.*'], cities: [city.id] }),
  };
  const mine = await addVehicle(inv, city, { hostId: 'host-a' });
  const theirs = await addVehicle(inv, city, { hostId: 'host-b' });
  failUntil = clock.now() + OUTAGE_MS;
  const t = futureHour();
  // Traffic during the outage and after it: bookings, cancellations, a block, on both hosts' cars.
  // Each round moves the clock by the longest back-off, so every delivery that failed is due again;
  // while the outage lasts, the round ends once the dispatcher has tried again and been refused.
  for (let i = 0; i < 12; i++) {
    const vehicleId = i % 3 === 0 ? theirs : mine;
    const b = await inv.book({
      vehicleId,
      customerId: i % 2 ? 'alice' : 'bob',
      from: t + i * 3 * HOUR,
      to: t + i * 3 * HOUR + HOUR,
    });
    if (i % 4 === 0) await inv.cancelBooking(b.booking.id, undefined, 'customer');
    if (i === 6)
      await inv.placeBlock({ vehicleId: mine, reason: 'maintenance', from: t + 100 * HOUR, to: t + 101 * HOUR });
    const refused = refusedWhileDown;
    clock.advance(RETRY.maxMs);
    if (clock.now() < failUntil) await waitFor('a retry refused during the outage', () => refusedWhileDown > refused);
  }
  // What each subscription must hear: the stream, filtered by the rule.
  const events = await readEvents(stores.redis, city.id);
  const hostOf = new Map([
    [mine, 'host-a'],
    [theirs, 'host-b'],
  ]);
  const expected = new Map<string, string[]>();
  const owners = {
    '/host-a': { ownerId: 'ha', ownerRole: 'host' as const, hostId: 'host-a' },
    '/alice': { ownerId: 'alice', ownerRole: 'customer' as const },
    '/ops': { ownerId: 'olga', ownerRole: 'ops' as const, types: ['booking.*'], cities: [city.id] },
  };
  for (const [path, owner] of Object.entries(owners)) {
    const sub = { id: '', url: '', status: 'active' as const, ...owner };
    const ids = events
      .filter((e) => {
        const customerId = e.data.customerId ?? e.state?.customerId;
        const hostId = hostOf.get(e.vehicle);
        return hears(sub, {
          type: e.type,
          city: e.city,
          ...(typeof customerId === 'string' ? { customerId } : {}),
          ...(hostId ? { hostId } : {}),
        });
      })
      .map((e) => messageIdOf(e.city, e.id));
    assert.ok(ids.length > 0, `${path} has something to hear`);
    expected.set(path, ids);
  }
  // Everything arrives once the receiver is back (each poll makes any retry still waiting due).
  const complete = () =>
    [...expected].every(([path, ids]) => new Set((received.get(path) ?? []).map((r) => r.id)).size >= ids.length);
  const deadline = Date.now() + 30_000;
  while (!complete() && Date.now() < deadline) {
    clock.advance(RETRY.maxMs);
    await sleep(50);
  }
  assert.ok(refusedWhileDown > 0, 'the outage was felt');
  assert.equal(unverified, 0, 'every delivery verified');
  for (const [path, ids] of expected) {
    const got = received.get(path) ?? [];
    const firstSeen = [...new Set(got.map((r) => r.id))];
    assert.deepEqual(firstSeen, ids, `${path}: every event, in stream order, none missing, none foreign`);
  }
  const attempts = await call(tok.hostA, 'GET', `/v1/webhooks/${subs['/host-a']}/deliveries?limit=1000`);
  const rows = attempts.json.attempts as { httpStatus: number | null; deliveryStatus: string; latencyMs: number }[];
  assert.ok(
    rows.some((a) => a.httpStatus === 500),
    'failed attempts are shown',
  );
  assert.ok(rows.some((a) => a.httpStatus === 204 && a.deliveryStatus === 'delivered'));
  assert.equal((await call(tok.hostB, 'GET', `/v1/webhooks/${subs['/host-a']}/deliveries`)).status, 404);
});

test('a rotated secret verifies; replay re-sends with the same webhook-id', { timeout: 60_000 }, async () => {
  const id = String(((await call(tok.hostA, 'GET', '/v1/webhooks')).json.webhooks as { id: string }[])[0]?.id);
  const rotated = await call(tok.hostA, 'POST', `/v1/webhooks/${id}/rotate-secret`);
  assert.equal(rotated.status, 200);
  const fresh = String(rotated.json.secret);
  assert.notEqual(fresh, secrets.get('/host-a')?.[0]);
  // Verified with the new secret alone (and, during the grace period, with the old one too).
  secrets.set('/host-a', [fresh]);
  const before = received.get('/host-a')?.length ?? 0;
  const mine = await addVehicle(inv, city, { hostId: 'host-a' });
  const deadline = Date.now() + 20_000;
  while ((received.get('/host-a')?.length ?? 0) === before && Date.now() < deadline) await sleep(100);
  assert.ok(
    (received.get('/host-a')?.length ?? 0) > before,
    `an event about ${mine} arrived, signed with the new secret`,
  );
  assert.equal(unverified, 0);

  // Replay needs the durable log: sync the stream first.
  await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
  const first = received.get('/host-a')?.[0]?.id ?? '';
  const count = received.get('/host-a')?.length ?? 0;
  const replay = await call(tok.hostA, 'POST', `/v1/webhooks/${id}/replay`, { from: first });
  assert.equal(replay.status, 202, JSON.stringify(replay.json));
  const queued = Number(replay.json.queued);
  assert.ok(queued > 0);
  const until = Date.now() + 20_000;
  while ((received.get('/host-a')?.length ?? 0) < count + queued && Date.now() < until) await sleep(100);
  const again = (received.get('/host-a') ?? []).slice(count).map((r) => r.id);
  assert.equal(again[0], first, 'the replay starts at the event asked for, with its webhook-id');
  assert.equal(new Set(again).size, again.length, 'each once per replay');
  assert.equal((await call(tok.hostB, 'POST', `/v1/webhooks/${id}/replay`, { from: first })).status, 404);
  assert.equal((await call(tok.hostA, 'DELETE', `/v1/webhooks/${id}`)).status, 204);
  assert.equal((await call(tok.hostA, 'GET', `/v1/webhooks/${id}`)).status, 404);
});

test('an endpoint failing past the horizon: dead letter, disabled, and its owner is told elsewhere', {
  timeout: 60_000,
}, async () => {
  await dispatcher.stop();
  // A clock of its own, from now: the horizon counts from when the delivery was queued.
  const horizonClock = new ShiftedClock();
  const retry = { baseMs: 100, maxMs: 300, horizonMs: 2_000 };
  dispatcher = new WebhookDispatcher(stores.redis, stores.pool, inv, {
    retry,
    timeoutMs: 1_000,
    allowPrivate: true,
    pollMs: 20,
    clock: horizonClock,
  });
  dispatcher.start();
  const broken = await subscribe('hostB', '/broken');
  await subscribe('hostB', '/host-b-inbox', { types: ['webhook.disabled'] });
  failPaths.add('/broken');
  await addVehicle(inv, city, { hostId: 'host-b' });
  await waitFor('a first attempt, refused', () => (refusals.get('/broken') ?? 0) > 0);
  // Then time passes a back-off at a time: every retry is due at once, until the horizon.
  const deadline = Date.now() + 30_000;
  let sub: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    sub = (await call(tok.hostB, 'GET', `/v1/webhooks/${broken}`)).json;
    if (sub.status === 'disabled' && received.get('/host-b-inbox')?.length) break;
    horizonClock.advance(retry.maxMs);
    await sleep(20);
  }
  assert.equal(sub.status, 'disabled', JSON.stringify(sub));
  assert.match(String(sub.disabledReason), /failed/);
  const attempts = (await call(tok.hostB, 'GET', `/v1/webhooks/${broken}/deliveries`)).json.attempts as {
    deliveryStatus: string;
  }[];
  assert.ok(
    attempts.some((a) => a.deliveryStatus === 'dead'),
    'the delivery went to the dead letters',
  );
  assert.ok((refusals.get('/broken') ?? 0) > 1, 'it was retried before the horizon');
  assert.deepEqual(
    received.get('/host-b-inbox')?.map((r) => r.type),
    ['webhook.disabled'],
    'the owner heard of it on another endpoint',
  );
});

test('the leader lock dies with its PostgreSQL session: the dispatcher stops leading, takes it again and delivers on', {
  timeout: 60_000,
}, async () => {
  const path = '/after-session-loss';
  await subscribe('ops', path, { types: ['vehicle.created'], cities: [city.id] });
  await waitFor('the dispatcher leads', () => dispatcher.leading);
  const taken = dispatcher.leaderships;
  // The lock's session is cut, as a crash or a promotion of PostgreSQL would cut it.
  const { rows } = await stores.pool.query<{ gone: boolean }>(
    `SELECT pg_terminate_backend(pid) AS gone FROM pg_locks WHERE locktype = 'advisory' AND objid = 7421002 AND granted
       AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  assert.deepEqual(
    rows.map((r) => r.gone),
    [true],
    'one session held the lock',
  );
  await waitFor('the lock is taken again on a new session', () => dispatcher.leaderships === taken + 1);
  const vehicleId = await addVehicle(inv, city);
  await waitFor('the event after the loss is delivered', () =>
    (received.get(path) ?? []).some((r) => r.type === 'vehicle.created'),
  );
  assert.ok(vehicleId);
});

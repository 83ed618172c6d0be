/**
 * Every consumer's own job over the API: a customer's bookings and holds, a host's trips (live
 * calendars and PostgreSQL's history, keyset pages stable under concurrent writes, never another
 * tenant's), delist, relist and retire, ops limited to cities, admin's configuration.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { recordCities } from '../../src/services/durable.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { SyncWorker, syncedThrough } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, futureHour, newInventory, snapshotCity, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { tenantTokens, type Tenant } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const UNLIMITED = { customer: 100_000, host: 100_000, ops: 100_000, admin: 100_000 };
const DAY = 24 * HOUR;
const city = testCity();
const other = testCity();
let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let base: string;
let tok: Record<Tenant | 'opsElsewhere' | 'readOnly', string>;
const v = { a1: '', a2: '', b1: '' };
/** Every booking made, by customer. */
const made = new Map<string, Set<string>>();
const iso = (ms: number) => new Date(ms).toISOString();

async function call(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function book(customerId: string, vehicleId: string, from: number, allowPast = false) {
  const b = await inv.book({ vehicleId, customerId, from, to: from + HOUR, allowPast });
  if (!made.has(customerId)) made.set(customerId, new Set());
  made.get(customerId)?.add(b.booking.id);
  return b.booking.id;
}

/** Every page of a list, following the cursor. */
async function allPages(token: string, path: string, limit: number, between?: () => Promise<void>) {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (let guard = 0; guard < 100; guard++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await call(token, 'GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    for (const b of r.json.bookings as { id: string }[]) ids.push(b.id);
    cursor = r.json.cursor as string | null;
    if (!cursor) return ids;
    await between?.();
  }
  throw new Error('more than 100 pages');
}

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  await recordCities(stores.pool, [city]);
  v.a1 = await addVehicle(inv, city, { hostId: 'host-a' });
  v.a2 = await addVehicle(inv, city, { hostId: 'host-a' });
  v.b1 = await addVehicle(inv, city, { hostId: 'host-b' });
  // History: trips of ten days ago, synced to PostgreSQL and then trimmed from Redis.
  const long = Math.floor((Date.now() - 10 * DAY) / HOUR) * HOUR;
  for (let i = 0; i < 3; i++) {
    const id = await book('alice', i % 2 ? v.b1 : v.a1, long + i * 3 * HOUR, true);
    await inv.cancelBooking(id, undefined, 'no_show');
  }
  const bobPast = await book('bob', v.a2, long, true);
  await inv.cancelBooking(bobPast, undefined, 'no_show');
  // The present and future: live in Redis.
  const t = futureHour(2 * HOUR);
  for (let i = 0; i < 6; i++) await book('alice', [v.a1, v.a2, v.b1][i % 3] ?? v.a1, t + i * 3 * HOUR);
  for (let i = 0; i < 4; i++) await book('bob', [v.a2, v.b1][i % 2] ?? v.a2, t + 40 * HOUR + i * 3 * HOUR);
  await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
  const trimmed = await inv.trimCity(city.id, Date.now() - 7 * DAY, await syncedThrough(stores.redis, city.id));
  assert.equal(trimmed, 4, 'the four past trips now live in PostgreSQL only');

  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    readModel,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: UNLIMITED,
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  tok = {
    ...(await tenantTokens(SECRET)),
    opsElsewhere: await mintToken(SECRET, { sub: 'otto', role: 'ops', cities: [other.id] }),
    readOnly: await mintToken(SECRET, { sub: 'alice', role: 'customer', scope: 'bookings:read' }),
  };
});

after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

describe('lists', () => {
  test("a customer's bookings: exactly their own, from Redis and PostgreSQL, in start order", async () => {
    for (const who of ['alice', 'bob'] as const) {
      const ids = await allPages(tok[who], '/v1/bookings', 4);
      assert.deepEqual(new Set(ids), made.get(who), `${who} sees exactly their own`);
      assert.equal(ids.length, new Set(ids).size, 'no repeats');
    }
    const past = await call(tok.alice, 'GET', '/v1/bookings?when=past');
    assert.deepEqual(
      (past.json.bookings as { status: string }[]).map((b) => b.status),
      ['cancelled', 'cancelled', 'cancelled'],
    );
    const upcoming = await call(tok.alice, 'GET', '/v1/bookings?status=confirmed');
    assert.equal((upcoming.json.bookings as unknown[]).length, 6);
    assert.equal((await call(tok.alice, 'GET', '/v1/bookings?customerId=bob')).status, 403);
    assert.equal((await call(tok.hostA, 'GET', '/v1/bookings')).status, 403);
    assert.equal((await call(tok.alice, 'GET', '/v1/bookings?cursor=not-ours')).status, 400);
  });

  test('pages stay stable while others book: nothing repeated, nothing skipped, nothing foreign', async () => {
    const before = new Set(made.get('alice'));
    let n = 0;
    const t = futureHour(200 * HOUR);
    const ids = await allPages(tok.alice, '/v1/bookings', 2, async () => {
      // Between pages, alice and bob keep booking (later and earlier than the page), concurrently.
      n++;
      await Promise.all([book('bob', v.a2, t + n * 3 * HOUR), book('alice', v.b1, t + n * 3 * HOUR)]);
    });
    assert.equal(ids.length, new Set(ids).size, 'no repeats');
    for (const id of before) assert.ok(ids.includes(id), `${id} was not skipped`);
    for (const id of ids) assert.ok(made.get('alice')?.has(id), `${id} is alice's`);
    // A booking acknowledged just now is listed at once (the read model catches up first).
    const fresh = await book('alice', v.a1, futureHour(400 * HOUR));
    const all = await allPages(tok.alice, '/v1/bookings', 200);
    assert.ok(all.includes(fresh), 'read-your-writes');
  });

  test("a host's trips: its vehicles only, past included; another host's are not found", async () => {
    const onA = new Set<string>();
    for (const [, ids] of made) for (const id of ids) onA.add(id);
    const a = await allPages(tok.hostA, '/v1/hosts/host-a/bookings', 5);
    const b = await allPages(tok.hostB, '/v1/hosts/host-b/bookings', 5);
    assert.equal(a.length + b.length, onA.size, 'every booking is on exactly one host');
    assert.equal(new Set([...a, ...b]).size, onA.size);
    for (const id of a) assert.ok(!b.includes(id));
    const ops = await allPages(tok.ops, '/v1/hosts/host-a/bookings', 50);
    assert.deepEqual(ops, a, 'staff see the same list');
    assert.equal((await call(tok.hostA, 'GET', '/v1/hosts/host-b/bookings')).status, 404);
    assert.equal((await call(tok.alice, 'GET', '/v1/hosts/host-a/bookings')).status, 404);
    const past = await call(tok.hostA, 'GET', '/v1/hosts/host-a/bookings?when=past');
    assert.ok((past.json.bookings as unknown[]).length >= 2, 'history from PostgreSQL');
  });

  test("a customer's live holds, and only theirs", async () => {
    const t = futureHour(500 * HOUR);
    const mine = (await inv.placeHold({ vehicleId: v.a1, customerId: 'alice', from: t, to: t + HOUR })).hold.id;
    await inv.placeHold({ vehicleId: v.a2, customerId: 'bob', from: t, to: t + HOUR });
    const r = await call(tok.alice, 'GET', '/v1/holds');
    assert.deepEqual(
      (r.json.holds as { id: string }[]).map((h) => h.id),
      [mine],
    );
    assert.equal((await call(tok.hostA, 'GET', '/v1/holds')).status, 403);
  });
});

describe('lists by phase (when)', () => {
  // carol: 60 trips behind her (more than a page; the older half only in PostgreSQL), one under
  // way, three to come (one displaced by a block), one cancelled before it began.
  const carol = { past: new Set<string>(), underWay: '', upcoming: [] as string[] };

  before(async () => {
    const [p1 = '', p2 = '', now1 = '', next1 = ''] = await Promise.all(
      [0, 1, 2, 3].map(() => addVehicle(inv, city, { hostId: 'host-c' })),
    );
    const long = Math.floor((Date.now() - 9 * DAY) / HOUR) * HOUR;
    for (let i = 0; i < 30; i++)
      for (const vehicle of [p1, p2]) {
        const id = await book('carol', vehicle, long + i * 3 * HOUR, true);
        carol.past.add(id);
        // The older half ends as no-shows (final: trimmed once synced); the rest stay confirmed, over.
        if (i < 15) await inv.cancelBooking(id, undefined, 'no_show');
      }
    await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
    const trimmed = await inv.trimCity(city.id, Date.now() - 7 * DAY, await syncedThrough(stores.redis, city.id));
    assert.ok(trimmed >= 10 && trimmed < 60, `part of the history is in PostgreSQL only (${trimmed} trimmed)`);
    const startedAt = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
    carol.underWay = await book('carol', now1, startedAt, true);
    await inv.startTrip(carol.underWay, 'carol');
    const t = futureHour(6 * HOUR);
    carol.upcoming = [await book('carol', now1, t), await book('carol', next1, t + HOUR)];
    const displaced = await book('carol', next1, t + 5 * HOUR);
    await inv.placeBlock({ vehicleId: next1, reason: 'maintenance', from: t + 5 * HOUR, to: t + 7 * HOUR });
    carol.upcoming.push(displaced);
    const cancelled = await book('carol', p1, t + 24 * HOUR);
    await inv.cancelBooking(cancelled, 'carol');
    carol.past.add(cancelled);
  });

  const phase = async (when: string, limit: number) => {
    const ids = await allPages(tok.carol, `/v1/bookings?when=${when}`, limit);
    assert.equal(ids.length, new Set(ids).size, `${when}: no repeats`);
    return ids;
  };

  test('a long history hides no current trip: each phase is asked for, and pages in start order', async () => {
    // What the console did: the first page of everything holds none of the current trips.
    const first = await call(tok.carol, 'GET', '/v1/bookings?limit=50');
    const firstIds = (first.json.bookings as { id: string }[]).map((b) => b.id);
    assert.ok(![carol.underWay, ...carol.upcoming].some((id) => firstIds.includes(id)), 'the first 50 are history');

    assert.deepEqual(await phase('active', 1), [carol.underWay]);
    assert.deepEqual(await phase('upcoming', 1), carol.upcoming, 'upcoming, the displaced one too, in start order');
    const got = await call(tok.carol, 'GET', '/v1/bookings?when=upcoming&limit=50');
    assert.deepEqual(
      (got.json.bookings as { status: string }[]).map((b) => b.status),
      ['confirmed', 'confirmed', 'conflicted'],
    );
  });

  test('past: the history from both stores and what was cancelled before it began, in start order', async () => {
    assert.deepEqual(new Set(await phase('past', 7)), carol.past);
    const past = (await call(tok.carol, 'GET', '/v1/bookings?when=past&limit=200')).json.bookings as {
      from: string;
    }[];
    assert.deepEqual(
      past.map((b) => b.from),
      past.map((b) => b.from).sort(),
    );
  });

  test("a host's list takes the same filter; a phase that is not one is refused", async () => {
    assert.deepEqual(await allPages(tok.ops, '/v1/hosts/host-c/bookings?when=upcoming', 2), carol.upcoming);
    assert.deepEqual(await allPages(tok.ops, '/v1/hosts/host-c/bookings?when=active', 2), [carol.underWay]);
    assert.equal((await call(tok.carol, 'GET', '/v1/bookings?when=soon')).status, 400);
  });
});

describe('fleet self-service', () => {
  test('delist and relist through the API; another host is not found and nothing changes', async () => {
    const snap = await snapshotCity(stores.redis, city.id);
    assert.equal((await call(tok.hostB, 'POST', `/v1/vehicles/${v.a2}/delist`, {})).status, 404);
    assert.deepEqual(await snapshotCity(stores.redis, city.id), snap);
    const spare = await addVehicle(inv, city, { hostId: 'host-a' });
    const d = await call(tok.hostA, 'POST', `/v1/vehicles/${spare}/delist`, { reason: 'winter' });
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(d.json.listing, 'delisted');
    assert.equal((await call(tok.hostA, 'POST', `/v1/vehicles/${spare}/delist`, {})).status, 409);
    const r = await call(tok.hostA, 'POST', `/v1/vehicles/${spare}/relist`);
    assert.equal(r.json.listing, 'active');
  });

  test('retire: refused over trips to come, forced turns them into conflicts; final', async () => {
    const refused = await call(tok.hostB, 'DELETE', `/v1/vehicles/${v.b1}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.json.code, 'HAS_FUTURE_BOOKINGS');
    const ahead = refused.json.bookings as string[];
    assert.ok(ahead.length > 0);
    const forced = await call(tok.hostB, 'DELETE', `/v1/vehicles/${v.b1}?force=true&reason=sold`);
    assert.equal(forced.status, 200, JSON.stringify(forced.json));
    assert.equal(forced.json.listing, 'retired');
    for (const id of ahead) assert.equal((await inv.getEntry(id, 'booking')).entry.status, 'conflicted');
    assert.equal((await call(tok.hostB, 'POST', `/v1/vehicles/${v.b1}/relist`)).status, 409);
    const t = futureHour(900 * HOUR);
    const hold = await call(tok.carol, 'POST', '/v1/holds', { vehicleId: v.b1, from: iso(t), to: iso(t + HOUR) });
    assert.equal(hold.status, 409, 'a retired vehicle is never offered again');
  });
});

describe('times a person would send', () => {
  test('a block from now takes any instant, rounded to whole minutes; a trip window off the minute is refused, saying why', async () => {
    const spare = await addVehicle(inv, city, { hostId: 'host-a' });
    const now = Date.now();
    const odd = now - (now % 60_000) + 37_123;
    const maintenance = await call(tok.hostA, 'POST', `/v1/vehicles/${spare}/blocks`, {
      reason: 'maintenance',
      from: iso(odd),
      to: iso(odd + HOUR),
    });
    assert.equal(maintenance.status, 201, JSON.stringify(maintenance.json));
    assert.equal(maintenance.json.from, iso(odd - 37_123));
    assert.equal(maintenance.json.to, iso(odd - 37_123 + HOUR + 60_000));
    const t = futureHour(3000 * HOUR) + 30_000;
    const hold = await call(tok.alice, 'POST', '/v1/holds', {
      vehicleId: v.a1,
      from: iso(t),
      to: iso(t + HOUR - 30_000),
    });
    assert.equal(hold.status, 400);
    assert.equal(hold.json.code, 'INVALID_INTERVAL');
    assert.equal(hold.json.field, 'from');
    assert.match(String(hold.json.detail), new RegExp(`^from ${iso(t).replace(/[.]/g, '\\.')}: .*whole minutes`));
    const order = await call(tok.alice, 'POST', '/v1/holds', {
      vehicleId: v.a1,
      from: iso(t - 30_000 + HOUR),
      to: iso(t - 30_000),
    });
    assert.match(String(order.json.detail), /^to .*: to must be after from$/);
  });
});

describe('permissions beyond the role', () => {
  test('a token narrowed by scope may read but not write; nothing changes', async () => {
    const t = futureHour(1000 * HOUR);
    const snap = await snapshotCity(stores.redis, city.id);
    const w = await call(tok.readOnly, 'POST', '/v1/holds', { vehicleId: v.a1, from: iso(t), to: iso(t + HOUR) });
    assert.equal(w.status, 403);
    assert.equal(w.json.scope, 'bookings:write');
    assert.deepEqual(await snapshotCity(stores.redis, city.id), snap);
    assert.equal((await call(tok.readOnly, 'GET', '/v1/bookings')).status, 200);
  });

  test('ops limited to other cities see nothing of this one', async () => {
    const anyBooking = [...(made.get('alice') ?? [])].at(-1) ?? '';
    const snap = await snapshotCity(stores.redis, city.id);
    for (const [method, path] of [
      ['GET', `/v1/bookings/${anyBooking}`],
      ['POST', `/v1/bookings/${anyBooking}/cancel`],
      ['GET', `/v1/vehicles/${v.a1}/calendar`],
      ['POST', `/v1/vehicles/${v.a1}/delist`],
      ['GET', `/v1/events?city=${city.id}`],
    ] as const) {
      const r = await call(tok.opsElsewhere, method, path, method === 'POST' ? {} : undefined);
      assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.json)}`);
    }
    assert.deepEqual(await snapshotCity(stores.redis, city.id), snap);
    const listed = await call(tok.opsElsewhere, 'GET', '/v1/bookings?customerId=alice');
    assert.deepEqual(listed.json.bookings, []);
    const counts = await call(tok.opsElsewhere, 'GET', '/v1/analytics/cities');
    assert.deepEqual(counts.json.cities, []);
  });

  test('admin reads the configuration, secrets redacted; ops may not', async () => {
    const r = await call(tok.admin, 'GET', '/v1/admin/config');
    assert.equal(r.status, 200);
    const config = r.json.config as Record<string, unknown>;
    assert.ok('PORT' in config);
    assert.ok(config.JWT_SECRET === '' || config.JWT_SECRET === '<redacted>');
    assert.equal((await call(tok.ops, 'GET', '/v1/admin/config')).status, 403);
  });
});

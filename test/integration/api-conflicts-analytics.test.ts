/**
 * `GET /v1/analytics/conflicts` end to end: a scripted month of trouble in one city — bookings
 * of two hosts displaced by a maintenance block, an accident and delistings; offers accepted,
 * declined, lapsed, a NO_ALTERNATIVE, a conflicted booking cancelled by its customer and a
 * booking conflicted a second time — synced into a fresh PostgreSQL in small batches, then asked
 * over HTTP. Every figure is recomputed here independently from the events of the Redis stream
 * and must equal the endpoint's exactly. The same stream applied as ONE batch to another fresh
 * database, and then once more (re-delivery), leaves the same conflicts and offers rows.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { applyEvents } from '../../src/pg/projection.ts';
import { compareStreamIds, parseStreamEntry, type StreamEvent } from '../../src/redis/events.ts';
import { inTransaction } from '../../src/pg/tx.ts';
import { keys } from '../../src/redis/keys.ts';
import { ConflictDesk, type OfferRecord } from '../../src/services/conflicts.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ConflictWorker } from '../../src/workers/resolver.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, SEDAN, futureHour, testCity } from '../support/engine.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const LIMITS = { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 };
const OFFER_TTL = 1_500;
const HOST_A = 'host-a';
const HOST_B = 'host-b';
const city = testCity();
const catalog = new CityCatalog([city]);

let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let desk: ConflictDesk;
let resolver: ConflictWorker;
let app: App;
let base: string;
let replica: pg.Pool;
let replicaApp: App;
let events: StreamEvent[];
const tok: Record<string, string> = {};
const ids: Record<string, string> = {};

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function recordOf(bookingId: string): Promise<OfferRecord | undefined> {
  const raw = await stores.redis.hget(keys.offers(city.id), bookingId);
  return raw ? (JSON.parse(raw) as OfferRecord) : undefined;
}
const offersOf = (bookingId: string) => until(`offers of ${bookingId}`, () => recordOf(bookingId));
const settled = (bookingId: string, status: OfferRecord['status'], timeoutMs?: number) =>
  until(
    `${bookingId} ${status}`,
    async () => ((await recordOf(bookingId))?.status === status ? true : undefined),
    timeoutMs,
  );

async function vehicle(hostId: string, spec: Partial<typeof SEDAN> = {}): Promise<string> {
  return (await inv.createVehicle(city.id, { ...SEDAN, hostId, ...spec })).vehicleId;
}

before(async () => {
  stores = await startStores();
  const { redis } = stores;
  inv = new Inventory(redis, { cities: catalog });
  readModel = new ReadModel(redis, inv);
  await readModel.start();
  // The scripted scenario predates downgrades and the wait list: nothing free is NO_ALTERNATIVE at once.
  desk = new ConflictDesk(redis, inv, readModel, {
    offerTtlMs: OFFER_TTL,
    downgradeTiers: 0,
    waitlistCutoffMinutes: 0,
  });
  resolver = new ConflictWorker(redis, desk, inv.cities, { lapseEveryMs: 100, validateEveryMs: 0 });
  resolver.start();

  // Host A: two sedans that will be displaced, and the city's only luxury car. Host B: a sedan
  // that will be delisted. Spares (both hosts): two sedans and a dearer SUV (an upgrade). a2 and
  // b1 stand ~5 km off, so k1's offers are exactly the two spare sedans and the SUV.
  const a1 = await vehicle(HOST_A);
  const a2 = await vehicle(HOST_A, { location: { lat: 13.015, lng: 77.59 } });
  const a3 = await vehicle(HOST_A, { category: 'luxury', pricePerHour: 60 });
  const b1 = await vehicle(HOST_B, { location: { lat: 12.925, lng: 77.59 } });
  await vehicle(HOST_A, { location: { lat: 12.971, lng: 77.59 } });
  await vehicle(HOST_B, { location: { lat: 12.972, lng: 77.59 } });
  const suv = await vehicle(HOST_B, { category: 'suv', pricePerHour: 20 });
  const t = futureHour(48 * HOUR);
  const w = (i: number) => ({ from: t + i * 4 * HOUR, to: t + i * 4 * HOUR + 2 * HOUR });
  const book = async (name: string, vehicleId: string, i: number) => {
    ids[name] = (await inv.book({ vehicleId, customerId: `cust-${name}`, ...w(i) })).booking.id;
  };
  await book('k1', a1, 0);
  await book('k2', a1, 1);
  await book('k3', a2, 2);
  await book('k4', b1, 3);
  await book('k5', b1, 4);
  await book('k6', a3, 5);
  await book('k7', b1, 6);

  // Maintenance over k1 and k2: k1 takes the upgrade (the last offer), k2 declines.
  await inv.placeBlock({ vehicleId: a1, reason: 'maintenance', from: w(0).from, to: w(1).to });
  const r1 = await offersOf(ids.k1!);
  const upgrade = r1.offers.find((o) => o.incentive.kind === 'free_upgrade');
  assert.equal(upgrade?.vehicleId, suv, `the SUV upgrade among k1's offers: ${JSON.stringify(r1.offers)}`);
  await desk.accept(ids.k1!, upgrade!.id, r1.customerId);
  await offersOf(ids.k2!);
  await desk.decline(ids.k2!, undefined);

  // An accident under k3: its offers are left to lapse (waited for below).
  await inv.placeBlock({ vehicleId: a2, reason: 'accident' });
  await offersOf(ids.k3!);

  // b1 delisted under k4, k5, k7: k4 and k5 accept their first offer, k7's customer cancels.
  await inv.delist(b1, 'sold');
  for (const k of ['k4', 'k5'] as const) {
    const r = await offersOf(ids[k]!);
    await desk.accept(ids[k]!, r.offers[0]!.id, r.customerId);
  }
  await offersOf(ids.k7!);
  await inv.cancelBooking(ids.k7!, 'cust-k7', 'changed_plans');

  // The only luxury car delisted: nothing equal or better exists, so NO_ALTERNATIVE.
  await inv.delist(a3, 'retired');
  await settled(ids.k6!, 'no_alternative');

  // k1, now on the SUV, is displaced again: a second conflict of the same booking, with offers of
  // its own — none here (no other SUV or better is free), so NO_ALTERNATIVE.
  await inv.placeBlock({ vehicleId: suv, reason: 'maintenance', from: w(0).from, to: w(0).to });
  await until('k1 conflicted again', async () =>
    (await inv.getEntry(ids.k1!, 'booking')).entry.status === 'conflicted' ? true : undefined,
  );

  // k3 lapses; so do k7's offers (its booking is gone: only the holds are released).
  await settled(ids.k3!, 'lapsed', OFFER_TTL + 5_000);
  await settled(ids.k7!, 'lapsed', OFFER_TTL + 5_000);
  await until('k1 resolved again', async () =>
    (await inv.getEntry(ids.k1!, 'booking')).entry.cancelReason === 'NO_ALTERNATIVE' ? true : undefined,
  );
  await resolver.stop();
  await readModel.stop();

  // Small batches: boundaries fall between a conflict, its offers and their outcome.
  await new SyncWorker(redis, stores.pool, catalog, { batchSize: 5 }).drain();
  events = (await redis.xrange(keys.events(city.id), '-', '+')).map(([id, fields]) =>
    parseStreamEntry(city.id, id, fields),
  );

  const common = { inventory: inv, redis, authenticate: authenticator({ secret: SECRET }), rateLimits: LIMITS };
  app = await buildApp({ ...common, pool: stores.pool });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  replica = createPool(stores.db.url, { max: 2 });
  replicaApp = await buildApp({ ...common, pool: stores.pool, replicaPool: replica });
  tok.ops = await mintToken(SECRET, { sub: 'olga', role: 'ops' });
  tok.admin = await mintToken(SECRET, { sub: 'adam', role: 'admin' });
  tok.customer = await mintToken(SECRET, { sub: 'cust-k1', role: 'customer' });
  tok.host = await mintToken(SECRET, { sub: 'hana', role: 'host', hostId: HOST_A });
});

after(async () => {
  await resolver?.stop();
  await readModel?.stop();
  await app?.close();
  await replicaApp?.close();
  await replica?.end();
  await stores?.stop();
});

// ---- The expected figures, from the events alone -------------------------------------------

interface Conflict {
  booking: string;
  streamId: string;
  city: string;
  host: string | null;
  cause: string;
  at: number;
  resolution?: string;
  firstAt?: number;
  offers: number;
  cost: number;
}

const RESOLUTION: Record<string, string> = {
  offers_declined: 'declined',
  offers_lapsed: 'lapsed',
  NO_ALTERNATIVE: 'no_alternative',
};

/** Every conflict of the stream with what became of it: outcomes go to the booking's latest conflict. */
function conflictsFrom(evs: readonly StreamEvent[]): Conflict[] {
  const hostOf = new Map<string, string>();
  const all: Conflict[] = [];
  const latest = new Map<string, Conflict>();
  const incentives = new Map<string, number>();
  for (const e of [...evs].sort((a, b) => compareStreamIds(a.id, b.id))) {
    if (e.type.startsWith('vehicle.') && e.state?.hostId) hostOf.set(e.vehicle, String(e.state.hostId));
    const c = latest.get(e.subject);
    if (e.type === 'booking.conflicted') {
      const next: Conflict = {
        booking: e.subject,
        streamId: e.id,
        city: e.city,
        host: hostOf.get(e.vehicle) ?? null,
        cause: String(e.data.cause),
        at: e.time,
        offers: 0,
        cost: 0,
      };
      all.push(next);
      latest.set(e.subject, next);
    } else if (e.type === 'conflict.offers_ready' && c) {
      const offers = e.data.offers as { id: string; incentive: { amount: number } }[];
      c.offers += offers.length;
      c.firstAt ??= e.time;
      for (const o of offers) incentives.set(o.id, o.incentive.amount);
    } else if (e.type === 'booking.reaccommodated' && c && !c.resolution) {
      c.resolution = 'accepted';
      c.cost = incentives.get(String(e.data.offerId))!;
    } else if (e.type === 'booking.cancelled' && c && !c.resolution) {
      const reason = String(e.data.reason);
      if (RESOLUTION[reason]) c.resolution = RESOLUTION[reason];
      else if (e.data.previousStatus === 'conflicted') c.resolution = 'cancelled';
      if (reason === 'NO_ALTERNATIVE') {
        c.cost = (e.data.credit as { amount: number }).amount;
        c.firstAt ??= e.time;
      }
    }
  }
  return all;
}

/** Conversion of the offers of these bookings, per kind of alternative and per incentive. */
function conversionFrom(evs: readonly StreamEvent[], bookings: ReadonlySet<string>) {
  const offers: { kind: string; incentive: string; amount: number; id: string }[] = [];
  const accepted = new Set<string>();
  for (const e of evs) {
    if (e.type === 'conflict.offers_ready' && bookings.has(e.subject))
      for (const o of e.data.offers as { id: string; kind?: string; incentive: { kind: string; amount: number } }[])
        offers.push({ id: o.id, kind: o.kind ?? 'unknown', incentive: o.incentive.kind, amount: o.incentive.amount });
    if (e.type === 'booking.reaccommodated') accepted.add(String(e.data.offerId));
  }
  const group = (key: (o: (typeof offers)[number]) => string) => {
    const m = new Map<string, { offered: number; accepted: number; sample: (typeof offers)[number] }>();
    for (const o of offers) {
      const g = m.get(key(o)) ?? { offered: 0, accepted: 0, sample: o };
      g.offered++;
      if (accepted.has(o.id)) g.accepted++;
      m.set(key(o), g);
    }
    return [...m.values()];
  };
  const rate = (g: { offered: number; accepted: number }) => round6(g.accepted / g.offered);
  return {
    byAlternative: group((o) => o.kind)
      .sort((a, b) => (a.sample.kind < b.sample.kind ? -1 : 1))
      .map((g) => ({ alternative: g.sample.kind, offered: g.offered, accepted: g.accepted, conversion: rate(g) })),
    byIncentive: group((o) => `${o.incentive}|${o.amount}`)
      .sort((a, b) =>
        a.sample.incentive < b.sample.incentive
          ? -1
          : a.sample.incentive > b.sample.incentive
            ? 1
            : a.sample.amount - b.sample.amount,
      )
      .map((g) => ({
        incentive: g.sample.incentive,
        amount: g.sample.amount,
        offered: g.offered,
        accepted: g.accepted,
        conversion: rate(g),
      })),
  };
}

/** percentile_disc: the first value (ascending) whose cumulative share reaches p. */
function percentileDisc(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

function figures(cs: readonly Conflict[]) {
  const n = (r: string | undefined) => cs.filter((c) => c.resolution === r).length;
  const byCause: Record<string, number> = {};
  for (const c of cs) byCause[c.cause] = (byCause[c.cause] ?? 0) + 1;
  const [accepted, declined, lapsed, noAlternative] = [n('accepted'), n('declined'), n('lapsed'), n('no_alternative')];
  const closed = accepted + declined + lapsed + noAlternative;
  const waits = cs
    .filter((c) => c.firstAt !== undefined)
    .map((c) => c.firstAt! - c.at)
    .sort((a, b) => a - b);
  const cents = cs.reduce((sum, c) => sum + Math.round(c.cost * 100), 0);
  return {
    conflicts: cs.length,
    byCause,
    offersMade: cs.reduce((s, c) => s + c.offers, 0),
    accepted,
    declined,
    lapsed,
    noAlternative,
    cancelled: n('cancelled'),
    open: n(undefined),
    acceptanceRate: closed > 0 ? round6(accepted / closed) : null,
    timeToFirstOffer: { p50Ms: percentileDisc(waits, 0.5), p99Ms: percentileDisc(waits, 0.99) },
    incentiveCost: cents / 100,
  };
}

function expected(q: { from: number; to: number; city?: string; hostId?: string }) {
  const cs = conflictsFrom(events).filter(
    (c) =>
      c.at >= q.from &&
      c.at < q.to &&
      (q.city === undefined || c.city === q.city) &&
      (q.hostId === undefined || c.host === q.hostId),
  );
  const keysOf = (f: (c: Conflict) => string | null) =>
    [...new Set(cs.map(f))].sort((a, b) => ((a ?? '') < (b ?? '') ? -1 : 1));
  return {
    from: new Date(q.from).toISOString(),
    to: new Date(q.to).toISOString(),
    filters: {
      ...(q.city !== undefined ? { city: q.city } : {}),
      ...(q.hostId !== undefined ? { hostId: q.hostId } : {}),
    },
    totals: figures(cs),
    byCity: keysOf((c) => c.city).map((k) => ({ city: k, ...figures(cs.filter((c) => c.city === k)) })),
    byHost: keysOf((c) => c.host).map((k) => ({ hostId: k, ...figures(cs.filter((c) => c.host === k)) })),
    conversion: conversionFrom(events, new Set(cs.map((c) => c.booking))),
  };
}

// ---- Over HTTP ---------------------------------------------------------------------------------

async function get(query: Record<string, string>, token: string = tok.ops!) {
  const res = await fetch(`${base}/v1/analytics/conflicts?${new URLSearchParams(query)}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

const iso = (ms: number) => new Date(ms).toISOString();
const span = () => ({ from: events[0]!.time - 1_000, to: events.at(-1)!.time + 1_000 });

describe('GET /v1/analytics/conflicts', () => {
  test('the scenario happened as scripted (from the events)', () => {
    const t = figures(conflictsFrom(events));
    assert.deepEqual(t.byCause, { maintenance: 3, accident: 1, delisted: 4 });
    assert.deepEqual(
      [t.conflicts, t.accepted, t.declined, t.lapsed, t.noAlternative, t.cancelled, t.open],
      [8, 3, 1, 1, 2, 1, 0],
    );
    assert.ok(t.offersMade >= 6, `offers made: ${t.offersMade}`);
    assert.ok(t.incentiveCost >= 50 + 3 * 10, `incentive cost: ${t.incentiveCost}`);
    assert.notEqual(t.timeToFirstOffer.p50Ms, null);
  });

  test('whole span: exact figures, totals, per city and per host; then a cache hit', async () => {
    const { from, to } = span();
    const r = await get({ from: iso(from), to: iso(to) });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json, expected({ from, to }));
    assert.equal(r.headers.get('x-cache'), 'miss');
    assert.match(String(r.headers.get('cache-control')), /max-age=10\b/);
    const again = await get({ from: iso(from), to: iso(to) }, tok.admin);
    assert.equal(again.headers.get('x-cache'), 'hit');
    assert.deepEqual(again.json, r.json);
    const byHost = (r.json.byHost as { hostId: string }[]).map((h) => h.hostId);
    assert.deepEqual(byHost, [HOST_A, HOST_B], 'the host of the original vehicle, never the alternative');
  });

  test('filters: city, host, both; and a window that cuts the span', async () => {
    const { from, to } = span();
    const filters: Record<string, string>[] = [
      { city: city.id },
      { hostId: HOST_A },
      { hostId: HOST_B },
      { city: city.id, hostId: HOST_B },
      { hostId: 'nobody' },
    ];
    for (const f of filters) {
      const r = await get({ from: iso(from), to: iso(to), ...f });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json, expected({ from, to, ...f }), JSON.stringify(f));
    }
    // From the delisting of b1 on (inclusive), to k1's second conflict (exclusive).
    const conflicted = events.filter((e) => e.type === 'booking.conflicted');
    const cutFrom = conflicted.find((e) => e.data.cause === 'delisted')!.time;
    const cutTo = conflicted.at(-1)!.time;
    const cut = await get({ from: iso(cutFrom), to: iso(cutTo) });
    assert.equal(cut.status, 200, JSON.stringify(cut.json));
    assert.deepEqual(cut.json, expected({ from: cutFrom, to: cutTo }));
    assert.equal((cut.json.totals as { open: number }).open, 0, "k1's second conflict is outside");
    // Long ago: nothing, and the rates and percentiles are null.
    const empty = await get({ from: '2001-01-01T00:00:00Z', to: '2001-02-01T00:00:00Z' });
    assert.equal(empty.status, 200, JSON.stringify(empty.json));
    assert.deepEqual(
      empty.json,
      expected({ from: Date.parse('2001-01-01T00:00:00Z'), to: Date.parse('2001-02-01T00:00:00Z') }),
    );
    assert.deepEqual(
      (empty.json.totals as { acceptanceRate: unknown; timeToFirstOffer: unknown }).acceptanceRate,
      null,
    );
  });

  test('reads from the replica pool when one is given', async () => {
    let onReplica = 0;
    let onMain = 0;
    const countReplica = () => {
      onReplica++;
    };
    const countMain = () => {
      onMain++;
    };
    replica.on('acquire', countReplica);
    stores.pool.on('acquire', countMain);
    try {
      const { from, to } = span();
      const res = await replicaApp.inject({
        method: 'GET',
        url: `/v1/analytics/conflicts?${new URLSearchParams({ from: iso(from), to: iso(to) })}`,
        headers: { authorization: `Bearer ${tok.ops}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), expected({ from, to }));
    } finally {
      replica.off('acquire', countReplica);
      stores.pool.off('acquire', countMain);
    }
    assert.ok(onReplica >= 1);
    assert.equal(onMain, 0);
  });

  test("a host sees its own fleet's conflicts only; another host's is not found", async () => {
    const { from, to } = span();
    const own = await get({ from: iso(from), to: iso(to) }, tok.host);
    assert.equal(own.status, 200, JSON.stringify(own.json));
    assert.deepEqual(own.json, expected({ from, to, hostId: HOST_A }));
    const named = await get({ from: iso(from), to: iso(to), hostId: HOST_A }, tok.host);
    assert.deepEqual(named.json, own.json);
    const other = await get({ from: iso(from), to: iso(to), hostId: HOST_B }, tok.host);
    assert.equal(other.status, 404, JSON.stringify(other.json));
  });

  test('refusals: 403 for customers, 400 for bad times and from >= to, 404 unknown city, 401 without a token', async () => {
    const { from, to } = span();
    const ok = { from: iso(from), to: iso(to) };
    const problem = (r: Awaited<ReturnType<typeof get>>, status: number, code: string) => {
      assert.equal(r.status, status, JSON.stringify(r.json));
      assert.match(String(r.headers.get('content-type')), /^application\/problem\+json/);
      assert.equal(r.json.code, code);
    };
    problem(await get(ok, tok.customer), 403, 'FORBIDDEN');
    problem(await get({ ...ok, from: 'yesterday' }), 400, 'VALIDATION');
    problem(await get({ from: ok.from }), 400, 'VALIDATION');
    problem(await get({ ...ok, to: ok.from }), 400, 'INVALID_INTERVAL');
    problem(await get({ from: ok.to, to: ok.from }), 400, 'INVALID_INTERVAL');
    problem(await get({ ...ok, extra: '1' }), 400, 'VALIDATION');
    problem(await get({ ...ok, city: 'zz404' }), 404, 'NOT_FOUND');
    problem(await get(ok, ''), 401, 'UNAUTHENTICATED');
  });
});

// ---- The projection ------------------------------------------------------------------------------

async function rowsOf(pool: pg.Pool) {
  const conflicts = await pool.query(
    `SELECT booking_id, stream_id, host_id, cause, conflicted_at, resolution, resolved_at FROM conflicts WHERE city = $1 ORDER BY booking_id, stream_id`,
    [city.id],
  );
  const offers = await pool.query(
    `SELECT id, booking_id, vehicle_id, hold_id, incentive, status, created_at, updated_at FROM offers WHERE city = $1 ORDER BY id`,
    [city.id],
  );
  return { conflicts: conflicts.rows, offers: offers.rows };
}

describe('projection of conflicts and offers', () => {
  test('offers rows: one per offer, accepted or released as the events say; conflicts carry their resolution', async () => {
    const { conflicts, offers } = await rowsOf(stores.pool);
    const accepted = new Set(
      events.filter((e) => e.type === 'booking.reaccommodated').map((e) => String(e.data.offerId)),
    );
    const made = events
      .filter((e) => e.type === 'conflict.offers_ready')
      .flatMap((e) =>
        (e.data.offers as { id: string; vehicleId: string; holdId: string; incentive: unknown }[]).map((o) => ({
          id: o.id,
          booking_id: e.subject,
          vehicle_id: o.vehicleId,
          hold_id: o.holdId,
          incentive: o.incentive,
          status: accepted.has(o.id) ? 'accepted' : 'released',
          created_at: new Date(e.time),
        })),
      );
    assert.deepEqual(
      offers.map(({ updated_at: _u, ...o }) => o),
      made.sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    const want = conflictsFrom(events)
      .map((c) => [c.booking, c.streamId, c.host, c.resolution ?? null])
      .sort();
    assert.deepEqual(conflicts.map((c) => [c.booking_id, c.stream_id, c.host_id, c.resolution]).sort(), want);
    const k1 = conflicts.filter((c) => c.booking_id === ids.k1);
    assert.deepEqual(
      k1.map((c) => c.resolution),
      ['accepted', 'no_alternative'],
      'each conflict of the booking has its own outcome',
    );
  });

  test('the whole stream as ONE batch into a fresh database, then again (re-delivery): the same rows', async () => {
    const other: TestDatabase = await createTestDatabase();
    const pool = createPool(other.url, { max: 2 });
    try {
      await migrate(other.url);
      await inTransaction(pool, (db) => applyEvents(db, events));
      const once = await rowsOf(pool);
      assert.deepEqual(once, await rowsOf(stores.pool), 'one batch = many small batches');
      await inTransaction(pool, (db) => applyEvents(db, events));
      assert.deepEqual(await rowsOf(pool), once, 're-delivered events change nothing');
    } finally {
      await pool.end();
      await other.drop();
    }
  });
});

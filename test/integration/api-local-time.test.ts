/**
 * Local time (docs/api.md, "Local time"), end to end on real Redis and PostgreSQL, in two cities
 * whose days start at other UTC hours: one in Asia/Kolkata (+05:30, its day starts at 18:30 UTC)
 * and one in America/Los_Angeles (−08:00 in January, its day starts at 08:00 UTC). Trips near a
 * UTC midnight fall on another local day than UTC day: utilization buckets by the city's days
 * and hours by default, by UTC's with `tz=UTC`, and a zone that is none is 400; a day the clocks
 * change is 23 hours long; the forecast is written in the city's local time; iCalendar exports
 * carry TZID with a VTIMEZONE that ical.js and our own import read back to the same instants.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ICAL from 'ical.js';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { CityCatalog, type City } from '../../src/domain/cities.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, addVehicle, testCity } from '../support/engine.ts';
import { tenantTokens } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('local-time-secret-of-at-least-32-bytes!');
const DAY = 24 * HOUR;
const kolkata: City = { ...testCity(), timeZone: 'Asia/Kolkata' };
const losAngeles: City = { ...testCity(), timeZone: 'America/Los_Angeles' };
const Y = new Date().getUTCFullYear() + 1;
/** 15 January next year, 00:00 UTC: 05:30 that day in Kolkata, 16:00 the day before in Los Angeles. */
const D = Date.UTC(Y, 0, 15);
/** The second Sunday of March next year: Los Angeles goes from −08:00 to −07:00 at 02:00. */
const SPRING = 8 + ((7 - new Date(Date.UTC(Y, 2, 1)).getUTCDay()) % 7);
const SPRING_START = Date.UTC(Y, 2, SPRING, 8); // 00:00 −08:00
const SPRING_END = Date.UTC(Y, 2, SPRING + 1, 7); // 00:00 −07:00 the next day
const iso = (ms: number) => new Date(ms).toISOString();
const dd = (n: number) => String(n).padStart(2, '0');

let stores: Stores;
let inv: Inventory;
let app: App;
let tok: Awaited<ReturnType<typeof tenantTokens>>;
const vehicle: Record<'kolkata' | 'losAngeles', string> = { kolkata: '', losAngeles: '' };

before(async () => {
  stores = await startStores();
  const catalog = new CityCatalog([kolkata, losAngeles]);
  inv = new Inventory(stores.redis, { cities: catalog });
  vehicle.kolkata = await addVehicle(inv, kolkata, { hostId: 'host-a' });
  vehicle.losAngeles = await addVehicle(inv, losAngeles, { hostId: 'host-a' });
  // Both across the UTC midnight D, and each within one local day of its city.
  await inv.book({ vehicleId: vehicle.kolkata, customerId: 'alice', from: D - 2 * HOUR, to: D + HOUR });
  await inv.book({ vehicleId: vehicle.losAngeles, customerId: 'alice', from: D - HOUR, to: D + 2 * HOUR });
  // The whole of the day Los Angeles springs forward: 23 hours.
  await inv.book({ vehicleId: vehicle.losAngeles, customerId: 'bob', from: SPRING_START, to: SPRING_END });
  await new SyncWorker(stores.redis, stores.pool, catalog).drain();
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 },
  });
  tok = await tenantTokens(SECRET);
});

after(async () => {
  await app?.close();
  await stores?.stop();
});

async function get(url: string, token = tok.ops) {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  return { status: res.statusCode, text: res.body, headers: res.headers };
}

interface Utilization {
  timeZone: string;
  from: string;
  to: string;
  buckets: { start: string; end: string; vehicles: number; bookedHours: number; utilization: number }[];
  code?: string;
}
async function utilization(city: City, from: number, to: number, granularity: string, tz?: string) {
  const query = new URLSearchParams({ city: city.id, from: iso(from), to: iso(to), granularity });
  if (tz !== undefined) query.set('tz', tz);
  const r = await get(`/v1/analytics/utilization?${query}`);
  const json = JSON.parse(r.text) as Utilization;
  return { ...r, json };
}
const starts = (u: Utilization) => u.buckets.map((b) => b.start);
const booked = (u: Utilization) => u.buckets.map((b) => b.bookedHours);

describe('utilization in local time', () => {
  test("day buckets are the city's days: from 18:30 UTC in Kolkata, from 08:00 UTC in Los Angeles", async () => {
    const k = await utilization(kolkata, D - DAY, D + DAY, 'day');
    assert.equal(k.status, 200, k.text);
    assert.equal(k.json.timeZone, 'Asia/Kolkata');
    assert.equal(k.json.from, `${Y}-01-14T05:30:00.000+05:30`);
    assert.equal(k.json.to, `${Y}-01-16T05:30:00.000+05:30`);
    assert.deepEqual(starts(k.json), [
      `${Y}-01-14T00:00:00.000+05:30`,
      `${Y}-01-15T00:00:00.000+05:30`,
      `${Y}-01-16T00:00:00.000+05:30`,
    ]);
    assert.equal(Date.parse(k.json.buckets[1]?.start ?? ''), D - 5.5 * HOUR, '18:30 UTC the day before');
    assert.equal(k.json.buckets[1]?.end, `${Y}-01-16T00:00:00.000+05:30`);
    assert.deepEqual(booked(k.json), [0, 3, 0], 'the trip is on one Kolkata day');

    const l = await utilization(losAngeles, D - DAY, D + DAY, 'day');
    assert.equal(l.status, 200, l.text);
    assert.equal(l.json.timeZone, 'America/Los_Angeles');
    assert.equal(l.json.from, `${Y}-01-13T16:00:00.000-08:00`);
    assert.deepEqual(starts(l.json), [
      `${Y}-01-13T00:00:00.000-08:00`,
      `${Y}-01-14T00:00:00.000-08:00`,
      `${Y}-01-15T00:00:00.000-08:00`,
    ]);
    assert.equal(Date.parse(l.json.buckets[2]?.start ?? ''), D + 8 * HOUR, '08:00 UTC');
    assert.deepEqual(booked(l.json), [0, 3, 0], 'the trip is on one Los Angeles day');
  });

  test('tz=UTC: the same trips split over two UTC days; another city zone likewise', async () => {
    const k = await utilization(kolkata, D - DAY, D + DAY, 'day', 'UTC');
    assert.equal(k.status, 200, k.text);
    assert.equal(k.json.timeZone, 'UTC');
    assert.deepEqual(starts(k.json), [iso(D - DAY), iso(D)]);
    assert.deepEqual(booked(k.json), [2, 1]);
    const l = await utilization(losAngeles, D - DAY, D + DAY, 'day', 'UTC');
    assert.deepEqual(starts(l.json), [iso(D - DAY), iso(D)]);
    assert.deepEqual(booked(l.json), [1, 2]);
    // Los Angeles's fleet by Kolkata's days: its trip (04:30 to 07:30 there) is on 15 January.
    const x = await utilization(losAngeles, D - DAY, D + DAY, 'day', 'Asia/Kolkata');
    assert.equal(x.json.timeZone, 'Asia/Kolkata');
    assert.equal(x.json.buckets[1]?.start, `${Y}-01-15T00:00:00.000+05:30`);
    assert.deepEqual(booked(x.json), [0, 3, 0]);
  });

  test('hour buckets start at the local whole hour: half past in Kolkata, on the hour with tz=UTC', async () => {
    const k = await utilization(kolkata, D - HOUR, D + HOUR, 'hour');
    assert.equal(k.status, 200, k.text);
    assert.deepEqual(starts(k.json), [
      `${Y}-01-15T04:00:00.000+05:30`,
      `${Y}-01-15T05:00:00.000+05:30`,
      `${Y}-01-15T06:00:00.000+05:30`,
    ]);
    assert.deepEqual(booked(k.json), [1, 1, 0.5], 'the trip ends at 06:30 there');
    const u = await utilization(kolkata, D - HOUR, D + HOUR, 'hour', 'UTC');
    assert.deepEqual(starts(u.json), [iso(D - HOUR), iso(D)]);
    assert.deepEqual(booked(u.json), [1, 1]);
    const l = await utilization(losAngeles, D - HOUR, D + HOUR, 'hour');
    assert.deepEqual(starts(l.json), [`${Y}-01-14T15:00:00.000-08:00`, `${Y}-01-14T16:00:00.000-08:00`]);
  });

  test('the day the clocks go forward is 23 hours long, and has no 02:00', async () => {
    const day = await utilization(losAngeles, SPRING_START, SPRING_END, 'day');
    assert.equal(day.status, 200, day.text);
    assert.deepEqual(
      day.json.buckets.map((b) => [b.start, b.end, b.bookedHours, b.utilization]),
      [[`${Y}-03-${dd(SPRING)}T00:00:00.000-08:00`, `${Y}-03-${dd(SPRING + 1)}T00:00:00.000-07:00`, 23, 1]],
    );
    const hours = await utilization(losAngeles, SPRING_START, SPRING_END, 'hour');
    assert.equal(hours.json.buckets.length, 23);
    assert.deepEqual(starts(hours.json).slice(1, 3), [
      `${Y}-03-${dd(SPRING)}T01:00:00.000-08:00`,
      `${Y}-03-${dd(SPRING)}T03:00:00.000-07:00`,
    ]);
    assert.ok(hours.json.buckets.every((b) => b.utilization === 1));
  });

  test('a tz that is no zone is 400 INVALID_TIME_ZONE; each zone has its own cache entry', async () => {
    for (const tz of ['Mars/Olympus', '+05:30', 'UTC+1', 'Asia/', '../etc', '']) {
      const r = await utilization(kolkata, D - DAY, D + DAY, 'day', tz);
      assert.equal(r.status, 400, `${tz}: ${r.text}`);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      assert.equal(r.json.code, 'INVALID_TIME_ZONE', tz);
    }
    const window = [D + 10 * DAY, D + 12 * DAY] as const;
    assert.equal((await utilization(kolkata, ...window, 'day')).headers['x-cache'], 'miss');
    assert.equal((await utilization(kolkata, ...window, 'day', 'Asia/Kolkata')).headers['x-cache'], 'hit');
    assert.equal((await utilization(kolkata, ...window, 'day', 'UTC')).headers['x-cache'], 'miss');
  });
});

test("the forecast names the city's zone and writes its hours in local time", async () => {
  const r = await get(`/v1/analytics/forecast?city=${kolkata.id}&horizonHours=3`);
  assert.equal(r.status, 200, r.text);
  const f = JSON.parse(r.text) as {
    timeZone: string;
    generatedAt: string;
    categories: { hours: { start: string }[] }[];
  };
  assert.equal(f.timeZone, 'Asia/Kolkata');
  assert.match(f.generatedAt, /\+05:30$/);
  const hours = f.categories.flatMap((c) => c.hours);
  assert.ok(hours.length > 0);
  for (const h of hours) {
    assert.match(h.start, /T\d\d:30:00\.000\+05:30$/, 'UTC hours, written in Kolkata time');
    assert.equal(Date.parse(h.start) % HOUR, 0);
  }
});

describe('iCalendar exports in local time', () => {
  const exported = async (vehicleId: string) => {
    const r = await get(`/v1/vehicles/${vehicleId}/calendar.ics`, tok.hostA);
    assert.equal(r.status, 200, r.text);
    return r.text;
  };
  const ms = (t: InstanceType<typeof ICAL.Time>) => t.toUnixTime() * 1000;

  test('Los Angeles: TZID on every time, a VTIMEZONE with its two offsets; ical.js reads the same instants', async () => {
    const text = await exported(vehicle.losAngeles);
    assert.match(text, /\r\nX-WR-TIMEZONE:America\/Los_Angeles\r\n/);
    assert.match(text, new RegExp(`\\r\\nDTSTART;TZID=America/Los_Angeles:${Y}0114T150000\\r\\n`));
    assert.match(text, new RegExp(`\\r\\nDTEND;TZID=America/Los_Angeles:${Y}0114T180000\\r\\n`));
    assert.doesNotMatch(text, /\r\nDT(START|END):\d{8}T\d{6}Z\r\n/, 'no time left in UTC');
    const cal = new ICAL.Component(ICAL.parse(text));
    const [zone, ...others] = cal.getAllSubcomponents('vtimezone');
    assert.ok(zone && others.length === 0);
    assert.equal(zone.getFirstPropertyValue('tzid'), 'America/Los_Angeles');
    const offsets = (kind: string) =>
      zone.getAllSubcomponents(kind).map((c) => String(c.getFirstPropertyValue('tzoffsetto')));
    assert.deepEqual([...new Set(offsets('standard'))], ['-08:00']);
    assert.deepEqual([...new Set(offsets('daylight'))], ['-07:00']);
    const events = cal.getAllSubcomponents('vevent').map((c) => new ICAL.Event(c));
    assert.deepEqual(
      events
        .map((e) => [e.startDate.zone?.tzid, ms(e.startDate), ms(e.endDate)])
        .sort((a, b) => Number(a[1]) - Number(b[1])),
      [
        ['America/Los_Angeles', D - HOUR, D + 2 * HOUR],
        ['America/Los_Angeles', SPRING_START, SPRING_END],
      ],
    );
  });

  test('Kolkata: one STANDARD observance at +05:30, no DAYLIGHT', async () => {
    const text = await exported(vehicle.kolkata);
    assert.match(text, new RegExp(`\\r\\nDTSTART;TZID=Asia/Kolkata:${Y}0115T033000\\r\\n`));
    const zone = new ICAL.Component(ICAL.parse(text)).getFirstSubcomponent('vtimezone');
    assert.ok(zone);
    assert.equal(zone.getAllSubcomponents('daylight').length, 0);
    const standard = zone.getAllSubcomponents('standard');
    assert.equal(standard.length, 1);
    assert.equal(String(standard[0]?.getFirstPropertyValue('tzoffsetto')), '+05:30');
    const event = new ICAL.Component(ICAL.parse(text)).getFirstSubcomponent('vevent');
    assert.ok(event);
    assert.equal(ms(new ICAL.Event(event).startDate), D - 2 * HOUR);
  });

  test('our import reads an export (TZID and VTIMEZONE) back to the same instants', async () => {
    const text = (await exported(vehicle.losAngeles)).replaceAll('@fleet-inventory', '@another-channel');
    const target = await addVehicle(inv, losAngeles, { hostId: 'host-a' });
    const res = await app.inject({
      method: 'POST',
      url: `/v1/vehicles/${target}/calendar`,
      headers: { authorization: `Bearer ${tok.hostA}`, 'content-type': 'text/calendar' },
      payload: text,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((res.json() as { imported: number }).imported, 2, res.body);
    const calendar = await get(`/v1/vehicles/${target}/calendar`, tok.hostA);
    const blocks = (JSON.parse(calendar.text) as { entries: { kind: string; from: string; to: string }[] }).entries
      .filter((e) => e.kind === 'block')
      .map((e) => [Date.parse(e.from), Date.parse(e.to)])
      .sort((a, b) => Number(a[0]) - Number(b[0]));
    assert.deepEqual(blocks, [
      [D - HOUR, D + 2 * HOUR],
      [SPRING_START, SPRING_END],
    ]);
  });
});

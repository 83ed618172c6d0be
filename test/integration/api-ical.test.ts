/**
 * iCalendar over real HTTP: the export parses with a standard library (ical.js) and says the right
 * things; the import turns another channel's VEVENTs into host blocks, idempotently, and refuses
 * what is not iCalendar; tenancy as for the JSON calendar.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ICAL from 'ical.js';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, MINUTE, addVehicle, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { tenantTokens } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const DAY = 24 * HOUR;
let server: RedisServer;
let redis: Redis;
let app: App;
let base: string;
let inv: Inventory;
const city = testCity();
const tok: Record<string, string> = {};

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  inv = newInventory(redis, city);
  app = await buildApp({
    inventory: inv,
    redis,
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: { customer: 10_000, host: 10_000, ops: 10_000, admin: 10_000 },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  Object.assign(tok, await tenantTokens(SECRET));
});
after(async () => {
  await app.close();
  redis.disconnect();
  await server.stop();
});

async function call(method: string, path: string, opts: { token?: string; body?: string; type?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.type) headers['content-type'] = opts.type;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
}

function assertProblem(r: Awaited<ReturnType<typeof call>>, status: number, code: string) {
  assert.equal(r.status, status, r.text);
  assert.match(r.type, /^application\/problem\+json/);
  assert.equal(r.json.code, code);
}

const ics = (path: string, token: string) => call('GET', path, { token });
const importCal = (vehicleId: string, body: string, token = tok.hostA!, type = 'text/calendar; charset=utf-8') =>
  call('POST', `/v1/vehicles/${vehicleId}/calendar`, { token, body, type });
const vcal = (...events: string[]) =>
  ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//other channel//EN', ...events, 'END:VCALENDAR', ''].join('\r\n');
const vevent = (...props: string[]) =>
  ['BEGIN:VEVENT', 'DTSTAMP:20250101T000000Z', ...props, 'END:VEVENT'].join('\r\n');
const ms = (t: InstanceType<typeof ICAL.Time>) => t.toUnixTime() * 1000;

interface Item {
  kind: string;
  id: string;
  status: string;
  from: string;
  to: string | null;
  reason?: string;
}
async function hostBlocks(vehicleId: string) {
  const r = await call('GET', `/v1/vehicles/${vehicleId}/calendar`, { token: tok.hostA });
  return (r.json.entries as Item[]).filter((e) => e.kind === 'block' && e.reason === 'host');
}

describe('GET /v1/vehicles/:id/calendar.ics', () => {
  let vehicle: string;
  let wreck: string;
  let T: number;
  let ids: { booking: string; hold: string; block: string };
  const note = `from the other channel: a, b; c\\d\nsecond line ${'é'.repeat(60)} ${'x'.repeat(120)}`;

  before(async () => {
    vehicle = await addVehicle(inv, city, { hostId: 'host-a' });
    wreck = await addVehicle(inv, city, { hostId: 'host-a' });
    T = futureHour(2 * HOUR);
    const b = await inv.book({ vehicleId: vehicle, customerId: 'alice', from: T, to: T + 2 * HOUR });
    const h = await inv.placeHold({ vehicleId: vehicle, customerId: 'bob', from: T + 5 * HOUR, to: T + 6 * HOUR });
    const k = await inv.placeBlock({
      vehicleId: vehicle,
      reason: 'maintenance',
      from: T + 10 * HOUR,
      to: T + 12 * HOUR,
      note,
    });
    ids = { booking: b.booking.id, hold: h.hold.id, block: k.block.id };
    await inv.placeBlock({ vehicleId: wreck, reason: 'accident' });
  });

  test('a valid VCALENDAR: CRLF, folded lines, one VEVENT per entry with the right times, status and categories', async () => {
    const r = await ics(`/v1/vehicles/${vehicle}/calendar.ics`, tok.hostA!);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/calendar; charset=utf-8');
    assert.ok(r.text.endsWith('\r\n') && !/[^\r]\n/.test(r.text), 'CRLF line endings only');
    for (const line of r.text.split('\r\n'))
      assert.ok(Buffer.byteLength(line) <= 75, `line of ${Buffer.byteLength(line)} octets`);
    assert.match(r.text, /\r\n [^\r]/, 'the long note is folded');

    const cal = new ICAL.Component(ICAL.parse(r.text));
    assert.equal(cal.name, 'vcalendar');
    assert.equal(cal.getFirstPropertyValue('version'), '2.0');
    assert.ok(cal.getFirstPropertyValue('prodid'));
    const events = new Map(cal.getAllSubcomponents('vevent').map((c) => [String(c.getFirstPropertyValue('uid')), c]));
    assert.equal(events.size, 3);
    const expect = [
      [ids.booking, T, T + 2 * HOUR, 'booking (confirmed)', 'CONFIRMED', 'booking'],
      [ids.hold, T + 5 * HOUR, T + 6 * HOUR, 'hold (held)', 'TENTATIVE', 'hold'],
      [ids.block, T + 10 * HOUR, T + 12 * HOUR, 'block (active)', 'CONFIRMED', 'block'],
    ] as const;
    for (const [id, from, to, summary, status, category] of expect) {
      const c = events.get(`${id}@fleet-inventory`);
      assert.ok(c, `VEVENT for ${id}`);
      const ev = new ICAL.Event(c);
      assert.equal(ev.startDate.zone?.tzid, 'UTC');
      assert.equal(ms(ev.startDate), from);
      assert.equal(ms(ev.endDate), to);
      assert.equal(ev.summary, summary);
      assert.equal(c.getFirstPropertyValue('status'), status);
      assert.equal(c.getFirstPropertyValue('categories'), category);
      assert.ok(c.getFirstPropertyValue('dtstamp'));
    }
    // Text escaping and folding round-trip through a standard parser.
    assert.equal(
      events.get(`${ids.block}@fleet-inventory`)!.getFirstPropertyValue('description'),
      `reason: maintenance\nnote: ${note}`,
    );
    assert.match(r.text, /\r\nDTSTART:\d{8}T\d{6}Z\r\n/);
  });

  test('from/to select entries as the JSON calendar does', async () => {
    const r = await ics(
      `/v1/vehicles/${vehicle}/calendar.ics?from=${new Date(T + 4 * HOUR).toISOString()}&to=${new Date(T + 7 * HOUR).toISOString()}`,
      tok.hostA!,
    );
    const uids = new ICAL.Component(ICAL.parse(r.text))
      .getAllSubcomponents('vevent')
      .map((c) => c.getFirstPropertyValue('uid'));
    assert.deepEqual(uids, [`${ids.hold}@fleet-inventory`]);
  });

  test('an open-ended block ends with the window (a year ahead by default), marked X-FLEET-OPEN-ENDED', async () => {
    const r = await ics(`/v1/vehicles/${wreck}/calendar.ics`, tok.hostA!);
    const [c] = new ICAL.Component(ICAL.parse(r.text)).getAllSubcomponents('vevent');
    const ev = new ICAL.Event(c!);
    assert.equal(ev.summary, 'block (active)');
    assert.equal(c!.getFirstPropertyValue('x-fleet-open-ended'), 'TRUE');
    assert.ok(Math.abs(ms(ev.endDate) - (Date.now() + 365 * DAY)) < 5 * MINUTE);
    const until = T + 3 * DAY;
    const w = await ics(`/v1/vehicles/${wreck}/calendar.ics?to=${new Date(until).toISOString()}`, tok.hostA!);
    assert.equal(
      ms(new ICAL.Event(new ICAL.Component(ICAL.parse(w.text)).getFirstSubcomponent('vevent')!).endDate),
      until,
    );
  });

  test('the vehicle host and staff only: another host and a customer get 404, no token 401', async () => {
    assertProblem(await ics(`/v1/vehicles/${vehicle}/calendar.ics`, tok.hostB!), 404, 'NOT_FOUND');
    assertProblem(await ics(`/v1/vehicles/${vehicle}/calendar.ics`, tok.alice!), 404, 'NOT_FOUND');
    assertProblem(await call('GET', `/v1/vehicles/${vehicle}/calendar.ics`), 401, 'UNAUTHENTICATED');
    assertProblem(await ics(`/v1/vehicles/v_${city.id}_nope/calendar.ics`, tok.ops!), 404, 'NOT_FOUND');
    const staff = await ics(`/v1/vehicles/${vehicle}/calendar.ics`, tok.ops!);
    assert.equal(staff.status, 200);
    assert.equal(new ICAL.Component(ICAL.parse(staff.text)).getAllSubcomponents('vevent').length, 3);
  });

  test('both routes are in the OpenAPI document', async () => {
    const doc = (await call('GET', '/openapi.json')).json as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    assert.ok(doc.paths['/v1/vehicles/{id}/calendar.ics']?.get);
    assert.ok(doc.paths['/v1/vehicles/{id}/calendar']?.post?.requestBody?.content['text/calendar']);
  });
});

describe('POST /v1/vehicles/:id/calendar (import)', () => {
  const Y = new Date().getUTCFullYear() + 1;
  const at = (m: number, d: number, h = 0, min = 0) => Date.UTC(Y, m - 1, d, h, min);
  const berlin = [
    'BEGIN:VTIMEZONE',
    'TZID:Europe/Berlin',
    'BEGIN:DAYLIGHT',
    'TZOFFSETFROM:+0100',
    'TZOFFSETTO:+0200',
    'TZNAME:CEST',
    'DTSTART:19700329T020000',
    'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU',
    'END:DAYLIGHT',
    'BEGIN:STANDARD',
    'TZOFFSETFROM:+0200',
    'TZOFFSETTO:+0100',
    'TZNAME:CET',
    'DTSTART:19701025T030000',
    'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU',
    'END:STANDARD',
    'END:VTIMEZONE',
  ].join('\r\n');
  // Weekly, four times from the day after tomorrow, the second one excepted (EXDATE).
  const weekly = Math.ceil((Date.now() + 2 * DAY) / DAY) * DAY + 10 * HOUR;
  const stamp = (t: number) =>
    new Date(t)
      .toISOString()
      .replace(/\.\d{3}/, '')
      .replace(/[-:]/g, '');
  const file = vcal(
    berlin,
    vevent('UID:utc-\r\n 1', `DTSTART:${Y}0115T090000Z`, `DTEND:${Y}0115T113000Z`, 'SUMMARY:Booked elsewhere'),
    vevent(
      'UID:berlin-winter',
      `DTSTART;TZID=Europe/Berlin:${Y}0116T100000`,
      `DTEND;TZID=Europe/Berlin:${Y}0116T120000`,
    ),
    vevent(
      'UID:berlin-summer',
      `DTSTART;TZID=Europe/Berlin:${Y}0716T100000`,
      `DTEND;TZID=Europe/Berlin:${Y}0716T120000`,
    ),
    vevent(
      'UID:new-york',
      `DTSTART;TZID=America/New_York:${Y}0117T100000`,
      `DTEND;TZID=America/New_York:${Y}0117T110000`,
    ),
    vevent('UID:all-day', `DTSTART;VALUE=DATE:${Y}0120`, `DTEND;VALUE=DATE:${Y}0122`),
    vevent('UID:one-day', `DTSTART;VALUE=DATE:${Y}0130`),
    vevent('UID:duration', `DTSTART:${Y}0125T080000Z`, 'DURATION:PT3H30M'),
    vevent('UID:floating', `DTSTART:${Y}0127T100000`, `DTEND:${Y}0127T110000`),
    vevent('UID:seconds', `DTSTART:${Y}0128T100030Z`, `DTEND:${Y}0128T110010Z`),
    vevent(
      'UID:weekly',
      `DTSTART:${stamp(weekly)}`,
      'DURATION:PT1H',
      'RRULE:FREQ=WEEKLY;COUNT=4',
      `EXDATE:${stamp(weekly + 7 * DAY)}`,
    ),
    vevent('UID:cancelled', 'STATUS:CANCELLED', `DTSTART:${Y}0126T080000Z`, `DTEND:${Y}0126T090000Z`),
    vevent('UID:free', 'TRANSP:TRANSPARENT', `DTSTART:${Y}0126T100000Z`, `DTEND:${Y}0126T110000Z`),
    vevent('UID:last-year', `DTSTART:${Y - 2}0101T100000Z`, `DTEND:${Y - 2}0101T110000Z`),
    vevent('UID:blk_echo@fleet-inventory', `DTSTART:${Y}0201T100000Z`, `DTEND:${Y}0201T110000Z`),
    vevent('UID:too-long', `DTSTART:${Y}0301T000000Z`, `DTEND:${Y}0501T000000Z`),
  );
  const expected = [
    [at(1, 15, 9), at(1, 15, 11, 30)],
    [at(1, 16, 9), at(1, 16, 11)],
    [at(7, 16, 8), at(7, 16, 10)],
    [at(1, 17, 15), at(1, 17, 16)],
    [at(1, 20), at(1, 22)],
    [at(1, 30), at(1, 31)],
    [at(1, 25, 8), at(1, 25, 11, 30)],
    [at(1, 27, 10), at(1, 27, 11)],
    [at(1, 28, 10), at(1, 28, 11, 1)],
    [weekly, weekly + HOUR],
    [weekly + 14 * DAY, weekly + 14 * DAY + HOUR],
    [weekly + 21 * DAY, weekly + 21 * DAY + HOUR],
  ]
    .map(([f, t]) => `${new Date(f!).toISOString()}/${new Date(t!).toISOString()}`)
    .sort();
  let vehicle: string;

  before(async () => {
    vehicle = await addVehicle(inv, city, { hostId: 'host-a' });
  });

  test('a multi-event file: UTC, TZID with VTIMEZONE and without, all-day, DURATION, floating, RRULE; cancelled and free time skipped', async () => {
    const r = await importCal(vehicle, file);
    assert.equal(r.status, 200, r.text);
    const results = r.json.results as {
      uid: string;
      status: string;
      from?: string;
      blockId?: string;
      reason?: string;
      error?: { code: string };
    }[];
    assert.deepEqual(
      { imported: r.json.imported, skipped: r.json.skipped, failed: r.json.failed },
      { imported: 12, skipped: 4, failed: 1 },
    );
    const byUid = (uid: string) => results.filter((x) => x.uid === uid);
    assert.equal(byUid('utc-1')[0]?.status, 'created', 'folded UID unfolded');
    assert.equal(byUid('weekly').length, 3);
    assert.equal(byUid('cancelled')[0]?.reason, 'cancelled');
    assert.equal(byUid('free')[0]?.reason, 'transparent');
    assert.equal(byUid('last-year')[0]?.reason, 'past');
    assert.equal(byUid('blk_echo@fleet-inventory')[0]?.reason, 'own-export');
    assert.equal(byUid('too-long')[0]?.error?.code, 'INVALID_INTERVAL', 'one bad event does not sink the others');

    const blocks = await hostBlocks(vehicle);
    assert.deepEqual(blocks.map((b) => `${b.from}/${b.to}`).sort(), expected);
    assert.ok(blocks.every((b) => b.status === 'active'));
    assert.deepEqual(
      new Set(blocks.map((b) => b.id)),
      new Set(results.filter((x) => x.status === 'created').map((x) => x.blockId)),
    );
  });

  test('re-importing the same file creates nothing (whoever imports it)', async () => {
    for (const token of [tok.hostA!, tok.ops!]) {
      const r = await importCal(vehicle, file, token);
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(
        { imported: r.json.imported, skipped: r.json.skipped, failed: r.json.failed },
        { imported: 0, skipped: 16, failed: 1 },
      );
      assert.equal((r.json.results as { status: string }[]).filter((x) => x.status === 'exists').length, 12);
      assert.equal((await hostBlocks(vehicle)).length, 12);
    }
  });

  test('an event over a booking is placed anyway and conflicts the booking (blocks are facts)', async () => {
    const from = at(2, 10, 10);
    const b = await inv.book({ vehicleId: vehicle, customerId: 'alice', from, to: from + 2 * HOUR });
    const r = await importCal(
      vehicle,
      vcal(vevent('UID:sold-elsewhere', `DTSTART:${Y}0210T110000Z`, `DTEND:${Y}0210T130000Z`)),
    );
    assert.equal(r.json.imported, 1, r.text);
    const booking = await call('GET', `/v1/bookings/${b.booking.id}`, { token: tok.hostA });
    assert.equal(booking.json.status, 'conflicted');
    assert.equal(booking.json.conflictCause, 'host');
  });

  test('not iCalendar: 400 VALIDATION; another media type: 415; too many occurrences: 400; nothing changes', async () => {
    const before = (await hostBlocks(vehicle)).length;
    assertProblem(await importCal(vehicle, 'this is not a calendar'), 400, 'VALIDATION');
    assertProblem(await importCal(vehicle, vevent('UID:x', `DTSTART:${Y}0101T100000Z`)), 400, 'VALIDATION');
    assertProblem(await importCal(vehicle, ''), 400, 'VALIDATION');
    assertProblem(await importCal(vehicle, JSON.stringify('BEGIN:VCALENDAR')), 400, 'VALIDATION');
    assertProblem(
      await importCal(vehicle, JSON.stringify({ calendar: file }), tok.hostA!, 'application/json'),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    assertProblem(await importCal(vehicle, file, tok.hostA!, 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    assertProblem(
      await call('POST', `/v1/vehicles/${vehicle}/calendar`, { token: tok.hostA }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const daily = (uid: string) =>
      vevent(`UID:${uid}`, `DTSTART:${stamp(weekly)}`, 'DURATION:PT1H', 'RRULE:FREQ=DAILY');
    const capped = await importCal(vehicle, vcal(daily('d1'), daily('d2')));
    assertProblem(capped, 400, 'VALIDATION');
    assert.match(String(capped.json.detail), /at most 500/);
    assertProblem(
      await importCal(vehicle, 'BEGIN:VCALENDAR\r\n' + 'X'.repeat(1100 * 1024) + '\r\nEND:VCALENDAR\r\n'),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    assert.equal((await hostBlocks(vehicle)).length, before);
  });

  test('another host gets 404 and a customer 403; nothing changes', async () => {
    const before = await hostBlocks(vehicle);
    const fresh = vcal(vevent('UID:intruder', `DTSTART:${Y}0301T100000Z`, `DTEND:${Y}0301T110000Z`));
    assertProblem(await importCal(vehicle, fresh, tok.hostB!), 404, 'NOT_FOUND');
    assertProblem(await importCal(vehicle, fresh, tok.alice!), 403, 'FORBIDDEN');
    assertProblem(await importCal(vehicle, 'garbage', tok.hostB!), 404, 'NOT_FOUND');
    assert.deepEqual(await hostBlocks(vehicle), before);
  });
});

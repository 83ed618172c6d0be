/**
 * Fuzz: thousands of malformed and odd requests over every route — bodies, params, query strings,
 * headers, huge and strange values — from every role. No response may be a 5xx, and every
 * refusal is problem+json with a code.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { HOUR, addVehicle, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { seeded } from '../support/random.ts';
import { EventMatcher, WebhookDesk } from '../../src/services/webhooks.ts';

const SECRET = new TextEncoder().encode('fuzz-secret-fuzz-secret-fuzz-secret!!');
let stores: Stores;
let readModel: ReadModel;
let app: App;
let base: string;
const ids: string[] = [];
const tokens: string[] = [];

before(async () => {
  stores = await startStores();
  const city = testCity();
  const inv = newInventory(stores.redis, city, { maxLiveHoldsPerCustomer: 1000 });
  const v = await addVehicle(inv, city, { hostId: 'h1' });
  const t = futureHour();
  const b = await inv.book({ vehicleId: v, customerId: 'c1', from: t, to: t + HOUR });
  const h = await inv.placeHold({ vehicleId: v, customerId: 'c1', from: t + 3 * HOUR, to: t + 4 * HOUR });
  const k = await inv.placeBlock({ vehicleId: v, reason: 'maintenance', from: t + 6 * HOUR, to: t + 7 * HOUR });
  ids.push(v, b.booking.id, h.hold.id, k.block.id, city.id);
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    readModel,
    conflicts: new ConflictDesk(stores.redis, inv, readModel),
    webhooks: new WebhookDesk(stores.pool, inv.cities, new EventMatcher(inv), {
      allowPrivate: false,
      secretGraceMs: 0,
    }),
    authenticate: authenticator({ secret: SECRET }),
    tokenSecret: SECRET,
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  // Every documented operation is fuzzed (new routes join by being documented), plus a few that do not exist.
  const doc = (await fetch(`${base}/openapi.json`).then((r) => r.json())) as {
    paths: Record<string, Record<string, unknown>>;
  };
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const method of Object.keys(ops)) ROUTES.push([method.toUpperCase(), path.replace(/\{[A-Za-z]+\}/g, ':id')]);
  }
  tokens.push(
    await mintToken(SECRET, { sub: 'c1', role: 'customer' }),
    await mintToken(SECRET, { sub: 'c2', role: 'customer' }),
    await mintToken(SECRET, { sub: 'h', role: 'host', hostId: 'h1' }),
    await mintToken(SECRET, { sub: 'o', role: 'ops' }),
    await mintToken(SECRET, { sub: 'a', role: 'admin' }),
    'garbage',
    '',
  );
});
after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

const ROUTES: [string, string][] = [
  ['GET', '/readyz'],
  ['GET', '/openapi.json'],
  ['PUT', '/v1/bookings'],
  ['GET', '/v1/nope'],
  ['DELETE', '/v1/cities'],
];

const oddString = fc.oneof(
  fc.string(),
  fc.string({ maxLength: 3 }),
  fc.constantFrom('', ' ', '..', '%2e%2e', '🚗', 'null', '0', '-1', '1e309', 'NaN', '\u0000', 'a'.repeat(5000)),
  fc.constantFrom(
    '2026-12-01T10:00:00Z',
    '2026-12-01T10:00:30Z',
    '2026-02-30T10:00:00Z',
    '9999-12-31T23:59:59Z',
    '0000-01-01T00:00:00Z',
    '2026-12-01T10:00:00+14:00',
    '2026-12-01',
  ),
  fc.constantFrom('http://127.0.0.1:9/hook', 'https://[::1]/x', 'ftp://example.com/', 'msg_x_1-0', 'booking.*'),
);
const idLike = fc.oneof(
  fc.constantFrom(...['veh_', 'bkg_', 'hld_', 'blk_'].map((p) => `${p}x_000000`)),
  fc.integer({ min: 0, max: 4 }).map((i) => `@${i}`),
  oddString,
);
const value: fc.Arbitrary<unknown> = fc.oneof(
  oddString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  idLike,
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -0, 1e21, 0.1),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);
const FIELDS = [
  'vehicleId',
  'holdId',
  'from',
  'to',
  'force',
  'reason',
  'note',
  'city',
  'category',
  'seats',
  'make',
  'model',
  'transmission',
  'fuel',
  'location',
  'pricePerHour',
  'hostId',
  'status',
  'version',
  'customerId',
  'items',
  'offerId',
  'url',
  'types',
  'cities',
  '__proto__',
  'constructor',
];
const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 }),
  fc.jsonValue(),
  fc.constantFrom(
    '{',
    '[]',
    'null',
    '"str"',
    '{"a":',
    '\u0000',
    '{"__proto__":{"x":1}}',
    '{"from":"2026-12-01T10:00:00Z","to":"2026-12-01T11:00:00Z","vehicleId":"@0"}',
  ),
  fc.constantFrom(
    'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f\r\nDTSTART:20400101T100000Z\r\nDTEND:20400101T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n',
    'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;TZID=Nowhere/City:20400101T100000\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR',
    'BEGIN:VCALENDAR',
    '{"items":[{"vehicleId":"@0","reason":"host"}]}',
    '{"items":[1,null,{}]}',
    `{"items":[${'{},'.repeat(1200)}{}]}`,
  ),
);

const request = () =>
  fc.record({
    route: fc.constantFrom(...ROUTES),
    pathIds: fc.array(idLike, { minLength: 2, maxLength: 2 }),
    query: fc.dictionary(
      fc.constantFrom(
        'city',
        'after',
        'limit',
        'from',
        'to',
        'x',
        'granularity',
        'category',
        'near',
        'sort',
        'cursor',
        'status',
        'when',
        'customerId',
        'hostId',
        'force',
      ),
      oddString,
      { maxKeys: 4 },
    ),
    token: fc.integer({ min: 0, max: 6 }),
    body: fc.option(body, { nil: undefined }),
    contentType: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'text/calendar',
      'application/x-www-form-urlencoded',
      'application/problem+json',
      '',
    ),
    idempotencyKey: fc.option(oddString, { nil: undefined }),
    ifMatch: fc.option(oddString, { nil: undefined }),
  });

const resolve = (s: string) => (s.startsWith('@') ? (ids[Number(s.slice(1))] ?? s) : s);

test('2,000+ random requests over every route: never a 5xx, refusals are problem+json', {
  timeout: 300_000,
}, async () => {
  const statuses = new Map<number, number>();
  assert.ok(ROUTES.length > 25, `the OpenAPI document lists the routes (${ROUTES.length})`);
  await fc.assert(
    fc.asyncProperty(request(), async (r) => {
      let n = 0;
      const path = r.route[1].replace(/:id/g, () => encodeURIComponent(resolve(String(r.pathIds[n++ % 2]))));
      const qs = new URLSearchParams(Object.entries(r.query).map(([k, v]) => [k, resolve(v)])).toString();
      const headers: Record<string, string> = {};
      if (tokens[r.token]) headers.authorization = `Bearer ${tokens[r.token]}`;
      if (r.contentType && r.body !== undefined) headers['content-type'] = r.contentType;
      const safe = (v: string) => v.replace(/[^\x20-\x7e]/g, '');
      if (r.idempotencyKey !== undefined) headers['idempotency-key'] = safe(r.idempotencyKey).slice(0, 4000);
      if (r.ifMatch !== undefined) headers['if-match'] = safe(r.ifMatch).slice(0, 200);
      const payload =
        r.body === undefined
          ? undefined
          : typeof r.body === 'string'
            ? r.body
            : JSON.stringify(r.body, (_k, v: unknown) => (typeof v === 'string' ? resolve(v) : v));
      const method = r.route[0];
      const res = await fetch(`${base}${path}${qs ? `?${qs}` : ''}`, {
        method,
        headers,
        ...(payload !== undefined && method !== 'GET' ? { body: payload } : {}),
      });
      const text = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.ok(res.status < 500, `${method} ${path}?${qs} -> ${res.status}: ${text.slice(0, 300)}`);
      // The token endpoint refuses as OAuth does (RFC 6749 §5.2: `error`, application/json), what
      // comes before OAuth's turn (the budget's 429) as every route.
      const oauth = path === '/v1/oauth/token' && (res.status === 400 || res.status === 401);
      if (oauth) {
        assert.match(
          res.headers.get('content-type') ?? '',
          /^application\/json/,
          `${method} ${path}: ${text.slice(0, 200)}`,
        );
        assert.equal(typeof (JSON.parse(text) as { error?: unknown }).error, 'string');
      } else if (res.status >= 400 && path.startsWith('/v1')) {
        assert.match(
          res.headers.get('content-type') ?? '',
          /application\/problem\+json/,
          `${method} ${path}: ${text.slice(0, 200)}`,
        );
        assert.equal(typeof (JSON.parse(text) as { code?: unknown }).code, 'string');
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 2500), seed: Math.floor(seeded('api-fuzz')() * 2 ** 31) },
  );
  console.log('fuzz statuses:', Object.fromEntries([...statuses].sort(([a], [b]) => a - b)));
});

/**
 * The permission matrix (docs/api.md, "Permissions"), over every operation of the OpenAPI
 * document, so that a new route cannot escape it: every route × every role × scope missing or
 * present × own or foreign resource.
 * - scope missing: 403 FORBIDDEN naming the scope, and the city's Redis byte-for-byte unchanged;
 * - scope present: never refused for its scope;
 * - a foreign resource (another customer's, another host's) never succeeds, and a refusal
 *   changes nothing;
 * - every operation is listed in the matrix of docs/api.md.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { SCOPES, authenticator, mintToken, type Role, type Scope } from '../../src/api/auth.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { EventMatcher, WebhookDesk } from '../../src/services/webhooks.ts';
import { HOUR, addVehicle, futureHour, newInventory, snapshotCity, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const city = testCity();
const ROLES: Role[] = ['customer', 'host', 'ops', 'admin'];
const SUBJECT: Record<Role, { sub: string; hostId?: string }> = {
  customer: { sub: 'alice' },
  host: { sub: 'ha', hostId: 'host-a' },
  ops: { sub: 'olga' },
  admin: { sub: 'adam' },
};
let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let base: string;
const ids = {
  vehA: '',
  vehB: '',
  holdA: '',
  holdB: '',
  bookingA: '',
  bookingB: '',
  blockA: '',
  blockB: '',
  hookA: '',
  hookB: '',
  t: 0,
};
let operations: { method: string; path: string; scope?: Scope }[] = [];

const ICS =
  'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:perm-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20400101T100000Z\r\nDTEND:20400101T120000Z\r\nSUMMARY:outside\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';

async function call(token: string, method: string, path: string, body?: unknown) {
  const raw = typeof body === 'string';
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': raw ? 'text/calendar' : 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: raw ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON (calendar.ics) */
  }
  return { status: res.status, json };
}

before(async () => {
  stores = await startStores();
  inv = newInventory(stores.redis, city);
  ids.vehA = await addVehicle(inv, city, { hostId: 'host-a' });
  ids.vehB = await addVehicle(inv, city, { hostId: 'host-b' });
  const t = futureHour(48 * HOUR);
  ids.t = t;
  ids.holdA = (await inv.placeHold({ vehicleId: ids.vehA, customerId: 'alice', from: t, to: t + HOUR })).hold.id;
  ids.holdB = (await inv.placeHold({ vehicleId: ids.vehB, customerId: 'bob', from: t, to: t + HOUR })).hold.id;
  const at = t + 4 * HOUR;
  ids.bookingA = (await inv.book({ vehicleId: ids.vehA, customerId: 'alice', from: at, to: at + HOUR })).booking.id;
  ids.bookingB = (await inv.book({ vehicleId: ids.vehB, customerId: 'bob', from: at, to: at + HOUR })).booking.id;
  const bt = t + 20 * HOUR;
  ids.blockA = (await inv.placeBlock({ vehicleId: ids.vehA, reason: 'host', from: bt, to: bt + HOUR })).block.id;
  ids.blockB = (await inv.placeBlock({ vehicleId: ids.vehB, reason: 'host', from: bt, to: bt + HOUR })).block.id;
  readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  app = await buildApp({
    inventory: inv,
    redis: stores.redis,
    pool: stores.pool,
    readModel,
    conflicts: new ConflictDesk(stores.redis, inv, readModel),
    webhooks: new WebhookDesk(stores.pool, inv.cities, new EventMatcher(inv), { allowPrivate: true, secretGraceMs: 0 }),
    authenticate: authenticator({ secret: SECRET }),
    rateLimits: { customer: 100_000, host: 100_000, ops: 100_000, admin: 100_000 },
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  const hook = async (sub: string, role: Role, hostId?: string) =>
    String(
      (
        await call(await mintToken(SECRET, { sub, role, ...(hostId ? { hostId } : {}) }), 'POST', '/v1/webhooks', {
          url: 'http://127.0.0.1:9/h',
        })
      ).json.id,
    );
  ids.hookA = await hook('ha', 'host', 'host-a');
  ids.hookB = await hook('hb', 'host', 'host-b');
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
  };
  operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => {
      const scope = op.security?.[0]?.bearer?.[0] as Scope | undefined;
      return { method: method.toUpperCase(), path, ...(scope ? { scope } : {}) };
    }),
  );
});

after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

/** The concrete request of an operation, on the role's own resources or on another tenant's. */
function request(op: { method: string; path: string }, own: boolean): { path: string; body?: unknown } {
  const iso = (ms: number) => new Date(ms).toISOString();
  const later = { from: iso(ids.t + 200 * HOUR), to: iso(ids.t + 201 * HOUR) };
  const kind = op.path.split('/')[2];
  const id =
    kind === 'holds'
      ? own
        ? ids.holdA
        : ids.holdB
      : kind === 'bookings'
        ? own
          ? ids.bookingA
          : ids.bookingB
        : kind === 'webhooks'
          ? own
            ? ids.hookA
            : ids.hookB
          : own
            ? ids.vehA
            : ids.vehB;
  const path = op.path
    .replace('{id}', id)
    .replace('{hostId}', own ? 'host-a' : 'host-b')
    .replace('{blockId}', own ? ids.blockA : ids.blockB)
    .replace('{offerId}', 'off_x')
    .replace('{city}', city.id)
    .replace('{feed}', 'gbfs.json');
  const query: Record<string, string> = {
    '/v1/cities/{city}/availability': `?from=${later.from}&to=${later.to}`,
    '/v1/events': `?city=${city.id}`,
    '/v1/analytics/utilization': `?city=${city.id}&from=${later.from}&to=${later.to}&granularity=hour`,
    '/v1/analytics/conflicts': `?from=${later.from}&to=${later.to}`,
    '/v1/analytics/forecast': `?city=${city.id}`,
  };
  const bodies: Record<string, unknown> = {
    'POST /v1/holds': { vehicleId: own ? ids.vehA : ids.vehB, ...later },
    'POST /v1/bookings': { vehicleId: own ? ids.vehA : ids.vehB, ...later },
    'POST /v1/bookings/{id}/cancel': {},
    'POST /v1/bookings/{id}/extend': { to: iso(ids.t + 5 * HOUR + HOUR) },
    'POST /v1/vehicles': {
      city: city.id,
      category: 'sedan',
      seats: 5,
      make: 'X',
      model: 'Y',
      transmission: 'automatic',
      fuel: 'petrol',
      location: { lat: 12.9, lng: 77.6 },
      pricePerHour: 10,
    },
    'PATCH /v1/vehicles/{id}': { pricePerHour: 11 },
    'POST /v1/vehicles/{id}/blocks': { reason: 'host', ...later },
    'POST /v1/vehicles/batch': {
      items: [
        {
          city: city.id,
          category: 'sedan',
          seats: 5,
          make: 'X',
          model: 'Y',
          transmission: 'automatic',
          fuel: 'petrol',
          location: { lat: 12.9, lng: 77.6 },
          pricePerHour: 10,
        },
      ],
    },
    'POST /v1/blocks/batch': { items: [{ vehicleId: own ? ids.vehA : ids.vehB, reason: 'host', ...later }] },
    'POST /v1/webhooks': { url: 'http://127.0.0.1:9/x' },
    'POST /v1/webhooks/{id}/replay': { from: `msg_${city.id}_1-0` },
    'POST /v1/vehicles/{id}/delist': {},
    'POST /v1/vehicles/{id}/relist': {},
    'POST /v1/vehicles/{id}/calendar': ICS,
  };
  const key = `${op.method} ${op.path}`;
  const body = key in bodies ? bodies[key] : op.method === 'POST' ? {} : undefined;
  return { path: path + (query[op.path] ?? ''), ...(body !== undefined ? { body } : {}) };
}

const tokenFor = (role: Role, scopes?: readonly Scope[]) =>
  mintToken(SECRET, { ...SUBJECT[role], role, ...(scopes ? { scope: scopes.join(' ') } : {}) });

test('scope missing: 403 naming the scope, and nothing changes — every route, every role', async () => {
  assert.ok(operations.length >= 40, `operations seen: ${operations.length}`);
  let checked = 0;
  for (const op of operations.filter((o) => o.scope)) {
    for (const role of ROLES) {
      const token = await tokenFor(
        role,
        SCOPES.filter((s) => s !== op.scope),
      );
      for (const own of [true, false]) {
        const r = request(op, own);
        const snap = await snapshotCity(stores.redis, city.id);
        const answer = await call(token, op.method, r.path, r.body);
        const what = `${role} ${op.method} ${r.path} without ${op.scope}`;
        assert.equal(answer.status, 403, `${what}: ${JSON.stringify(answer.json)}`);
        assert.equal(answer.json.scope, op.scope, what);
        assert.deepEqual(await snapshotCity(stores.redis, city.id), snap, `${what}: nothing changed`);
        checked++;
      }
    }
  }
  console.log(`${operations.length} operations; ${checked} calls without their scope, each refused, Redis unchanged`);
  assert.ok(checked >= 200, `checked ${checked}`);
});

test('scope present: never refused for its scope; a foreign resource never succeeds, and a refusal changes nothing', async () => {
  for (const own of [false, true]) {
    for (const op of operations) {
      for (const role of ROLES) {
        const token = await tokenFor(role, op.scope ? [op.scope] : []);
        const r = request(op, own);
        const snap = await snapshotCity(stores.redis, city.id);
        const answer = await call(token, op.method, r.path, r.body);
        const what = `${role} ${op.method} ${r.path} (${own ? 'own' : 'foreign'})`;
        assert.ok(answer.status < 500, `${what}: ${answer.status} ${JSON.stringify(answer.json)}`);
        assert.equal(answer.json.scope, undefined, `${what}: refused for its scope`);
        const tenant = role === 'customer' || role === 'host';
        const foreignResource = !own && /\{(id|hostId|blockId)\}/.test(op.path);
        // Routes without a scope are open to every signed-in caller (a vehicle's public page).
        if (tenant && foreignResource && op.scope)
          assert.ok(answer.status >= 400, `${what}: another tenant's resource → ${answer.status}`);
        if (answer.status >= 400)
          assert.deepEqual(await snapshotCity(stores.redis, city.id), snap, `${what}: refused, nothing changed`);
      }
    }
  }
});

test('docs/api.md lists every operation in its permission matrix', () => {
  const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const matrix = doc.slice(doc.indexOf('## Permissions'));
  const missing = operations.filter((o) => !matrix.includes(`\`${o.method} ${o.path}\``));
  assert.deepEqual(
    missing.map((o) => `${o.method} ${o.path}`),
    [],
    'operations missing from the matrix',
  );
});

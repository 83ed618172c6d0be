/**
 * The HTTP API over real HTTP against a started server: health, OpenAPI, authentication,
 * holds and bookings for every role, tenancy, idempotency, and problem+json for bad input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, addVehicle, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { tenantTokens } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
let server: RedisServer;
let redis: Redis;
let app: App;
let base: string;
let inv: Inventory;
const city = testCity();
let vehicle: string;
let otherVehicle: string;
const tok: Record<string, string> = {};

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  inv = newInventory(redis, city);
  vehicle = await addVehicle(inv, city, { hostId: 'host-a' });
  otherVehicle = await addVehicle(inv, city, { hostId: 'host-b' });
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

async function call(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined || opts.raw !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(opts.raw !== undefined
      ? { body: opts.raw }
      : opts.body !== undefined
        ? { body: JSON.stringify(opts.body) }
        : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', json, headers: res.headers };
}

function assertProblem(r: Awaited<ReturnType<typeof call>>, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.type, /^application\/problem\+json/);
  assert.equal(r.json.code, code);
  for (const f of ['type', 'title', 'status', 'detail']) assert.ok(f in r.json, `problem has ${f}`);
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('operations endpoints', () => {
  test('healthz, readyz (with durability), metrics, OpenAPI 3.1 covering the routes', async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    const ready = await call('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(
      (ready.json.checks as { redis: { durability: { durable: boolean } } }).redis.durability.durable,
      true,
    );
    const metrics = await fetch(`${base}/metrics`).then((r) => r.text());
    assert.match(metrics, /fleet_commands_total/);
    const doc = (await call('GET', '/openapi.json')).json as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.1.0');
    for (const p of [
      '/v1/holds',
      '/v1/bookings',
      '/v1/bookings/{id}',
      '/v1/bookings/{id}/extend',
      '/v1/vehicles/{id}/calendar',
      '/v1/cities',
    ])
      assert.ok(doc.paths[p], `OpenAPI covers ${p}`);
    assert.equal((await fetch(`${base}/docs`)).status, 200);
  });
});

describe('authentication', () => {
  test('missing, alg none, wrong key, expired and incomplete tokens are 401', async () => {
    assertProblem(await call('GET', '/v1/cities'), 401, 'UNAUTHENTICATED');
    const none = new UnsecuredJWT({ role: 'ops' }).setSubject('mallory').setExpirationTime('1h').encode();
    assertProblem(await call('GET', '/v1/cities', { token: none }), 401, 'UNAUTHENTICATED');
    const wrongKey = await mintToken(new TextEncoder().encode('another-secret-another-secret-123456'), {
      sub: 'm',
      role: 'ops',
    });
    assertProblem(await call('GET', '/v1/cities', { token: wrongKey }), 401, 'UNAUTHENTICATED');
    const expired = await new SignJWT({ role: 'ops' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('m')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(SECRET);
    assertProblem(await call('GET', '/v1/cities', { token: expired }), 401, 'UNAUTHENTICATED');
    const noExp = await new SignJWT({ role: 'ops' }).setProtectedHeader({ alg: 'HS256' }).setSubject('m').sign(SECRET);
    assertProblem(await call('GET', '/v1/cities', { token: noExp }), 401, 'UNAUTHENTICATED');
    const noRole = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('m')
      .setExpirationTime('1h')
      .sign(SECRET);
    assertProblem(await call('GET', '/v1/cities', { token: noRole }), 401, 'UNAUTHENTICATED');
    const hostless = await new SignJWT({ role: 'host' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('h')
      .setExpirationTime('1h')
      .sign(SECRET);
    assertProblem(await call('GET', '/v1/cities', { token: hostless }), 401, 'UNAUTHENTICATED');
    assert.equal((await call('GET', '/v1/cities', { token: tok.alice })).status, 200);
  });
});

describe('holds and bookings', () => {
  test('a customer holds, books from the hold, reads and cancels; another tenant gets 404 and changes nothing', async () => {
    const t = futureHour();
    const hold = await call('POST', '/v1/holds', {
      token: tok.alice,
      body: { vehicleId: vehicle, from: iso(t), to: iso(t + 2 * HOUR) },
    });
    assert.equal(hold.status, 201, JSON.stringify(hold.json));
    assert.equal(hold.json.customerId, 'alice');
    const taken = await call('POST', '/v1/bookings', {
      token: tok.bob,
      body: { vehicleId: vehicle, from: iso(t + HOUR), to: iso(t + 3 * HOUR) },
    });
    assertProblem(taken, 409, 'NOT_AVAILABLE');
    assert.ok(taken.json.blocking, 'the problem names the blocking window');
    const foreignHold = await call('POST', '/v1/bookings', { token: tok.bob, body: { holdId: hold.json.id } });
    assertProblem(foreignHold, 404, 'NOT_FOUND');
    const booking = await call('POST', '/v1/bookings', { token: tok.alice, body: { holdId: hold.json.id } });
    assert.equal(booking.status, 201);
    assert.deepEqual([booking.json.status, booking.json.vehicleId, booking.json.from], ['confirmed', vehicle, iso(t)]);
    const id = String(booking.json.id);
    assert.equal((await call('GET', `/v1/bookings/${id}`, { token: tok.alice })).json.id, id);
    assert.equal(
      (await call('GET', `/v1/bookings/${id}`, { token: tok.hostA })).status,
      200,
      "the vehicle's host sees it",
    );
    assertProblem(await call('GET', `/v1/bookings/${id}`, { token: tok.hostB }), 404, 'NOT_FOUND');
    assertProblem(await call('GET', `/v1/bookings/${id}`, { token: tok.bob }), 404, 'NOT_FOUND');
    const before = (await inv.getVehicleState(vehicle)).vehicle.version;
    assertProblem(await call('POST', `/v1/bookings/${id}/cancel`, { token: tok.bob }), 404, 'NOT_FOUND');
    assertProblem(
      await call('POST', `/v1/bookings/${id}/extend`, { token: tok.bob, body: { to: iso(t + 4 * HOUR) } }),
      404,
      'NOT_FOUND',
    );
    assert.equal((await inv.getVehicleState(vehicle)).vehicle.version, before, 'nothing changed');
    assertProblem(
      await call('POST', `/v1/bookings/${id}/extend`, {
        token: tok.alice,
        body: { to: iso(t + 4 * HOUR), force: true },
      }),
      403,
      'FORBIDDEN',
    );
    const ext = await call('POST', `/v1/bookings/${id}/extend`, { token: tok.alice, body: { to: iso(t + 4 * HOUR) } });
    assert.equal(ext.json.to, iso(t + 4 * HOUR));
    const cancelled = await call('POST', `/v1/bookings/${id}/cancel`, {
      token: tok.alice,
      body: { reason: 'plans changed' },
    });
    assert.deepEqual(
      [cancelled.status, cancelled.json.status, cancelled.json.cancelReason],
      [200, 'cancelled', 'plans changed'],
    );
    assertProblem(await call('POST', `/v1/bookings/${id}/cancel`, { token: tok.alice }), 409, 'INVALID_STATE');
  });

  test('hosts and staff may not book for themselves; hosts start and complete trips on their own vehicles', async () => {
    const t = futureHour(3 * HOUR);
    assertProblem(
      await call('POST', '/v1/bookings', {
        token: tok.hostA,
        body: { vehicleId: vehicle, from: iso(t), to: iso(t + HOUR) },
      }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await call('POST', '/v1/holds', {
        token: tok.ops,
        body: { vehicleId: vehicle, from: iso(t), to: iso(t + HOUR) },
      }),
      403,
      'FORBIDDEN',
    );
    const b = await call('POST', '/v1/bookings', {
      token: tok.alice,
      body: { vehicleId: otherVehicle, from: iso(t), to: iso(t + HOUR) },
    });
    assertProblem(
      await call('POST', `/v1/bookings/${String(b.json.id)}/start`, { token: tok.hostA }),
      404,
      'NOT_FOUND',
    );
    const early = await call('POST', `/v1/bookings/${String(b.json.id)}/start`, { token: tok.hostB });
    assertProblem(early, 409, 'INVALID_STATE');
    assertProblem(
      await call('POST', `/v1/bookings/${String(b.json.id)}/complete`, { token: tok.ops }),
      409,
      'INVALID_STATE',
    );
  });

  test('an Idempotency-Key retry returns the first booking', async () => {
    const t = futureHour(30 * HOUR);
    const body = { vehicleId: vehicle, from: iso(t), to: iso(t + HOUR) };
    const a = await call('POST', '/v1/bookings', { token: tok.bob, body, headers: { 'idempotency-key': 'bob-1' } });
    const b = await call('POST', '/v1/bookings', { token: tok.bob, body, headers: { 'idempotency-key': 'bob-1' } });
    assert.equal(a.status, 201);
    assert.deepEqual(b.json, a.json);
    const other = await call('POST', '/v1/bookings', {
      token: tok.bob,
      body: { ...body, to: iso(t + 2 * HOUR) },
      headers: { 'idempotency-key': 'bob-1' },
    });
    assertProblem(other, 422, 'IDEMPOTENCY_CONFLICT');
  });
});

describe('bad input is a clear problem, never a 500', () => {
  test('mass assignment, bad times, malformed JSON, wrong types, unknown routes and ids', async () => {
    const t = futureHour();
    assertProblem(
      await call('POST', '/v1/bookings', {
        token: tok.alice,
        body: { vehicleId: vehicle, from: iso(t), to: iso(t + HOUR), customerId: 'bob' },
      }),
      400,
      'VALIDATION',
    );
    assertProblem(
      await call('POST', '/v1/bookings', {
        token: tok.alice,
        body: { vehicleId: vehicle, from: iso(t), to: iso(t + HOUR), status: 'active' },
      }),
      400,
      'VALIDATION',
    );
    assertProblem(
      await call('POST', '/v1/holds', { token: tok.alice, body: { vehicleId: vehicle, from: 'tomorrow', to: iso(t) } }),
      400,
      'VALIDATION',
    );
    assertProblem(
      await call('POST', '/v1/holds', {
        token: tok.alice,
        body: { vehicleId: vehicle, from: iso(t + 30_000), to: iso(t + HOUR) },
      }),
      400,
      'INVALID_INTERVAL',
    );
    assertProblem(
      await call('POST', '/v1/holds', {
        token: tok.alice,
        body: { vehicleId: vehicle, from: iso(t - 48 * HOUR), to: iso(t) },
      }),
      400,
      'INVALID_INTERVAL',
    );
    assertProblem(await call('POST', '/v1/holds', { token: tok.alice, raw: '{"vehicleId": ' }), 400, 'VALIDATION');
    assertProblem(
      await call('POST', '/v1/holds', { token: tok.alice, raw: 'x'.repeat(1_200_000) }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    assertProblem(
      await call('POST', '/v1/holds', { token: tok.alice, raw: 'a=b', headers: { 'content-type': 'text/plain' } }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    assertProblem(
      await call('POST', '/v1/holds', { token: tok.alice, body: { vehicleId: 42, from: iso(t), to: iso(t + HOUR) } }),
      400,
      'VALIDATION',
    );
    assertProblem(await call('GET', '/v1/bookings/nope', { token: tok.alice }), 404, 'NOT_FOUND');
    assertProblem(await call('GET', '/v1/bookings/..%2F..%2Fetc', { token: tok.alice }), 400, 'VALIDATION');
    assertProblem(await call('GET', '/v1/vehicles/veh_zz_00000000000000', { token: tok.alice }), 404, 'NOT_FOUND');
    assertProblem(await call('GET', '/v1/nowhere', { token: tok.alice }), 404, 'ROUTE_NOT_FOUND');
    assertProblem(await call('GET', `/v1/vehicles/${vehicle}/calendar`, { token: tok.alice }), 404, 'NOT_FOUND');
    const cal = await call('GET', `/v1/vehicles/${vehicle}/calendar`, { token: tok.hostA });
    assert.equal(cal.status, 200);
    assert.ok(Array.isArray(cal.json.entries));
  });
});

describe('hosts: fleet, blocks', () => {
  test('a host lists a vehicle as its own; owner, status and version cannot be set; others may not', async () => {
    const body = {
      city: city.id,
      category: 'suv',
      seats: 7,
      make: 'Kia',
      model: 'Carnival',
      transmission: 'automatic',
      fuel: 'diesel',
      location: { lat: 12.9, lng: 77.6 },
      pricePerHour: 19.5,
    };
    const created = await call('POST', '/v1/vehicles', { token: tok.hostA, body });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(
      [created.json.hostId, created.json.status, created.json.version, created.json.category],
      ['host-a', 'available', 1, 'suv'],
    );
    for (const extra of [{ hostId: 'host-b' }, { status: 'delisted' }, { version: 9 }]) {
      assertProblem(
        await call('POST', '/v1/vehicles', { token: tok.hostA, body: { ...body, ...extra } }),
        400,
        'VALIDATION',
      );
    }
    assertProblem(await call('POST', '/v1/vehicles', { token: tok.alice, body }), 403, 'FORBIDDEN');
    assertProblem(
      await call('POST', '/v1/vehicles', { token: tok.hostA, body: { ...body, city: 'atlantis' } }),
      404,
      'NOT_FOUND',
    );
    const id = String(created.json.id);
    assertProblem(
      await call('PATCH', `/v1/vehicles/${id}`, {
        token: tok.hostA,
        body: { seats: 6 },
        headers: { 'if-match': '"7"' },
      }),
      409,
      'VERSION_MISMATCH',
    );
    const patched = await call('PATCH', `/v1/vehicles/${id}`, {
      token: tok.hostA,
      body: { seats: 6, pricePerHour: 21 },
      headers: { 'if-match': '"1"' },
    });
    assert.deepEqual([patched.json.seats, patched.json.pricePerHour, patched.json.version], [6, 21, 2]);
    assertProblem(
      await call('PATCH', `/v1/vehicles/${id}`, { token: tok.hostB, body: { seats: 5 } }),
      404,
      'NOT_FOUND',
    );
    assertProblem(
      await call('PATCH', `/v1/vehicles/${id}`, { token: tok.hostA, body: { hostId: 'host-b' } }),
      400,
      'VALIDATION',
    );
    assertProblem(await call('PATCH', `/v1/vehicles/${id}`, { token: tok.hostA, body: {} }), 400, 'VALIDATION');
    const fleet = await call('GET', '/v1/hosts/host-a/vehicles', { token: tok.hostA });
    assert.deepEqual((fleet.json.vehicles as { id: string }[]).map((v) => v.id).sort(), [vehicle, id].sort());
    assertProblem(await call('GET', '/v1/hosts/host-a/vehicles', { token: tok.hostB }), 404, 'NOT_FOUND');
    assert.equal((await call('GET', '/v1/hosts/host-a/vehicles', { token: tok.ops })).status, 200);
  });

  test('hosts block their own vehicles; accidents are cleared by staff; blocked windows refuse bookings', async () => {
    const t = futureHour(100 * HOUR);
    const m = await call('POST', `/v1/vehicles/${vehicle}/blocks`, {
      token: tok.hostA,
      body: { reason: 'maintenance', from: iso(t), to: iso(t + 4 * HOUR), note: 'tyres' },
    });
    assert.equal(m.status, 201, JSON.stringify(m.json));
    assert.deepEqual([m.json.reason, m.json.status, m.json.to], ['maintenance', 'active', iso(t + 4 * HOUR)]);
    assertProblem(
      await call('POST', '/v1/bookings', {
        token: tok.alice,
        body: { vehicleId: vehicle, from: iso(t + HOUR), to: iso(t + 2 * HOUR) },
      }),
      409,
      'NOT_AVAILABLE',
    );
    assertProblem(
      await call('POST', `/v1/vehicles/${otherVehicle}/blocks`, {
        token: tok.hostA,
        body: { reason: 'host', from: iso(t), to: iso(t + HOUR) },
      }),
      404,
      'NOT_FOUND',
    );
    assertProblem(
      await call('POST', `/v1/vehicles/${vehicle}/blocks`, {
        token: tok.alice,
        body: { reason: 'host', from: iso(t), to: iso(t + HOUR) },
      }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await call('POST', `/v1/vehicles/${vehicle}/blocks`, {
        token: tok.hostA,
        body: { reason: 'maintenance', from: iso(t) },
      }),
      400,
      'INVALID_INTERVAL',
    );
    const cancelled = await call('DELETE', `/v1/vehicles/${vehicle}/blocks/${String(m.json.id)}`, { token: tok.hostA });
    assert.equal(cancelled.json.status, 'cancelled');
    const accident = await call('POST', `/v1/vehicles/${otherVehicle}/blocks`, {
      token: tok.hostB,
      body: { reason: 'accident' },
    });
    assert.deepEqual([accident.status, accident.json.to], [201, null]);
    assertProblem(
      await call('DELETE', `/v1/vehicles/${otherVehicle}/blocks/${String(accident.json.id)}`, { token: tok.hostB }),
      403,
      'FORBIDDEN',
    );
    assertProblem(
      await call('DELETE', `/v1/vehicles/${vehicle}/blocks/${String(accident.json.id)}`, { token: tok.ops }),
      404,
      'NOT_FOUND',
    );
    const cleared = await call('DELETE', `/v1/vehicles/${otherVehicle}/blocks/${String(accident.json.id)}`, {
      token: tok.ops,
    });
    assert.equal(cleared.json.status, 'cleared');
  });
});

describe('events feed', () => {
  test("staff read a city's events from a cursor, as valid CloudEvents 1.0", async () => {
    const { CloudEvent } = await import('cloudevents');
    assertProblem(await call('GET', `/v1/events?city=${city.id}`, { token: tok.alice }), 403, 'FORBIDDEN');
    assertProblem(await call('GET', '/v1/events?city=atlantis', { token: tok.ops }), 404, 'NOT_FOUND');
    assertProblem(
      await call('GET', `/v1/events?city=${city.id}&after=yesterday`, { token: tok.ops }),
      400,
      'VALIDATION',
    );
    const page1 = await call('GET', `/v1/events?city=${city.id}&limit=3`, { token: tok.ops });
    const events = page1.json.events as Record<string, unknown>[];
    assert.equal(events.length, 3);
    for (const e of events) assert.equal(new CloudEvent(e as never, true).validate(), true);
    assert.equal(events[0]!.type, 'vehicle.created');
    const page2 = await call('GET', `/v1/events?city=${city.id}&limit=1000&after=${String(page1.json.next)}`, {
      token: tok.ops,
    });
    const rest = page2.json.events as { id: string }[];
    assert.ok(rest.length > 3);
    assert.notEqual(rest[0]!.id, events[2]!.id, 'the cursor is exclusive');
    const all = await redis.xlen(`{c:${city.id}}:events`);
    assert.equal(events.length + rest.length, all, 'every event, once');
  });
});

describe('rate limits', () => {
  test("a burst past the caller's limit is 429 with Retry-After; limits are per caller and role", async () => {
    const limited = await buildApp({
      inventory: inv,
      redis,
      authenticate: authenticator({ secret: SECRET }),
      rateLimits: { customer: 5, host: 50, ops: 50, admin: 50 },
    });
    const url = await limited.listen({ port: 0, host: '127.0.0.1' });
    try {
      const carol = await mintToken(SECRET, { sub: `carol-${Date.now()}`, role: 'customer' });
      const get = (token: string) => fetch(`${url}/v1/cities`, { headers: { authorization: `Bearer ${token}` } });
      const first = await get(carol);
      assert.equal(first.headers.get('ratelimit-limit'), '5');
      assert.equal(first.headers.get('ratelimit-remaining'), '4');
      const burst = await Promise.all(Array.from({ length: 6 }, () => get(carol)));
      const refused = burst.filter((r) => r.status === 429);
      assert.equal(refused.length, 2, 'five per minute: the 6th and 7th are refused');
      const r = refused[0]!;
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(((await r.json()) as { code: string }).code, 'RATE_LIMITED');
      assert.ok(Number(r.headers.get('retry-after')) >= 1, 'Retry-After in seconds');
      const dave = await mintToken(SECRET, { sub: `dave-${Date.now()}`, role: 'customer' });
      assert.equal((await get(dave)).status, 200, 'another caller has its own budget');
      assert.equal((await fetch(`${url}/healthz`)).status, 200, 'operations endpoints are not limited');
    } finally {
      await limited.close();
    }
  });
});

describe('batch and analytics', () => {
  test('a vehicle batch reports per item; bad items do not sink the rest; the size is capped', async () => {
    const good = {
      city: city.id,
      category: 'sedan',
      seats: 5,
      make: 'VW',
      model: 'Jetta',
      transmission: 'manual',
      fuel: 'petrol',
      location: { lat: 12.9, lng: 77.6 },
      pricePerHour: 9,
    };
    const r = await call('POST', '/v1/vehicles/batch', {
      token: tok.hostA,
      body: {
        items: [
          good,
          { ...good, category: 'spaceship' },
          { ...good, city: 'atlantis' },
          { ...good, hostId: 'host-b' },
          good,
        ],
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const results = r.json.results as { index: number; ok: boolean; status: number; code?: string; id?: string }[];
    assert.deepEqual(
      results.map((x) => [x.index, x.ok, x.code ?? null]),
      [
        [0, true, null],
        [1, false, 'VALIDATION'],
        [2, false, 'NOT_FOUND'],
        [3, false, 'VALIDATION'],
        [4, true, null],
      ],
    );
    assert.deepEqual([r.json.succeeded, r.json.failed], [2, 3]);
    assert.equal((await inv.getVehicleState(results[0]!.id!)).vehicle.hostId, 'host-a');
    assertProblem(
      await call('POST', '/v1/vehicles/batch', {
        token: tok.hostA,
        body: { items: Array.from({ length: 1001 }, () => good) },
      }),
      400,
      'VALIDATION',
    );
    assertProblem(
      await call('POST', '/v1/vehicles/batch', { token: tok.alice, body: { items: [good] } }),
      403,
      'FORBIDDEN',
    );
  });

  test("a block batch blocks the caller's own vehicles and reports the others as not found", async () => {
    const t = futureHour(300 * HOUR);
    const item = (vehicleId: string) => ({ vehicleId, reason: 'maintenance', from: iso(t), to: iso(t + 2 * HOUR) });
    const r = await call('POST', '/v1/blocks/batch', {
      token: tok.hostA,
      body: { items: [item(vehicle), item(otherVehicle), { vehicleId: vehicle, reason: 'maintenance', from: iso(t) }] },
    });
    const results = r.json.results as { ok: boolean; code?: string }[];
    assert.deepEqual(
      results.map((x) => x.code ?? 'ok'),
      ['ok', 'NOT_FOUND', 'INVALID_INTERVAL'],
    );
  });

  test('ops see live counts per city by status and category, exactly the counters', async () => {
    assertProblem(await call('GET', '/v1/analytics/cities', { token: tok.hostA }), 403, 'FORBIDDEN');
    const r = await call('GET', '/v1/analytics/cities', { token: tok.ops });
    const mine = (r.json.cities as { city: string; vehicles: number; byStatus: Record<string, number> }[]).find(
      (c) => c.city === city.id,
    )!;
    assert.equal(mine.vehicles, await redis.scard(`{c:${city.id}}:vehicles`));
    assert.equal(
      Object.values(mine.byStatus).reduce((a, b) => a + b, 0),
      mine.vehicles,
    );
  });
});

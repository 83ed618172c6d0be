/**
 * The audit trail (issue 26): every event says who acted — the caller (subject, role, host or
 * customer id, the token's id) and the request, or a named part of the service (`system:sweeper`)
 * — and `GET /v1/audit` answers it from PostgreSQL, filtered and paged, to admins only.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { after, before, test } from 'node:test';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import type { StreamEvent } from '../../src/domain/events.ts';
import { readStream } from '../../src/redis/events.ts';
import { recordCities } from '../../src/services/durable.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { startSweeper } from '../../src/workers/sweeper.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { tenantTokens, type Tenant } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const UNLIMITED = { customer: 100_000, host: 100_000, ops: 100_000, admin: 100_000 };
const city = testCity();
let stores: Stores;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let base: string;
let tok: Record<Tenant, string>;
let vehicleA = '';
let vehicleB = '';

async function call(token: string, method: string, path: string, body?: unknown, requestId?: string) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(requestId ? { 'x-request-id': requestId } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return {
    status: res.status,
    requestId: res.headers.get('x-request-id'),
    json: (await res.json()) as Record<string, unknown>,
  };
}

const streamEvents = () => readStream(stores.redis, city.id, '0-0', 10_000);
const iso = (ms: number) => new Date(ms).toISOString();

before(async () => {
  stores = await startStores();
  // Holds lapse after a second here: the sweeper's doing, recorded as its own.
  inv = newInventory(stores.redis, city, { holdTtlMs: 1_000 });
  await recordCities(stores.pool, [city]);
  vehicleA = await addVehicle(inv, city, { hostId: 'host-a' });
  vehicleB = await addVehicle(inv, city, { hostId: 'host-b' });
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
  tok = await tenantTokens(SECRET);
});

after(async () => {
  await app.close();
  await readModel.stop();
  await stores.stop();
});

test("a customer's booking names the customer, the token and the request it came in", async () => {
  const t = futureHour(3 * HOUR);
  const r = await call(
    tok.alice,
    'POST',
    '/v1/bookings',
    { vehicleId: vehicleA, from: iso(t), to: iso(t + HOUR) },
    'req-audit-1',
  );
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.equal(r.requestId, 'req-audit-1', 'the caller gets its own request id back');
  const e = (await streamEvents()).find((x) => x.type === 'booking.confirmed' && x.subject === r.json.id);
  assert.ok(e, 'the booking event is in the stream');
  assert.deepEqual(e.actor, { sub: 'alice', role: 'customer', customerId: 'alice', jti: decodeJwt(tok.alice).jti });
  assert.equal(e.requestId, 'req-audit-1');
  assert.equal(e.traceparent, undefined, 'tracing off (no OTEL_*): no trace context in the event');
});

test('a request without an id of its own gets one, answered and recorded alike', async () => {
  const t = futureHour(30 * HOUR);
  const r = await call(tok.hostA, 'POST', `/v1/vehicles/${vehicleA}/blocks`, {
    from: iso(t),
    to: iso(t + HOUR),
    reason: 'maintenance',
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.match(r.requestId ?? '', /^[0-9a-f-]{36}$/);
  const e = (await streamEvents()).find((x) => x.type === 'block.placed' && x.subject === r.json.id);
  assert.ok(e);
  assert.equal(e.requestId, r.requestId);
  assert.equal(e.actor?.role, 'host');
  assert.equal(e.actor?.hostId, 'host-a');
});

test('a hold the sweeper expires is the sweeper doing', async () => {
  const t = futureHour(50 * HOUR);
  const r = await call(tok.bob, 'POST', '/v1/holds', { vehicleId: vehicleB, from: iso(t), to: iso(t + HOUR) });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const sweeper = startSweeper(inv, { intervalMs: 100 });
  try {
    let expired: StreamEvent | undefined;
    for (let i = 0; i < 100 && !expired; i++) {
      expired = (await streamEvents()).find((x) => x.type === 'hold.expired' && x.subject === r.json.id);
      if (!expired) await sleep(50);
    }
    assert.ok(expired, 'the hold expired');
    assert.deepEqual(expired.actor, { sub: 'system:sweeper', role: 'system' });
    assert.equal(expired.requestId, undefined, 'no request: the sweeper acted on its own');
  } finally {
    await sweeper.stop();
  }
});

test('GET /v1/audit: from PostgreSQL, by actor, subject and type, newest first, in pages; admins only', async () => {
  await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
  const byAlice = await call(tok.admin, 'GET', `/v1/audit?actor=alice&city=${city.id}`);
  assert.equal(byAlice.status, 200, JSON.stringify(byAlice.json));
  const events = byAlice.json.events as { id: string; type: string; actor: { sub: string }; requestId: string }[];
  assert.ok(events.length >= 1);
  assert.ok(
    events.every((e) => e.actor.sub === 'alice'),
    'only what alice did',
  );
  assert.ok(events.some((e) => e.type === 'booking.confirmed' && e.requestId === 'req-audit-1'));

  const swept = await call(tok.admin, 'GET', '/v1/audit?actor=system:sweeper&type=hold.expired');
  assert.equal((swept.json.events as unknown[]).length, 1);

  // Every page in order: newest first, nothing twice, the pages together the whole trail.
  const all = await call(tok.admin, 'GET', `/v1/audit?city=${city.id}&limit=1000`);
  const whole = (all.json.events as { id: string }[]).map((e) => e.id);
  const paged: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await call(tok.admin, 'GET', `/v1/audit?city=${city.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(r.status, 200);
    paged.push(...(r.json.events as { id: string }[]).map((e) => e.id));
    cursor = r.json.next as string | null;
  } while (cursor);
  assert.deepEqual(paged, whole);
  const ms = whole.map((id) => Number(id.split('-')[0]));
  assert.deepEqual(
    ms,
    [...ms].sort((a, b) => b - a),
    'newest first',
  );

  const ofVehicle = await call(tok.admin, 'GET', `/v1/audit?subject=${vehicleA}`);
  assert.ok((ofVehicle.json.events as { vehicle: string }[]).every((e) => e.vehicle === vehicleA));

  assert.equal((await call(tok.ops, 'GET', '/v1/audit')).status, 403, 'ops do not read the audit trail');
  assert.equal((await call(tok.alice, 'GET', '/v1/audit')).status, 403);
  const bad = await call(tok.admin, 'GET', '/v1/audit?cursor=not-ours');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.code, 'VALIDATION');
  const order = await call(tok.admin, 'GET', `/v1/audit?from=${iso(Date.now())}&to=${iso(Date.now() - HOUR)}`);
  assert.equal(order.status, 400);
});

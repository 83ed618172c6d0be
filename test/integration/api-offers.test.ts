/**
 * Offers over the API: a host's block displaces a customer's booking; the customer hears of the
 * offers on the WebSocket `booking:<id>` topic, reads them, and accepts one over HTTP; another
 * tenant can neither see nor take them; a decline cancels with a full refund.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { ConflictWorker } from '../../src/workers/resolver.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, addVehicle, connect, futureHour, newInventory, snapshotCity, testCity } from '../support/engine.ts';
import { tenantTokens } from '../support/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const city = testCity();
let server: RedisServer;
let redis: Redis;
let inv: Inventory;
let readModel: ReadModel;
let worker: ConflictWorker;
let app: App;
let base: string;
const tok: Record<string, string> = {};

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

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  inv = newInventory(redis, city);
  readModel = new ReadModel(redis, inv);
  await readModel.start();
  const desk = new ConflictDesk(redis, inv, readModel);
  worker = new ConflictWorker(redis, desk, inv.cities, { validateEveryMs: 0 });
  worker.start();
  app = await buildApp({
    inventory: inv,
    redis,
    readModel,
    conflicts: desk,
    authenticate: authenticator({ secret: SECRET }),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  Object.assign(tok, await tenantTokens(SECRET));
});

after(async () => {
  await app.close();
  await worker.stop();
  await readModel.stop();
  redis.disconnect();
  await server.stop();
});

test('a displaced customer hears of the offers live, reads them and accepts one; other tenants cannot', async () => {
  const t = futureHour(48 * HOUR);
  const victim = await addVehicle(inv, city, { hostId: 'host-a' });
  const alternatives = [
    await addVehicle(inv, city, { hostId: 'host-b' }),
    await addVehicle(inv, city, { hostId: 'host-b', category: 'suv', pricePerHour: 20 }),
  ];
  const booked = await call(tok.alice!, 'POST', '/v1/bookings', {
    vehicleId: victim,
    from: new Date(t).toISOString(),
    to: new Date(t + 4 * HOUR).toISOString(),
  });
  assert.equal(booked.status, 201);
  const id = String(booked.json.id);

  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/live?access_token=${tok.alice}`);
  const messages: Array<{ type: string; event?: { type: string; data: Record<string, unknown> } }> = [];
  ws.on('message', (raw) => messages.push(JSON.parse(raw.toString())));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'subscribe', topic: `booking:${id}` }));
  while (!messages.some((m) => m.type === 'subscribed')) await sleep(5);

  assert.equal(
    (
      await call(tok.hostA!, 'POST', `/v1/vehicles/${victim}/blocks`, {
        reason: 'maintenance',
        from: new Date(t - HOUR).toISOString(),
        to: new Date(t + 8 * HOUR).toISOString(),
      })
    ).status,
    201,
  );
  const deadline = Date.now() + 5_000;
  while (!messages.some((m) => m.event?.type === 'conflict.offers_ready')) {
    assert.ok(Date.now() < deadline, `no offers pushed: ${JSON.stringify(messages)}`);
    await sleep(5);
  }
  assert.deepEqual(
    messages.filter((m) => m.type === 'event').map((m) => m.event!.type),
    ['booking.conflicted', 'conflict.offers_ready'],
  );

  const offers = await call(tok.alice!, 'GET', `/v1/bookings/${id}/offers`);
  assert.equal(offers.status, 200);
  const list = offers.json.offers as Array<{ id: string; vehicleId: string; incentive: { kind: string } }>;
  assert.deepEqual(list.map((o) => o.vehicleId).sort(), [...alternatives].sort());
  assert.equal(list.find((o) => o.vehicleId === alternatives[1])?.incentive.kind, 'free_upgrade');
  assert.equal(
    (await call(tok.hostA!, 'GET', `/v1/bookings/${id}/offers`)).status,
    200,
    "the original vehicle's host may look",
  );
  assert.equal((await call(tok.ops!, 'GET', `/v1/bookings/${id}/offers`)).status, 200);

  const before = await snapshotCity(redis, city.id);
  for (const [who, method, path] of [
    ['bob', 'GET', `/v1/bookings/${id}/offers`],
    ['hostB', 'GET', `/v1/bookings/${id}/offers`],
    ['bob', 'POST', `/v1/bookings/${id}/offers/${list[0]!.id}/accept`],
    ['hostB', 'POST', `/v1/bookings/${id}/offers/${list[0]!.id}/accept`],
    ['hostA', 'POST', `/v1/bookings/${id}/offers/${list[0]!.id}/accept`],
    ['bob', 'POST', `/v1/bookings/${id}/offers/decline`],
    ['hostA', 'POST', `/v1/bookings/${id}/offers/decline`],
  ] as const) {
    const r = await call(tok[who]!, method, path, method === 'POST' ? {} : undefined);
    assert.ok(r.status === 403 || r.status === 404, `${who} ${method} ${path} → ${r.status}`);
  }
  assert.deepEqual(await snapshotCity(redis, city.id), before, 'refusals change nothing');

  const accepted = await call(tok.alice!, 'POST', `/v1/bookings/${id}/offers/${list[0]!.id}/accept`);
  assert.equal(accepted.status, 200, JSON.stringify(accepted.json));
  assert.deepEqual(
    [accepted.json.id, accepted.json.vehicleId, accepted.json.status],
    [id, list[0]!.vehicleId, 'confirmed'],
  );
  assert.equal((accepted.json.reaccommodatedFrom as { vehicleId: string }).vehicleId, victim);
  const again = await call(tok.alice!, 'POST', `/v1/bookings/${id}/offers/${list[1]!.id}/accept`);
  assert.deepEqual([again.status, again.json.code], [409, 'INVALID_STATE']);
  const read = await call(tok.alice!, 'GET', `/v1/bookings/${id}`);
  assert.deepEqual([read.json.vehicleId, read.json.status], [list[0]!.vehicleId, 'confirmed']);
  while (!messages.some((m) => m.event?.type === 'booking.confirmed')) await sleep(5);
  ws.close();
});

test('declining over HTTP cancels with a full refund; no offers for a booking that has none', async () => {
  const t = futureHour(200 * HOUR);
  const victim = await addVehicle(inv, city, { hostId: 'host-a' });
  await addVehicle(inv, city, { hostId: 'host-b' });
  const id = String(
    (
      await call(tok.bob!, 'POST', '/v1/bookings', {
        vehicleId: victim,
        from: new Date(t).toISOString(),
        to: new Date(t + 2 * HOUR).toISOString(),
      })
    ).json.id,
  );
  assert.equal((await call(tok.bob!, 'GET', `/v1/bookings/${id}/offers`)).status, 404);
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const deadline = Date.now() + 5_000;
  while ((await call(tok.bob!, 'GET', `/v1/bookings/${id}/offers`)).status !== 200) {
    assert.ok(Date.now() < deadline);
    await sleep(10);
  }
  const declined = await call(tok.bob!, 'POST', `/v1/bookings/${id}/offers/decline`);
  assert.deepEqual([declined.status, declined.json.status], [200, 'declined']);
  const booking = await call(tok.bob!, 'GET', `/v1/bookings/${id}`);
  assert.deepEqual(
    [booking.json.status, booking.json.cancelReason, booking.json.refund],
    ['cancelled', 'offers_declined', 'full'],
  );
});

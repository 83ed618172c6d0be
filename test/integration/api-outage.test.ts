/**
 * Redis down: once REDIS_FAILOVER_WAIT_MS has passed (1 s here), the API answers 503 UNAVAILABLE problems (a store outage is not a bug, so never a
 * 500), keeps serving what needs no store, the rate limiter fails open rather than failing the
 * request, and everything works again once Redis is back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, addVehicle, connect, futureHour, newInventory, testCity } from '../support/engine.ts';

const SECRET = new TextEncoder().encode('outage-secret-of-at-least-32-bytes-long!');
let server: RedisServer;
let redis: Redis;
let app: App;
let base: string;

before(async () => {
  server = await startRedis({ external: 'never' });
  redis = connect(server.url, 1_000);
});
after(async () => {
  await app.close();
  redis.disconnect();
  await server.stop();
});

test('Redis down: 503 problems, never a 500; back up: business as usual', { timeout: 60_000 }, async () => {
  const city = testCity();
  const inv = newInventory(redis, city);
  const vehicle = await addVehicle(inv, city);
  app = await buildApp({ inventory: inv, redis, authenticate: authenticator({ secret: SECRET }) });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  const token = await mintToken(SECRET, { sub: 'alice', role: 'customer' });
  const t = futureHour();
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  const book = (h: number) =>
    call('POST', '/v1/bookings', {
      vehicleId: vehicle,
      from: new Date(t + h * HOUR).toISOString(),
      to: new Date(t + (h + 1) * HOUR).toISOString(),
    });

  await server.kill9();
  const t0 = Date.now();
  for (const r of [await book(0), await call('GET', `/v1/vehicles/${vehicle}`)]) {
    assert.equal(r.status, 503, await r.clone().text());
    assert.match(r.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal(((await r.json()) as { code: string }).code, 'UNAVAILABLE');
  }
  assert.equal((await call('GET', '/v1/cities')).status, 200, 'what needs no store is still served');
  console.log('outage answers took', Date.now() - t0, 'ms');
  const t1 = Date.now();

  await server.restart();
  let r = await book(2);
  for (let i = 0; i < 50 && r.status === 503; i++) {
    await new Promise((res) => setTimeout(res, 100));
    r = await book(2);
  }
  assert.equal(r.status, 201, await r.text());
  console.log('recovery took', Date.now() - t1, 'ms');
});

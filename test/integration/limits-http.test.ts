/**
 * Limits that hold when an HTTP client misbehaves (issue 11): budgets charged by weight (a batch
 * of N items costs N) and for every request (invalid ones and unknown routes too; requests
 * without a valid token per address); a customer's live holds across every city stop at the cap,
 * and holds placed too fast are refused, both with Retry-After; a client dribbling its headers is
 * cut within the header timeout; connections per address are capped; and a keep-alive client's
 * long sequential run never meets a reset connection.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { Agent, fetch as undiciFetch } from 'undici';
import { buildApp, type App, type AppDeps } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, SEDAN, connect, futureHour, testCity } from '../support/engine.ts';
import { seeded } from '../support/random.ts';
import { tenantTokens } from '../support/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('limits-http-secret-of-32-bytes-or-more!');
const cities = [testCity(), testCity(), testCity()];
let server: RedisServer;
let redis: Redis;
let inv: Inventory;
const apps: App[] = [];
let tok: Awaited<ReturnType<typeof tenantTokens>>;

before(async () => {
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
  inv = new Inventory(redis, {
    cities: new CityCatalog(cities),
    holdLimits: { maxLiveHoldsTotal: 4, holdsPerWindow: 6, holdRateWindowMs: 60_000 },
  });
  tok = await tenantTokens(SECRET);
});
after(async () => {
  for (const a of apps) await a.close();
  redis.disconnect();
  await server.stop();
});

async function serve(extra: Partial<AppDeps> = {}): Promise<string> {
  const app = await buildApp({ inventory: inv, redis, authenticate: authenticator({ secret: SECRET }), ...extra });
  apps.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}

const remaining = (r: Response) => Number(r.headers.get('ratelimit-remaining'));

test('a batch of N items charges N; invalid requests, unknown routes and anonymous requests count too', async () => {
  const base = await serve({ rateLimits: { customer: 100, host: 100, ops: 100, admin: 100, anonymous: 5 } });
  const h = { authorization: `Bearer ${tok.hostA}`, 'content-type': 'application/json' };
  const first = await fetch(`${base}/v1/cities`, { headers: h });
  assert.equal(remaining(first), 99);
  const items = Array.from({ length: 30 }, () => ({ city: cities[0]!.id, ...SEDAN, hostId: undefined }));
  const batch = await fetch(`${base}/v1/vehicles/batch`, {
    method: 'POST',
    headers: h,
    body: JSON.stringify({ items }),
  });
  assert.equal(batch.status, 200, await batch.clone().text());
  assert.equal(remaining(await fetch(`${base}/v1/cities`, { headers: h })), 100 - 1 - 30 - 1, 'the batch cost 30');
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${base}/v1/vehicles/batch`, { method: 'POST', headers: h, body: '{"items":"nope"}' });
    assert.equal(r.status, 400);
    seen.push(remaining(r));
  }
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`${base}/v1/no-such-route-${i}`, { headers: h });
    assert.equal(r.status, 404);
    seen.push(remaining(r));
  }
  assert.deepEqual(seen, [67, 66, 65, 64, 63, 62, 61, 60, 59, 58], 'each refused request spent a unit');
  assert.equal(
    remaining(await fetch(`${base}/v1/cities`, { headers: h })),
    100 - 1 - 30 - 1 - 10 - 1,
    '10 refused requests cost 10',
  );
  // Without a valid token: counted per address, against RATE_LIMIT_ANONYMOUS.
  const anonymous = [];
  for (let i = 0; i < 8; i++)
    anonymous.push((await fetch(`${base}/v1/cities`, { headers: { authorization: 'Bearer nonsense' } })).status);
  assert.deepEqual(anonymous, [401, 401, 401, 401, 401, 429, 429, 429]);
});

test("a customer's live holds across every city stop at the cap; holds placed too fast are refused; both say when to retry", async () => {
  const base = await serve({ rateLimits: { customer: 1e6, host: 1e6, ops: 1e6, admin: 1e6 } });
  const vehicles = [];
  for (const c of cities)
    for (let i = 0; i < 3; i++) vehicles.push((await inv.createVehicle(c.id, { ...SEDAN })).vehicleId);
  const t = futureHour(HOUR);
  const hold = (v: string, token = tok.alice) =>
    fetch(`${base}/v1/holds`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ vehicleId: v, from: new Date(t).toISOString(), to: new Date(t + HOUR).toISOString() }),
    });
  const statuses = [];
  for (const v of vehicles) statuses.push((await hold(v)).status);
  assert.deepEqual(statuses.slice(0, 4), [201, 201, 201, 201], 'four live holds, in three cities');
  const refused = await hold(vehicles[8]!);
  assert.equal(refused.status, 429);
  const body = (await refused.json()) as { code: string; max: number };
  assert.deepEqual([body.code, body.max], ['HOLD_LIMIT', 4]);
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After: when the first hold lapses');
  assert.equal(statuses.filter((s) => s === 201).length, 4, 'never more than the cap');
  // Released holds give their place back; but the hold rate (6 a minute) is spent soon after.
  const ids = await redis.zrange(
    (await import('../../src/redis/keys.ts')).keys.customerHoldReservations('alice'),
    '0',
    '-1',
  );
  assert.equal(ids.length, 4);
  for (const id of ids.slice(0, 3))
    assert.equal(
      (await fetch(`${base}/v1/holds/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${tok.alice}` } }))
        .status,
      200,
    );
  assert.equal((await hold(vehicles[5]!)).status, 201, 'a released hold freed a place');
  assert.equal((await hold(vehicles[6]!)).status, 201, 'the sixth hold placed this minute');
  const fast = await hold(vehicles[7]!);
  assert.equal(fast.status, 429);
  assert.equal(((await fast.json()) as { code: string }).code, 'HOLD_RATE_LIMITED');
  assert.ok(Number(fast.headers.get('retry-after')) > 0);
  assert.equal((await hold(vehicles[7]!, tok.bob)).status, 201, 'another customer is not affected');
});

test('a client sending one header byte a second is cut within the header timeout', async () => {
  const base = new URL(await serve({ http: { headersTimeoutMs: 2_000, keepAliveTimeoutMs: 500 } }));
  const socket = tcpConnect(Number(base.port), base.hostname);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
  socket.on('error', () => {});
  socket.resume(); // read what the server says (408), so that its close is seen at once
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const started = Date.now();
  const request =
    'GET /v1/cities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
  let i = 0;
  const drip = setInterval(() => {
    if (!socket.destroyed && i < request.length) socket.write(request[i++]!);
  }, 1_000);
  const at = await closed;
  clearInterval(drip);
  console.log(`slow-header connection closed after ${at - started} ms (${i} bytes sent)`);
  assert.ok(at - started <= 2_000 + 1_500, `closed after ${at - started} ms`);
  assert.ok(i < request.length, 'before its headers were complete');
});

test('connections per client address are capped', async () => {
  const base = new URL(await serve({ http: { maxConnectionsPerIp: 5 } }));
  const sockets = Array.from({ length: 8 }, () => tcpConnect(Number(base.port), base.hostname));
  const outcomes = await Promise.all(
    sockets.map(
      (s) =>
        new Promise<string>((resolve) => {
          s.on('error', () => {});
          s.once('connect', () => {
            s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
            s.once('data', () => resolve('answered'));
            s.once('close', () => resolve('dropped'));
          });
        }),
    ),
  );
  assert.equal(outcomes.filter((o) => o === 'answered').length, 5);
  assert.equal(outcomes.filter((o) => o === 'dropped').length, 3);
  for (const s of sockets) s.destroy();
});

test("a keep-alive client's long sequential run meets no reset connection", { timeout: 120_000 }, async () => {
  const rnd = seeded('keep-alive');
  const base = await serve({
    http: { keepAliveTimeoutMs: 1_000 },
    rateLimits: { customer: 1e6, host: 1e6, ops: 1e6, admin: 1e6 },
  });
  // undici's own defaults: it keeps connections alive and honours the server's Keep-Alive hint.
  const agent = new Agent({ connections: 4 });
  const failures: string[] = [];
  let ok = 0;
  for (let i = 0; i < 1_500; i++) {
    // Now and then the client pauses around the server's keep-alive timeout: the race that resets.
    if (i % 150 === 149) await sleep(800 + rnd() * 400);
    try {
      const r = await undiciFetch(`${base}/v1/cities`, {
        headers: { authorization: `Bearer ${tok.alice}` },
        dispatcher: agent,
      });
      await r.arrayBuffer();
      ok++;
    } catch (err) {
      failures.push(String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message));
    }
  }
  await agent.close();
  assert.deepEqual(failures, [], 'no ECONNRESET');
  assert.equal(ok, 1_500);
});

/**
 * Two regions on this machine (docs/regions.md): `a` serves blr, `b` serves del, each `fleet
 * serve` with its own Redis and PostgreSQL, each reached from the other through a delay proxy
 * (60 ms round trip). A request for the other region's city answers 307 to it (method and body
 * kept: a client that follows it with its credentials books there unchanged); a WebSocket topic of the other
 * region's city is refused naming its URL; a customer's bookings list merges both regions by start
 * and pages across them; with one region down it answers what it has, naming the region missing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { mintToken } from '../../src/api/auth.ts';
import { startDelayProxy, type DelayProxy } from '../../src/ha/delay-proxy.ts';
import { writeRegionsFile } from '../../src/ha/dr-standby.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { freePort, startRedis, type RedisServer } from '../support/redis.ts';
import { fetchFollowing } from '../support/http.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';

const SECRET = 'regions-test-secret-of-32-bytes-or-more';
const HOUR = 3_600_000;
let dir: string;
const redis: RedisServer[] = [];
const dbs: TestDatabase[] = [];
const proxies: DelayProxy[] = [];
let a: ServedFleet;
let b: ServedFleet;
/** Each region as the other region reaches it: through the delay proxy. */
let viaProxy: Record<'a' | 'b', string>;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'fleet-regions-'));
  const ports = { a: await freePort(), b: await freePort() };
  for (const region of ['a', 'b'] as const) proxies.push(await startDelayProxy({ port: ports[region] }, 60));
  viaProxy = { a: `http://127.0.0.1:${proxies[0]!.port}`, b: `http://127.0.0.1:${proxies[1]!.port}` };
  const file = path.join(dir, 'regions.json');
  await writeRegionsFile(file, { a: { cities: ['blr'], url: viaProxy.a }, b: { cities: ['del'], url: viaProxy.b } });
  const serve = async (region: 'a' | 'b') => {
    const r = await startRedis({ external: 'never' });
    const db = await createTestDatabase();
    redis.push(r);
    dbs.push(db);
    return startServe(
      {
        REGION: region,
        REGIONS_FILE: file,
        WEB_CONCURRENCY: '1',
        REDIS_URL: r.url,
        DATABASE_URL: db.url,
        JWT_SECRET: SECRET,
        RATE_LIMIT_CUSTOMER: '100000',
        REGION_FANOUT_TIMEOUT_MS: '1500',
      },
      ['--demo', '--vehicles-per-city', '6'],
      ports[region],
    );
  };
  [a, b] = await Promise.all([serve('a'), serve('b')]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  for (const p of proxies) await p.close();
  for (const r of redis) await r.stop();
  for (const d of dbs) await d.drop();
  await rm(dir, { recursive: true, force: true });
});

const secret = new TextEncoder().encode(SECRET);
const as = async (sub: string) => ({
  authorization: `Bearer ${await mintToken(secret, { sub, role: 'customer' })}`,
  'content-type': 'application/json',
});

async function firstVehicle(base: string, city: string, from: number): Promise<string> {
  const q = `from=${new Date(from).toISOString()}&to=${new Date(from + HOUR).toISOString()}&limit=1`;
  const r = await fetch(`${base}/v1/cities/${city}/availability?${q}`, { headers: await as('scout') });
  assert.equal(r.status, 200, await r.clone().text());
  const id = ((await r.json()) as { vehicles: { vehicleId: string }[] }).vehicles[0]?.vehicleId;
  assert.ok(id, `a free vehicle in ${city}`);
  return id;
}

test('GET /v1/regions names both regions, their cities and URLs', async () => {
  const r = await fetch(`${a.base}/v1/regions`);
  assert.equal(r.status, 200);
  const body = (await r.json()) as { region: string; regions: { name: string; cities: string[]; url: string }[] };
  assert.equal(body.region, 'a');
  assert.deepEqual(
    body.regions.map((x) => [x.name, x.cities, x.url]),
    [
      ['a', ['blr'], viaProxy.a],
      ['b', ['del'], viaProxy.b],
    ],
  );
});

test('another region’s city: 307 to it with method and body kept; a client that follows redirects books there', async () => {
  const from = Math.ceil((Date.now() + 20 * 24 * HOUR) / HOUR) * HOUR;
  const vehicleId = await firstVehicle(b.base, 'del', from);
  const body = JSON.stringify({
    vehicleId,
    from: new Date(from).toISOString(),
    to: new Date(from + HOUR).toISOString(),
  });
  const headers = await as('rita');
  const raw = await fetch(`${a.base}/v1/bookings?x=1`, { method: 'POST', headers, body, redirect: 'manual' });
  assert.equal(raw.status, 307);
  assert.equal(raw.headers.get('location'), `${viaProxy.b}/v1/bookings?x=1`);
  assert.equal(raw.headers.get('x-fleet-region'), 'b');
  // Followed with the credentials (fetch alone drops Authorization across origins): the booking
  // is made in region b, with the same method and body.
  const followed = await fetchFollowing(`${a.base}/v1/bookings`, { method: 'POST', headers, body });
  assert.equal(followed.status, 201, await followed.clone().text());
  const booking = (await followed.json()) as { id: string; vehicleId: string };
  assert.equal(booking.vehicleId, vehicleId);
  const read = await fetch(`${b.base}/v1/bookings/${booking.id}`, { headers });
  assert.equal(read.status, 200, 'region b holds it');
  // Reads by id are routed too (the id carries its city).
  const viaA = await fetch(`${a.base}/v1/bookings/${booking.id}`, { headers, redirect: 'manual' });
  assert.equal(viaA.status, 307);
});

test('a WebSocket topic of another region’s city is refused, naming that region’s URL', async () => {
  const token = await mintToken(secret, { sub: 'olga', role: 'ops' });
  const ws = new WebSocket(`${a.base.replace('http', 'ws')}/v1/live?access_token=${token}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const answer = new Promise<Record<string, unknown>>((resolve) =>
    ws.on('message', (raw) => {
      const m = JSON.parse(raw.toString()) as Record<string, unknown>;
      if (m.type === 'error' || m.type === 'subscribed') resolve(m);
    }),
  );
  ws.send(JSON.stringify({ type: 'subscribe', topic: 'city:del' }));
  const m = await answer;
  ws.close();
  assert.equal(m.type, 'error');
  assert.equal(m.code, 'WRONG_REGION');
  assert.equal(m.region, 'b');
  assert.equal(m.url, viaProxy.b);
});

test('a customer’s bookings span regions: merged by start, paged across them; one region down: partial, never a 5xx', {
  timeout: 120_000,
}, async () => {
  const headers = await as('mira');
  const t = Math.ceil((Date.now() + 30 * 24 * HOUR) / HOUR) * HOUR;
  // Interleaved starts: blr (a), del (b), blr, del.
  const made: string[] = [];
  for (let i = 0; i < 4; i++) {
    const [base, city] = i % 2 === 0 ? [a.base, 'blr'] : [b.base, 'del'];
    const from = t + i * 3 * HOUR;
    const vehicleId = await firstVehicle(base, city, from);
    const r = await fetch(`${base}/v1/bookings`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ vehicleId, from: new Date(from).toISOString(), to: new Date(from + HOUR).toISOString() }),
    });
    assert.equal(r.status, 201, await r.clone().text());
    made.push(((await r.json()) as { id: string }).id);
  }
  const list = async (query: string) => {
    const r = await fetch(`${a.base}/v1/bookings?${query}`, { headers });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()) as { bookings: { id: string }[]; cursor: string | null; regionsUnavailable?: string[] };
  };
  const all = await list('when=upcoming&limit=50');
  assert.deepEqual(
    all.bookings.map((x) => x.id),
    made,
    'both regions, in start order',
  );
  assert.deepEqual(all.regionsUnavailable, []);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: Awaited<ReturnType<typeof list>> = await list(
      `when=upcoming&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
    );
    seen.push(...page.bookings.map((x) => x.id));
    cursor = page.cursor;
  } while (cursor);
  assert.deepEqual(seen, made, 'pages across regions repeat and skip nothing');

  await b.kill9();
  const started = Date.now();
  const partial = await list('when=upcoming&limit=50');
  assert.ok(Date.now() - started < 10_000);
  assert.deepEqual(partial.regionsUnavailable, ['b']);
  assert.deepEqual(
    partial.bookings.map((x) => x.id),
    made.filter((_, i) => i % 2 === 0),
    "region a's own bookings, and the region that did not answer named",
  );
  const holds = await fetch(`${a.base}/v1/holds`, { headers });
  assert.equal(holds.status, 200);
  assert.deepEqual(((await holds.json()) as { regionsUnavailable: string[] }).regionsUnavailable, ['b']);
});

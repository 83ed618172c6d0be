/**
 * Does the PostgreSQL-only service (bench/pg-only-server.ts) answer as ours does? Two reference
 * cities seeded in a private Redis (seedCity), our API (bench/service-server.ts) on it, the
 * PostgreSQL-only server loaded with the same cities (exportCity), then: searches (the seed day's
 * `searchPath`, plus some nearest-first ones) and vehicle reads compared answer by answer; holds,
 * bookings and cancellations sent to both in the same order, statuses compared; the searches again;
 * and a hold's lapse (a second PostgreSQL-only server with a short hold TTL).
 *
 *   npx tsx bench/pg-only-check.ts      (PG_CHECK_VEHICLES: per city, default 200)
 * Exits 1 when any answer differs, printing the differences.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mintToken } from '../src/api/auth.ts';
import { type City, REFERENCE_CITIES } from '../src/domain/cities.ts';
import { keys } from '../src/redis/keys.ts';
import { seedCity } from '../src/services/demo.ts';
import { Inventory } from '../src/services/inventory.ts';
import { firstSlot, HOUR } from './lib/workload.ts';
import { child, cleanUp, freshDatabase, privateRedis, rng, SECRET } from './side-by-side/harness.ts';
import { type Comparison, compareAnswers, exportCity } from './side-by-side/pg-only.ts';
import { searchPath } from './side-by-side/reads.ts';

const PER_CITY = Number(process.env.PG_CHECK_VEHICLES ?? 200);
const cities = REFERENCE_CITIES.slice(0, 2) as [City, City];
const cityAt = (i: number): City => cities[i % 2] as City;
const first = cities[0].id;
const failures: string[] = [];
const report = (what: string, c: Comparison) => {
  console.log(`${what}: ${c.same}/${c.compared} the same`);
  if (c.same !== c.compared) failures.push(`${what}: ${JSON.stringify(c.differences, null, 1)}`);
};

try {
  const { server, redis } = await privateRedis();
  const inventory = new Inventory(redis);
  for (const c of cities) await seedCity(inventory, redis, c, PER_CITY);
  const ids = new Map<string, string[]>();
  const idsOf = (city: string) => ids.get(city) ?? [];
  for (const c of cities) ids.set(c.id, (await redis.smembers(keys.vehicles(c.id))).sort());
  const secret = new TextEncoder().encode(SECRET);
  const token = await mintToken(secret, { sub: 'pg-check-customer', role: 'customer' });
  // Each write its own customer (ours caps a customer's live holds; the PostgreSQL-only service knows no customers).
  const writers = await Promise.all(
    Array.from({ length: 200 }, (_, i) => mintToken(secret, { sub: `pg-check-writer-${i}`, role: 'customer' })),
  );
  let writer = 0;
  const svc = await child('service-server.ts', { REDIS_URL: server.url, JWT_SECRET: SECRET });
  const db = await freshDatabase();
  const pgo = await child('pg-only-server.ts', { DATABASE_URL: db.url, BENCH_VEHICLES: '0' });
  for (const c of cities)
    console.log(`loaded ${c.id}:`, JSON.stringify(await pgo.call('load', await exportCity(redis, c.id))));
  const compare = (paths: string[]) => compareAnswers({ serviceUrl: svc.url, pgUrl: pgo.url, token, paths, keep: 5 });

  const base = firstSlot();
  const rand = rng(11);
  const searches = (n: number) => Array.from({ length: n }, (_, i) => searchPath(cityAt(i).id, base, rand));
  const nearPaths = Array.from({ length: 60 }, (_, i) => {
    const c = cityAt(i);
    const from = base + Math.floor(rand() * 72) * HOUR;
    const q = new URLSearchParams({
      from: new Date(from).toISOString(),
      to: new Date(from + (2 + Math.floor(rand() * 46)) * HOUR).toISOString(),
      near: `${(c.center.lat + (rand() - 0.5) * 0.2).toFixed(5)},${(c.center.lng + (rand() - 0.5) * 0.2).toFixed(5)}`,
      limit: String(5 + Math.floor(rand() * 20)),
    });
    if (i % 3 === 1) q.set('radiusKm', String(1 + Math.floor(rand() * 8)));
    if (i % 6 === 2) q.set('sort', 'price');
    return `/v1/cities/${c.id}/availability?${q}`;
  });
  const vehiclePaths = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const list = idsOf(cityAt(i).id);
      return `/v1/vehicles/${list[Math.floor(rand() * list.length)]}`;
    });
  report('searches (searchPath)', await compare(searches(300)));
  report('searches (near, radiusKm, sort)', await compare(nearPaths));
  report('vehicle reads', await compare(vehiclePaths(50)));
  // Second pages, each service following its own cursor.
  const page = async (url: string, path: string, auth?: string) =>
    (await (await fetch(url + path, auth ? { headers: { authorization: `Bearer ${auth}` } } : {})).json()) as {
      vehicles: { vehicleId: string }[];
      cursor: string | null;
    };
  let pages = 0;
  let pagesSame = 0;
  for (const path of [...searches(30), ...nearPaths.slice(0, 20)]) {
    const [a, b] = await Promise.all([page(svc.url, path, token), page(pgo.url, path)]);
    if (!a.cursor || !b.cursor) continue;
    const [a2, b2] = await Promise.all([
      page(svc.url, `${path}&cursor=${a.cursor}`, token),
      page(pgo.url, `${path}&cursor=${b.cursor}`),
    ]);
    pages++;
    const ids = (x: typeof a2) => x.vehicles.map((h) => h.vehicleId).join(',') + (x.cursor ? '+' : '');
    if (ids(a2) === ids(b2)) pagesSame++;
    else failures.push(`second page of ${path}: ours ${ids(a2)}, PostgreSQL-only ${ids(b2)}`);
  }
  console.log(`second pages: ${pagesSame}/${pages} the same`);

  // Writes, the same sequence to both: statuses compared. Seeded entries give edge cases.
  const send = async (url: string, path: string, body: unknown, auth: string | false) => {
    const r = await fetch(url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json().catch(() => ({}))) as { id?: string } };
  };
  const booked: { ours: string; pg: string; auth: string }[] = [];
  let writes = 0;
  let writesSame = 0;
  const tally: Record<string, number> = {};
  const both = async (label: string, path: string, body: unknown) => {
    const auth = writers[writer++ % writers.length] ?? token;
    const [a, b] = await Promise.all([send(svc.url, path, body, auth), send(pgo.url, path, body, false)]);
    writes++;
    tally[a.status] = (tally[a.status] ?? 0) + 1;
    if (a.status === b.status) writesSame++;
    else failures.push(`${label} ${path} ${JSON.stringify(body)}: ours ${a.status}, PostgreSQL-only ${b.status}`);
    if (path === '/v1/bookings' && a.status === 201 && b.status === 201)
      booked.push({ ours: a.body.id ?? '', pg: b.body.id ?? '', auth });
    return a.status;
  };
  const iso = (t: number) => new Date(t).toISOString();
  const exported = (await exportCity(redis, first)).entries;
  const block = (reason: string) => exported.find((e) => e.kind === 'block' && e.reason === reason);
  const seeded = exported.find((e) => e.kind === 'booking' && e.status === 'confirmed');
  const seededEnd = seeded?.to ?? base;
  const free = idsOf(first).filter((v) => !exported.some((e) => e.vehicleId === v));
  const [v1, v2] = free;
  const w = { from: base + 100 * HOUR, to: base + 104 * HOUR };
  await both('book', '/v1/bookings', { vehicleId: v1, from: iso(w.from), to: iso(w.to) });
  await both('same window', '/v1/bookings', { vehicleId: v1, from: iso(w.from), to: iso(w.to) });
  await both('inside turnaround', '/v1/bookings', {
    vehicleId: v1,
    from: iso(w.to + 15 * 60_000),
    to: iso(w.to + 2 * HOUR),
  });
  await both('after turnaround', '/v1/holds', {
    vehicleId: v1,
    from: iso(w.to + 30 * 60_000),
    to: iso(w.to + 2 * HOUR),
  });
  await both('hold', '/v1/holds', { vehicleId: v2, from: iso(w.from), to: iso(w.to) });
  await both('book over hold', '/v1/bookings', { vehicleId: v2, from: iso(w.from + HOUR), to: iso(w.to) });
  const cancelBoth = async (label: string, b: { ours: string; pg: string; auth: string }) => {
    const [a, p] = await Promise.all([
      send(svc.url, `/v1/bookings/${b.ours}/cancel`, {}, b.auth),
      send(pgo.url, `/v1/bookings/${b.pg}/cancel`, {}, false),
    ]);
    writes++;
    tally[a.status] = (tally[a.status] ?? 0) + 1;
    if (a.status === p.status) writesSame++;
    else failures.push(`${label} ${b.ours}/${b.pg}: ours ${a.status}, PostgreSQL-only ${p.status}`);
  };
  if (booked[0]) await cancelBoth('cancel', booked[0]);
  const maint = block('maintenance');
  if (maint?.to) {
    const at = { vehicleId: maint.vehicleId };
    await both('in maintenance', '/v1/bookings', { ...at, from: iso(maint.from + HOUR), to: iso(maint.to + HOUR) });
    await both('right after a block', '/v1/bookings', { ...at, from: iso(maint.to), to: iso(maint.to + HOUR) });
    await both('right before a block', '/v1/holds', { ...at, from: iso(maint.from - HOUR), to: iso(maint.from) });
  }
  const accident = block('accident');
  if (accident)
    await both('accident', '/v1/bookings', { vehicleId: accident.vehicleId, from: iso(w.from), to: iso(w.to) });
  const sb = { vehicleId: seeded?.vehicleId };
  await both('seeded + 15 min', '/v1/bookings', {
    ...sb,
    from: iso(seededEnd + 15 * 60_000),
    to: iso(seededEnd + 3 * HOUR),
  });
  await both('seeded + 30 min', '/v1/bookings', {
    ...sb,
    from: iso(seededEnd + 30 * 60_000),
    to: iso(seededEnd + 3 * HOUR),
  });
  await both('in the past', '/v1/bookings', { vehicleId: v1, from: iso(base - 3 * HOUR), to: iso(base - HOUR) });
  await both('unknown vehicle', '/v1/bookings', {
    vehicleId: `veh_${first}_NOSUCH000`,
    from: iso(w.from),
    to: iso(w.to),
  });
  // Random holds, bookings and cancellations in the seed day's proportions, one at a time.
  const r2 = rng(5);
  for (let i = 0; i < 120; i++) {
    const c = cityAt(i);
    const list = idsOf(c.id);
    const vehicleId = list[Math.floor(r2() * list.length)];
    const from = base + Math.floor(r2() * 24 * 7) * HOUR;
    const body = { vehicleId, from: iso(from), to: iso(from + (2 + Math.floor(r2() * 23)) * HOUR) };
    if (i % 10 === 9 && booked.length) {
      const b = booked.splice(Math.floor(r2() * booked.length), 1)[0];
      if (b) await cancelBoth('cancel', b);
    } else await both('random', i % 10 >= 7 ? '/v1/holds' : '/v1/bookings', body);
  }
  // Cancelling twice, and an unknown booking.
  const twice = booked[0];
  if (twice) for (const k of [1, 2]) await cancelBoth(`cancel #${k}`, twice);
  await both('unknown booking', `/v1/bookings/bkg_${first}_NOSUCH000/cancel`, {});
  console.log(`writes: ${writesSame}/${writes} the same status (ours: ${JSON.stringify(tally)})`);
  report('searches after the writes', await compare(searches(150)));
  report('vehicle reads after the writes', await compare(vehiclePaths(50)));

  // A lapsed hold no longer blocks (ours: the same rule; its TTL is 10 min, too long to wait here).
  const db2 = await freshDatabase();
  const short = await child('pg-only-server.ts', { DATABASE_URL: db2.url, BENCH_VEHICLES: '1', HOLD_TTL_MS: '1000' });
  const hold = { vehicleId: 'veh_blr_BENCH0000000', from: iso(w.from), to: iso(w.to) };
  const lapse = [await send(short.url, '/v1/holds', hold, false), await send(short.url, '/v1/holds', hold, false)];
  await sleep(1500);
  lapse.push(await send(short.url, '/v1/bookings', hold, false));
  const statuses = lapse.map((x) => x.status).join(' ');
  console.log(`hold lapse (PostgreSQL-only, TTL 1 s): hold, hold again, book after 1.5 s -> ${statuses}`);
  if (statuses !== '201 409 201') failures.push(`hold lapse: ${statuses}, expected 201 409 201`);
} finally {
  await cleanUp();
}
if (failures.length) {
  console.log(`\n${failures.length} difference(s):\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('the same answers');
process.exit(0);

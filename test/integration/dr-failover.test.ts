/**
 * A whole region lost, with DR_ACK=remote (docs/regions.md). Region `a` (blr) runs `fleet serve`
 * with its Redis and its PostgreSQL primary, whose DR standby lives in region `b` and streams
 * through a delay proxy (60 ms round trip), synchronously: the sync commits with `remote_apply`
 * and every write is answered only once the DR standby has applied it. Customers book in blr;
 * then every process of region a is killed with kill -9 at once. `fleet dr failover --region a
 * --to b` promotes the DR standby, rebuilds blr into b's Redis and publishes the routing; the
 * standby deployment (`fleet serve` as region a on b's Redis and the promoted database) serves blr.
 * Every acknowledged booking is there, read through region b (307 followed), and blr takes
 * bookings again. Then region a comes back (a fresh Redis, a new PostgreSQL replicating the
 * promoted standby) and `fleet dr failback` brings blr home with everything booked meanwhile.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { mintToken } from '../../src/api/auth.ts';
import { startDelayProxy, type DelayProxy } from '../../src/ha/delay-proxy.ts';
import { setSynchronousDrStandby, waitForDrStandby, writeRegionsFile } from '../../src/ha/dr-standby.ts';
import {
  createTestDatabase,
  startPgCluster,
  startPgDrStandby,
  type PgCluster,
  type TestDatabase,
} from '../support/postgres.ts';
import { freePort, startRedis, type RedisServer } from '../support/redis.ts';
import { fetchFollowing } from '../support/http.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
type Ran = { stdout: string; stderr: string; code?: number };
const SECRET = 'dr-test-secret-of-at-least-32-bytes!!';
const HOUR = 3_600_000;
const CLIENTS = 4;
let dir: string;
let regionsFile: string;
let pgA: PgCluster;
let drA: PgCluster;
let redisA: RedisServer;
let redisB: RedisServer;
let dbB: TestDatabase;
const proxies: DelayProxy[] = [];
let a: ServedFleet;
let b: ServedFleet;
let standby: ServedFleet | undefined;
let standbyPort: number;
let aPort: number;
/** Region a's return: a fresh Redis, and a new PostgreSQL replicating the promoted standby. */
let redisA2: RedisServer | undefined;
let pgA2: PgCluster | undefined;
let aAgain: ServedFleet | undefined;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'fleet-dr-'));
  pgA = await startPgCluster();
  // Region a's PostgreSQL, as region b reaches it: 60 ms away.
  const toPgA = await startDelayProxy({ port: pgA.port }, 60);
  proxies.push(toPgA);
  drA = await startPgDrStandby(toPgA.port);
  await setSynchronousDrStandby(pgA.url, true);
  await waitForDrStandby(pgA.url, true);
  [redisA, redisB] = await Promise.all([startRedis({ external: 'never' }), startRedis({ external: 'never' })]);
  dbB = await createTestDatabase();
  aPort = await freePort();
  const bPort = await freePort();
  standbyPort = await freePort();
  const via = async (port: number) => {
    const p = await startDelayProxy({ port }, 60);
    proxies.push(p);
    return `http://127.0.0.1:${p.port}`;
  };
  regionsFile = path.join(dir, 'regions.json');
  await writeRegionsFile(regionsFile, {
    a: {
      cities: ['blr'],
      url: await via(aPort),
      standby: {
        region: 'b',
        url: await via(standbyPort),
        database: `postgres://postgres@127.0.0.1:${drA.port}/fleet`,
      },
    },
    b: { cities: ['del'], url: await via(bPort) },
  });
  const common = { REGIONS_FILE: regionsFile, JWT_SECRET: SECRET, WEB_CONCURRENCY: '1', RATE_LIMIT_CUSTOMER: '100000' };
  [a, b] = await Promise.all([
    startServe(
      {
        ...common,
        REGION: 'a',
        REDIS_URL: redisA.url,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${pgA.port}/fleet`,
        DR_ACK: 'remote',
      },
      ['--demo', '--vehicles-per-city', '12'],
      aPort,
    ),
    startServe(
      { ...common, REGION: 'b', REDIS_URL: redisB.url, DATABASE_URL: dbB.url },
      ['--demo', '--vehicles-per-city', '4'],
      bPort,
    ),
  ]);
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop(), standby?.stop(), aAgain?.stop()]);
  await Promise.all([redisA2?.stop(), pgA2?.destroy()]);
  for (const p of proxies) await p.close();
  await Promise.all([redisA?.stop(), redisB?.stop()]);
  await dbB?.drop();
  await Promise.all([pgA?.destroy(), drA?.destroy()]);
  await rm(dir, { recursive: true, force: true });
});

const secret = new TextEncoder().encode(SECRET);

test('region a killed with kill -9, failed over to b with DR_ACK=remote: no acknowledged booking is lost; failed back home with everything', {
  timeout: 240_000,
}, async () => {
  const ops = await mintToken(secret, { sub: 'olga', role: 'ops' });
  const list = await fetch(`${a.base}/v1/cities/blr/vehicles?limit=100`, {
    headers: { authorization: `Bearer ${ops}` },
  });
  assert.equal(list.status, 200, await list.clone().text());
  const vehicles = ((await list.json()) as { vehicles: { id: string }[] }).vehicles.map((v) => v.id);

  const acknowledged: { id: string; client: number }[] = [];
  let running = true;
  const start = Math.ceil((Date.now() + 50 * 24 * HOUR) / HOUR) * HOUR;
  const client = async (c: number) => {
    const headers = {
      authorization: `Bearer ${await mintToken(secret, { sub: `cust-${c}`, role: 'customer' })}`,
      'content-type': 'application/json',
    };
    for (let k = 0; running; k++) {
      const vehicleId = vehicles[(c + CLIENTS * (k % 3)) % vehicles.length]!;
      const from = start + Math.floor(k / 3) * 2 * HOUR;
      try {
        const r = await fetch(`${a.base}/v1/bookings`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            vehicleId,
            from: new Date(from).toISOString(),
            to: new Date(from + HOUR).toISOString(),
          }),
          signal: AbortSignal.timeout(15_000),
        });
        const body = (await r.json()) as { id?: string };
        if (r.status === 201 && body.id) acknowledged.push({ id: body.id, client: c });
      } catch {
        // region a died under this request: not acknowledged
      }
    }
  };
  const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  await sleep(5_000);

  // Every process of region a, at once.
  await Promise.all([a.kill9(), redisA.kill9(), pgA.stopImmediate()]);
  running = false;
  await load;
  assert.ok(acknowledged.length > 10, `bookings were acknowledged before the loss (${acknowledged.length})`);

  const { stdout, stderr, code }: Ran = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'dr', 'failover', '--region', 'a', '--to', 'b'],
    {
      env: {
        ...process.env,
        REGION: 'b',
        REGIONS_FILE: regionsFile,
        REDIS_URL: redisB.url,
        DATABASE_URL: dbB.url,
        JWT_SECRET: SECRET,
        LOG_LEVEL: 'warn',
      },
    },
  ).catch((err: Ran) => err);
  assert.equal(code ?? 0, 0, `fleet dr failover failed:\n${stdout}\n${stderr}`);
  const report = JSON.parse(stdout) as { promoted: boolean; cities: { city: string; drift: number }[] };
  assert.equal(report.promoted, true);
  assert.deepEqual(
    report.cities.map((c) => [c.city, c.drift]),
    [['blr', 0]],
  );

  // The standby deployment: region a's name, region b's Redis, the promoted database.
  standby = await startServe(
    {
      REGION: 'a',
      REGIONS_FILE: regionsFile,
      JWT_SECRET: SECRET,
      WEB_CONCURRENCY: '1',
      REDIS_URL: redisB.url,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${drA.port}/fleet`,
    },
    [],
    standbyPort,
  );
  const regions = (await (await fetch(`${b.base}/v1/regions`)).json()) as {
    regions: { name: string; servedBy: { region: string } | null }[];
  };
  assert.equal(regions.regions.find((r) => r.name === 'a')?.servedBy?.region, 'b', 'b publishes the new routing');

  const headersOf = async (c: number) => ({
    authorization: `Bearer ${await mintToken(secret, { sub: `cust-${c}`, role: 'customer' })}`,
  });
  const missing: string[] = [];
  for (const { id, client } of acknowledged) {
    // Through region b: the 307 to the standby deployment is followed.
    const r = await fetchFollowing(`${b.base}/v1/bookings/${id}`, { headers: await headersOf(client) });
    if (r.status !== 200) missing.push(`${id} (${r.status})`);
    await r.arrayBuffer();
  }
  assert.deepEqual(missing, [], `every acknowledged booking (${acknowledged.length}) survived the loss of its region`);

  // blr takes bookings again, through region b.
  const from = start + 400 * HOUR;
  const booked = await fetchFollowing(`${b.base}/v1/bookings`, {
    method: 'POST',
    headers: { ...(await headersOf(9)), 'content-type': 'application/json' },
    body: JSON.stringify({
      vehicleId: vehicles[0],
      from: new Date(from).toISOString(),
      to: new Date(from + HOUR).toISOString(),
    }),
  });
  assert.equal(booked.status, 201, await booked.clone().text());
  const madeAway = ((await booked.json()) as { id: string }).id;

  // Region a comes back: a fresh Redis, a new PostgreSQL replicating the promoted standby (60 ms
  // away); the standby deployment stops (its sync drains); fleet dr failback brings blr home.
  redisA2 = await startRedis({ external: 'never' });
  const toDr = await startDelayProxy({ port: drA.port }, 60);
  proxies.push(toDr);
  pgA2 = await startPgDrStandby(toDr.port);
  await standby?.stop();
  standby = undefined;
  const back: Ran = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'dr', 'failback', '--region', 'a'],
    {
      env: {
        ...process.env,
        REGION: 'a',
        REGIONS_FILE: regionsFile,
        REDIS_URL: redisA2.url,
        DATABASE_URL: `postgres://postgres@127.0.0.1:${pgA2.port}/fleet`,
        JWT_SECRET: SECRET,
        LOG_LEVEL: 'warn',
      },
    },
  ).catch((err: Ran) => err);
  assert.equal(back.code ?? 0, 0, `fleet dr failback failed:\n${back.stdout}\n${back.stderr}`);
  assert.deepEqual(
    (JSON.parse(back.stdout) as { cities: { city: string; drift: number }[]; notified: Record<string, string> })
      .notified,
    { b: 'told' },
  );
  aAgain = await startServe(
    {
      ...{ REGIONS_FILE: regionsFile, JWT_SECRET: SECRET, WEB_CONCURRENCY: '1' },
      REGION: 'a',
      REDIS_URL: redisA2.url,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgA2.port}/fleet`,
    },
    [],
    aPort,
  );
  const home = (await (await fetch(`${b.base}/v1/regions`)).json()) as {
    regions: { name: string; servedBy: unknown }[];
  };
  assert.equal(home.regions.find((r) => r.name === 'a')?.servedBy, null, 'b routes blr home again');
  const redirect = await fetch(`${b.base}/v1/bookings/${madeAway}`, {
    headers: await headersOf(9),
    redirect: 'manual',
  });
  assert.equal(redirect.headers.get('x-fleet-region'), 'a');
  const kept = await fetchFollowing(`${b.base}/v1/bookings/${madeAway}`, { headers: await headersOf(9) });
  assert.equal(kept.status, 200, 'the booking made while a was away is home with it');
  const first = acknowledged[0]!;
  const old = await fetchFollowing(`${b.base}/v1/bookings/${first.id}`, { headers: await headersOf(first.client) });
  assert.equal(old.status, 200, 'and so is one made before the loss');
});

/**
 * Failpoints under load: the sync worker runs as its own process (`fleet worker`) and kills
 * itself with SIGKILL in mid-batch, before the commit, or after the commit but before XACK —
 * twenty rounds while bookings keep coming. A fresh worker then drains. Nothing may be applied
 * twice, nothing may be missing, and Redis and PostgreSQL must not drift.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import type { Redis } from 'ioredis';
import { CityCatalog } from '../../src/domain/cities.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { keys } from '../../src/redis/keys.ts';
import { reconcileCity } from '../../src/services/durable.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import type { TestDatabase } from '../support/postgres.ts';
import type { RedisServer } from '../support/redis.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { HOUR, addVehicle, futureHour, newInventory } from '../support/engine.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const ROUNDS = 21;
const POINTS = ['mid_batch', 'before_commit', 'after_commit'] as const;
/** How long an entry a worker left pending waits before another worker takes it over. */
const CLAIM_IDLE_MS = 300;

let server: RedisServer;
let redis: Redis;
let db: TestDatabase;
let pool: pg.Pool;
let stores: Stores;

before(async () => {
  stores = await startStores({ redis: { external: 'never' } });
  ({ server, redis, db, pool } = stores);
});
after(async () => {
  await stores.stop();
});

/** Until every entry the dead workers left pending has been idle for the claim window: the next worker takes them over. */
async function reclaimable(stream: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; ; ) {
    const [pending] = (await redis.xpending(stream, 'pg-sync')) as [number];
    if (pending === 0) return;
    const idle = (await redis.xpending(stream, 'pg-sync', 'IDLE', CLAIM_IDLE_MS, '-', '+', pending)) as unknown[];
    if (idle.length === pending) return;
    assert.ok(Date.now() < deadline, `${idle.length} of ${pending} pending entries idle for ${CLAIM_IDLE_MS} ms`);
    await sleep(10);
  }
}

/** Runs `fleet worker` until it kills itself at the failpoint (or `timeoutMs` passes). */
function workerUntilFailpoint(point: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker'], {
      env: {
        ...process.env,
        REDIS_URL: server.url,
        DATABASE_URL: db.url,
        LOG_LEVEL: 'silent',
        FLEET_FAILPOINTS: `${point}:0.35`,
        SYNC_BATCH_SIZE: '20',
        SYNC_CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let hit: string | undefined;
    child.stderr.on('data', (d: Buffer) => {
      hit ??= /FAILPOINT (\w+)/.exec(d.toString())?.[1];
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(hit);
    });
  });
}

test('kill -9 of the sync worker at every failpoint, 21 rounds under load: no duplicate, nothing missing, no drift', {
  timeout: 300_000,
}, async () => {
  // `fleet worker` syncs the reference cities: use one of them, on this test's own Redis.
  const city = new CityCatalog().get('blr')!;
  const inv = newInventory(redis, city);
  const vehicles: string[] = [];
  for (let i = 0; i < 30; i++) vehicles.push(await addVehicle(inv, city));

  let loading = true;
  let booked = 0;
  const t = futureHour();
  const load = (async () => {
    let slot = 0;
    while (loading) {
      const vehicleId = vehicles[slot % vehicles.length]!;
      const from = t + Math.floor(slot / vehicles.length) * 3 * HOUR;
      slot++;
      try {
        const b = await inv.book({ vehicleId, customerId: `c${slot % 17}`, from, to: from + HOUR });
        booked++;
        if (slot % 5 === 0) await inv.cancelBooking(b.booking.id, undefined);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
      }
      if (slot % 10 === 0) await sleep(5);
    }
  })();

  const hits = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const point = POINTS[round % POINTS.length]!;
    const hit = await workerUntilFailpoint(point, 15_000);
    assert.equal(hit, point, `round ${round}: the worker died at ${point}`);
    hits.set(point, (hits.get(point) ?? 0) + 1);
    // The reclaim window passes, so the next worker takes over what this one left pending.
    await reclaimable(keys.events(city.id));
  }
  loading = false;
  await load;

  const worker = new SyncWorker(redis, pool, new CityCatalog([city]), { batchSize: 100, claimIdleMs: CLAIM_IDLE_MS });
  await reclaimable(keys.events(city.id));
  await worker.drain();

  const streamLength = await redis.xlen(keys.events(city.id));
  const ids = (await redis.xrange(keys.events(city.id), '-', '+')).map(([id]) => id);
  const { rows } = await pool.query<{ stream_id: string }>(
    "SELECT ms || '-' || seq AS stream_id FROM events WHERE city = $1",
    [city.id],
  );
  const synced = new Set(rows.map((r) => r.stream_id));
  const missing = ids.filter((id) => !synced.has(id));
  const applied = Number(
    (await pool.query<{ applied: string }>('SELECT applied FROM sync_cursors WHERE city = $1', [city.id])).rows[0]!
      .applied,
  );
  console.log(
    `failpoints hit: ${JSON.stringify(Object.fromEntries(hits))}; ${booked} bookings; ${streamLength} events; applied ${applied}; missing ${missing.length}`,
  );
  assert.deepEqual(missing, [], 'zero missing events');
  assert.equal(rows.length, streamLength, 'no extra rows');
  assert.equal(applied, streamLength, 'zero duplicate applications (each event applied exactly once)');
  assert.deepEqual((await reconcileCity(redis, pool, city.id)).drift, [], 'zero drift');
  for (const p of POINTS) assert.ok((hits.get(p) ?? 0) >= 7, `${p} hit 7 times`);
});

/**
 * Backups and point-in-time restore (docs/regions.md), through the CLI as an operator runs it:
 * PostgreSQL archives its WAL (`archive_command`); `fleet backup` takes a base backup; a booking
 * is made and synced, then another; `fleet restore --to <a moment between them>` makes a fresh
 * cluster at that moment, where the first booking is and the second is not; `fleet rebuild`
 * makes Redis from it, with the first booking alone.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Redis } from 'ioredis';
import { archivingOptions } from '../../src/ha/backup.ts';
import { pgStop } from '../../src/ha/local.ts';
import { migrate } from '../../src/pg/migrate.ts';
import { keys } from '../../src/redis/keys.ts';
import { recordCities } from '../../src/services/durable.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, addVehicle, catalogWith, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { postgresDir, startPgCluster, type PgCluster } from '../support/postgres.ts';
import { freePort, startRedis, type RedisServer } from '../support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
const city = testCity();
let archive: Awaited<ReturnType<typeof postgresDir>>;
let backups: Awaited<ReturnType<typeof postgresDir>>;
let restoreRoot: Awaited<ReturnType<typeof postgresDir>>;
let primary: PgCluster;
let server: RedisServer;
let redis: Redis;
let url: string;
let restoredDataDir = '';

before(async () => {
  [archive, backups, restoreRoot] = await Promise.all([
    postgresDir('fleet-wal-'),
    postgresDir('fleet-backups-'),
    postgresDir('fleet-restore-'),
  ]);
  primary = await startPgCluster(archivingOptions(archive.path));
  url = `postgres://postgres@127.0.0.1:${primary.port}/fleet`;
  await migrate(url);
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
});

after(async () => {
  redis?.disconnect();
  await server?.stop();
  if (restoredDataDir) await pgStop({ port: 0, dataDir: restoredDataDir, log: '' }, 'immediate');
  await primary?.destroy();
  if (!process.env.KEEP) await Promise.all([archive?.remove(), backups?.remove(), restoreRoot?.remove()]);
});

const fleet = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  });

test('restored to a moment between two bookings: the first is there, the second is not, and Redis is rebuilt from it', {
  timeout: 240_000,
}, async () => {
  const pool = createPool(url, { max: 2 });
  try {
    await recordCities(pool, [city]);
    const inv = newInventory(redis, city);
    const vehicle = await addVehicle(inv, city);
    const sync = new SyncWorker(redis, pool, catalogWith(city));
    await sync.drain();

    const backup = JSON.parse((await fleet(['backup', '--dir', backups.path], { DATABASE_URL: url })).stdout) as {
      name: string;
      archiveMode: string;
    };
    assert.equal(backup.archiveMode, 'on');

    const t = futureHour(HOUR);
    const first = await inv.book({ vehicleId: vehicle, customerId: 'ana', from: t, to: t + HOUR });
    await sync.drain();
    await sleep(1_500);
    const between = new Date();
    await sleep(1_500);
    const second = await inv.book({ vehicleId: vehicle, customerId: 'ben', from: t + 3 * HOUR, to: t + 4 * HOUR });
    await sync.drain();
    // The segment holding both commits goes to the archive now rather than at the next timeout.
    const { rows } = await pool.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal');
    const segment = rows[0]!.wal;
    for (let i = 0; i < 100; i++) {
      const { rows: a } = await pool.query<{ last: string | null }>(
        'SELECT last_archived_wal AS last FROM pg_stat_archiver',
      );
      if (a[0]?.last && a[0].last >= segment) break;
      await sleep(100);
    }

    restoredDataDir = path.join(restoreRoot.path, 'data');
    const port = await freePort();
    const restored = JSON.parse(
      (
        await fleet([
          'restore',
          '--to',
          between.toISOString(),
          '--dir',
          restoredDataDir,
          '--backups',
          backups.path,
          '--archive',
          archive.path,
          '--port',
          String(port),
        ])
      ).stdout,
    ) as { databaseUrl: string; from: string };
    assert.equal(restored.from, backup.name);

    const db = new pg.Client({ connectionString: restored.databaseUrl });
    await db.connect();
    try {
      const found = await db.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1) ORDER BY id', [
        [first.booking.id, second.booking.id],
      ]);
      assert.deepEqual(
        found.rows.map((r) => r.id),
        [first.booking.id],
        'the first booking is there, the second is not',
      );
    } finally {
      await db.end();
    }

    // Redis made from the restored database: a fresh server, the first booking alone.
    const fresh = await startRedis({ external: 'never' });
    try {
      await fleet(['rebuild', '--city', city.id], {
        REDIS_URL: fresh.url,
        DATABASE_URL: restored.databaseUrl,
        CITIES: '',
      });
      const check = connect(fresh.url);
      try {
        const entries = await check.hkeys(keys.entries(city.id));
        assert.ok(entries.includes(first.booking.id), 'the first booking is in the rebuilt Redis');
        assert.ok(!entries.includes(second.booking.id), 'the second is not');
      } finally {
        check.disconnect();
      }
    } finally {
      await fresh.stop();
    }
  } finally {
    await pool.end();
  }
});

/**
 * The drill's point-in-time restore (docs/regions.md): a private PostgreSQL that archives its WAL,
 * a base backup, a booking made and synced, a moment, another booking; then a fresh cluster
 * restored to that moment must hold the first booking and not the second.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { CityCatalog, REFERENCE_CITIES } from '../domain/cities.ts';
import { archivingOptions, restoreToTime, takeBaseBackup } from '../ha/backup.ts';
import { asPostgres, freePort, ownedByPostgres, PG_BIN, pgStart, pgStop, type PgNodeLayout } from '../ha/local.ts';
import { bookingsPresent } from '../pg/audit.ts';
import { migrate } from '../pg/migrate.ts';
import { createPool } from '../pg/pool.ts';
import { lastArchivedWal, switchWal, withServer } from '../pg/settings.ts';
import { keys } from '../redis/keys.ts';
import { recordCities } from '../services/durable.ts';
import { Inventory } from '../services/inventory.ts';
import { SyncWorker } from '../workers/sync.ts';
import { seedCity } from '../services/demo.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PitrFigures {
  gapMs: number;
  restoreMs: number;
  firstThere: boolean;
  secondThere: boolean;
}

const HOUR = 3_600_000;

export async function pitrCheck(redisUrl = 'redis://127.0.0.1:6379/14'): Promise<PitrFigures> {
  const root = await mkdtemp(path.join(tmpdir(), 'fleet-drill-pitr-'));
  await ownedByPostgres(root);
  const archive = path.join(root, 'wal');
  const backups = path.join(root, 'backups');
  await ownedByPostgres(archive);
  const node: PgNodeLayout = {
    port: await freePort(),
    dataDir: path.join(root, 'primary'),
    log: path.join(root, 'primary.log'),
  };
  let restored: PgNodeLayout | undefined;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  try {
    await asPostgres(`${PG_BIN}/initdb`, ['-D', node.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await pgStart(node, archivingOptions(archive));
    const url = `postgres://postgres@127.0.0.1:${node.port}/fleet`;
    await migrate(url);
    await redis.flushdb();
    const [city] = REFERENCE_CITIES;
    if (!city) throw new Error('no reference city');
    const inventory = new Inventory(redis, { cities: new CityCatalog([city]) });
    const pool = createPool(url, { max: 2 });
    pool.on('error', () => {});
    try {
      await recordCities(pool, [city]);
      await seedCity(inventory, redis, city, 2);
      const sync = new SyncWorker(redis, pool, inventory.cities);
      await sync.drain();
      await takeBaseBackup(url, backups);
      const [vehicle] = await redis.smembers(keys.vehicles(city.id));
      if (!vehicle) throw new Error(`the seeded city ${city.id} has no vehicle`);
      const t = Math.ceil((Date.now() + 90 * 24 * HOUR) / HOUR) * HOUR;
      const first = await inventory.book({ vehicleId: vehicle, customerId: 'pitr-1', from: t, to: t + HOUR });
      await sync.drain();
      const firstAt = Date.now();
      await sleep(1_000);
      const between = new Date();
      await sleep(1_000);
      const second = await inventory.book({
        vehicleId: vehicle,
        customerId: 'pitr-2',
        from: t + 3 * HOUR,
        to: t + 4 * HOUR,
      });
      await sync.drain();
      const gapMs = Date.now() - firstAt;
      const wal = await switchWal(pool);
      for (let i = 0; i < 100; i++) {
        if ((await lastArchivedWal(pool)) >= wal) break;
        await sleep(100);
      }
      const started = Date.now();
      restored = (
        await restoreToTime({
          backups,
          archive,
          target: between,
          dataDir: path.join(root, 'restored'),
          port: await freePort(),
        })
      ).node;
      const restoreMs = Date.now() - started;
      const found = await withServer(`postgres://postgres@127.0.0.1:${restored.port}/fleet`, (c) =>
        bookingsPresent(c, [first.booking.id, second.booking.id]),
      );
      return { gapMs, restoreMs, firstThere: found.has(first.booking.id), secondThere: found.has(second.booking.id) };
    } finally {
      await pool.end();
    }
  } finally {
    redis.disconnect();
    if (restored) await pgStop(restored, 'immediate');
    await pgStop(node, 'immediate');
    await rm(root, { recursive: true, force: true });
  }
}

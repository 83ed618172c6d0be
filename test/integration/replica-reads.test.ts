/**
 * Reads from Redis replicas (issue 10, docs/reliability.md): allowed only while every write waits
 * for every replica. Under that rule, clients book and, the moment each booking is acknowledged,
 * read the vehicle's availability for the same window — served by a replica — and never see it
 * free. Without the rule, the configuration is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { haDown, haEnvironment, haUp, type HaLayout } from '../../src/ha/local.ts';
import { metrics } from '../../src/metrics.ts';
import { openRedis, type OpenedRedis } from '../../src/redis/topology.ts';
import { HOUR, addVehicle, futureHour, newInventory, testCity } from '../support/engine.ts';

let layout: HaLayout;
let opened: OpenedRedis;

before(async () => {
  layout = await haUp({ dir: await mkdtemp(path.join(tmpdir(), 'fleet-replica-reads-')), postgres: false });
  opened = await openRedis(
    loadConfig({ ...haEnvironment(layout), REDIS_SYNC_REPLICAS: '2', REDIS_REPLICA_READS: '1' }),
  );
});
after(async () => {
  opened?.redis.disconnect();
  if (layout) await haDown(layout.dir);
});

const replicaReads = async () =>
  (await metrics.replicaReads.get()).values.find((v) => v.labels.served === 'replica')?.value ?? 0;

test('writes wait for every replica: a read right after an acknowledged booking, served by a replica, never shows the vehicle free', {
  timeout: 120_000,
}, async () => {
  const city = testCity();
  const inv = newInventory(opened.redis as Redis, city);
  const vehicles: string[] = [];
  for (let i = 0; i < 8; i++) vehicles.push(await addVehicle(inv, city));
  const before = await replicaReads();
  const t = futureHour(HOUR);
  let stale = 0;
  let checked = 0;
  await Promise.all(
    vehicles.map(async (vehicleId) => {
      for (let k = 0; k < 150; k++) {
        const from = t + k * 2 * HOUR;
        await inv.book({ vehicleId, customerId: 'c1', from, to: from + HOUR });
        const free = await inv.verifyAvailable(city.id, [vehicleId], from, from + HOUR);
        const state = await inv.getVehicleState(vehicleId);
        checked++;
        if (free.length > 0 || state.entries.filter((e) => e.kind === 'booking').length < k + 1) stale++;
      }
    }),
  );
  const served = (await replicaReads()) - before;
  console.log(`${checked} reads right after acknowledgement, ${served} served by a replica, ${stale} stale`);
  assert.equal(stale, 0, 'no read showed an acknowledged booking missing');
  assert.ok(served >= checked, 'the replicas served the reads');
});

test('replica reads without every write on every replica are refused at start-up', async () => {
  await assert.rejects(
    openRedis(loadConfig({ ...haEnvironment(layout), REDIS_SYNC_REPLICAS: '1', REDIS_REPLICA_READS: '1' })),
    ConfigError,
  );
  await assert.rejects(openRedis(loadConfig({ ...haEnvironment(layout), REDIS_REPLICA_READS: '1' })), ConfigError);
});

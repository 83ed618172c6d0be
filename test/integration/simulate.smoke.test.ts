/**
 * Smoke: the marketplace simulator runs end to end at tiny scale (a few seconds, two cities) and
 * ends with every invariant at zero and its reports written. How fast is the benchmark's job.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_SIM, simulate } from '../../src/sim/simulate.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';

let server: RedisServer;
let db: TestDatabase;
const out = mkdtempSync(path.join(tmpdir(), 'fleet-sim-'));

before(async () => {
  server = await startRedis({ external: 'never' });
  db = await createTestDatabase();
});
after(async () => {
  await db.drop();
  await server.stop();
  rmSync(out, { recursive: true, force: true });
});

test('npm run simulate at tiny scale: traffic flows, invariants hold, JSON and HTML reports are written', {
  timeout: 180_000,
}, async () => {
  const { report, ok } = await simulate({
    ...DEFAULT_SIM,
    cities: 2,
    vehiclesPerCity: 20,
    durationMs: 4_000,
    rate: 60,
    concurrency: 8,
    out,
    redisUrl: server.url,
    databaseUrl: db.url,
    progress: false,
  });
  const inv = report.invariants as Record<string, number>;
  assert.deepEqual(
    [
      inv.overlappingConfirmedBookings,
      inv.acknowledgedMissingFromRedis,
      inv.acknowledgedMissingFromPostgres,
      inv.driftAfterSync,
    ],
    [0, 0, 0, 0],
    JSON.stringify(inv),
  );
  assert.ok(ok);
  assert.ok((report.totals as { requests: number }).requests > 100, 'traffic flowed');
  assert.equal((report.totals as { serverErrors: number }).serverErrors, 0);
  const json = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as {
    series: unknown[];
    endpoints: unknown[];
  };
  assert.ok(json.series.length >= 3 && json.endpoints.length > 3);
  assert.ok(existsSync(path.join(out, 'report.html')));
  assert.match(readFileSync(path.join(out, 'report.html'), 'utf8'), /<svg[\s\S]*Conflict funnel/);
});

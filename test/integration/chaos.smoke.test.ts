/**
 * `npm run chaos` at tiny scale (issue 10): the HA topology, the service as two API processes and
 * a separate sync worker, marketplace traffic, and one of each of the main faults — kill -9 of the
 * Redis primary, a PostgreSQL crash with the standby promoted, kill of an API process, kill of the
 * sync worker. Nothing acknowledged may be lost, nothing may overlap, nothing may drift, no process
 * may end without a fault aimed at it, and the service keeps answering (availability, failover
 * windows within 10 s: the run's own targets); the report is written.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { chaos, DEFAULT_CHAOS } from '../../src/sim/chaos.ts';
import { seeded } from '../support/random.ts';

test('chaos at tiny scale: faults come and go, nothing acknowledged is lost', { timeout: 300_000 }, async () => {
  const out = await mkdtemp(path.join(tmpdir(), 'fleet-chaos-report-'));
  try {
    const { report, ok } = await chaos({
      ...DEFAULT_CHAOS,
      durationMs: 24_000,
      faultEveryMs: 4_000,
      cities: 1,
      vehiclesPerCity: 20,
      rate: 60,
      concurrency: 8,
      faults: ['redis-primary-kill', 'postgres-primary-crash', 'api-process-kill', 'sync-worker-kill'],
      seed: Math.floor(seeded('chaos.smoke')() * 1e9),
      out,
      progress: false,
      // A killed API process loses the requests it was answering (clients here do not retry): at
      // this tiny scale that is a few in a thousand. A process that dies with its store loses every
      // request from then on (33% availability before issue 22's fix).
      minAvailability: 0.99,
      // Under the whole suite's load a fault and its repair take longer: the run goes on until
      // each kind was injected once (CI once fitted three of the four into 24 s).
      everyFault: true,
    });
    const r = report as {
      faults: { kind: string; detail: string }[];
      requests: number;
      availability: number;
      acknowledgedWritesLost: number;
      invariants: Record<string, number>;
      missed: string[];
      unexpectedExits: unknown[];
    };
    console.log(
      JSON.stringify({
        faults: r.faults,
        requests: r.requests,
        availability: r.availability,
        invariants: r.invariants,
      }),
    );
    assert.deepEqual(r.missed, [], 'every target of the run is met');
    assert.ok(ok, 'no acknowledged write lost, no overlap, no drift');
    assert.deepEqual(r.unexpectedExits, [], 'no process ended because a store died');
    assert.ok(r.availability >= 0.99, `the service kept answering (${r.availability})`);
    // Faults come one at a time, every 4 s after the last one ended: a quick run fits a fifth
    // (the first kind again). What matters is that each kind was injected.
    assert.deepEqual(
      [...new Set(r.faults.map((f) => f.kind))].sort(),
      ['api-process-kill', 'postgres-primary-crash', 'redis-primary-kill', 'sync-worker-kill'],
      'every fault was injected',
    );
    for (const f of r.faults) assert.doesNotMatch(f.detail, /^failed/, `${f.kind}: ${f.detail}`);
    assert.ok(r.requests > 200, 'traffic flowed');
    assert.ok(r.invariants.acknowledgedBookings! > 0, 'bookings were acknowledged');
    assert.ok(existsSync(path.join(out, 'report.json')) && existsSync(path.join(out, 'report.html')));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

/**
 * The simulator's comparison, tiny (a day of history, a day compared, 40 vehicles): both runs
 * play on the real engine against a private Redis and report every figure docs/prediction.md
 * shows; the run with the features on uses them (bookings marked at risk, ranked searches,
 * credits at learnt levels where a conflict ended with an offer) and the one off does not.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_COMPARE, comparisonSection, compare } from '../../src/sim/compare.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

test('features off, then on: the same seeded marketplace, every figure reported', async () => {
  const r = await compare({
    ...DEFAULT_COMPARE,
    redisUrl: server.url,
    vehicles: 40,
    customers: 100,
    warmupDays: 1,
    days: 1,
    searchesPerHour: 30,
  });
  for (const run of [r.off, r.on]) {
    assert.ok(run.searches > 100 && run.bookings > 10, JSON.stringify(run));
    assert.ok(run.searchToBook > 0 && run.searchToBook < 1);
    assert.ok(run.tripsLate > 0, 'late hosts were late');
  }
  assert.equal(r.off.atRiskFlagged, 0, 'off: nothing is marked at risk');
  assert.equal(r.off.switched, 0);
  assert.ok(r.on.atRiskFlagged > 0, 'on: trips of late hosts put the next bookings at risk');
  assert.ok(r.forecast.length === 2 && r.forecast.every((f) => f.mape > 0 && f.naiveMape > 0));
  const section = comparisonSection(r, { commit: 'test', date: 'now' });
  for (const line of [
    'conflicts reaching customers at pickup',
    'search-to-book rate',
    'conflict conversion',
    'incentive cost per conversion',
    'forecast error',
  ])
    assert.ok(section.toLowerCase().includes(line), line);
});

/**
 * The simulator's comparison, tiny (a day of history, a day compared, 40 vehicles): both runs
 * play on the real engine against a private Redis and report every figure docs/prediction.md
 * shows; the run with the features on uses them (bookings marked at risk, ranked searches,
 * credits at learnt levels where a conflict ended with an offer) and the one off does not.
 *
 * The week is the same for a seed (the simulator's vehicle ids are its own), so each figure below
 * is the same on every run. What a run this small shows, and what is asserted: the late returns
 * seen coming are acted on, and a switch keeps a customer from a car that then came back too late
 * (conflicts prevented early: none off, some on); the demand forecast beats the naive one. Whole
 * rates (search-to-book, conflicts at pickup) move by as much between two runs of the same
 * features whose random draws part ways (a switch changes what follows) as by a feature: at this
 * size they are reported, not judged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_COMPARE, comparisonSection, compare, type CompareReport } from '../../src/sim/compare.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';

let server: RedisServer;
let r: CompareReport;

before(async () => {
  server = await startRedis();
  r = await compare({
    ...DEFAULT_COMPARE,
    redisUrl: server.url,
    vehicles: 40,
    customers: 100,
    warmupDays: 1,
    days: 1,
    searchesPerHour: 30,
  });
});
after(async () => {
  await server.stop();
});

describe('features off, then on: the same seeded marketplace', () => {
  test('both runs play a marketplace: searches, bookings, trips back late', () => {
    for (const run of [r.off, r.on]) {
      assert.ok(run.searches > 100 && run.bookings > 10, JSON.stringify(run));
      assert.ok(run.searchToBook > 0 && run.searchToBook < 1);
      assert.ok(run.tripsLate > 0, 'late hosts were late');
    }
  });

  test('off: nothing is marked at risk, nobody switches, no conflict is prevented early', () => {
    assert.equal(r.off.atRiskFlagged, 0, 'off: nothing is marked at risk');
    assert.equal(r.off.switched, 0);
    assert.equal(r.off.prevented, 0);
  });

  test('on: late returns are seen coming, and a switch keeps a customer from a car that came back too late', () => {
    assert.ok(r.on.atRiskFlagged > 0, 'on: trips of late hosts put the next bookings at risk');
    assert.ok(r.on.switched > 0, `customers switched to the held vehicle (${r.on.switched})`);
    assert.ok(r.on.switched <= r.on.atRiskFlagged, 'only bookings marked at risk switch');
    assert.ok(
      r.on.prevented > r.off.prevented,
      `conflicts prevented early: on ${r.on.prevented}, off ${r.off.prevented}`,
    );
    assert.ok(r.on.prevented <= r.on.switched, 'a conflict is prevented only by a switch');
  });

  test('the demand forecast beats the naive last-week forecast a day and a week ahead', () => {
    assert.deepEqual(
      r.forecast.map((f) => f.horizonHours),
      [24, 168],
    );
    for (const f of r.forecast) {
      assert.ok(f.mape > 0 && f.naiveMape > 0);
      assert.ok(f.mape < f.naiveMape, `${f.horizonHours} h ahead: MAPE ${f.mape} vs naive ${f.naiveMape}`);
    }
  });

  test('the report has every row docs/prediction.md shows', () => {
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
});

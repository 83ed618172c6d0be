/**
 * The demand forecast on a synthetic seasonal series (a daily shape, busier weekends, slow growth,
 * noise): backtested from many origins, it must beat the naive "same hour last week" forecast at
 * the next day's horizon, and its bias must stay within 10%.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEEK_HOURS, backtest, forecast, naiveLastWeek } from '../../src/domain/forecast.ts';
import { seeded } from '../support/random.ts';

function series(weeks: number, rand: () => number): number[] {
  const out: number[] = [];
  for (let t = 0; t < weeks * WEEK_HOURS; t++) {
    const hour = t % 24;
    const day = Math.floor(t / 24) % 7;
    const shape = 0.3 + Math.max(0, Math.sin(((hour - 6) / 24) * 2 * Math.PI)) * 1.7;
    const weekend = day >= 5 ? 1.5 : 1;
    const growth = 1 + 0.004 * (t / 24);
    const mean = 50 * shape * weekend * growth;
    // Noise of a count: roughly Poisson (normal approximation).
    const noise = Math.sqrt(mean) * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    out.push(Math.max(0, Math.round(mean + noise)));
  }
  return out;
}

test('the seasonal forecast beats the naive last-week forecast, next day and next week', () => {
  const s = series(20, seeded('forecast'));
  // Origins every 13 hours: every hour of the day is an origin somewhere in the run.
  const ours = backtest(s, [1, 24, 168], (h, n) => forecast(h, n).values, 4 * WEEK_HOURS, 13);
  const naive = backtest(s, [1, 24, 168], naiveLastWeek, 4 * WEEK_HOURS, 13);
  for (const [i, h] of [1, 24, 168].entries()) {
    const o = ours[i];
    const b = naive[i];
    assert.ok(o && b);
    console.log(
      `# horizon ${h} h: MAPE ${(o.mape * 100).toFixed(1)}% (naive ${(b.mape * 100).toFixed(1)}%), bias ${(o.bias * 100).toFixed(1)}% (naive ${(b.bias * 100).toFixed(1)}%), ${o.points} origins`,
    );
    // The next day and the next week are what the forecast is for; the next hour is reported.
    if (h >= 24) assert.ok(o.mape < b.mape, `horizon ${h}: ${o.mape} < ${b.mape}`);
    assert.ok(Math.abs(o.bias) < 0.1, `horizon ${h}: bias ${o.bias}`);
  }
});

test('with less than a week of history the forecast is the mean; the trend is bounded', () => {
  const f = forecast([2, 4, 6], 3);
  assert.deepEqual(f.values, [4, 4, 4]);
  assert.equal(f.trend, 1);
  const surge = [...Array(WEEK_HOURS).fill(1), ...Array(WEEK_HOURS).fill(100)];
  assert.equal(forecast(surge, 1).trend, 2, 'a surge moves the forecast at most twofold');
});

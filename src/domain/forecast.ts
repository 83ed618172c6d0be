/**
 * Demand forecast for an hourly series (bookings starting, vehicles in use, searches that went
 * unserved) of one city and category: a weekly seasonal baseline times the recent trend. Pure
 * rules; the analytics service builds the series from PostgreSQL and serves the forecast.
 *
 * baseline(h) = mean of the same hour of the week over the last `weeks` weeks
 * trend       = what the last `trendHours` held / what the baseline said they would (0.5 .. 2)
 * forecast(h) = baseline(h) × trend
 *
 * Simple and explainable on purpose; it is measured against the naive forecast ("the same hour
 * last week") by backtesting on history (`backtest`), per horizon.
 */

export const WEEK_HOURS = 168;

export interface ForecastOptions {
  /** Weeks averaged for the seasonal baseline. */
  weeks: number;
  /** Hours whose actuals set the trend. */
  trendHours: number;
}

export const DEFAULT_FORECAST: ForecastOptions = { weeks: 4, trendHours: 72 };

/** Mean of series[t - k·168] for k = 1..weeks (those that exist); NaN when none does. */
function seasonal(series: readonly number[], t: number, weeks: number): number {
  let sum = 0;
  let n = 0;
  for (let k = 1; k <= weeks; k++) {
    const v = series[t - k * WEEK_HOURS];
    if (v !== undefined) {
      sum += v;
      n++;
    }
  }
  return n ? sum / n : Number.NaN;
}

/**
 * Forecast of the `horizon` hours after the series ends (series[0] is the oldest hour). Hours the
 * baseline cannot see (less than a week of history) repeat the mean of what there is.
 */
export function forecast(
  series: readonly number[],
  horizon: number,
  o: ForecastOptions = DEFAULT_FORECAST,
): { values: number[]; trend: number } {
  const n = series.length;
  const mean = n ? series.reduce((a, b) => a + b, 0) / n : 0;
  // The series extended with its own forecast, so a horizon past a week reads the forecast back.
  const ext = [...series];
  let actual = 0;
  let expected = 0;
  for (let t = Math.max(0, n - o.trendHours); t < n; t++) {
    const b = seasonal(series, t, o.weeks);
    if (!Number.isNaN(b)) {
      actual += series[t] ?? 0;
      expected += b;
    }
  }
  const trend = expected > 0 ? Math.min(2, Math.max(0.5, actual / expected)) : 1;
  const values: number[] = [];
  for (let h = 0; h < horizon; h++) {
    const b = seasonal(ext, n + h, o.weeks);
    const v = Number.isNaN(b) ? mean : b * trend;
    values.push(v);
    ext.push(Number.isNaN(b) ? mean : b);
  }
  return { values, trend };
}

/** The naive forecast: each hour as it was a week before (the last known week, repeated). */
export function naiveLastWeek(series: readonly number[], horizon: number): number[] {
  const n = series.length;
  return Array.from({ length: horizon }, (_, h) => {
    const t = n + h - WEEK_HOURS * Math.ceil((h + 1) / WEEK_HOURS);
    return series[t] ?? 0;
  });
}

export interface Accuracy {
  horizonHours: number;
  /** Mean absolute percentage error over hours with a non-zero actual (0.1 = 10%). */
  mape: number;
  /** Mean of (forecast - actual) / mean actual: positive = over-forecast. */
  bias: number;
  points: number;
}

/**
 * Rolling-origin backtest: from each origin (every `step` hours after `warmup`), forecast the
 * next `horizon` hours and compare the hour at each horizon in `horizons` with what happened.
 */
export function backtest(
  series: readonly number[],
  horizons: readonly number[],
  method: (history: readonly number[], horizon: number) => number[],
  warmup = 4 * WEEK_HOURS,
  step = 24,
): Accuracy[] {
  const maxH = Math.max(...horizons);
  const acc = horizons.map(() => ({ ape: 0, apeN: 0, err: 0, actual: 0, n: 0 }));
  for (let origin = warmup; origin + maxH <= series.length; origin += step) {
    const f = method(series.slice(0, origin), maxH);
    horizons.forEach((h, i) => {
      const a = series[origin + h - 1] ?? 0;
      const p = f[h - 1] ?? 0;
      const s = acc[i];
      if (!s) return;
      if (a !== 0) {
        s.ape += Math.abs(p - a) / Math.abs(a);
        s.apeN++;
      }
      s.err += p - a;
      s.actual += a;
      s.n++;
    });
  }
  return horizons.map((h, i) => {
    const s = acc[i] ?? { ape: 0, apeN: 0, err: 0, actual: 0, n: 0 };
    return {
      horizonHours: h,
      mape: s.apeN ? s.ape / s.apeN : 0,
      bias: s.actual ? s.err / s.actual : 0,
      points: s.n,
    };
  });
}

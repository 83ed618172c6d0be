/**
 * `npm run simulate -- --compare`: the same seeded marketplace run twice on a shifted clock (a
 * simulated week in seconds, the real engine, its real Redis scripts, in this process), once with
 * the predictive features off and once on, then the difference (docs/prediction.md).
 *
 * The marketplace knows what the service never sees: each customer's favourite category and how
 * much an incentive sways them, each host's habit of bringing cars back late, the weekly rhythm of
 * demand. Customers search and book down the list they are shown (more likely the higher a
 * vehicle sits and the more it is what they like); cars come back when their host's habit says;
 * a late return conflicts the next booking and the conflict desk makes its offers, which the
 * customer weighs. Both runs share the seed and a warm-up with every feature off (the history the
 * late-return model learns from), so what differs after it is the features:
 * - late returns acted on early (at-risk bookings held a standby vehicle; customers switch or wait),
 * - personal ranking (`for_you` instead of cheapest first),
 * - incentives that learn (src/domain/incentives.ts) instead of the fixed policy.
 * Forecast error is measured on the marketplace's own demand series, eight weeks of it.
 */
import { backtest, forecast, naiveLastWeek } from '../domain/forecast.ts';
import { rng } from '../domain/random.ts';
import { demandShape, playWeek, poisson, type WeekFigures, type WeekOptions } from './market-week.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

export type CompareOptions = WeekOptions;

export const DEFAULT_COMPARE: CompareOptions = {
  redisUrl: 'redis://127.0.0.1:6379/15',
  seed: 42,
  vehicles: 120,
  customers: 400,
  warmupDays: 3,
  days: 4,
  searchesPerHour: 30,
  demand: 1,
  // The prediction comparison is of late returns: no accidents or maintenance (docs/conflicts.md adds them).
  incidentsPerVehicleDay: 0,
  stepMinutes: 15,
};

export type RunFigures = WeekFigures;

export interface CompareReport {
  options: CompareOptions;
  off: RunFigures;
  on: RunFigures;
  change: {
    conflictsAtPickup: number | null;
    conversion: number | null;
    costPerConversion: number | null;
    searchToBook: number | null;
  };
  forecast: { horizonHours: number; mape: number; bias: number; naiveMape: number; naiveBias: number }[];
  learned?: unknown;
}

/** Forecast error on the marketplace's own demand: eight weeks of hourly searches, backtested. */
function forecastError(seed: number, searchesPerHour: number): CompareReport['forecast'] {
  const rand = rng(seed + 1);
  const start = Date.UTC(2026, 0, 5);
  const series = Array.from({ length: 8 * 168 }, (_, t) =>
    poisson(searchesPerHour * demandShape(start + t * HOUR) * (1 + 0.002 * (t / 24)), rand),
  );
  const ours = backtest(series, [24, 168], (s, n) => forecast(s, n).values, 4 * 168, 13);
  const naive = backtest(series, [24, 168], naiveLastWeek, 4 * 168, 13);
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return ours.map((a, i) => ({
    horizonHours: a.horizonHours,
    mape: r3(a.mape),
    bias: r3(a.bias),
    naiveMape: r3(naive[i]?.mape ?? 0),
    naiveBias: r3(naive[i]?.bias ?? 0),
  }));
}

export async function compare(o: CompareOptions = DEFAULT_COMPARE): Promise<CompareReport> {
  const off = await playWeek(o, { atRisk: false, forYou: false, learning: false, conflicts: false }, 'off');
  const { learned, ...onFigures } = await playWeek(
    o,
    { atRisk: true, forYou: true, learning: true, conflicts: false },
    'on',
  );
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && b !== 0 ? a / b : null);
  return {
    options: o,
    off,
    on: onFigures,
    change: {
      conflictsAtPickup: ratio(onFigures.conflictsAtPickup, off.conflictsAtPickup),
      conversion: ratio(onFigures.conversion, off.conversion),
      costPerConversion: ratio(onFigures.costPerConversion, off.costPerConversion),
      searchToBook: ratio(onFigures.searchToBook, off.searchToBook),
    },
    forecast: forecastError(o.seed, o.searchesPerHour),
    learned,
  };
}

const pctOf = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const times = (x: number | null) => (x === null ? 'n/a' : `×${x.toFixed(2)}`);

/** The "Simulation" section of docs/prediction.md, written from a comparison's figures. */
export function comparisonSection(r: CompareReport, stamp: { commit: string; date: string }): string {
  const row = (name: string, off: string, on: string, change = '') => `| ${name} | ${off} | ${on} | ${change} |`;
  const { off, on } = r;
  const next = r.forecast.find((f) => f.horizonHours === 24);
  const verdict = (ok: boolean) => (ok ? 'met' : '**missed**');
  return `## Simulation (\`npm run simulate -- --compare\`)

The same seeded marketplace (seed ${r.options.seed}, ${r.options.vehicles} vehicles of 12 hosts, a third of whom bring cars back
late 60% of the time, ${r.options.customers} customers with a hidden favourite category and a hidden pull towards
credits, ${r.options.searchesPerHour} searches an hour on average with a daily shape and busier weekends) on the real
engine and a shifted clock: ${r.options.warmupDays} days with every feature off (the history), then ${r.options.days} days compared.

Last run: commit \`${stamp.commit}\`, ${stamp.date}.

| | features off | features on | on / off |
|---|---|---|---|
${row('searches', String(off.searches), String(on.searches))}
${row('search-to-book rate', pctOf(off.searchToBook), pctOf(on.searchToBook), times(r.change.searchToBook))}
${row('trips back late', String(off.tripsLate), String(on.tripsLate))}
${row('conflicts reaching customers at pickup', String(off.conflictsAtPickup), String(on.conflictsAtPickup), times(r.change.conflictsAtPickup))}
${row('bookings marked at risk / switched early', `${off.atRiskFlagged} / ${off.switched}`, `${on.atRiskFlagged} / ${on.switched}`)}
${row('conflicts prevented early (switched away from a car that came back too late)', String(off.prevented), String(on.prevented))}
${row('conflicts with nothing similar free (cancelled with a credit)', String(off.noAlternative), String(on.noAlternative))}
${row('conflict conversion (an offer accepted)', pctOf(off.conversion), pctOf(on.conversion), times(r.change.conversion))}
${row('incentive cost per conversion', off.costPerConversion?.toFixed(2) ?? 'n/a', on.costPerConversion?.toFixed(2) ?? 'n/a', times(r.change.costPerConversion))}

Forecast error on eight weeks of the marketplace's own hourly demand (rolling backtest):
${r.forecast.map((f) => `${f.horizonHours} h ahead: MAPE ${pctOf(f.mape)} (naive last week ${pctOf(f.naiveMape)}), bias ${pctOf(f.bias)} (naive ${pctOf(f.naiveBias)})`).join('; ')}.

| target | measured | |
|---|---|---|
| conflicts reaching customers at pickup halved | ${times(r.change.conflictsAtPickup)} | ${verdict(r.change.conflictsAtPickup !== null && r.change.conflictsAtPickup <= 0.5)} |
| conflict conversion >= 85% | ${pctOf(on.conversion)} | ${verdict(on.conversion !== null && on.conversion >= 0.85)} |
| at no more incentive cost per conversion | ${times(r.change.costPerConversion)} | ${verdict(r.change.costPerConversion !== null && r.change.costPerConversion <= 1)} |
| search-to-book rate up by at least a tenth with personal ranking | ${times(r.change.searchToBook)} | ${verdict(r.change.searchToBook !== null && r.change.searchToBook >= 1.1)} |
| forecast error (MAPE, next day) below the naive forecast's | ${next ? `${pctOf(next.mape)} vs ${pctOf(next.naiveMape)}` : 'n/a'} | ${verdict(!!next && next.mape < next.naiveMape)} |

What the learning offer policy chose (credit levels as multiples of the configured credit, per kind of alternative):
${
  Array.isArray(r.learned) && r.learned.length
    ? (r.learned as { kind: string; arms: { level: number; offers: number; accepted: number }[] }[])
        .map((k) => `${k.kind}: ${k.arms.map((a) => `×${a.level} ${a.accepted}/${a.offers}`).join(', ')}`)
        .join('; ')
    : 'nothing yet (no conflict ended with an offer at a chosen level)'
}.
`;
}

export async function writeComparison(r: CompareReport, file: string): Promise<void> {
  const { readFile, writeFile } = await import('node:fs/promises');
  const { runStamp } = await import('./stamp.ts');
  const section = comparisonSection(r, runStamp());
  const doc = await readFile(file, 'utf8');
  const re = /## Simulation[^\n]*\n[\s\S]*?(?=\n## |$)/;
  await writeFile(file, re.test(doc) ? doc.replace(re, () => section) : `${doc.trimEnd()}\n\n${section}`);
}

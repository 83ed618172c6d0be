/**
 * `npm run conflicts:compare` (`fleet simulate --compare --seeds N --demand a,b,c`): how many
 * conflicts become rebookings, with the conflict features of issue 24 off and on (docs/conflicts.md).
 * For each demand level (a multiple of the searches per hour) and each of N consecutive seeds, the
 * same marketplace week (src/sim/market-week.ts: late returns, accidents, maintenance) is played
 * twice, as the service runs by default (prediction on), with the conflict features (wider kinds
 * of alternative, the wait list, the reserve, standby caps) off and then on; the figures are
 * reported per level with their mean and spread over the seeds, beside the fleet's measured
 * utilisation.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { playWeek, type WeekFigures, type WeekOptions } from './market-week.ts';
import { runStamp, writeSection } from './stamp.ts';

export interface ConflictsCompareOptions {
  week: WeekOptions;
  seeds: number;
  demands: readonly number[];
}

export const DEFAULT_CONFLICTS_COMPARE: ConflictsCompareOptions = {
  week: {
    redisUrl: 'redis://127.0.0.1:6379/15',
    seed: 42,
    vehicles: 120,
    customers: 400,
    warmupDays: 3,
    days: 4,
    searchesPerHour: 30,
    demand: 1,
    incidentsPerVehicleDay: 0.05,
    stepMinutes: 15,
  },
  seeds: 5,
  demands: [0.25, 0.5, 1, 2],
};

/** A figure over the seeds. */
export interface Spread {
  mean: number;
  min: number;
  max: number;
}

export interface LevelFigures {
  utilisation: Spread;
  conflicts: Spread;
  nothingToOffer: Spread;
  conversion: Spread;
  costPerConversion: Spread;
  refusedByReserve: Spread;
  netRevenue: Spread;
}

export interface ConflictsLevel {
  demand: number;
  off: LevelFigures;
  on: LevelFigures;
  runs: { seed: number; off: WeekFigures; on: WeekFigures }[];
}

export interface ConflictsReport {
  options: ConflictsCompareOptions;
  levels: ConflictsLevel[];
  targets: { name: string; met: boolean; measured: string }[];
}

// The service as it runs by default (late returns seen coming, personal ranking, incentives that
// learn), with the conflict features of issue 24 off, then on: the difference is theirs alone.
const OFF = { atRisk: true, forYou: true, learning: true, conflicts: false };
const ON = { atRisk: true, forYou: true, learning: true, conflicts: true };

function spread(xs: readonly number[]): Spread {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (!ok.length) return { mean: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { mean: ok.reduce((a, b) => a + b, 0) / ok.length, min: Math.min(...ok), max: Math.max(...ok) };
}

function figuresOf(runs: readonly WeekFigures[]): LevelFigures {
  return {
    utilisation: spread(runs.map((r) => r.utilisation)),
    conflicts: spread(runs.map((r) => r.conflicts)),
    nothingToOffer: spread(runs.map((r) => (r.conflicts ? r.noAlternative / r.conflicts : Number.NaN))),
    conversion: spread(runs.map((r) => r.conversion ?? Number.NaN)),
    costPerConversion: spread(runs.map((r) => r.costPerConversion ?? Number.NaN)),
    refusedByReserve: spread(runs.map((r) => (r.bookings ? r.refusedByReserve / r.bookings : 0))),
    netRevenue: spread(runs.map((r) => r.netRevenue)),
  };
}

export async function compareConflicts(
  o: ConflictsCompareOptions,
  progress: (line: string) => void = () => undefined,
): Promise<ConflictsReport> {
  const levels: ConflictsLevel[] = [];
  for (const demand of o.demands) {
    const runs: ConflictsLevel['runs'] = [];
    for (let s = 0; s < o.seeds; s++) {
      const week = { ...o.week, seed: o.week.seed + s, demand };
      const tag = `${Math.round(demand * 10)}s${s}`;
      const off = await playWeek(week, OFF, `f${tag}`);
      const on = await playWeek(week, ON, `n${tag}`);
      runs.push({ seed: week.seed, off, on });
      progress(
        `demand x${demand} seed ${week.seed}: utilisation ${pct(on.utilisation)}, conversion off ${pct(off.conversion)} on ${pct(on.conversion)} (${off.conflicts}/${on.conflicts} conflicts)`,
      );
    }
    levels.push({ demand, off: figuresOf(runs.map((r) => r.off)), on: figuresOf(runs.map((r) => r.on)), runs });
  }
  return { options: o, levels, targets: targetsOf(levels) };
}

/** The targets of issue 24, each met or not, from the levels' means. */
function targetsOf(levels: readonly ConflictsLevel[]): ConflictsReport['targets'] {
  const upTo = (u: number) => levels.filter((l) => l.on.utilisation.mean <= u);
  const near = (u: number) =>
    [...levels].sort((a, b) => Math.abs(a.on.utilisation.mean - u) - Math.abs(b.on.utilisation.mean - u))[0];
  const at70 = upTo(0.7);
  const at85 = near(0.85);
  const list = (ls: readonly ConflictsLevel[], f: (l: ConflictsLevel) => string) => ls.map(f).join(', ') || 'no level';
  return [
    {
      name: 'conversion >= 70% at a utilisation up to 70%',
      met: at70.length > 0 && at70.every((l) => l.on.conversion.mean >= 0.7),
      measured: list(at70, (l) => `${pct(l.on.conversion.mean)} at ${pct(l.on.utilisation.mean)}`),
    },
    {
      name: 'conversion >= 50% at 85% utilisation',
      met: !!at85 && at85.on.utilisation.mean >= 0.8 && at85.on.conversion.mean >= 0.5,
      measured: at85
        ? `${pct(at85.on.conversion.mean)} at ${pct(at85.on.utilisation.mean)} (the level nearest 85%)`
        : 'no level',
    },
    {
      name: 'conflicts with nothing to offer <= 10% up to 70% utilisation',
      met: at70.length > 0 && at70.every((l) => l.on.nothingToOffer.mean <= 0.1),
      measured: list(at70, (l) => `${pct(l.on.nothingToOffer.mean)} at ${pct(l.on.utilisation.mean)}`),
    },
    {
      name: 'bookings refused because of the reserve <= 2% of bookings',
      met: levels.every((l) => l.on.refusedByReserve.mean <= 0.02),
      measured: list(levels, (l) => `${pct(l.on.refusedByReserve.mean)} at x${l.demand}`),
    },
    {
      name: 'cost per conversion no higher than with the features off',
      met: levels.every((l) => !(l.on.costPerConversion.mean > l.off.costPerConversion.mean)),
      measured: list(levels, (l) => `${num(l.on.costPerConversion.mean)} vs ${num(l.off.costPerConversion.mean)}`),
    },
    {
      name: 'net revenue not below the features-off run',
      met: levels.every((l) => l.on.netRevenue.mean >= l.off.netRevenue.mean),
      measured: list(levels, (l) => `${num(l.on.netRevenue.mean)} vs ${num(l.off.netRevenue.mean)}`),
    },
  ];
}

const pct = (x: number | null) => (x === null || !Number.isFinite(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const num = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const range = (s: Spread, f: (x: number) => string) => `${f(s.mean)} (${f(s.min)}–${f(s.max)})`;

/** docs/conflicts.md's section, and the chart beside it, from the report. */
export function writeConflictsDoc(r: ConflictsReport, doc: string): void {
  const stamp = runStamp();
  const chart = path.join(path.dirname(doc), 'conflicts-conversion.svg');
  writeFileSync(chart, conversionChart(r));
  const w = r.options.week;
  const rows = r.levels.flatMap((l) =>
    (['off', 'on'] as const).map((side) => {
      const f = l[side];
      return `| x${l.demand} | ${side} | ${range(f.utilisation, pct)} | ${range(f.conflicts, (x) => x.toFixed(1))} | ${range(f.nothingToOffer, pct)} | ${range(f.conversion, pct)} | ${range(f.costPerConversion, num)} | ${range(f.refusedByReserve, pct)} | ${range(f.netRevenue, (x) => x.toFixed(0))} |`;
    }),
  );
  const lines = [
    `Latest run: commit \`${stamp.commit}\`, ${stamp.date}: \`npm run conflicts:compare\` — ${r.options.seeds} seeds from ${w.seed}, demand ${r.options.demands.map((d) => `x${d}`).join(', ')} of ${w.searchesPerHour} searches an hour, ${w.vehicles} vehicles, ${w.days} days measured after ${w.warmupDays} of history, ${w.incidentsPerVehicleDay} incidents per vehicle and day. Mean (min–max) over the seeds.`,
    '',
    '| demand | features | utilisation | conflicts | nothing to offer | conversion | cost per conversion | searches refused by the reserve (upper bound, of bookings) | net revenue |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `![conversion against utilisation](conflicts-conversion.svg)`,
    '',
    '| target | measured | |',
    '|---|---|---|',
    ...r.targets.map((t) => `| ${t.name} | ${t.measured} | ${t.met ? 'met' : '**missed**'} |`),
  ];
  writeSection(doc, 'conflicts-compare', lines.join('\n'));
}

/** Conversion against utilisation, features off and on, each run a point and each level's mean a line. */
export function conversionChart(r: ConflictsReport): string {
  const W = 560;
  const H = 320;
  const pad = 48;
  const x = (u: number) => pad + u * (W - 2 * pad);
  const y = (c: number) => H - pad - c * (H - 2 * pad);
  const colour = { off: '#9a6700', on: '#0b57d0' } as const;
  const parts: string[] = [];
  for (const side of ['off', 'on'] as const) {
    const pts = r.levels
      .map((l) => [l[side].utilisation.mean, l[side].conversion.mean] as const)
      .filter(([u, c]) => Number.isFinite(u) && Number.isFinite(c));
    parts.push(
      `<polyline fill="none" stroke="${colour[side]}" stroke-width="2" points="${pts.map(([u, c]) => `${x(u).toFixed(1)},${y(c).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const l of r.levels)
      for (const run of l.runs) {
        const f = run[side];
        if (f.conversion !== null)
          parts.push(
            `<circle cx="${x(f.utilisation).toFixed(1)}" cy="${y(f.conversion).toFixed(1)}" r="2.5" fill="${colour[side]}" opacity="0.5"/>`,
          );
      }
  }
  const ticks = [0, 0.25, 0.5, 0.7, 0.85, 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui,sans-serif" font-size="11">
<rect width="${W}" height="${H}" fill="#fff"/>
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#555"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#555"/>
${ticks.map((t) => `<text x="${x(t)}" y="${H - pad + 14}" text-anchor="middle">${Math.round(t * 100)}%</text><text x="${pad - 6}" y="${y(t) + 4}" text-anchor="end">${Math.round(t * 100)}%</text>`).join('')}
<line x1="${pad}" y1="${y(0.7)}" x2="${x(0.7)}" y2="${y(0.7)}" stroke="#1b5e20" stroke-dasharray="4 3"/><line x1="${x(0.85)}" y1="${y(0.5)}" x2="${x(0.85)}" y2="${H - pad}" stroke="#1b5e20" stroke-dasharray="4 3"/>
<text x="${W / 2}" y="${H - 10}" text-anchor="middle">fleet utilisation (booked or on a trip, time-averaged)</text>
<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">conflicts converted</text>
<text x="${W - pad}" y="${pad}" text-anchor="end" fill="${colour.on}">features on</text><text x="${W - pad}" y="${pad + 14}" text-anchor="end" fill="${colour.off}">features off</text>
${parts.join('\n')}
</svg>
`;
}

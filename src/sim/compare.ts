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
import { Redis } from 'ioredis';
import { CityCatalog, type City } from '../domain/cities.ts';
import { backtest, forecast, naiveLastWeek } from '../domain/forecast.ts';
import type { EndedTrip } from '../domain/late-returns.ts';
import { profileOf, rankingFor, type PastTrip } from '../domain/ranking.ts';
import { CATEGORIES, FUELS, TRANSMISSIONS, type Category } from '../domain/vehicle.ts';
import { ShiftedClock } from '../redis/clock.ts';
import { keys, cityKeyPattern } from '../redis/keys.ts';
import { runScript } from '../redis/scripts.ts';
import { ConflictDesk } from '../services/conflicts.ts';
import { IncentiveLearner } from '../services/incentives.ts';
import { Inventory } from '../services/inventory.ts';
import { LateReturnWatch } from '../services/late-returns.ts';
import { ReadModel } from '../services/read-model.ts';
import { rng } from '../domain/random.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface CompareOptions {
  redisUrl: string;
  seed: number;
  vehicles: number;
  customers: number;
  /** Days played with every feature off first (the history the late-return model learns from). */
  warmupDays: number;
  /** Days compared. */
  days: number;
  /** Searches per hour at the week's average. */
  searchesPerHour: number;
  stepMinutes: number;
}

export const DEFAULT_COMPARE: CompareOptions = {
  redisUrl: 'redis://127.0.0.1:6379/15',
  seed: 42,
  vehicles: 120,
  customers: 400,
  warmupDays: 3,
  days: 4,
  searchesPerHour: 30,
  stepMinutes: 15,
};

export interface Features {
  atRisk: boolean;
  forYou: boolean;
  learning: boolean;
}

export interface RunFigures {
  features: Features;
  searches: number;
  bookings: number;
  searchToBook: number;
  tripsLate: number;
  /** Bookings conflicted by a late return: customers who met the problem at pickup. */
  conflictsAtPickup: number;
  atRiskFlagged: number;
  switched: number;
  /** Switches away from a car that then came back too late for the booking: conflicts prevented. */
  prevented: number;
  conflicts: number;
  /** Conflicts for which nothing similar was free: cancelled with a credit, no offer to take. */
  noAlternative: number;
  accepted: number;
  conversion: number | null;
  incentiveCost: number;
  costPerConversion: number | null;
}

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

interface SimCustomer {
  id: string;
  likes: Category;
  /** How much a unit of credit raises the chance of taking an offer. */
  swayedBy: number;
  trips: PastTrip[];
}

interface SimHost {
  id: string;
  lateP: number;
  meanLateMinutes: number;
}

/** Demand by hour of the week: a daily shape, busier Friday to Sunday. */
function demandShape(t: number): number {
  const hour = new Date(t).getUTCHours();
  const day = new Date(t).getUTCDay();
  const daily = 0.35 + 1.3 * Math.max(0, Math.sin(((hour - 6) / 24) * 2 * Math.PI));
  return daily * (day === 0 || day >= 5 ? 1.4 : 0.9);
}

function poisson(mean: number, rand: () => number): number {
  let k = 0;
  let p = Math.exp(-mean);
  let s = p;
  const u = rand();
  while (u > s && k < 1000) {
    k++;
    p *= mean / k;
    s += p;
  }
  return k;
}

async function wipe(redis: Redis, city: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', cityKeyPattern(city), 'COUNT', 1000);
    cursor = next;
    if (batch.length) await runScript(redis, 'wipe_city', batch, []);
  } while (cursor !== '0');
}

const emptyFigures = (features: Features): RunFigures => ({
  features,
  searches: 0,
  bookings: 0,
  searchToBook: 0,
  tripsLate: 0,
  conflictsAtPickup: 0,
  atRiskFlagged: 0,
  switched: 0,
  prevented: 0,
  conflicts: 0,
  noAlternative: 0,
  accepted: 0,
  conversion: null,
  incentiveCost: 0,
  costPerConversion: null,
});

interface Trip {
  customer: SimCustomer;
  from: number;
  to: number;
  vehicleId: string;
}

/** One run: the marketplace, its engine (a private city on the shared Redis) and what it counts. */
class SimRun {
  readonly f: RunFigures;
  private readonly rand: () => number;
  private readonly hostOf = new Map<string, SimHost>();
  private customers: SimCustomer[] = [];
  private readonly history: EndedTrip[] = [];
  private readonly booked = new Map<string, Trip>();
  private readonly out = new Map<string, Trip & { returnAt: number }>();
  /** Bookings switched away from a car expected to run late: the car and the booking's start. */
  private readonly switchedFrom = new Map<string, { vehicleId: string; from: number }>();
  private measuring = false;

  private constructor(
    private readonly o: CompareOptions,
    private readonly features: Features,
    private readonly city: City,
    private readonly redis: Redis,
    private readonly clock: ShiftedClock,
    private readonly inv: Inventory,
    private readonly readModel: ReadModel,
    private readonly desk: ConflictDesk,
    private readonly watch: LateReturnWatch,
    readonly learner: IncentiveLearner,
  ) {
    this.f = emptyFigures(features);
    this.rand = rng(o.seed);
  }

  static async open(o: CompareOptions, features: Features, tag: string): Promise<SimRun> {
    const city: City = {
      id: `cmp${tag}${o.seed % 100000}`,
      name: `compare ${tag}`,
      timeZone: 'UTC',
      turnaroundMs: 30 * MINUTE,
      center: { lat: 12.97, lng: 77.59 },
    };
    const cities = new CityCatalog([city]);
    const redis = new Redis(o.redisUrl, { maxRetriesPerRequest: 3 });
    await wipe(redis, city.id);
    const clock = new ShiftedClock(redis);
    const inv = new Inventory(redis, { clock, cities, maxLiveHoldsPerCustomer: 10_000 });
    const readModel = new ReadModel(redis, inv, cities);
    const learner = new IncentiveLearner(undefined, { seed: o.seed });
    const desk = new ConflictDesk(redis, inv, readModel, { offerTtlMs: 6 * HOUR }, learner);
    const watch = new LateReturnWatch(redis, inv, readModel, desk, undefined, { threshold: 0.3, leadMs: 6 * HOUR });
    const run = new SimRun(o, features, city, redis, clock, inv, readModel, desk, watch, learner);
    await run.populate();
    await readModel.start(1_000);
    return run;
  }

  /** Hosts with their hidden habits, their vehicles, and customers with their hidden tastes. */
  private async populate(): Promise<void> {
    // Start on a Monday 00:00 UTC, so the week's rhythm starts where a week starts.
    const monday = Math.ceil((Date.now() + DAY) / DAY) * DAY;
    this.clock.advanceTo(monday + ((8 - new Date(monday).getUTCDay()) % 7) * DAY);
    const hosts: SimHost[] = Array.from({ length: 12 }, (_, i) => ({
      id: `host-${i}`,
      lateP: i % 3 === 0 ? 0.6 : 0.06,
      meanLateMinutes: i % 3 === 0 ? 110 : 25,
    }));
    for (let i = 0; i < this.o.vehicles; i++) {
      const category = CATEGORIES[Math.min(4, Math.floor(this.rand() ** 1.4 * 5))] as Category;
      const host = hosts[i % hosts.length] as SimHost;
      const r = await this.inv.createVehicle(this.city.id, {
        hostId: host.id,
        category,
        seats: category === 'suv' ? 7 : 5,
        make: 'Sim',
        model: category,
        transmission: TRANSMISSIONS[i % 2] as (typeof TRANSMISSIONS)[number],
        fuel: FUELS[i % FUELS.length] as (typeof FUELS)[number],
        location: { lat: 12.97 + (this.rand() - 0.5) * 0.1, lng: 77.59 + (this.rand() - 0.5) * 0.1 },
        pricePerHour: Math.round((8 + CATEGORIES.indexOf(category) * 6 + this.rand() * 4) * 100) / 100,
      });
      this.hostOf.set(r.vehicleId, host);
    }
    this.customers = Array.from({ length: this.o.customers }, (_, i) => ({
      id: `sim-c${i}`,
      likes: CATEGORIES[Math.floor(this.rand() * CATEGORIES.length)] as Category,
      swayedBy: 0.004 + this.rand() * 0.012,
      trips: [],
    }));
  }

  async play(): Promise<RunFigures & { learned?: unknown }> {
    const start = this.clock.now();
    const end = start + (this.o.warmupDays + this.o.days) * DAY;
    const step = this.o.stepMinutes * MINUTE;
    while (this.clock.now() < end) {
      this.clock.advance(step);
      const now = this.clock.now();
      if (!this.measuring && now >= start + this.o.warmupDays * DAY) {
        this.measuring = true;
        this.watch.fitFrom(this.history);
        this.learner.enabled = this.features.learning;
      }
      await this.readModel.catchUp([this.city.id]);
      await this.searchAndBook(now, step);
      await this.bringCarsBack(now);
      await this.startTrips(now);
      if (this.measuring && this.features.atRisk) await this.actOnRisks();
    }
    await this.readModel.stop();
    await wipe(this.redis, this.city.id);
    this.redis.disconnect();
    const f = this.f;
    f.searchToBook = f.searches ? f.bookings / f.searches : 0;
    f.conversion = f.conflicts ? f.accepted / f.conflicts : null;
    f.costPerConversion = f.accepted ? f.incentiveCost / f.accepted : null;
    return { ...f, ...(this.features.learning ? { learned: this.learner.report() } : {}) };
  }

  /** Customers search and book down the list they are shown. */
  private async searchAndBook(now: number, step: number): Promise<void> {
    const arrivals = poisson((this.o.searchesPerHour * demandShape(now) * step) / HOUR, this.rand);
    for (let a = 0; a < arrivals; a++) {
      const c = this.customers[Math.floor(this.rand() * this.customers.length)] as SimCustomer;
      const from = Math.ceil(now / HOUR) * HOUR + (2 + Math.floor(this.rand() * 46)) * HOUR;
      const to = from + (2 + Math.floor(this.rand() * 22)) * HOUR;
      const profile = profileOf(c.trips);
      const ranked = this.measuring && this.features.forYou;
      const { hits } = await this.readModel.search(this.city.id, {
        from,
        to,
        limit: 10,
        ...(ranked ? { sort: 'for_you' as const, rank: rankingFor(profile) } : { sort: 'price' as const }),
      });
      if (this.measuring) this.f.searches++;
      for (const [i, h] of hits.entries()) {
        if (this.rand() >= (h.category === c.likes ? 0.45 : 0.05) * 0.85 ** i) continue;
        try {
          const r = await this.inv.book({ vehicleId: h.vehicleId, customerId: c.id, from, to });
          this.booked.set(r.booking.id, { customer: c, from, to, vehicleId: h.vehicleId });
          c.trips.push({
            category: h.category as Category,
            pricePerHour: h.pricePerHour,
            lat: h.location.lat,
            lng: h.location.lng,
            hours: (to - from) / HOUR,
          });
          if (this.measuring) this.f.bookings++;
        } catch {
          // Taken meanwhile: the customer walks away.
        }
        break;
      }
    }
  }

  /** Cars come back, on time or early mostly, late by their host's habit; late ones conflict the next booking. */
  private async bringCarsBack(now: number): Promise<void> {
    for (const [id, t] of this.out) {
      if (t.returnAt > now) continue;
      this.out.delete(id);
      try {
        const r = await this.inv.completeTrip(id, t.customer.id);
        this.history.push({
          hostId: this.hostOf.get(t.vehicleId)?.id ?? '',
          vehicleId: t.vehicleId,
          customerId: t.customer.id,
          scheduledEnd: t.to,
          hours: (t.to - t.from) / HOUR,
          lateMinutes: (r.at - t.to) / MINUTE,
        });
        if (r.at > t.to && this.measuring) this.f.tripsLate++;
        for (const [bid, s] of this.switchedFrom)
          if (s.vehicleId === t.vehicleId && r.at + this.city.turnaroundMs > s.from) {
            if (this.measuring) this.f.prevented++;
            this.switchedFrom.delete(bid);
          }
        for (const eventId of r.events) await this.conflicted(eventId);
      } catch {
        // A trip already ended (a conflict moved things along): nothing to bring back.
      }
    }
  }

  /** A booking a late return conflicted: the desk offers, the customer weighs them. */
  private async conflicted(eventId: string): Promise<void> {
    const [ev] = await this.redis.xrange(keys.events(this.city.id), eventId, eventId);
    const fields = ev?.[1] ?? [];
    const subject = fields[fields.indexOf('subject') + 1];
    if (fields[fields.indexOf('type') + 1] !== 'booking.conflicted' || !subject) return;
    const b = this.booked.get(subject);
    if (!b) return;
    if (this.measuring) {
      this.f.conflictsAtPickup++;
      this.f.conflicts++;
    }
    const res = await this.desk.resolve(subject);
    if (res.outcome === 'no_alternative' && this.measuring) this.f.noAlternative++;
    const offers = res.record?.offers ?? [];
    const chance = (x: (typeof offers)[number]) =>
      Math.min(
        0.95,
        (x.kind === 'upgrade' ? 0.6 : 0.4) +
          b.customer.swayedBy * x.incentive.amount * (x.kind === 'upgrade' ? 0.3 : 1),
      );
    const best = [...offers].sort((x, y) => chance(y) - chance(x))[0];
    if (best && this.rand() < chance(best)) {
      await this.desk.accept(subject, best.id, b.customer.id);
      if (this.measuring) {
        this.f.accepted++;
        this.f.incentiveCost += best.incentive.amount;
      }
    } else if (offers.length) await this.desk.decline(subject, b.customer.id);
  }

  /** Trips whose window has begun start, if the car is there; when it comes back is the host's habit. */
  private async startTrips(now: number): Promise<void> {
    for (const [id, b] of this.booked) {
      if (b.from > now) continue;
      try {
        await this.inv.startTrip(id, b.customer.id);
        const host = this.hostOf.get(b.vehicleId) as SimHost;
        const returnAt =
          this.rand() < host.lateP
            ? b.to + Math.round(-host.meanLateMinutes * Math.log(1 - this.rand())) * MINUTE
            : b.to - Math.floor(this.rand() * 60) * MINUTE;
        this.out.set(id, { ...b, returnAt: Math.max(now + MINUTE, returnAt) });
        this.booked.delete(id);
      } catch {
        // The car is not back yet (its late return will conflict this booking), or the booking moved.
        if (b.to <= now) this.booked.delete(id);
      }
    }
  }

  /** Late returns seen coming: the customer switches to the held vehicle (7 in 10), or waits. */
  private async actOnRisks(): Promise<void> {
    const { flagged } = await this.watch.scanCity(this.city.id);
    for (const x of flagged) {
      if (!x.again) this.f.atRiskFlagged++;
      const b = this.booked.get(x.bookingId);
      if (!b || !x.standby || this.rand() >= 0.7) continue;
      try {
        await this.watch.switchToStandby(await this.inv.getEntry(x.bookingId, 'booking'), b.customer.id);
        this.f.switched++;
        this.switchedFrom.set(x.bookingId, { vehicleId: b.vehicleId, from: b.from });
        this.booked.set(x.bookingId, { ...b, vehicleId: x.standby.vehicleId });
      } catch {
        // The standby went meanwhile: the customer waits.
      }
    }
  }
}

async function run(o: CompareOptions, features: Features, tag: string): Promise<RunFigures & { learned?: unknown }> {
  return (await SimRun.open(o, features, tag)).play();
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
  const off = await run(o, { atRisk: false, forYou: false, learning: false }, 'off');
  const { learned, ...onFigures } = await run(o, { atRisk: true, forYou: true, learning: true }, 'on');
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

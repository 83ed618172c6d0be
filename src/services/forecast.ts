/**
 * Demand and availability forecast per city × area × category × hour (docs/prediction.md): the
 * hourly series of vehicles in use (bookings, from PostgreSQL) and of searches that went unserved
 * (`search_demand`, written by `SearchDemandLog`), forecast by the weekly seasonal baseline times
 * the recent trend (src/domain/forecast.ts), turned into predicted utilization, shortfalls and
 * suggested fleet moves between the city's areas; its accuracy backtested on the same history
 * against the naive last-week forecast.
 */
import type pg from 'pg';
import { DomainError } from '../domain/errors.ts';
import { addSearchDemand, bookedPeriods, listedFleet, shortSearches } from '../pg/forecast.ts';
import { survived } from '../log.ts';
import { backtest, forecast, naiveLastWeek, WEEK_HOURS, type Accuracy } from '../domain/forecast.ts';
import type { City } from '../domain/cities.ts';
import { localIso } from '../domain/local-time.ts';
import { CATEGORIES, type Category } from '../domain/vehicle.ts';

const HOUR = 3_600_000;
/** Predicted utilization from which an hour is a shortfall (the category is about to sell out). */
export const SELL_OUT_UTILIZATION = 0.9;
/** Predicted utilization under which an area can spare vehicles of a category. */
const SLACK_UTILIZATION = 0.6;

/** A city's four areas: north-east, north-west, south-east, south-west of its centre. */
export type Area = 'NE' | 'NW' | 'SE' | 'SW';
const AREAS: readonly Area[] = ['NE', 'NW', 'SE', 'SW'];
export function areaOf(city: City, p: { lat: number; lng: number }): Area {
  return `${p.lat >= city.center.lat ? 'N' : 'S'}${p.lng >= city.center.lng ? 'E' : 'W'}` as Area;
}

export interface ForecastHour {
  start: string;
  /** Vehicles predicted in use, of the fleet. */
  inUse: number;
  utilization: number;
  /** Searches predicted to find fewer vehicles than they asked for. */
  unservedSearches: number;
}

export interface CategoryForecast {
  category: Category;
  fleet: number;
  byArea: { area: Area; fleet: number; peakUtilization: number }[];
  hours: ForecastHour[];
}

export interface Shortfall {
  category: Category;
  area: Area;
  start: string;
  utilization: number;
  fleet: number;
}

export interface FleetMove {
  category: Category;
  from: Area;
  to: Area;
  vehicles: number;
  by: string;
  reason: string;
}

export interface CityForecast {
  city: string;
  /** The city's time zone, whose local time and offset the forecast's times are written in. */
  timeZone: string;
  generatedAt: string;
  horizonHours: number;
  historyWeeks: number;
  categories: CategoryForecast[];
  shortfalls: Shortfall[];
  moves: FleetMove[];
  /** Backtest of the city's hourly vehicles-in-use, against the naive last-week forecast. */
  accuracy: (Accuracy & { naiveMape: number; naiveBias: number })[];
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class ForecastDesk {
  private readonly cache = new Map<string, { at: number; value: Promise<CityForecast> }>();

  constructor(
    private readonly db: pg.Pool,
    private readonly cityOf: (id: string) => City | undefined,
    private readonly ttlMs = 5 * 60_000,
    private readonly historyWeeks = 5,
    private readonly now: () => number = Date.now,
  ) {}

  /** The city's forecast, computed at most once per `ttlMs` (its history changes slowly). */
  async get(cityId: string, horizonHours: number): Promise<CityForecast> {
    const key = `${cityId}|${horizonHours}`;
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.value;
    const value = this.compute(cityId, horizonHours);
    this.cache.set(key, { at: this.now(), value });
    value.catch(() => this.cache.delete(key));
    return value;
  }

  /**
   * The city's latest week-ahead forecast without waiting (search asks on its hot path): the last
   * one computed, if any, and a fresh one is started in the background once it is `ttlMs` old.
   */
  peek(cityId: string): CityForecast | undefined {
    const last = this.settled.get(`${cityId}|168`);
    if (!last || this.now() - Date.parse(last.generatedAt) >= this.ttlMs)
      void this.get(cityId, 168).catch((err) => survived('forecast.refresh', err));
    return last;
  }

  private readonly settled = new Map<string, CityForecast>();

  private async compute(cityId: string, horizonHours: number): Promise<CityForecast> {
    const city = this.cityOf(cityId);
    if (!city) throw new DomainError('NOT_FOUND', `city ${cityId} not found`, { entity: 'city', id: cityId });
    const end = Math.floor(this.now() / HOUR) * HOUR;
    const h = await this.history(city, end - this.historyWeeks * WEEK_HOURS * HOUR, end);
    const hourIso = (k: number) => localIso(city.timeZone, end + k * HOUR);
    const categories: CategoryForecast[] = [];
    const shortfalls: Shortfall[] = [];
    const moves: FleetMove[] = [];
    const total = new Array<number>(h.n).fill(0);
    for (const category of CATEGORIES) {
      const perArea = AREAS.map((area) => {
        const s = h.inUse.get(`${category}|${area}`) ?? [];
        s.forEach((x, i) => {
          total[i] = (total[i] ?? 0) + x;
        });
        return { area, fleet: h.fleet.get(`${category}|${area}`) ?? 0, f: forecast(s, horizonHours).values };
      });
      const c = predictCategory(category, perArea, h.unserved, horizonHours, hourIso);
      if (!c) continue;
      categories.push(c);
      const found = shortfallsAndMoves(category, perArea, hourIso);
      shortfalls.push(...found.shortfalls);
      moves.push(...found.moves);
    }
    const horizons = [1, 24, 168].filter((k) => h.n >= 4 * WEEK_HOURS + k);
    const ours = backtest(total, horizons, (s, k) => forecast(s, k).values);
    const naive = backtest(total, horizons, naiveLastWeek);
    const value: CityForecast = {
      city: cityId,
      timeZone: city.timeZone,
      generatedAt: localIso(city.timeZone, this.now()),
      horizonHours,
      historyWeeks: this.historyWeeks,
      categories,
      shortfalls,
      moves,
      accuracy: ours.map((a, i) => ({
        ...a,
        mape: round3(a.mape),
        bias: round3(a.bias),
        naiveMape: round3(naive[i]?.mape ?? 0),
        naiveBias: round3(naive[i]?.bias ?? 0),
      })),
    };
    this.settled.set(`${cityId}|${horizonHours}`, value);
    return value;
  }

  /**
   * The hourly history over [start, end): the listed fleet per category and area, vehicles in
   * use per category and area (each booking's share of every hour it covers), and searches that
   * came up short per category.
   */
  private async history(city: City, start: number, end: number) {
    const n = (end - start) / HOUR;
    const hourly = (m: Map<string, number[]>, k: string) => {
      let s = m.get(k);
      if (!s) {
        s = new Array<number>(n).fill(0);
        m.set(k, s);
      }
      return s;
    };
    const fleet = new Map<string, number>();
    for (const v of await listedFleet(this.db, city.id)) {
      const k = `${v.category}|${areaOf(city, v)}`;
      fleet.set(k, (fleet.get(k) ?? 0) + 1);
    }
    const inUse = new Map<string, number[]>();
    for (const r of await bookedPeriods(this.db, city.id, start, end)) {
      const s = hourly(inUse, `${r.category}|${areaOf(city, r)}`);
      const a = Math.max(start, Number(r.a));
      const b = Math.min(end, Number(r.b));
      for (let t = Math.floor(a / HOUR) * HOUR; t < b; t += HOUR) {
        const i = (t - start) / HOUR;
        if (i >= 0 && i < n) s[i] = (s[i] ?? 0) + (Math.min(b, t + HOUR) - Math.max(a, t)) / HOUR;
      }
    }
    const unserved = new Map<string, number[]>();
    for (const d of await shortSearches(this.db, city.id, start, end)) {
      const s = hourly(unserved, d.category);
      const i = (Number(d.h) - start) / HOUR;
      if (i >= 0 && i < n) s[i] = (s[i] ?? 0) + d.short;
    }
    return { n, fleet, inUse, unserved };
  }

  /** Will the category (or the whole city) sell out during [from, to), by the latest forecast? */
  likelyToSellOut(cityId: string, from: number, to: number, category?: Category): boolean | undefined {
    const f = this.peek(cityId);
    if (!f) return undefined;
    const cats = f.categories.filter((c) => !category || c.category === category);
    const first = cats[0]?.hours[0];
    if (!first) return undefined;
    // Every category's hours start at the same hour, one an hour: only the window's are looked at
    // (search asks this on its hot path).
    const t0 = Date.parse(first.start);
    const lo = Math.max(0, Math.floor((from - t0) / HOUR));
    const hi = Math.ceil((to - t0) / HOUR);
    return cats.every((c) => {
      for (let i = lo; i < Math.min(hi, c.hours.length); i++)
        if ((c.hours[i]?.utilization ?? 0) >= SELL_OUT_UTILIZATION) return true;
      return false;
    });
  }
}

/**
 * Searches, counted per city, category and hour of the window asked for, and written to
 * `search_demand` set-wise every `flushMs`: the forecast's unserved demand. A search that found
 * fewer vehicles than it asked for is `short`; none, `empty`.
 */
export class SearchDemandLog {
  private counts = new Map<string, { searches: number; short: number; empty: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: pg.Pool,
    flushMs = 5_000,
  ) {
    this.timer = setInterval(
      () => void this.flush().catch((err: unknown) => survived('forecast.search-demand', err)),
      flushMs,
    );
    this.timer.unref();
  }

  record(city: string, category: string | undefined, from: number, found: number, asked: number): void {
    const key = `${city}|${category ?? 'any'}|${Math.floor(from / HOUR) * HOUR}`;
    const c = this.counts.get(key) ?? { searches: 0, short: 0, empty: 0 };
    c.searches++;
    if (found < asked) c.short++;
    if (found === 0) c.empty++;
    this.counts.set(key, c);
  }

  async flush(): Promise<void> {
    if (this.counts.size === 0) return;
    const taken = this.counts;
    this.counts = new Map();
    const rows = [...taken].map(([k, c]) => {
      const [city = '', category = '', hour] = k.split('|');
      return { city, category, hour: Number(hour), ...c };
    });
    try {
      await addSearchDemand(this.db, rows);
    } catch (err) {
      // Not written: the counts go back, added to what came meanwhile, for the next flush.
      for (const [k, c] of taken) {
        const now = this.counts.get(k);
        this.counts.set(
          k,
          now ? { searches: now.searches + c.searches, short: now.short + c.short, empty: now.empty + c.empty } : c,
        );
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush().catch((err: unknown) => survived('forecast.search-demand', err));
  }
}

type AreaForecast = { area: Area; fleet: number; f: number[] };

/** A category's forecast hour by hour (undefined when it has neither vehicles nor demand). */
function predictCategory(
  category: Category,
  perArea: readonly AreaForecast[],
  unserved: ReadonlyMap<string, number[]>,
  horizonHours: number,
  hourIso: (h: number) => string,
): CategoryForecast | undefined {
  const catFleet = perArea.reduce((a, x) => a + x.fleet, 0);
  const unservedF = forecast(unserved.get(category) ?? [], horizonHours).values;
  // `any`: searches without a category count towards every category's unserved demand share.
  const anyF = forecast(unserved.get('any') ?? [], horizonHours).values;
  if (catFleet === 0 && unservedF.every((x) => x === 0)) return undefined;
  const hours: ForecastHour[] = [];
  for (let h = 0; h < horizonHours; h++) {
    const inUse = Math.min(
      catFleet,
      perArea.reduce((a, x) => a + Math.min(x.fleet, x.f[h] ?? 0), 0),
    );
    hours.push({
      start: hourIso(h),
      inUse: round3(inUse),
      utilization: catFleet ? round3(inUse / catFleet) : 1,
      unservedSearches: round3((unservedF[h] ?? 0) + (anyF[h] ?? 0) / CATEGORIES.length),
    });
  }
  const byArea = perArea.map((x) => ({
    area: x.area,
    fleet: x.fleet,
    peakUtilization: x.fleet ? round3(Math.min(1, Math.max(0, ...x.f.map((v) => v / x.fleet)))) : 0,
  }));
  return { category, fleet: catFleet, byArea, hours };
}

/** Per area: the first hour the category sells out there, and an area with room then to send some. */
function shortfallsAndMoves(
  category: Category,
  perArea: readonly AreaForecast[],
  hourIso: (h: number) => string,
): { shortfalls: Shortfall[]; moves: FleetMove[] } {
  const shortfalls: Shortfall[] = [];
  const moves: FleetMove[] = [];
  for (const x of perArea) {
    if (x.fleet === 0) continue;
    const h = x.f.findIndex((v) => v / x.fleet >= SELL_OUT_UTILIZATION);
    if (h < 0) continue;
    const utilization = round3(Math.min(1, (x.f[h] ?? 0) / x.fleet));
    shortfalls.push({ category, area: x.area, start: hourIso(h), utilization, fleet: x.fleet });
    const needed = Math.max(1, Math.ceil((x.f[h] ?? 0) - SELL_OUT_UTILIZATION * x.fleet + 1));
    for (const y of perArea) {
      if (y.area === x.area || y.fleet === 0) continue;
      const spare = Math.floor(y.fleet * SLACK_UTILIZATION - (y.f[h] ?? 0));
      if (spare <= 0) continue;
      moves.push({
        category,
        from: y.area,
        to: x.area,
        vehicles: Math.min(spare, needed),
        by: hourIso(h),
        reason: `${category} in ${x.area} reaches ${Math.round(utilization * 100)}% at ${hourIso(h)}; ${y.area} is at ${Math.round(((y.f[h] ?? 0) / y.fleet) * 100)}% then`,
      });
      break;
    }
  }
  return { shortfalls, moves };
}

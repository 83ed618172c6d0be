/**
 * This deployment's view of the regions (docs/regions.md): the regions document (REGIONS_FILE,
 * REGION), and which lost regions are served by a standby now — published by `fleet dr failover`
 * into this region's Redis and read again every second by every process. Without a regions
 * document there is one implicit region holding every city, and nothing is ever routed away.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../config.ts';
import type { City } from '../domain/cities.ts';
import { encodeCursor, type PageKey } from '../domain/cursor.ts';
import { messageOf } from '../domain/errors.ts';
import { parseRegions, routeCity, type CityRoute, type RegionsDocument, type ServedBy } from '../domain/regions.ts';
import { survived } from '../log.ts';
import { keys } from '../redis/keys.ts';
import type { RedisConnection } from '../redis/scripts.ts';

export const IMPLICIT_REGION = 'default';
/** A request forwarded by another region's list fan-out carries this: answer for this region alone. */
export const REGION_SCOPE_HEADER = 'x-fleet-region-scope';

export interface RegionView {
  name: string;
  cities: string[];
  url: string;
  /** This deployment's own region. */
  here: boolean;
  /** Set after a disaster: the standby deployment serving this region's cities now. */
  servedBy: ServedBy | null;
}

export class RegionMap {
  private served = new Map<string, ServedBy>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly doc: RegionsDocument,
    readonly here: string,
    private readonly redis?: RedisConnection,
  ) {}

  /** The single implicit region of a deployment without a regions document. */
  static implicit(cities: readonly City[], url = ''): RegionMap {
    return new RegionMap(
      { regions: [{ name: IMPLICIT_REGION, cities: cities.map((c) => c.id), url }] },
      IMPLICIT_REGION,
    );
  }

  /** REGIONS_FILE read and validated at start-up; a bad document stops the process (ConfigError). */
  static fromFile(file: string, here: string, known: readonly City[], redis?: RedisConnection): RegionMap {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`REGIONS_FILE ${file}: ${messageOf(err)}`);
    }
    const parsed = parseRegions(json, here, new Set(known.map((c) => c.id)));
    if ('problems' in parsed) throw new ConfigError(`REGIONS_FILE ${file}:\n  ${parsed.problems.join('\n  ')}`);
    return new RegionMap(parsed.regions, here, redis);
  }

  /** True when several regions exist (routing and fan-out apply). */
  get multi(): boolean {
    return this.doc.regions.length > 1;
  }

  /** The cities this deployment serves. */
  citiesHere(): string[] {
    return [...(this.doc.regions.find((r) => r.name === this.here)?.cities ?? [])];
  }

  route(city: string): CityRoute {
    return routeCity(this.doc, this.here, this.served, city);
  }

  /** Every other region, at the URL that serves its cities now. */
  others(): { name: string; url: string }[] {
    return this.doc.regions
      .filter((r) => r.name !== this.here)
      .map((r) => ({ name: r.name, url: this.served.get(r.name)?.url ?? r.url }));
  }

  view(): RegionView[] {
    return this.doc.regions.map((r) => ({
      name: r.name,
      cities: [...r.cities],
      url: r.url,
      here: r.name === this.here,
      servedBy: this.served.get(r.name) ?? null,
    }));
  }

  /** Reads the published routing now (and every second after `start`). */
  async refresh(): Promise<void> {
    if (!this.redis || !this.multi) return;
    const raw = await this.redis.hgetall(keys.regionRouting());
    const next = new Map<string, ServedBy>();
    for (const [region, json] of Object.entries(raw)) {
      try {
        next.set(region, JSON.parse(json) as ServedBy);
      } catch (err) {
        survived('regions.routing', err);
      }
    }
    this.served = next;
  }

  start(log?: Logger): void {
    if (!this.redis || !this.multi) return;
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => log?.debug({ err: messageOf(err) }, 'region routing not read'));
    }, 1_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Publishes into this region's Redis that `region`'s cities are served by `servedBy` now (a DR
 * failover), or no longer (`null`: back home). Routing, not marketplace state: no event.
 */
export async function publishServedBy(
  redis: RedisConnection,
  region: string,
  servedBy: ServedBy | null,
): Promise<void> {
  if (servedBy) await redis.hset(keys.regionRouting(), region, JSON.stringify(servedBy));
  else await redis.hdel(keys.regionRouting(), region);
}

export interface FannedOut<T> {
  answers: { region: string; body: T }[];
  unavailable: string[];
}

/**
 * Asks every other region for the same path with the caller's token, for their part of a list;
 * a region that fails or does not answer within `timeoutMs` is named in `unavailable`.
 */
export async function fanOut<T>(
  regions: RegionMap,
  pathAndQuery: string,
  authorization: string | undefined,
  timeoutMs: number,
): Promise<FannedOut<T>> {
  const out: FannedOut<T> = { answers: [], unavailable: [] };
  await Promise.all(
    regions.others().map(async (r) => {
      try {
        const res = await fetch(`${r.url}${pathAndQuery}`, {
          headers: { ...(authorization ? { authorization } : {}), [REGION_SCOPE_HEADER]: 'local' },
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (res.status !== 200) {
          await res.body?.cancel();
          out.unavailable.push(r.name);
          return;
        }
        out.answers.push({ region: r.name, body: (await res.json()) as T });
      } catch {
        out.unavailable.push(r.name);
      }
    }),
  );
  out.unavailable.sort();
  return out;
}

export interface RegionPage<T> {
  items: T[];
  cursor: string | null;
}

/**
 * Several regions' pages of one keyset list (each the first `limit` items after the same cursor,
 * in (key, id) order) as one page: the first `limit` items of them all. Whatever a region left out
 * comes after its page's last item, so nothing is skipped; the cursor is the last item taken.
 */
export function mergePages<T>(pages: RegionPage<T>[], limit: number, keyOf: (t: T) => PageKey): RegionPage<T> {
  const order = (a: T, b: T) => {
    const x = keyOf(a);
    const y = keyOf(b);
    return x.key - y.key || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0);
  };
  const all = pages.flatMap((p) => p.items).sort(order);
  const items = all.slice(0, limit);
  const more = all.length > limit || pages.some((p) => p.cursor !== null);
  const last = items.at(-1);
  return { items, cursor: more && last ? encodeCursor(keyOf(last)) : null };
}

export interface AcrossRegions {
  regions: RegionMap | undefined;
  /** The request as received (path and query), the caller's Authorization, and its region scope header. */
  pathAndQuery: string;
  authorization: string | undefined;
  scope: string | undefined;
  timeoutMs: number;
}

/**
 * A list that spans regions: this region's page, and every other region's for the same request
 * (asked with the caller's token, unless this request is itself another region's fan-out), merged.
 * A region that does not answer in time is named in `regionsUnavailable`; never an error.
 */
export async function pageAcrossRegions<T>(
  ask: AcrossRegions,
  local: Promise<RegionPage<T>>,
  pageOf: (body: unknown) => RegionPage<T>,
  keyOf: (t: T) => PageKey,
  limit: number,
): Promise<RegionPage<T> & { regionsUnavailable?: string[] }> {
  if (!ask.regions?.multi || ask.scope === 'local') return local;
  const [mine, others] = await Promise.all([
    local,
    fanOut<unknown>(ask.regions, ask.pathAndQuery, ask.authorization, ask.timeoutMs),
  ]);
  const merged = mergePages([mine, ...others.answers.map((a) => pageOf(a.body))], limit, keyOf);
  return { ...merged, regionsUnavailable: others.unavailable };
}

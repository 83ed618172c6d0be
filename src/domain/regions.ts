/**
 * Regions (docs/regions.md): autonomous deployments, each owning a fixed set of cities. A city
 * lives in exactly one region; a region takes bookings for its cities without asking another.
 * Pure rules: the regions document and its validation, and where a city's requests go.
 */
import { CITY_ID_PATTERN } from './cities.ts';

/** Where a region's cities are served after its loss: a recovery deployment in another region. */
export interface RegionStandby {
  /** The region whose infrastructure hosts it. */
  region: string;
  /** Its base URL. */
  url: string;
  /** The lost region's DR standby database (libpq URL), which `fleet dr failover` promotes. */
  database?: string;
}

export interface RegionSpec {
  name: string;
  cities: readonly string[];
  /** Base URL of the region's API (`https://blr.example.com`): where its cities' requests are sent. */
  url: string;
  standby?: RegionStandby;
}

export interface RegionsDocument {
  regions: readonly RegionSpec[];
}

/** A region whose cities are served elsewhere now (after `fleet dr failover`): by whom, since when. */
export interface ServedBy {
  region: string;
  url: string;
  since: number;
}

const REGION_NAME = /^[a-z][a-z0-9-]{0,31}$/;

function isUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash;
  } catch {
    return false;
  }
}

/**
 * Parses and validates a regions document: `{"regions": {"<name>": {"cities": [...], "url": "...",
 * "standby"?: {"region", "url"}}}}`. Every city in exactly one region, known to `knownCities`;
 * `here` one of the regions. Returns the problems, or the document.
 */
export function parseRegions(
  json: unknown,
  here: string,
  knownCities: ReadonlySet<string>,
): { regions: RegionsDocument } | { problems: string[] } {
  const problems: string[] = [];
  const root = json as { regions?: unknown } | null;
  if (typeof root !== 'object' || root === null || typeof root.regions !== 'object' || root.regions === null)
    return { problems: ['a regions document is {"regions": {"<name>": {"cities": [...], "url": "https://..."}}}'] };
  const owner = new Map<string, string>();
  const regions: RegionSpec[] = [];
  for (const [name, raw] of Object.entries(root.regions as Record<string, unknown>)) {
    const r = raw as { cities?: unknown; url?: unknown; standby?: unknown } | null;
    if (!REGION_NAME.test(name)) problems.push(`region name ${JSON.stringify(name)}: lowercase letters, digits, -`);
    if (typeof r !== 'object' || r === null) {
      problems.push(`${name}: an object with cities and url`);
      continue;
    }
    if (!isUrl(r.url)) problems.push(`${name}.url: an http(s) URL without query`);
    if (!Array.isArray(r.cities) || r.cities.length === 0) problems.push(`${name}.cities: a non-empty list`);
    const cities = Array.isArray(r.cities) ? r.cities.filter((c): c is string => typeof c === 'string') : [];
    for (const c of cities) {
      if (!CITY_ID_PATTERN.test(c) || !knownCities.has(c)) problems.push(`${name}: unknown city ${c}`);
      const before = owner.get(c);
      if (before) problems.push(`city ${c} is in both ${before} and ${name}`);
      owner.set(c, name);
    }
    let standby: RegionStandby | undefined;
    if (r.standby !== undefined) {
      const s = r.standby as { region?: unknown; url?: unknown; database?: unknown } | null;
      if (
        typeof s?.region !== 'string' ||
        !isUrl(s?.url) ||
        (s.database !== undefined && typeof s.database !== 'string')
      )
        problems.push(`${name}.standby: {"region", "url", "database"?}`);
      else
        standby = { region: s.region, url: s.url, ...(typeof s.database === 'string' ? { database: s.database } : {}) };
    }
    regions.push({ name, cities, url: String(r.url), ...(standby ? { standby } : {}) });
  }
  const names = new Set(regions.map((r) => r.name));
  if (!names.has(here)) problems.push(`this region (REGION=${here}) is not in the document`);
  for (const r of regions) {
    if (r.standby && (!names.has(r.standby.region) || r.standby.region === r.name))
      problems.push(`${r.name}.standby.region: another region of the document`);
  }
  return problems.length ? { problems } : { regions: { regions } };
}

/** What to do with a request for `city` in region `here`. */
export type CityRoute = { kind: 'here' } | { kind: 'elsewhere'; region: string; url: string } | { kind: 'unknown' };

/**
 * The owner of `city` serves it, unless the owner's cities are served by its standby now (then the
 * standby does). The recovery deployment of a lost region runs with that region's name, so it
 * serves those cities itself.
 */
export function routeCity(
  doc: RegionsDocument,
  here: string,
  servedBy: ReadonlyMap<string, ServedBy>,
  city: string,
): CityRoute {
  const owner = doc.regions.find((r) => r.cities.includes(city));
  if (!owner) return { kind: 'unknown' };
  if (owner.name === here) return { kind: 'here' };
  const moved = servedBy.get(owner.name);
  if (moved) return { kind: 'elsewhere', region: owner.name, url: moved.url };
  return { kind: 'elsewhere', region: owner.name, url: owner.url };
}

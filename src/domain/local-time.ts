/**
 * Local time in IANA time zones, from the zone data Node carries (ICU, through `Intl`): which names
 * are zones, a zone's UTC offset at an instant and when it changes, where a local day or hour
 * starts, and RFC 3339 timestamps written with the local offset. Pure; a zone's offsets are
 * worked out once per year and kept (every instant of the service goes through here when it is
 * shown or bucketed in local time). Decisions: docs/api.md, "Local time".
 */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Analytics buckets: local hours or local days. */
export type Granularity = 'hour' | 'day';
/** How far apart a zone's offset is probed: changes closer than this could go unseen. */
const PROBE_STEP_MS = 3 * DAY_MS;

/** A zone name: letters first (an offset such as +05:30 is not a zone), '/'-separated parts. */
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/;
/** `timeZoneName: 'longOffset'` writes GMT, GMT+05:30, GMT-07:52:58. */
const LONG_OFFSET = /^GMT(?:([+-])(\d{2}):(\d{2})(?::(\d{2}))?)?$/;

/** A zone Node knows: its formatter and ICU's canonical id (UTC for Etc/UTC and GMT, Asia/Calcutta for Asia/Kolkata). */
interface Zone {
  fmt: Intl.DateTimeFormat;
  id: string;
}
/** Zones by the name callers spell (unknown names too, as null); dropped whole beyond a bound. */
const byName = new Map<string, Zone | null>();
const MAX_NAMES = 2_000;
/** Per zone (canonical id) and UTC year: the offset on 1 January 00:00 UTC and each change during the year. */
const years = new Map<string, { start: number; changes: readonly OffsetChange[] }>();
const MAX_CACHED_YEARS = 20_000;

export interface OffsetChange {
  /** The first instant (epoch ms) of the new offset. */
  at: number;
  /** Local time minus UTC from then on, in ms. */
  offset: number;
}

function lookUp(name: string): Zone | null {
  const known = byName.get(name);
  if (known !== undefined) return known;
  let zone: Zone | null = null;
  if (name.length <= 64 && ZONE_NAME.test(name)) {
    try {
      const fmt = new Intl.DateTimeFormat('en-US', { timeZone: name, timeZoneName: 'longOffset' });
      zone = { fmt, id: fmt.resolvedOptions().timeZone };
    } catch {
      zone = null;
    }
  }
  if (byName.size >= MAX_NAMES) byName.clear();
  byName.set(name, zone);
  return zone;
}

/** `name` when it names a time zone Node knows (IANA names and their links: Asia/Kolkata, UTC, US/Pacific); else undefined. */
export function timeZoneOf(name: string): string | undefined {
  return lookUp(name) ? name : undefined;
}

function zoneOf(name: string): Zone {
  const zone = lookUp(name);
  if (!zone) throw new RangeError(`unknown time zone ${JSON.stringify(name)}`);
  return zone;
}

/** The zone is UTC itself (no offset, ever). */
export function isUtc(name: string): boolean {
  return zoneOf(name).id === 'UTC';
}

/** The offset at `t` straight from ICU (slow: the per-year tables below are built from it). */
function probe(fmt: Intl.DateTimeFormat, t: number): number {
  const part = fmt.formatToParts(t).find((p) => p.type === 'timeZoneName')?.value ?? '';
  const m = LONG_OFFSET.exec(part);
  if (!m) throw new RangeError(`unexpected offset ${JSON.stringify(part)}`);
  const [, sign, h = '0', min = '0', s = '0'] = m;
  const ms = ((Number(h) * 60 + Number(min)) * 60 + Number(s)) * 1000;
  return sign === '-' ? -ms : ms;
}

const yearStart = (y: number) => new Date(0).setUTCFullYear(y, 0, 1);

/**
 * The offsets of a zone during one UTC year, probed three days apart and each change pinned down
 * to the second by bisection. (From 1970 to 2037 no zone changes twice within six days: the
 * closest are Brazil's week of summer time in October 2000.)
 */
function yearOf(zone: string, y: number): { start: number; changes: readonly OffsetChange[] } {
  const { fmt, id } = zoneOf(zone);
  const key = `${id}|${y}`;
  const known = years.get(key);
  if (known) return known;
  const a = yearStart(y);
  const b = yearStart(y + 1);
  const start = probe(fmt, a);
  const changes: OffsetChange[] = [];
  let lo = a;
  let before = start;
  while (lo < b) {
    const hi = Math.min(lo + PROBE_STEP_MS, b);
    const after = probe(fmt, hi);
    if (after !== before) {
      // The offset at `l` is `before`, at `h` another: halve down to the second.
      let l = lo;
      let h = hi;
      while (h - l > 1000) {
        const mid = l + Math.floor((h - l) / 2000) * 1000;
        if (mid <= l) break;
        if (probe(fmt, mid) === before) l = mid;
        else h = mid;
      }
      if (h < b) changes.push({ at: h, offset: probe(fmt, h) });
    }
    lo = hi;
    before = after;
  }
  const value = { start, changes };
  if (years.size >= MAX_CACHED_YEARS) years.clear();
  years.set(key, value);
  return value;
}

/** Local time minus UTC at `t`, in ms (Asia/Kolkata: +5.5 h; America/Los_Angeles in July: −7 h). */
export function offsetAt(zone: string, t: number): number {
  if (isUtc(zone)) return 0;
  const y = yearOf(zone, new Date(t).getUTCFullYear());
  let offset = y.start;
  for (const c of y.changes) {
    if (c.at > t) break;
    offset = c.offset;
  }
  return offset;
}

/** The offset changes in (from, to], in order. */
export function offsetChanges(zone: string, from: number, to: number): OffsetChange[] {
  if (isUtc(zone) || !(from < to)) return [];
  const out: OffsetChange[] = [];
  const last = new Date(to).getUTCFullYear();
  for (let y = new Date(from).getUTCFullYear(); y <= last; y++) {
    const year = yearOf(zone, y);
    // A change on 1 January 00:00 UTC shows as the year's start offset.
    const previous = out.at(-1)?.offset ?? offsetAt(zone, yearStart(y) - 1);
    if (y > new Date(from).getUTCFullYear() && year.start !== previous)
      out.push({ at: yearStart(y), offset: year.start });
    for (const c of year.changes) out.push(c);
  }
  return out.filter((c) => c.at > from && c.at <= to);
}

/** Wall-clock time at `t` as epoch ms of the same reading in UTC (t + offset). */
export const wallOf = (zone: string, t: number) => t + offsetAt(zone, t);

/**
 * The first instant at or after `after` whose wall-clock reading is `wall` or later: where a local
 * day or hour starts, also when a change skips its first minutes (a midnight that does not exist
 * starts the day at the change).
 */
function firstAtWall(zone: string, wall: number, after: number): number {
  let start = after;
  let offset = offsetAt(zone, start);
  for (const c of offsetChanges(zone, after, after + 3 * DAY_MS)) {
    if (c.at + offset > wall) return Math.max(start, wall - offset);
    start = c.at;
    offset = c.offset;
  }
  return Math.max(start, wall - offset);
}

/** The instant a local day starts, the day being that of `t`. */
export function startOfDay(zone: string, t: number): number {
  const wall = wallOf(zone, t);
  return firstAtWall(zone, wall - mod(wall, DAY_MS), t - 2 * DAY_MS);
}

/** The instants a wall-clock reading happens at: none (clocks going forward skip it), one, or two (clocks going back). */
export function instantsOfWall(zone: string, wall: number): number[] {
  const before = offsetAt(zone, wall - DAY_MS);
  const after = offsetAt(zone, wall + DAY_MS);
  const candidates = before === after ? [wall - before] : [wall - before, wall - after].sort((a, b) => a - b);
  return candidates.filter((t) => offsetAt(zone, t) === wall - t);
}

/**
 * The instant a wall-clock reading stands for, as RFC 5545 reads local times: a reading that
 * happens twice (clocks going back) is the first; one that never happens (clocks going forward)
 * is read with the offset before the change.
 */
export function instantOfWall(zone: string, wall: number): number {
  return instantsOfWall(zone, wall)[0] ?? wall - offsetAt(zone, wall - DAY_MS);
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/** The local whole hour `t` is in (its start, an instant). */
const startOfHour = (zone: string, t: number) => t - mod(wallOf(zone, t), HOUR_MS);

/**
 * Buckets covering [from, to) in `zone`, as their bounds (n buckets, n + 1 instants): local days
 * from the midnight of the day `from` is in (23 or 25 hours long when clocks change), or hours
 * from the local whole hour `from` is in, each one hour of real time (so clocks going back give
 * the repeated hour its own bucket). Stops after `max` + 1 buckets: more is refused by the caller.
 */
export function bucketBounds(zone: string, granularity: Granularity, from: number, to: number, max: number) {
  const bounds = [granularity === 'day' ? startOfDay(zone, from) : startOfHour(zone, from)];
  for (let s = bounds[0] ?? from; s < to && bounds.length <= max + 1; ) {
    let next: number;
    if (granularity === 'day') {
      const wall = wallOf(zone, s);
      next = firstAtWall(zone, wall - mod(wall, DAY_MS) + DAY_MS, s + 1);
    } else next = startOfHour(zone, s + HOUR_MS);
    s = next > s ? next : s + HOUR_MS;
    bounds.push(s);
  }
  return bounds;
}

const pad = (n: number, width = 2) => String(Math.abs(n)).padStart(width, '0');

/** ±hh:mm, or undefined when the offset has seconds (local mean time, before standard time). */
function offsetText(offset: number): string | undefined {
  if (offset % 60_000 !== 0) return undefined;
  const minutes = Math.abs(offset) / 60_000;
  return `${offset < 0 ? '-' : '+'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
}

/**
 * RFC 3339 with milliseconds, in the zone's local time and offset: 2026-12-03T00:00:00.000+05:30.
 * A zero offset is written Z; an offset with seconds (local mean time, before a zone's standard
 * time) cannot be written in RFC 3339, and such an instant is written in UTC.
 */
export function localIso(zone: string, t: number): string {
  const offset = offsetAt(zone, t);
  const text = offsetText(offset);
  if (offset === 0 || text === undefined) return new Date(t).toISOString();
  return new Date(t + offset).toISOString().replace('Z', text);
}

/** ±hhmm[ss], as iCalendar writes offsets (RFC 5545 §3.3.14). */
export function icalOffset(offset: number): string {
  const s = Math.abs(offset) / 1000;
  const seconds = s % 60;
  return `${offset < 0 ? '-' : '+'}${pad(Math.floor(s / 3600))}${pad(Math.floor(s / 60) % 60)}${seconds ? pad(seconds) : ''}`;
}

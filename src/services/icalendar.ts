/**
 * iCalendar (RFC 5545) for vehicle calendars, both ways, as pure functions (no I/O):
 * - export: a vehicle's holds, bookings and blocks as VEVENTs in the city's local time, with the
 *   VTIMEZONE that defines it (hand-written: a few lines, no library);
 * - import: another channel's VEVENTs as intervals the route turns into `host` blocks (parsed with
 *   ical.js, which unfolds lines, resolves VTIMEZONEs and expands recurrences).
 * Decisions are documented in docs/api.md, section "iCalendar".
 */
import { createHash } from 'node:crypto';
import ICAL from 'ical.js';
import { MINUTE_MS, type CalendarEntry } from '../domain/calendar.ts';
import { DomainError, messageOf } from '../domain/errors.ts';
import {
  icalOffset,
  instantOfWall,
  instantsOfWall,
  isUtc,
  offsetAt,
  offsetChanges,
  timeZoneOf,
  wallOf,
} from '../domain/local-time.ts';

/** Control characters (but TAB) have no place in a text value: RFC 5545 §3.3.11. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\x00-\x08\x0a-\x1f\x7f]/g;

/** Our own UIDs end with this; an import skips them (a re-published export must not block its own trips). */
export const UID_DOMAIN = '@fleet-inventory';
export const DAY_MS = 24 * 60 * MINUTE_MS;
/** Recurrences are expanded this far ahead, and an open-ended block is exported as lasting this long. */
export const HORIZON_MS = 365 * DAY_MS;
/** Intervals one import may place (occurrences included); beyond, the whole file is refused. */
export const MAX_IMPORT_BLOCKS = 500;
/** Times this far from the export are written in UTC (and left out of the VTIMEZONE, which stays small). */
export const LOCAL_SPAN_MS = 20 * 365 * DAY_MS;
/** Steps a single recurrence may take to reach the horizon (guards against FREQ=SECONDLY since 1970). */
const MAX_RECURRENCE_STEPS = 10_000;

// Export ------------------------------------------------------------------------------------

const TENTATIVE = new Set(['held', 'conflicted']);
// Entries that no longer take this vehicle's time (a converted hold lives on as its booking).
const CANCELLED = new Set(['cancelled', 'released', 'expired', 'converted', 'reaccommodated']);

/** 2026-12-01T10:00:00.000Z -> 20261201T100000Z */
export const icalTime = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/\.\d{3}/, '')
    .replace(/[-:]/g, '');

/** Epoch ms read as a wall clock -> 20261201T153000 (local time: no Z). */
const wallStamp = (wall: number) => icalTime(wall).replace(/Z$/, '');

/**
 * A zone's local time, as an export writes it: `DTSTART;TZID=Asia/Kolkata:20261201T153000`, and
 * the VTIMEZONE that says what that means. UTC (`DTSTART:20261201T100000Z`) for a city in UTC,
 * for a time more than LOCAL_SPAN_MS from the export, and for a time in an hour the clocks repeat
 * (RFC 5545 §3.3.5 reads a local time there as the first pass, ical.js as the second: UTC is the
 * same instant for every reader).
 */
class LocalTimes {
  private readonly used: number[] = [];
  constructor(
    private readonly zone: string | undefined,
    private readonly now: number,
  ) {}

  /** The property with its time; seconds and less are dropped, as in UTC. */
  property(name: string, ms: number): string {
    const t = ms - (((ms % 1000) + 1000) % 1000);
    const zone = this.zone;
    if (zone === undefined || Math.abs(t - this.now) > LOCAL_SPAN_MS) return `${name}:${icalTime(t)}`;
    const wall = wallOf(zone, t);
    if (instantsOfWall(zone, wall).length !== 1) return `${name}:${icalTime(t)}`;
    this.used.push(t);
    return `${name};TZID=${zone}:${wallStamp(wall)}`;
  }

  /**
   * The VTIMEZONE for the local times written: one observance from 1 January (UTC) of the year of
   * the first, then one per offset change up to the last (no RRULE: each is exact as ICU has it,
   * rule changes included). The higher offsets are DAYLIGHT, the lowest STANDARD.
   */
  vtimezone(): string[] {
    const zone = this.zone;
    if (zone === undefined || this.used.length === 0) return [];
    const lo = Math.min(...this.used);
    const hi = Math.max(...this.used);
    const a = new Date(0).setUTCFullYear(new Date(lo).getUTCFullYear(), 0, 1);
    const first = offsetAt(zone, a);
    const observances = [{ at: a, from: first, to: first }];
    for (const c of offsetChanges(zone, a, hi))
      observances.push({ at: c.at, from: observances.at(-1)?.to ?? first, to: c.offset });
    const standard = Math.min(...observances.map((o) => o.to));
    const lines = ['BEGIN:VTIMEZONE', `TZID:${zone}`];
    for (const o of observances) {
      const kind = o.to > standard ? 'DAYLIGHT' : 'STANDARD';
      lines.push(
        `BEGIN:${kind}`,
        `DTSTART:${wallStamp(o.at + o.from)}`,
        `TZOFFSETFROM:${icalOffset(o.from)}`,
        `TZOFFSETTO:${icalOffset(o.to)}`,
        `END:${kind}`,
      );
    }
    lines.push('END:VTIMEZONE');
    return lines;
  }
}

/** TEXT escaping (RFC 5545 3.3.11); other control characters are dropped. */
export const escapeText = (s: string) =>
  s
    .replace(/[\\;,]/g, (c) => `\\${c}`)
    .replace(/\r\n|\r|\n/g, '\\n')
    .replace(CONTROL_CHARACTERS, '');

/** Folds a content line at 75 octets (continuations start with a space), never inside a UTF-8 character. */
export function foldLine(line: string): string {
  const parts: string[] = [];
  let part = '';
  let octets = 0;
  for (const ch of line) {
    const n = Buffer.byteLength(ch);
    if (octets + n > 75) {
      parts.push(part);
      part = ' ';
      octets = 1;
    }
    part += ch;
    octets += n;
  }
  parts.push(part);
  return parts.join('\r\n');
}

/**
 * A VCALENDAR with one VEVENT per entry, its times in `timeZone` (the vehicle's city's; UTC when
 * absent) with that zone's VTIMEZONE. `openEndedUntil` ends a block that has no end yet (an
 * accident until cleared): the end of the requested window, marked `X-FLEET-OPEN-ENDED:TRUE`.
 */
export function toICalendar(cal: {
  name: string;
  entries: readonly CalendarEntry[];
  openEndedUntil: number;
  now: number;
  timeZone?: string;
}): string {
  const zone = cal.timeZone === undefined || isUtc(cal.timeZone) ? undefined : cal.timeZone;
  const local = new LocalTimes(zone, cal.now);
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//fleet-inventory//vehicle calendar//EN',
    'CALSCALE:GREGORIAN',
    `X-WR-CALNAME:${escapeText(cal.name)}`,
    ...(zone === undefined ? [] : [`X-WR-TIMEZONE:${zone}`]),
  ];
  const events: string[] = [];
  for (const e of cal.entries) {
    const status = TENTATIVE.has(e.status)
      ? 'TENTATIVE'
      : CANCELLED.has(e.status) || (e.kind === 'block' && e.status === 'cancelled')
        ? 'CANCELLED'
        : 'CONFIRMED';
    const end = e.to ?? Math.max(cal.openEndedUntil, e.from + DAY_MS);
    const about =
      e.kind === 'block'
        ? [
            `reason: ${e.reason}`,
            ...(e.to === undefined ? ['open-ended until cleared'] : []),
            ...(e.note ? [`note: ${e.note}`] : []),
          ].join('\n')
        : undefined;
    events.push(
      'BEGIN:VEVENT',
      `UID:${escapeText(e.id)}${UID_DOMAIN}`,
      `DTSTAMP:${icalTime(e.updatedAt ?? cal.now)}`,
      local.property('DTSTART', e.from),
      local.property('DTEND', end),
      `SUMMARY:${escapeText(`${e.kind} (${e.status})`)}`,
      `STATUS:${status}`,
      `CATEGORIES:${escapeText(e.kind)}`,
      `TRANSP:${status === 'CANCELLED' ? 'TRANSPARENT' : 'OPAQUE'}`,
      ...(about ? [`DESCRIPTION:${escapeText(about)}`] : []),
      ...(e.to === undefined ? ['X-FLEET-OPEN-ENDED:TRUE'] : []),
      'END:VEVENT',
    );
  }
  lines.push(...local.vtimezone(), ...events, 'END:VCALENDAR');
  return lines.map(foldLine).join('\r\n') + '\r\n';
}

// Import ------------------------------------------------------------------------------------

type Time = InstanceType<typeof ICAL.Time>;
type Component = InstanceType<typeof ICAL.Component>;
type Event = InstanceType<typeof ICAL.Event>;

/** One VEVENT (or occurrence) of an import: an interval to block, or why not. `start` is its DTSTART. */
export type ImportItem =
  | { uid: string; start: number; from: number; to: number }
  | { uid: string; start?: number; skipped: string }
  | { uid: string; start?: number; error: { code: 'VALIDATION'; detail: string } };

/** The identity of an imported event on a vehicle: vehicle + UID + DTSTART (a moved event is a new one). */
export const importKey = (vehicleId: string, uid: string, start: number) =>
  createHash('sha256').update(`${vehicleId}\n${uid}\n${start}`).digest('hex').slice(0, 32);

/**
 * The VEVENTs of an iCalendar text, as intervals on whole minutes (start rounded down, end up).
 * Throws VALIDATION when the text is not iCalendar, or expands to more than MAX_IMPORT_BLOCKS.
 */
export function parseICalendar(text: string, now: number): ImportItem[] {
  let roots: Component[];
  try {
    const jcal = ICAL.parse(text) as unknown[];
    const list = (Array.isArray(jcal[0]) ? jcal : [jcal]) as ConstructorParameters<typeof ICAL.Component>[0][];
    roots = list.map((j) => new ICAL.Component(j));
  } catch (err) {
    throw new DomainError('VALIDATION', `not iCalendar: ${messageOf(err)}`, { field: 'body' });
  }
  if (roots.length === 0 || roots.some((c) => c.name !== 'vcalendar'))
    throw new DomainError('VALIDATION', 'not iCalendar: expected BEGIN:VCALENDAR', { field: 'body' });

  const items: ImportItem[] = [];
  for (const root of roots) {
    // Masters with their own RECURRENCE-ID overrides (matched by UID); an orphan override stands alone.
    const vevents = root.getAllSubcomponents('vevent');
    const uidOf = (c: Component) => String(c.getFirstPropertyValue('uid') ?? '');
    const masters = new Set(vevents.filter((c) => !c.hasProperty('recurrence-id')).map(uidOf));
    for (const c of vevents) {
      const uid = uidOf(c);
      if (c.hasProperty('recurrence-id') && masters.has(uid)) continue;
      try {
        items.push(
          ...eventItems(
            c,
            uid,
            vevents.filter((x) => x !== c && x.hasProperty('recurrence-id') && uidOf(x) === uid),
            now,
          ),
        );
      } catch (err) {
        items.push({ uid, error: { code: 'VALIDATION', detail: messageOf(err) } });
      }
    }
  }
  const blocks = items.filter((i) => 'to' in i).length;
  if (blocks > MAX_IMPORT_BLOCKS) {
    throw new DomainError(
      'VALIDATION',
      `the calendar expands to ${blocks} events in the next 365 days; at most ${MAX_IMPORT_BLOCKS} per import`,
      { field: 'body', limit: MAX_IMPORT_BLOCKS },
    );
  }
  return items;
}

function eventItems(c: Component, uid: string, overrides: Component[], now: number): ImportItem[] {
  if (!uid) throw new Error('UID is required (it makes the import idempotent)');
  if (uid.endsWith(UID_DOMAIN)) return [{ uid, skipped: 'own-export' }];
  if (!c.hasProperty('dtstart')) throw new Error('DTSTART is required');
  const event = new ICAL.Event(c, { strictExceptions: true, exceptions: overrides });
  const skip = skipReason(c);
  if (skip) return [{ uid, start: instant(event.startDate, c, 'dtstart'), skipped: skip }];
  if (!event.isRecurring()) {
    const item = occurrence(uid, c, event.startDate, event.endDate, now);
    return [item ?? { uid, start: instant(event.startDate, c, 'dtstart'), skipped: 'past' }];
  }
  // Occurrences from now to the horizon; those already over are left out without a word.
  const out: ImportItem[] = [];
  const it = event.iterator();
  for (let steps = 0; ; steps++) {
    const next = it.next();
    if (!next) break;
    if (instant(next, c, 'dtstart') >= now + HORIZON_MS) break;
    if (steps >= MAX_RECURRENCE_STEPS)
      throw new Error(`recurrence too dense: more than ${MAX_RECURRENCE_STEPS} occurrences before the horizon`);
    const d = event.getOccurrenceDetails(next);
    const item = d.item as Event;
    const skipped = item === event ? undefined : skipReason(item.component);
    if (skipped) out.push({ uid, start: instant(d.startDate, item.component, 'dtstart'), skipped });
    else {
      const o = occurrence(uid, item.component, d.startDate, d.endDate, now);
      if (o) out.push(o);
    }
  }
  return out;
}

/** Events that do not take time: cancelled ones and free time (TRANSP:TRANSPARENT). */
function skipReason(c: Component): string | undefined {
  if (String(c.getFirstPropertyValue('status') ?? '').toUpperCase() === 'CANCELLED') return 'cancelled';
  if (String(c.getFirstPropertyValue('transp') ?? '').toUpperCase() === 'TRANSPARENT') return 'transparent';
  return undefined;
}

/** One interval, or undefined when it is already over. Under way: blocked from the current minute. */
function occurrence(uid: string, c: Component, startDate: Time, endDate: Time, now: number): ImportItem | undefined {
  const start = instant(startDate, c, 'dtstart');
  const end = instant(endDate, c, c.hasProperty('dtend') ? 'dtend' : 'dtstart');
  if (end <= start) return { uid, start, skipped: 'no-duration' };
  if (end <= now) return undefined;
  const from = Math.max(floorMinute(start), floorMinute(now));
  return { uid, start, from, to: Math.ceil(end / MINUTE_MS) * MINUTE_MS };
}

const floorMinute = (t: number) => t - (t % MINUTE_MS);

/**
 * Epoch ms of an iCalendar time: UTC, or a TZID with its VTIMEZONE in the file, as ical.js resolves
 * them; a TZID without VTIMEZONE by its IANA name; a DATE at 00:00 UTC; floating time as UTC.
 */
function instant(t: Time, c: Component, prop: 'dtstart' | 'dtend'): number {
  const wall = Date.UTC(
    t.year,
    t.month - 1,
    t.day,
    t.isDate ? 0 : t.hour,
    t.isDate ? 0 : t.minute,
    t.isDate ? 0 : t.second,
  );
  let ms: number;
  if (t.isDate) ms = wall;
  else if (t.zone && t.zone.tzid !== 'floating') ms = t.toUnixTime() * 1000;
  else {
    const tzid = c.getFirstProperty(prop)?.getParameter('tzid') as string | undefined;
    ms = tzid ? zonedToUtc(wall, tzid) : wall;
  }
  if (!Number.isFinite(ms)) throw new Error(`invalid ${prop.toUpperCase()}`);
  return ms;
}

/** Wall-clock time in an IANA zone to UTC, as RFC 5545 reads it (a repeated time is its first pass). */
function zonedToUtc(wall: number, tzid: string): number {
  const zone = timeZoneOf(tzid);
  if (zone === undefined) throw new Error(`unknown TZID ${tzid} (no VTIMEZONE in the file)`);
  return instantOfWall(zone, wall);
}

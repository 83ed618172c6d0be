/**
 * src/domain/local-time.ts against known zone histories: which names are zones, offset changes
 * (a week of summer time included), local days and hours around the clock changes (a midnight
 * that does not exist, an hour that happens twice), RFC 3339 and iCalendar offsets; and, over
 * random instants in random zones, that days and hours tile time and start where Intl says.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  DAY_MS,
  HOUR_MS,
  bucketBounds,
  icalOffset,
  instantOfWall,
  instantsOfWall,
  localIso,
  offsetAt,
  offsetChanges,
  startOfDay,
  timeZoneOf,
} from '../../src/domain/local-time.ts';

const H = HOUR_MS;
const iso = (t: number) => new Date(t).toISOString();
const local = (zone: string, ts: number[]) => ts.map((t) => localIso(zone, t));

describe('zones and offsets', () => {
  test('IANA names and their links are zones; offsets, abbreviations of nothing and blanks are not', () => {
    for (const z of ['Asia/Kolkata', 'America/Los_Angeles', 'UTC', 'Etc/UTC', 'US/Pacific', 'Etc/GMT+5'])
      assert.equal(timeZoneOf(z), z);
    for (const z of ['+05:30', '-08:00', 'Z', '', 'Mars/Olympus', 'Asia/', '/UTC', 'UTC/../x', 'Local', 'x'.repeat(65)])
      assert.equal(timeZoneOf(z), undefined, z);
  });

  test('offsets and their changes, to the second', () => {
    assert.equal(offsetAt('Asia/Kolkata', Date.UTC(2026, 0, 1)), 5.5 * H);
    assert.equal(offsetAt('America/Los_Angeles', Date.UTC(2026, 6, 1)), -7 * H);
    assert.deepEqual(offsetChanges('Asia/Kolkata', Date.UTC(2020, 0, 1), Date.UTC(2030, 0, 1)), []);
    assert.deepEqual(offsetChanges('America/Los_Angeles', Date.UTC(2026, 0, 1), Date.UTC(2027, 0, 1)), [
      { at: Date.UTC(2026, 2, 8, 10), offset: -7 * H },
      { at: Date.UTC(2026, 10, 1, 9), offset: -8 * H },
    ]);
    // Recife kept summer time for one week in October 2000.
    assert.deepEqual(
      offsetChanges('America/Recife', Date.UTC(2000, 8, 1), Date.UTC(2000, 11, 1)).map((c) => [
        iso(c.at),
        c.offset / H,
      ]),
      [
        ['2000-10-08T03:00:00.000Z', -2],
        ['2000-10-15T02:00:00.000Z', -3],
      ],
    );
    // Across a UTC new year: Samoa jumped over 30 December 2011 (at 10:00 UTC, from −10:00 to +14:00).
    assert.equal(offsetChanges('Pacific/Apia', Date.UTC(2011, 11, 1), Date.UTC(2012, 1, 1)).length, 1);
  });
});

describe('local days and hours', () => {
  test('a midnight that does not exist: the day starts at the change (Santiago, September)', () => {
    const days = bucketBounds('America/Santiago', 'day', Date.UTC(2026, 8, 5, 12), Date.UTC(2026, 8, 7, 12), 10);
    assert.deepEqual(local('America/Santiago', days), [
      '2026-09-05T00:00:00.000-04:00',
      '2026-09-06T01:00:00.000-03:00',
      '2026-09-07T00:00:00.000-03:00',
      '2026-09-08T00:00:00.000-03:00',
    ]);
  });

  test('an hour that happens twice is two buckets of one hour each (Los Angeles, November)', () => {
    const hours = bucketBounds('America/Los_Angeles', 'hour', Date.UTC(2026, 10, 1, 8), Date.UTC(2026, 10, 1, 10), 10);
    assert.deepEqual(local('America/Los_Angeles', hours), [
      '2026-11-01T01:00:00.000-07:00',
      '2026-11-01T01:00:00.000-08:00',
      '2026-11-01T02:00:00.000-08:00',
    ]);
    const [day = 0, next = 0] = bucketBounds(
      'America/Los_Angeles',
      'day',
      Date.UTC(2026, 10, 1, 12),
      Date.UTC(2026, 10, 1, 13),
      1,
    );
    assert.equal(next - day, 25 * H);
  });

  test('half-hour zones: hours start at half past UTC hours; the bucket cap stops early', () => {
    const hours = bucketBounds('Asia/Kolkata', 'hour', Date.UTC(2026, 0, 1, 0, 10), Date.UTC(2026, 0, 1, 2), 10);
    assert.deepEqual(hours.map(iso), [
      '2025-12-31T23:30:00.000Z',
      '2026-01-01T00:30:00.000Z',
      '2026-01-01T01:30:00.000Z',
      '2026-01-01T02:30:00.000Z',
    ]);
    assert.equal(bucketBounds('UTC', 'hour', 0, 100 * H, 5).length, 7, 'max + 1 buckets, then it stops');
  });

  test('wall-clock readings: none, one or two instants; RFC 5545 reads the first, a skipped one with the earlier offset', () => {
    const la = 'America/Los_Angeles';
    assert.deepEqual(instantsOfWall(la, Date.UTC(2026, 10, 1, 1, 30)), [
      Date.UTC(2026, 10, 1, 8, 30),
      Date.UTC(2026, 10, 1, 9, 30),
    ]);
    assert.deepEqual(instantsOfWall(la, Date.UTC(2026, 2, 8, 2, 30)), []);
    assert.equal(instantOfWall(la, Date.UTC(2026, 2, 8, 2, 30)), Date.UTC(2026, 2, 8, 10, 30));
    assert.deepEqual(instantsOfWall(la, Date.UTC(2026, 6, 1, 12)), [Date.UTC(2026, 6, 1, 19)]);
  });

  test('RFC 3339 and iCalendar offsets; an offset with seconds (local mean time) is written in UTC', () => {
    assert.equal(localIso('UTC', Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000Z');
    assert.equal(localIso('Europe/London', Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000Z');
    assert.equal(localIso('Asia/Kathmandu', Date.UTC(2026, 0, 1)), '2026-01-01T05:45:00.000+05:45');
    assert.equal(localIso('America/St_Johns', Date.UTC(2026, 0, 1)), '2025-12-31T20:30:00.000-03:30');
    assert.equal(localIso('Asia/Kolkata', Date.UTC(1850, 0, 1)), '1850-01-01T00:00:00.000Z');
    assert.deepEqual(
      [icalOffset(5.5 * H), icalOffset(-8 * H), icalOffset(0), icalOffset(-(7 * H + 52 * 60_000 + 58_000))],
      ['+0530', '-0800', '+0000', '-075258'],
    );
  });

  test('any instant, any zone: days and hours tile time, and each day starts at a local midnight (or the change that skipped it)', () => {
    const zones = Intl.supportedValuesOf('timeZone');
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }),
        fc.constantFrom<'hour' | 'day'>('hour', 'day'),
        (zone, from, granularity) => {
          const to = from + (granularity === 'day' ? 5 * DAY_MS : 30 * H);
          const b = bucketBounds(zone, granularity, from, to, 1000);
          assert.ok((b[0] ?? Infinity) <= from && (b.at(-1) ?? -Infinity) >= to, 'covers [from, to)');
          for (let i = 1; i < b.length; i++) assert.ok((b[i] ?? 0) > (b[i - 1] ?? 0), 'in order');
          if (granularity === 'day') {
            for (const s of b) {
              assert.equal(startOfDay(zone, s), s);
              const wall = new Date(s + offsetAt(zone, s)).toISOString();
              // Midnight, or the first instant after a change that skipped it.
              assert.ok(
                wall.endsWith('T00:00:00.000Z') || offsetAt(zone, s - 1) !== offsetAt(zone, s),
                `${zone} ${wall}`,
              );
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

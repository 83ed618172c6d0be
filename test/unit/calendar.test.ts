import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  HOUR_MS,
  MINUTE_MS,
  deriveStatus,
  firstOverlap,
  intervalProblem,
  type BlockEntry,
  type BookingEntry,
  type CalendarEntry,
  type HoldEntry,
} from '../../src/domain/calendar.ts';
import { parseId } from '../../src/domain/ids.ts';
import { isSameOrBetter } from '../../src/domain/vehicle.ts';
import { newId } from '../../src/services/ids.ts';
import { loadConfig, ConfigError } from '../../src/config.ts';

const NOW = Date.UTC(2026, 10, 25, 10, 7, 30);
const H = HOUR_MS;
const base = { createdAt: 0, updatedAt: 0 };
const booking = (id: string, from: number, to: number, status: BookingEntry['status'] = 'confirmed'): BookingEntry => ({
  ...base,
  id,
  kind: 'booking',
  status,
  from,
  to,
  customerId: 'c',
});
const hold = (id: string, from: number, to: number, expiresAt: number): HoldEntry => ({
  ...base,
  id,
  kind: 'hold',
  status: 'held',
  from,
  to,
  customerId: 'c',
  expiresAt,
});
const block = (id: string, reason: BlockEntry['reason'], from: number, to?: number): BlockEntry => ({
  ...base,
  id,
  kind: 'block',
  status: 'active',
  reason,
  from,
  ...(to === undefined ? {} : { to }),
});

describe('interval rules', () => {
  const minute = NOW - (NOW % MINUTE_MS);
  test('accepts a whole-minute future window', () =>
    assert.equal(intervalProblem(minute + H, minute + 2 * H, NOW), undefined));
  test('the current minute is not the past', () => assert.equal(intervalProblem(minute, minute + H, NOW), undefined));
  test('refuses the past unless allowed', () => {
    assert.equal(intervalProblem(minute - MINUTE_MS, minute + H, NOW), 'past');
    assert.equal(intervalProblem(minute - H, minute + H, NOW, { allowPast: true }), undefined);
  });
  test('refuses non-minute, empty, reversed and over-long windows', () => {
    assert.equal(intervalProblem(minute + H + 1, minute + 2 * H, NOW), 'minute');
    assert.equal(intervalProblem(minute + H, minute + H, NOW), 'order');
    assert.equal(intervalProblem(minute + 2 * H, minute + H, NOW), 'order');
    assert.equal(intervalProblem(minute + H, minute + H + 30 * 24 * H + MINUTE_MS, NOW), 'too_long');
    assert.equal(intervalProblem(minute + H, minute + H + 30 * 24 * H, NOW), undefined);
  });
  test('open-ended only where allowed', () => {
    assert.equal(intervalProblem(minute, undefined, NOW), 'missing');
    assert.equal(intervalProblem(minute, undefined, NOW, { openEnded: true }), undefined);
  });
});

describe('overlap and turnaround', () => {
  const T = 30 * MINUTE_MS;
  const entries: CalendarEntry[] = [booking('b1', NOW + 2 * H, NOW + 4 * H)];
  test('a trip within the turnaround collides; one after it does not', () => {
    assert.equal(firstOverlap(entries, NOW + 4 * H + T - MINUTE_MS, NOW + 6 * H, true, T, NOW)?.id, 'b1');
    assert.equal(firstOverlap(entries, NOW + 4 * H + T, NOW + 6 * H, true, T, NOW), undefined);
    assert.equal(firstOverlap(entries, NOW, NOW + 2 * H - T, true, T, NOW), undefined);
  });
  test('a block needs no turnaround', () =>
    assert.equal(firstOverlap(entries, NOW + 4 * H, NOW + 5 * H, false, T, NOW), undefined));
  test('lapsed holds and cancelled bookings take no time', () => {
    const e = [hold('h', NOW + H, NOW + 2 * H, NOW - 1), booking('b', NOW + H, NOW + 2 * H, 'cancelled')];
    assert.equal(firstOverlap(e, NOW + H, NOW + 2 * H, true, T, NOW), undefined);
  });
  test('an overdue trip keeps the car until now', () => {
    const e = [booking('b', NOW - 3 * H, NOW - H, 'active')];
    assert.equal(firstOverlap(e, NOW - (NOW % MINUTE_MS), NOW + H, true, T, NOW)?.id, 'b');
  });
});

describe('status now', () => {
  test('precedence: accident over trip over maintenance over booked', () => {
    const e: CalendarEntry[] = [booking('b', NOW - H, NOW + H), block('m', 'maintenance', NOW - H, NOW + H)];
    assert.equal(deriveStatus('active', e, NOW).status, 'maintenance');
    assert.equal(deriveStatus('active', [...e, booking('t', NOW - H, NOW + H, 'active')], NOW).status, 'in_trip');
    assert.equal(deriveStatus('active', [...e, block('a', 'accident', NOW - H)], NOW).status, 'accident');
    assert.equal(deriveStatus('delisted', [], NOW).status, 'delisted');
    assert.equal(deriveStatus('active', [booking('b', NOW - H, NOW + H)], NOW).status, 'booked');
    assert.equal(deriveStatus('active', [block('h', 'host', NOW - H, NOW + H)], NOW).status, 'blocked');
  });
  test('the next change is due at the nearest future boundary', () => {
    const d = deriveStatus(
      'active',
      [booking('b', NOW + H, NOW + 2 * H), hold('h', NOW + 3 * H, NOW + 4 * H, NOW + 10 * MINUTE_MS)],
      NOW,
    );
    assert.deepEqual(d, { status: 'available', due: NOW + 10 * MINUTE_MS });
  });
  test('a lapsed hold not yet expired makes the vehicle due at once', () => {
    const d = deriveStatus(
      'active',
      [hold('h', NOW + H, NOW + 2 * H, NOW - 1), booking('b', NOW + 3 * H, NOW + 4 * H)],
      NOW,
    );
    assert.deepEqual(d, { status: 'available', due: NOW });
  });
  test('a completed trip never drives the status', () => {
    assert.equal(
      deriveStatus('active', [booking('b', NOW - H, NOW + MINUTE_MS, 'completed')], NOW).status,
      'available',
    );
  });
  test('property: status is available exactly when nothing occupying covers now', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            from: fc.integer({ min: -10, max: 10 }),
            len: fc.integer({ min: 1, max: 6 }),
            kind: fc.constantFrom('booking', 'block'),
          }),
        ),
        (specs) => {
          const e: CalendarEntry[] = specs.map((s, i) =>
            s.kind === 'booking'
              ? booking(`b${i}`, NOW + s.from * H, NOW + (s.from + s.len) * H)
              : block(`k${i}`, 'maintenance', NOW + s.from * H, NOW + (s.from + s.len) * H),
          );
          const covering = e.some((x) => x.from <= NOW && x.to !== undefined && NOW < x.to);
          assert.equal(deriveStatus('active', e, NOW).status === 'available', !covering);
        },
      ),
    );
  });
});

describe('ids and categories', () => {
  test('ids carry their city and kind', () => {
    const id = newId('booking', 'blr');
    assert.deepEqual(parseId(id), { kind: 'booking', city: 'blr' });
    assert.equal(parseId('bkg_BLR_x'), undefined);
    assert.equal(parseId('nope'), undefined);
  });
  test('upgrades are later tiers', () => {
    assert.ok(isSameOrBetter('suv', 'sedan'));
    assert.ok(isSameOrBetter('sedan', 'sedan'));
    assert.ok(!isSameOrBetter('hatchback', 'sedan'));
  });
});

describe('configuration', () => {
  test('defaults and conversion', () => {
    const c = loadConfig({ HOLD_TTL_MS: '120000' });
    assert.equal(c.HOLD_TTL_MS, 120_000);
    assert.equal(c.REDIS_URL, 'redis://127.0.0.1:6379');
  });
  test('bad values are refused with every problem named', () => {
    assert.throws(
      () => loadConfig({ HOLD_TTL_MS: 'soon', LOG_LEVEL: 'loud' }),
      (e: unknown) => e instanceof ConfigError && /HOLD_TTL_MS/.test(e.message) && /LOG_LEVEL/.test(e.message),
    );
  });
});

/**
 * The pricing rule (src/domain/pricing.ts): never more than the cap per 24 h period, exactly
 * hours × rate under the cap, additive across 24 h boundaries, the breakdown adding up to the total
 * and covering the window, integers throughout. Its Lua twin is held equal in
 * test/integration/pricing.test.ts (through Redis).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HOUR_MS, MAX_INTERVAL_MS, MINUTE_MS } from '../../src/domain/calendar.ts';
import { REFERENCE_CITIES } from '../../src/domain/cities.ts';
import {
  CURRENCY_EXPONENTS,
  PRICE_PERIOD_MS,
  currencyExponent,
  customerPays,
  extendPrice,
  isWholeMinor,
  priceWindow,
  toMinor,
  windowItems,
  windowTotal,
} from '../../src/domain/pricing.ts';
import { validateVehiclePatch } from '../../src/domain/vehicle.ts';
import { seeded } from '../support/random.ts';

const seed = () => Math.floor(seeded('pricing')() * 2 ** 31);
const T0 = Date.UTC(2026, 11, 1);

/** A window of whole minutes, up to the longest one the engine takes (30 days). */
const windowArb = fc
  .record({ start: fc.nat({ max: 60 * 24 * 365 }), minutes: fc.integer({ min: 1, max: MAX_INTERVAL_MS / MINUTE_MS }) })
  .map(({ start, minutes }) => ({ from: T0 + start * MINUTE_MS, to: T0 + (start + minutes) * MINUTE_MS }));
const ratesArb = fc.record({
  hour: fc.integer({ min: 0, max: 1_000_000_000 }),
  day: fc.option(fc.integer({ min: 0, max: 24_000_000_000 }), { nil: undefined }),
});
const params = () => ({ numRuns: 2000, seed: seed() });

test('never more than the cap for each started 24 h period', () => {
  fc.assert(
    fc.property(ratesArb, windowArb, ({ hour, day }, { from, to }) => {
      const total = windowTotal(hour, day, from, to);
      const periods = Math.ceil((to - from) / PRICE_PERIOD_MS);
      if (day !== undefined) assert.ok(total <= periods * day, `${total} > ${periods} × ${day}`);
      assert.ok(total <= Math.ceil((to - from) / HOUR_MS) * hour, 'never more than by the hour');
      assert.ok(Number.isSafeInteger(total) && total >= 0);
    }),
    params(),
  );
});

test('exactly started hours × the hourly rate when under the cap', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1_000_000 }), windowArb, (hour, { from, to }) => {
      const started = Math.ceil((to - from) / HOUR_MS);
      assert.equal(windowTotal(hour, undefined, from, to), started * hour);
      // A cap no period reaches changes nothing.
      assert.equal(windowTotal(hour, 24 * hour, from, to), started * hour);
    }),
    params(),
  );
});

test('additive across 24 h boundaries, and monotone in the window', () => {
  fc.assert(
    fc.property(
      ratesArb,
      windowArb,
      fc.integer({ min: 1, max: 29 }),
      fc.integer({ min: 1, max: 600 }),
      ({ hour, day }, { from, to }, days, more) => {
        const cut = from + days * PRICE_PERIOD_MS;
        const end = Math.max(to, cut + MINUTE_MS);
        assert.equal(
          windowTotal(hour, day, from, end),
          windowTotal(hour, day, from, cut) + windowTotal(hour, day, cut, end),
        );
        assert.ok(windowTotal(hour, day, from, to + more * MINUTE_MS) >= windowTotal(hour, day, from, to));
      },
    ),
    params(),
  );
});

test('the breakdown covers the window and adds up to the total', () => {
  fc.assert(
    fc.property(ratesArb, windowArb, ({ hour, day }, { from, to }) => {
      const p = priceWindow('INR', hour, day, from, to);
      assert.equal(p.total, windowTotal(hour, day, from, to));
      assert.equal(
        p.breakdown.reduce((n, i) => n + i.amount, 0),
        p.total,
      );
      assert.equal(p.breakdown[0]?.from, from);
      assert.equal(p.breakdown.at(-1)?.to, to);
      for (const [k, i] of p.breakdown.entries()) {
        if (k > 0) assert.equal(i.from, p.breakdown[k - 1]?.to, 'contiguous');
        assert.equal(i.hours, Math.ceil((i.to - i.from) / HOUR_MS));
        if (i.kind === 'hourly') assert.equal(i.amount, i.hours * i.unitAmount);
        else assert.equal(i.amount, i.unitAmount * Math.ceil((i.to - i.from) / PRICE_PERIOD_MS));
      }
      assert.ok(p.breakdown.length <= 2, 'whole periods as one item, then the partial one');
    }),
    params(),
  );
});

test('worked examples: started hours, the daily cap, a partial last period', () => {
  const h = HOUR_MS;
  // 61 minutes are two started hours.
  assert.equal(windowTotal(1250, undefined, T0, T0 + 61 * MINUTE_MS), 2500);
  // 10 h at 1,250 is 12,500; capped at 10,000 a day.
  assert.equal(windowTotal(1250, 10_000, T0, T0 + 10 * h), 10_000);
  // 2 days and 3 hours: 2 × 10,000 + 3 × 1,250.
  assert.deepEqual(windowItems(1250, 10_000, T0, T0 + 51 * h), [
    { from: T0, to: T0 + 48 * h, hours: 48, unitAmount: 10_000, amount: 20_000, kind: 'daily_cap' },
    { from: T0 + 48 * h, to: T0 + 51 * h, hours: 3, unitAmount: 1250, amount: 3750, kind: 'hourly' },
  ]);
  // Equal to the cap: by the hour (the cap did not bind).
  assert.equal(windowItems(1000, 8000, T0, T0 + 8 * h)[0]?.kind, 'hourly');
});

test('an extension prices the added time on its own and keeps what was fixed', () => {
  const h = HOUR_MS;
  const booked = priceWindow('INR', 1000, 8000, T0, T0 + 20 * h);
  assert.equal(booked.total, 8000);
  // Four more hours at a new rate: their own period, by the hour.
  const { price, added } = extendPrice(booked, 1500, undefined, T0 + 20 * h, T0 + 24 * h);
  assert.equal(added, 6000);
  assert.equal(price.total, 14_000);
  assert.deepEqual(price.breakdown.slice(0, booked.breakdown.length), booked.breakdown);
  assert.equal(price.breakdown.at(-1)?.from, T0 + 20 * h);
});

test('what a displaced customer pays: credits and refunds off the booked price, a free upgrade at it', () => {
  assert.equal(customerPays(10_000, { kind: 'free_upgrade', amount: 60 }, 2), 10_000);
  assert.equal(customerPays(10_000, { kind: 'credit', amount: 10 }, 2), 9000);
  assert.equal(customerPays(10_000, { kind: 'refund', amount: 12.34 }, 2), 8766);
  assert.equal(customerPays(500, { kind: 'credit', amount: 10 }, 2), 0, 'never below zero');
  assert.equal(customerPays(3000, { kind: 'credit', amount: 10 }, 0), 2990, 'JPY: the credit is yen');
});

test('minor units: every reference city has a known currency, decimals are checked per currency', () => {
  for (const c of REFERENCE_CITIES) assert.ok(Object.hasOwn(CURRENCY_EXPONENTS, c.currency), c.id);
  assert.equal(currencyExponent('INR'), 2);
  assert.equal(currencyExponent('JPY'), 0);
  assert.throws(() => currencyExponent('XXX'));
  assert.equal(toMinor(12.5, 2), 1250);
  assert.equal(toMinor(0.1 + 0.2, 2), 30);
  assert.equal(toMinor(19.99, 2), 1999);
  assert.equal(toMinor(1500, 0), 1500);
  assert.ok(isWholeMinor(12.34, 2) && !isWholeMinor(12.345, 2) && !isWholeMinor(12.5, 0));
  assert.deepEqual(validateVehiclePatch({ pricePerHour: 12.5, pricePerDay: 99.99 }, 2), []);
  assert.deepEqual(validateVehiclePatch({ pricePerHour: 12.5, pricePerDay: 100.5 }, 0), [
    'pricePerHour',
    'pricePerDay',
  ]);
  assert.deepEqual(validateVehiclePatch({ pricePerDay: null }, 0), [], 'null removes the cap');
  assert.deepEqual(validateVehiclePatch({ pricePerDay: -1 }), ['pricePerDay']);
});

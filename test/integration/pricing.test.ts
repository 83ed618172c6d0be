/**
 * One pricing rule, written twice: the scripts' (src/redis/lua/includes/pricing.lua, run here in
 * Redis with the whole shared core, as every script runs it) and the TypeScript one
 * (src/domain/pricing.ts, which prices search hits and the reference model) give the same price,
 * breakdown and all, for random rates and windows; and so do the extension and what a displaced
 * customer pays.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { MAX_INTERVAL_MS, MINUTE_MS } from '../../src/domain/calendar.ts';
import { customerPays, extendPrice, priceWindow, ratesOf, toMinor } from '../../src/domain/pricing.ts';
import { scriptCore } from '../../src/redis/scripts.ts';
import { connect } from '../support/engine.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { seeded } from '../support/random.ts';

const CORE = scriptCore();

/** Each case priced by the scripts' functions: the window, its extension, and what a customer pays. */
const BODY = `
local out = {}
for _, c in ipairs(cjson.decode(ARGV[1])) do
  local pricing = pricing_arg(c.currency, tostring(c.exponent))
  local v = { pricePerHour = c.hour, pricePerDay = c.day }
  local p = price_window(pricing, v, c.from, c.to)
  local w = { pricePerHour = c.hour2, pricePerDay = c.day2 }
  local extended, added = extend_price(pricing, w, p, c.to, c.to + c.more)
  out[#out + 1] = { price = p, extended = extended, added = added, hourMinor = to_minor(tonumber(c.hour), c.exponent),
                    pays = customer_pays(p.total, c.incentive, c.exponent) }
end
return cjson.encode(out)`;

/** The core and the body as one EVAL: the core's KEYS and ARGV are the call's (begin_call, as a function's are). */
const EVAL_SOURCE = `local EVAL_KEYS, EVAL_ARGV = KEYS, ARGV\n${CORE}\nbegin_call(EVAL_KEYS, EVAL_ARGV)\n${BODY}`;

let server: RedisServer;
let redis: Redis;
before(async () => {
  server = await startRedis();
  redis = connect(server.url);
});
after(async () => {
  redis.disconnect();
  await server.stop();
});

const T0 = Date.UTC(2026, 11, 1);
/** A price as a host types it: a whole number of minor units, in major units (as the vehicle hash keeps it). */
const major = (exponent: number, max: number) => fc.integer({ min: 0, max }).map((n) => n / 10 ** exponent);

const caseArb = fc.constantFrom(['INR', 2] as const, ['JPY', 0] as const).chain(([currency, exponent]) =>
  fc.record({
    currency: fc.constant(currency),
    exponent: fc.constant(exponent),
    hour: major(exponent, 10_000_000),
    day: fc.option(major(exponent, 100_000_000), { nil: undefined }),
    hour2: major(exponent, 10_000_000),
    day2: fc.option(major(exponent, 100_000_000), { nil: undefined }),
    from: fc.nat({ max: 60 * 24 * 365 }).map((m) => T0 + m * MINUTE_MS),
    minutes: fc.integer({ min: 1, max: MAX_INTERVAL_MS / MINUTE_MS }),
    moreMinutes: fc.integer({ min: 1, max: 3 * 24 * 60 }),
    incentive: fc.record({
      kind: fc.constantFrom('credit', 'refund', 'free_upgrade'),
      amount: fc.integer({ min: 0, max: 100_000 }).map((n) => n / 100),
    }),
  }),
);

test('Lua and TypeScript price every window alike (total, breakdown, extension, what a customer pays)', async () => {
  const rand = seeded('pricing-lua');
  await fc.assert(
    fc.asyncProperty(fc.array(caseArb, { minLength: 50, maxLength: 50 }), async (cases) => {
      const sent = cases.map((c) => ({
        currency: c.currency,
        exponent: c.exponent,
        // As the vehicle hash holds them: strings, '' for no daily cap.
        hour: String(c.hour),
        day: c.day === undefined ? '' : String(c.day),
        hour2: String(c.hour2),
        day2: c.day2 === undefined ? '' : String(c.day2),
        from: c.from,
        to: c.from + c.minutes * MINUTE_MS,
        more: c.moreMinutes * MINUTE_MS,
        incentive: c.incentive,
      }));
      const got = JSON.parse(String(await redis.eval(EVAL_SOURCE, 0, JSON.stringify(sent)))) as unknown[];
      for (const [i, c] of cases.entries()) {
        const to = c.from + c.minutes * MINUTE_MS;
        const r = ratesOf({ pricePerHour: c.hour, pricePerDay: c.day }, c.exponent);
        const price = priceWindow(c.currency, r.hour, r.day, c.from, to);
        const r2 = ratesOf({ pricePerHour: c.hour2, pricePerDay: c.day2 }, c.exponent);
        const ext = extendPrice(price, r2.hour, r2.day, to, to + c.moreMinutes * MINUTE_MS);
        assert.deepEqual(
          got[i],
          {
            price,
            extended: ext.price,
            added: ext.added,
            hourMinor: toMinor(c.hour, c.exponent),
            pays: customerPays(price.total, c.incentive, c.exponent),
          },
          JSON.stringify(c),
        );
      }
    }),
    { numRuns: 40, seed: Math.floor(rand() * 2 ** 31) },
  );
});

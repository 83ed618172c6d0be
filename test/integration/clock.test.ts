/**
 * The shifted clock (src/redis/clock.ts) is data: a test that moves it a thousand times leaves one
 * cached copy of each script in Redis (Redis 7.0 never evicts scripts; the clock once lived in the
 * scripts' source, and six comparison runs left 33,887 scripts and 810 MB behind). And the clock
 * still moves: a hold lapses once the clock passes its expiry.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { HOUR, addVehicle, connect, futureHour, newInventory, testCity } from '../support/engine.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';

let server: RedisServer;
let redis: Redis;

before(async () => {
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
});

after(async () => {
  redis.disconnect();
  await server.stop();
});

/** What Redis holds of the scripts: function libraries loaded (redis/scripts.ts) and EVAL bodies cached. */
const heldScripts = async () => {
  const libraries = await redis.call('FUNCTION', 'LIST');
  return {
    libraries: Array.isArray(libraries) ? libraries.length : -1,
    cached: Number(/number_of_cached_scripts:(\d+)/.exec(await redis.info('memory'))?.[1]),
  };
};

test('moving the clock a thousand times leaves one copy of the scripts in Redis', { timeout: 60_000 }, async () => {
  const city = testCity();
  const clock = new ShiftedClock(redis);
  const inv = newInventory(redis, city, { clock, holdTtlMs: 60_000 });
  const vehicle = await addVehicle(inv, city);
  const t = futureHour(24 * HOUR);
  await inv.placeHold({ vehicleId: vehicle, customerId: 'ana', from: t, to: t + HOUR });
  let lapsedAt = -1;
  let scripts = { libraries: 0, cached: 0 };
  for (let i = 1; i <= 1_000; i++) {
    clock.advance(1_000);
    const swept = await inv.sweepCity(city.id);
    if (swept.expired > 0 && lapsedAt < 0) lapsedAt = i;
    await inv.getVehicleState(vehicle); // a script at every step, whatever the sweep found
    // By then every script this test runs has run (the lapse included): the count stays.
    if (i === 100) scripts = await heldScripts();
  }
  assert.ok(scripts.libraries >= 1, `the scripts' library is loaded (${scripts.libraries})`);
  assert.deepEqual(await heldScripts(), scripts, 'no new library nor script for a moved clock');
  assert.ok(lapsedAt >= 60 && lapsedAt <= 62, `the hold lapsed once the clock passed its expiry (at +${lapsedAt} s)`);
});

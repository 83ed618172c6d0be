/**
 * Redis lost, rebuilt from PostgreSQL, while a displaced customer's offers were open: the offer
 * record comes back exactly as it was (its holds come back with the calendars), the customer can
 * still accept, and the stores agree afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { keys } from '../../src/redis/keys.ts';
import { ConflictDesk } from '../../src/services/conflicts.ts';
import { rebuildCity, reconcileCity, recordCities } from '../../src/services/durable.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import { HOUR, SEDAN, catalogWith, futureHour, newInventory, testCity, wipeCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';

const city = testCity();
let stores: Stores;

before(async () => {
  stores = await startStores();
  await recordCities(stores.pool, [city]);
});
after(async () => {
  await stores.stop();
});

test('open offers survive a rebuild: the record is restored and can be accepted', async () => {
  const inv = newInventory(stores.redis, city);
  const victim = (await inv.createVehicle(city.id, { ...SEDAN, hostId: 'host-a' })).vehicleId;
  await inv.createVehicle(city.id, { ...SEDAN, hostId: 'host-b', location: { lat: 12.98, lng: 77.6 } });
  await inv.createVehicle(city.id, { ...SEDAN, category: 'suv', hostId: 'host-b', pricePerHour: 20 });
  const t = futureHour(24 * HOUR);
  const booking = (await inv.book({ vehicleId: victim, customerId: 'alice', from: t, to: t + 3 * HOUR })).booking.id;
  await inv.placeBlock({ vehicleId: victim, reason: 'accident' });
  const readModel = new ReadModel(stores.redis, inv);
  await readModel.start();
  const desk = new ConflictDesk(stores.redis, inv, readModel);
  try {
    const made = await desk.resolve(booking);
    assert.equal(made.outcome, 'offered');
    assert.equal(made.record!.offers.length, 2);
    const before = JSON.parse((await stores.redis.hget(keys.offers(city.id), booking))!) as unknown;
    const due = await stores.redis.zscore(keys.offersDue(city.id), booking);

    await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
    await wipeCity(stores.redis, city.id);
    const rebuilt = await rebuildCity(stores.redis, stores.pool, city.id);
    assert.equal(rebuilt.offers, 1);
    assert.deepEqual(
      JSON.parse((await stores.redis.hget(keys.offers(city.id), booking))!),
      before,
      'the record, as it was',
    );
    assert.equal(await stores.redis.zscore(keys.offersDue(city.id), booking), due, 'its lapse scheduled again');

    const upgrade = made.record!.offers.find((o) => o.category === 'suv')!;
    const accepted = await desk.accept(booking, upgrade.id, 'alice');
    assert.equal(accepted.booking.reaccommodatedFrom?.vehicleId, victim);
    assert.equal((await inv.getEntry(booking, 'booking')).vehicle.id, upgrade.vehicleId);
    await new SyncWorker(stores.redis, stores.pool, catalogWith(city)).drain();
    assert.deepEqual((await reconcileCity(stores.redis, stores.pool, city.id)).drift, []);
  } finally {
    await readModel.stop();
  }
});

/**
 * Crash safety: bookings storm a Redis with AOF and `appendfsync always`; the server is killed
 * with SIGKILL mid-storm and restarted on the same directory. Every acknowledged booking must be
 * there, whole; nothing unacknowledged may be half-written (entry without its events, or the
 * reverse); counters and statuses stay exact. Three rounds.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import type { BookingEntry } from '../../src/domain/calendar.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { keys } from '../../src/redis/keys.ts';
import { setConnectionPolicy } from '../../src/redis/scripts.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import {
  HOUR,
  addVehicle,
  assertCityInvariants,
  newInventory,
  readCity,
  readEvents,
  testCity,
} from '../support/engine.ts';
import { seeded } from '../support/random.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every draw of this file comes from here: TEST_SEED replays a run. */
const random = seeded('crash');

const VEHICLES = 20;
const CLIENTS = 50;
const ROUNDS = 3;

let server: RedisServer;
before(async () => {
  server = await startRedis({ external: 'never', appendfsync: 'always' });
});
after(async () => {
  await server.stop();
});

/** A connection that fails fast when the server dies, instead of queueing or retrying. */
function fragile(url: string): Redis {
  const r = new Redis(url, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    autoResendUnfulfilledCommands: false,
  });
  r.on('error', () => {}); // the kill is the point of the test
  setConnectionPolicy(r, { failoverWaitMs: 200 }); // and waiting through it is not
  return r;
}

interface Acked {
  id: string;
  vehicleId: string;
  from: number;
  to: number;
  events: string[];
}

test('kill -9 during a booking storm: acknowledged bookings survive whole, nothing is half-written', {
  timeout: 120_000,
}, async () => {
  const city = testCity();
  let conn = fragile(server.url);
  await new Promise((r) => conn.once('ready', r));
  let inv = newInventory(conn, city, { maxLiveHoldsPerCustomer: 1000 });
  const vehicles: string[] = [];
  for (let i = 0; i < VEHICLES; i++) vehicles.push(await addVehicle(inv, city));

  const acked: Acked[] = [];
  let unacknowledged = 0;
  const base = Math.ceil(Date.now() / HOUR) * HOUR + HOUR;
  let slot = 0;

  for (let round = 0; round < ROUNDS; round++) {
    let alive = true;
    const client = async (n: number) => {
      while (alive) {
        const vehicleId = vehicles[(n + slot) % VEHICLES]!;
        const from = base + (slot++ % 2000) * 2 * HOUR;
        try {
          const r = await inv.book({ vehicleId, customerId: `c${n}`, from, to: from + HOUR });
          acked.push({ id: r.booking.id, vehicleId, from, to: from + HOUR, events: r.events });
        } catch (err) {
          // Refused (taken): fine, nothing written. UNAVAILABLE: the outcome is unknown (the kill).
          if (err instanceof DomainError && err.code !== 'UNAVAILABLE') continue;
          unacknowledged++;
          return; // the connection died with the server
        }
      }
    };
    const storm = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
    await sleep(700 + random() * 600);
    const before = acked.length;
    await server.kill9();
    alive = false;
    await storm;
    assert.ok(before > 50, `round ${round}: bookings were acknowledged before the kill (${before})`);

    await server.restart();
    conn.disconnect();
    conn = fragile(server.url);
    await new Promise((r) => conn.once('ready', r));
    inv = newInventory(conn, city, { maxLiveHoldsPerCustomer: 1000 });

    // Every acknowledged booking is there, confirmed, with its window and its events.
    const state = await readCity(conn, city.id);
    const events = await readEvents(conn, city.id);
    const eventById = new Map(events.map((e) => [e.id, e]));
    for (const a of acked) {
      const b = state.vehicles.get(a.vehicleId)?.entries.find((e) => e.id === a.id) as BookingEntry | undefined;
      assert.ok(b, `acknowledged booking ${a.id} survived`);
      assert.equal(b.status, 'confirmed');
      assert.deepEqual([b.from, b.to], [a.from, a.to]);
      for (const id of a.events) assert.equal(eventById.get(id)?.subject, a.id, `event ${id} of ${a.id} survived`);
    }
    // Nothing half-written: each booking in Redis has exactly its confirmation event and index
    // entry, and each confirmation event has its booking (unacknowledged ones are whole or absent).
    const confirmations = events.filter((e) => e.type === 'booking.confirmed');
    const bookings = [...state.vehicles.values()].flatMap((v) => v.entries.filter((e) => e.kind === 'booking'));
    assert.equal(confirmations.length, bookings.length, 'one confirmation event per booking');
    const index = await conn.hgetall(keys.entries(city.id));
    for (const b of bookings) {
      assert.equal(confirmations.filter((e) => e.subject === b.id).length, 1, `booking ${b.id} has its event`);
      assert.ok(index[b.id], `booking ${b.id} is indexed`);
    }
    for (const [vid, v] of state.vehicles) {
      const last = events.filter((e) => e.vehicle === vid).at(-1);
      assert.equal(last?.version, v.version, `vehicle ${vid}: version matches its last event`);
    }
    assertCityInvariants(state, city.turnaroundMs);
    console.log(
      `round ${round}: ${acked.length} acknowledged so far, ${bookings.length} in Redis, ${unacknowledged} cut off by the kill`,
    );
  }
  assert.ok(unacknowledged > 0, 'some commands were in flight at the kill');
  conn.disconnect();
});

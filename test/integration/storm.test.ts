/**
 * The concurrency storm: 200 clients, 4 service instances (each with its own Redis connection
 * and its own in-process locks, so no lock can serialise the storm), 5 vehicles. They race
 * holds, bookings, cancels, blocks, extensions (plain and forced), trip starts and completions
 * (early and late). Afterwards the city must satisfy every invariant of the engine.
 *
 * The storm runs once (`before`); each case below judges one thing of it, and the durable truth
 * (PostgreSQL after a drain, `fleet reconcile`) is judged after one more drain.
 */
import { createPool } from '../../src/pg/pool.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { BookingEntry } from '../../src/domain/calendar.ts';
import type { City } from '../../src/domain/cities.ts';
import { DomainError } from '../../src/domain/errors.ts';
import type { Inventory } from '../../src/services/inventory.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { migrate } from '../../src/pg/migrate.ts';
import { ShiftedClock } from '../../src/redis/clock.ts';
import { keys } from '../../src/redis/keys.ts';
import { SyncWorker } from '../../src/workers/sync.ts';
import {
  HOUR,
  MINUTE,
  addVehicle,
  assertCityInvariants,
  catalogWith,
  connect,
  newInventory,
  readCity,
  readEvents,
  testCity,
  type CityState,
  type EventRecord,
} from '../support/engine.ts';
import { seeded } from '../support/random.ts';

const CLIENTS = 200;
const INSTANCES = 4;
const VEHICLES = 5;
const SLOT = 30 * MINUTE;
const OPS_PER_CLIENT = 40;

let server: RedisServer;
let db: TestDatabase;
const conns: Redis[] = [];

before(async () => {
  server = await startRedis();
  db = await createTestDatabase();
  await migrate(db.url);
});
after(async () => {
  for (const c of conns) c.disconnect();
  await db.drop();
  await server.stop();
});

interface Outcome {
  cmd: string;
  op: string;
  ok: boolean;
  code?: string;
  events: string[];
  /** The answer, for comparing idempotent repeats. */
  answer: string;
}

/** Every draw of the storm comes from here: TEST_SEED replays a run. */
const random = seeded('storm');
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

const OP_WEIGHTS = {
  hold: 18,
  book: 20,
  'book-hold': 10,
  release: 4,
  cancel: 8,
  block: 2,
  unblock: 2,
  extend: 14,
  start: 6,
  complete: 6,
} as const;
type Op = keyof typeof OP_WEIGHTS;
function weightedOp(): Op {
  const total = Object.values(OP_WEIGHTS).reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (const [op, w] of Object.entries(OP_WEIGHTS) as [Op, number][]) {
    r -= w;
    if (r < 0) return op;
  }
  return 'book';
}
const chance = (p: number) => random() < p;

/** What the storm leaves to be judged. */
interface Storm {
  city: City;
  clock: ShiftedClock;
  redis: Redis;
  outcomes: Outcome[];
  repeats: Map<string, Outcome[]>;
  /** Consistent snapshots judged while the storm ran, and the first that broke an invariant. */
  snapshots: number;
  violation: unknown;
}

/** Plays the storm to its end, then one sweep. */
async function playStorm(): Promise<Storm> {
  const city = testCity(SLOT);
  const instances: Inventory[] = [];
  const mine: Redis[] = [];
  for (let i = 0; i < INSTANCES; i++) mine.push(connect(server.url));
  conns.push(...mine);
  // The scripts' clock, shifted so that a minute boundary is 9 s away (redis/clock.ts): the storm
  // need not wait for a real one.
  const clock = new ShiftedClock(...mine);
  const wall = Date.now();
  clock.advance(Math.ceil((wall + 9_000) / MINUTE) * MINUTE - 9_000 - wall);
  for (const conn of mine) instances.push(newInventory(conn, city, { maxLiveHoldsPerCustomer: 3, clock }));
  const redis = conns[0]!;
  const vehicles: string[] = [];
  for (let i = 0; i < VEHICLES; i++) vehicles.push(await addVehicle(instances[0]!, city));

  // Late returns need a trip whose end passes while the storm runs: trips end at `m1`, the
  // first minute boundary at least 8 s away, and the storm lasts until just after it.
  const now0 = clock.now();
  let m1 = Math.ceil(now0 / MINUTE) * MINUTE;
  if (m1 - now0 < 8_000) m1 += MINUTE;
  const stormEnds = Math.max(m1 + 3_000, now0 + 12_000);
  const windowStart = (k: number) => m1 + k * SLOT; // k from 1: always in the future

  const outcomes: Outcome[] = [];
  const repeats = new Map<string, Outcome[]>();
  const blocks: string[] = [];
  let seq = 0;

  async function run(
    op: string,
    fn: (opts: { commandId: string; idempotencyKey?: string; actorId?: string }) => Promise<unknown>,
    customer: string,
  ): Promise<unknown> {
    const cmd = `cmd-${seq++}`;
    const idempotent = chance(0.15);
    const attempt = async (): Promise<{ outcome: Outcome; value: unknown }> => {
      try {
        const value = await fn({ commandId: cmd, ...(idempotent ? { idempotencyKey: cmd, actorId: customer } : {}) });
        const { replayed, ...answer } = value as { events: string[]; replayed: boolean };
        return {
          outcome: { cmd, op, ok: true, events: replayed ? [] : answer.events, answer: JSON.stringify(answer) },
          value,
        };
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        return { outcome: { cmd, op, ok: false, code: err.code, events: [], answer: err.code }, value: undefined };
      }
    };
    if (!idempotent) {
      const { outcome, value } = await attempt();
      outcomes.push(outcome);
      return value;
    }
    // The same command sent twice at once (a client retrying on a timeout), then once more.
    const results = await Promise.all([attempt(), attempt()]);
    results.push(await attempt());
    repeats.set(
      cmd,
      results.map((r) => r.outcome),
    );
    outcomes.push(...results.map((r) => r.outcome));
    return results.find((r) => r.value !== undefined)?.value;
  }

  // Five trips under way, one per vehicle, all ending at m1 (booked by ops an hour into the past).
  // Three of them keep going past m1 and come back late; two may be completed early by the storm.
  const trips: { customer: string; bookingId: string; late: boolean }[] = [];
  for (let i = 0; i < VEHICLES; i++) {
    const customer = `cust-${i * 10}`;
    const b = (await run(
      'book-trip',
      (o) =>
        instances[0]!.book(
          { vehicleId: vehicles[i]!, customerId: customer, from: m1 - HOUR, to: m1, allowPast: true },
          o,
        ),
      customer,
    )) as { booking: BookingEntry };
    await run('start', (o) => instances[0]!.startTrip(b.booking.id, customer, o), customer);
    trips.push({ customer, bookingId: b.booking.id, late: i % 2 === 0 });
  }

  async function client(n: number): Promise<void> {
    const inv = instances[n % INSTANCES]!;
    const customer = `cust-${n}`;
    const myHolds: string[] = [];
    const myBookings: string[] = trips.filter((t) => t.customer === customer && !t.late).map((t) => t.bookingId);
    const lateTrip = trips.find((t) => t.customer === customer && t.late)?.bookingId;
    for (let step = 0; step < OPS_PER_CLIENT; step++) {
      const vehicleId = pick(vehicles);
      const from = windowStart(1 + Math.floor(random() * 96));
      const to = from + SLOT * (1 + Math.floor(random() * 4));
      let op = weightedOp();
      if ((op === 'book-hold' || op === 'release') && !myHolds.length) op = 'hold';
      if ((op === 'cancel' || op === 'extend' || op === 'start' || op === 'complete') && !myBookings.length)
        op = 'book';
      if (op === 'unblock' && !blocks.length) op = 'book';
      switch (op) {
        case 'hold': {
          const h = (await run(
            'hold',
            (o) => inv.placeHold({ vehicleId, customerId: customer, from, to }, o),
            customer,
          )) as { hold: { id: string } } | undefined;
          if (h) myHolds.push(h.hold.id);
          break;
        }
        case 'book': {
          const b = (await run('book', (o) => inv.book({ vehicleId, customerId: customer, from, to }, o), customer)) as
            | { booking: BookingEntry }
            | undefined;
          if (b) myBookings.push(b.booking.id);
          break;
        }
        case 'book-hold': {
          const holdId = pick(myHolds);
          const b = (await run('book-hold', (o) => inv.book({ holdId, customerId: customer }, o), customer)) as
            | { booking: BookingEntry }
            | undefined;
          if (b) myBookings.push(b.booking.id);
          break;
        }
        case 'release': {
          const holdId = pick(myHolds);
          await run('release', (o) => inv.releaseHold(holdId, customer, o), customer);
          break;
        }
        case 'cancel': {
          const id = pick(myBookings);
          await run('cancel', (o) => inv.cancelBooking(id, customer, 'customer', o), customer);
          break;
        }
        case 'block': {
          // Arguments are fixed before `run`: a retry must repeat the very same request.
          // Accidents are open-ended and displace everything after them: keep them to one vehicle,
          // so the others fill up with trips whose spacing the invariants can judge.
          const reason =
            vehicleId === vehicles[VEHICLES - 1] && chance(0.3) ? 'accident' : pick(['maintenance', 'host'] as const);
          const input =
            reason === 'accident'
              ? ({ vehicleId, reason } as const)
              : ({ vehicleId, reason, from, to: from + SLOT } as const);
          const b = (await run('block', (o) => inv.placeBlock(input, o), 'ops')) as
            | { block: { id: string } }
            | undefined;
          if (b) blocks.push(b.block.id);
          break;
        }
        case 'unblock': {
          const id = pick(blocks);
          await run('unblock', (o) => inv.removeBlock(id, o), 'ops');
          break;
        }
        case 'extend': {
          const id = pick(myBookings);
          const forced = chance(0.3);
          const b = (await inv.getVehicleState((await inv.locate(id, 'booking')).vehicleId)).entries.find(
            (e) => e.id === id,
          );
          if (b?.to === undefined) break;
          const newTo = b.to + SLOT * (1 + Math.floor(random() * 2));
          await run(
            forced ? 'extend-forced' : 'extend',
            (o) => inv.extendBooking(id, forced ? undefined : customer, newTo, forced, o),
            forced ? 'ops' : customer,
          );
          break;
        }
        case 'start': {
          const id = pick(myBookings);
          await run('start', (o) => inv.startTrip(id, customer, o), customer);
          break;
        }
        case 'complete': {
          const id = pick(myBookings);
          await run('complete', (o) => inv.completeTrip(id, customer, o), customer);
          break;
        }
      }
      await new Promise((res) => setTimeout(res, random() * 40));
    }
    // The trips kept going come back late, once m1 has passed.
    if (lateTrip) {
      await new Promise((res) => setTimeout(res, Math.max(0, stormEnds - clock.now())));
      await run('complete-late', (o) => inv.completeTrip(lateTrip, customer, o), customer);
    }
  }

  // The invariants must hold at every instant, not only at the end: check consistent snapshots
  // (one MULTI each) while the storm runs. The first one broken is kept for its case below.
  let stormDone = false;
  let snapshots = 0;
  let violation: unknown;
  const watcher = (async () => {
    while (!stormDone && violation === undefined) {
      await new Promise((res) => setTimeout(res, 500));
      try {
        assertCityInvariants(await readCity(redis, city.id), city.turnaroundMs, clock.now());
      } catch (err) {
        violation = err;
      }
      snapshots++;
    }
  })();
  await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n))).finally(() => {
    stormDone = true;
  });
  await watcher;
  await instances[0]!.sweepCity(city.id, 1000);
  return { city, clock, redis, outcomes, repeats, snapshots, violation };
}

let storm: Storm;
let city: City;
let redis: Redis;
/** Per operation, how many succeeded and how many were refused. */
const byOp = new Map<string, { ok: number; refused: number }>();
/** The city after the storm and a sweep (read at `stateAt` on the scripts' clock), and its stream. */
let state: CityState;
let stateAt: number;
let events: EventRecord[];

describe('storm: 200 clients on 5 vehicles', () => {
  before(
    async () => {
      storm = await playStorm();
      ({ city, redis } = storm);
      for (const o of storm.outcomes) {
        const s = byOp.get(o.op) ?? { ok: 0, refused: 0 };
        if (o.ok) s.ok++;
        else s.refused++;
        byOp.set(o.op, s);
      }
      console.log('storm outcomes by op:', Object.fromEntries(byOp));
      state = await readCity(redis, city.id);
      stateAt = storm.clock.now();
      events = await readEvents(redis, city.id);
    },
    { timeout: 180_000 },
  );

  test('every snapshot taken during the storm keeps every invariant', () => {
    if (storm.violation !== undefined) throw storm.violation;
    assert.ok(storm.snapshots >= 5, `invariants checked during the storm (${storm.snapshots} snapshots)`);
  });

  // Every kind of race really happened.
  test('every kind of race happened: each operation succeeded at least once', () => {
    for (const op of [
      'hold',
      'book',
      'book-hold',
      'release',
      'cancel',
      'block',
      'unblock',
      'extend',
      'extend-forced',
      'start',
      'complete-late',
    ]) {
      assert.ok((byOp.get(op)?.ok ?? 0) > 0, `some ${op} succeeded`);
    }
  });

  const entries = () => [...state.vehicles.values()].flatMap((v) => v.entries);
  const bookings = () => entries().filter((e): e is BookingEntry => e.kind === 'booking');

  // 1-3: no overlapping trips, blocks displaced what they overlap, counters and statuses exact.
  test('after it: no overlapping trips, blocks displaced what they overlap, counters and statuses exact', () => {
    assertCityInvariants(state, city.turnaroundMs, stateAt);
  });

  test('most vehicles end with confirmed trips to judge', () => {
    const held = [...state.vehicles.values()].map(
      (v) => v.entries.filter((e) => e.kind === 'booking' && e.status === 'confirmed').length,
    );
    assert.ok(held.filter((n) => n >= 5).length >= 3, `most vehicles end with trips to judge: ${held.join(',')}`);
  });

  test('some trips came back late, and no confirmed booking overlaps a late trip (turnaround included)', () => {
    const late = bookings().filter((b) => b.completion === 'late');
    assert.ok(late.length > 0, 'some trips came back late');
    // Late trips displaced every confirmed booking they overlap (turnaround included).
    for (const [vid, v] of state.vehicles) {
      for (const t of v.entries.filter((e): e is BookingEntry => e.kind === 'booking' && e.completion === 'late')) {
        for (const b of v.entries.filter((e): e is BookingEntry => e.kind === 'booking' && e.status === 'confirmed')) {
          assert.ok(
            !(b.from < t.to + city.turnaroundMs && t.from < b.to + city.turnaroundMs),
            `vehicle ${vid}: confirmed ${b.id} overlaps late trip ${t.id}`,
          );
        }
      }
    }
  });

  test('blocks and late returns conflicted some bookings, and each conflicted booking names its cause', () => {
    const conflicted = bookings().filter((b) => b.status === 'conflicted');
    assert.ok(conflicted.length > 0, 'blocks and late returns conflicted some bookings');
    for (const b of conflicted) assert.ok(b.conflictCause && b.conflictedBy, `conflicted ${b.id} names its cause`);
  });

  // 4: every successful command wrote its events exactly once; every failed one, none.
  test('the stream holds each event once, and every event id a command returned is in it, once', () => {
    const streamIds = new Set(events.map((e) => e.id));
    assert.equal(streamIds.size, events.length);
    const returned = storm.outcomes.flatMap((o) => o.events);
    assert.equal(new Set(returned).size, returned.length, 'no event id returned twice');
    for (const id of returned) assert.ok(streamIds.has(id), `returned event ${id} is in the stream`);
  });

  test('every successful command wrote its events exactly once; a refused one wrote none', () => {
    const eventsByCmd = new Map<string, string[]>();
    for (const e of events) {
      if (!e.cmd.startsWith('cmd-')) continue; // set-up and sweeps
      const list = eventsByCmd.get(e.cmd) ?? [];
      list.push(e.id);
      eventsByCmd.set(e.cmd, list);
    }
    const executedByCmd = new Map<string, Outcome[]>();
    for (const o of storm.outcomes) {
      if (o.ok && o.events.length > 0) executedByCmd.set(o.cmd, [...(executedByCmd.get(o.cmd) ?? []), o]);
    }
    for (const [cmd, ids] of eventsByCmd) {
      const executed = executedByCmd.get(cmd) ?? [];
      assert.equal(executed.length, 1, `command ${cmd} with events executed exactly once`);
      assert.deepEqual(executed[0]!.events, ids, `command ${cmd}: exactly its events, once`);
    }
    for (const cmd of executedByCmd.keys()) assert.ok(eventsByCmd.has(cmd), `successful ${cmd} has its events`);
    const refusedOnly = new Set(storm.outcomes.filter((o) => !o.ok).map((o) => o.cmd));
    for (const o of storm.outcomes) if (o.ok) refusedOnly.delete(o.cmd);
    for (const cmd of refusedOnly) assert.ok(!eventsByCmd.has(cmd), `refused ${cmd} wrote no event`);
  });

  // 5: repeated idempotency keys returned identical answers once one had succeeded.
  test('a repeated idempotency key answers identically once one attempt succeeded', () => {
    let replays = 0;
    for (const [cmd, attempts] of storm.repeats) {
      const successes = attempts.filter((a) => a.ok);
      for (const s of successes) assert.equal(s.answer, successes[0]!.answer, `idempotent ${cmd}: identical answers`);
      const firstOk = attempts.findIndex((a) => a.ok);
      if (firstOk >= 0 && firstOk < 2) {
        assert.ok(
          attempts[2]!.ok,
          `idempotent ${cmd}: the retry after a success is that success: ${JSON.stringify(attempts)}`,
        );
        replays++;
      }
    }
    assert.ok(replays > 10, `idempotent replays exercised (${replays})`);
  });

  // Versions: each vehicle's version equals the number of commands that changed it.
  test("each vehicle's last event carries its version, and versions never go back", () => {
    for (const [vid, v] of state.vehicles) {
      const versions = events.filter((e) => e.vehicle === vid).map((e) => e.version);
      assert.equal(Math.max(...versions), v.version, `vehicle ${vid}: last event carries the version`);
      for (let i = 1; i < versions.length; i++) assert.ok(versions[i]! >= versions[i - 1]!, 'versions never go back');
    }
  });

  // Durable truth: after a drain, PostgreSQL holds exactly the stream, and `fleet reconcile`
  // finds no drift between the two stores.
  describe('durable truth, after a drain', () => {
    let pool: pg.Pool;
    const deadLetters: string[] = [];
    before(async () => {
      pool = createPool(db.url, { max: 4 });
      await new SyncWorker(redis, pool, catalogWith(city), {
        batchSize: 50,
        onDeadLetter: (_c, e) => deadLetters.push(e.id),
      }).drain();
    });
    after(async () => {
      await pool?.end();
    });

    test('everything Redis accepted applies in PostgreSQL: no dead letter', () => {
      assert.deepEqual(deadLetters, [], 'everything Redis accepted applies in PostgreSQL');
    });

    test('fleet reconcile --json finds zero drift, and every vehicle on both sides', async () => {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'reconcile', '--city', city.id, '--json'],
        {
          env: { ...process.env, REDIS_URL: server.url, DATABASE_URL: db.url },
        },
      );
      const report = JSON.parse(stdout) as {
        drift: number;
        cities: { entries: { redis: number; pg: number }; vehicles: { redis: number; pg: number } }[];
      };
      assert.equal(report.drift, 0, 'fleet reconcile --json: zero drift');
      assert.deepEqual(report.cities[0]!.vehicles, { redis: VEHICLES, pg: VEHICLES });
    });

    test('PostgreSQL has one event row per stream entry and one row per calendar entry', async () => {
      const rows = await pool.query<{ events: string; entries: string }>(
        `SELECT (SELECT count(*) FROM events WHERE city = $1) AS events,
                (SELECT count(*) FROM bookings WHERE city = $1) + (SELECT count(*) FROM holds WHERE city = $1) + (SELECT count(*) FROM blocks WHERE city = $1) AS entries`,
        [city.id],
      );
      assert.equal(
        Number(rows.rows[0]!.events),
        await redis.xlen(keys.events(city.id)),
        'one event row per stream entry',
      );
      assert.equal(Number(rows.rows[0]!.entries), entries().length, 'one row per calendar entry');
    });
  });
});

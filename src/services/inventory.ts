/**
 * The inventory engine's commands and queries, shared by the API, the workers and the CLI.
 * Each command: validate the shape -> per-vehicle in-process lock -> one Lua script (which checks,
 * mutates, bumps the version and appends the events atomically) -> typed result.
 */
import { systemClock, type Clock } from '../redis/clock.ts';
import { createHash, randomUUID } from 'node:crypto';
import type { BlockEntry, BlockReason, BookingEntry, CalendarEntry, HoldEntry } from '../domain/calendar.ts';
import { BLOCK_REASONS, MAX_TIMESTAMP_MS, MINUTE_MS } from '../domain/calendar.ts';
import { defaults } from '../config.ts';
import { CityCatalog, type City } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import { parseId, type IdKind } from '../domain/ids.ts';
import type { Vehicle, VehiclePatch, VehicleSpec, VehicleStatus } from '../domain/vehicle.ts';
import {
  CATEGORIES,
  FUELS,
  LISTING_STATES,
  type ListingState,
  oneOf,
  TRANSMISSIONS,
  VEHICLE_STATUSES,
  validateVehiclePatch,
} from '../domain/vehicle.ts';
import { keys } from '../redis/keys.ts';
import {
  commandReply,
  fromScript,
  luaList,
  runScript,
  stringList,
  type RedisConnection,
  type ScriptName,
} from '../redis/scripts.ts';
import { newId } from './ids.ts';
import { VehicleLocks } from './vehicle-locks.ts';
import { metrics } from '../metrics.ts';
import { survived } from '../log.ts';

export interface CommandOptions {
  /** Retrying with the same key returns the first result (24 h), never a second change. */
  idempotencyKey?: string;
  /** Whose keys these are: idempotency keys of different consumers never collide. */
  actorId?: string;
  /** Correlates the command's events (`cmd` field); defaults to a fresh UUID. */
  commandId?: string;
}

export interface CommandResult {
  /** The vehicle's version after the command. */
  version: number;
  /** The vehicle's status after the command. */
  status: VehicleStatus;
  /** Stream ids of the events the command appended, in order. */
  events: string[];
  /** Server time at which the command took effect. */
  at: number;
  /** True when this answer is the stored result of an earlier call with the same idempotency key. */
  replayed: boolean;
}

export interface VehicleState {
  vehicle: Vehicle;
  entries: CalendarEntry[];
  status: VehicleStatus;
  due: number | undefined;
  at: number;
}

export interface InventoryOptions {
  cities?: CityCatalog;
  locks?: VehicleLocks;
  holdTtlMs?: number;
  /** Live holds of one customer in one city. */
  maxLiveHoldsPerCustomer?: number;
  /** Live holds of one customer in every city together, and holds placed per rate window. */
  holdLimits?: Partial<HoldLimits>;
  /** Agrees with the scripts' clock (redis/clock.ts): the system clock, or a test's shifted one. */
  clock?: Clock;
}

export interface HoldLimits {
  maxLiveHoldsTotal: number;
  holdsPerWindow: number;
  holdRateWindowMs: number;
}
/** None by default (the engine's own tests): the service sets them from its configuration. */
export const DEFAULT_HOLD_LIMITS: HoldLimits = {
  maxLiveHoldsTotal: Infinity,
  holdsPerWindow: Infinity,
  holdRateWindowMs: 60_000,
};

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const PRINTABLE = /^[\x21-\x7e]{1,128}$/;

export class Inventory {
  readonly cities: CityCatalog;
  readonly locks: VehicleLocks;
  readonly clock: Clock;
  /**
   * DR_ACK=remote (docs/regions.md, set by `fleet serve`): every command is answered only once
   * its events are applied on the cross-region DR standby. Unset: once Redis (and its replica) has it.
   */
  remoteAcks: { waitFor(city: string, eventIds: readonly string[]): Promise<void> } | undefined;
  private readonly holdTtlMs: number;
  private readonly maxLiveHolds: number;
  private readonly limits: HoldLimits;

  constructor(
    private readonly redis: RedisConnection,
    opts: InventoryOptions = {},
  ) {
    this.cities = opts.cities ?? new CityCatalog();
    this.locks = opts.locks ?? new VehicleLocks();
    this.clock = opts.clock ?? systemClock;
    this.holdTtlMs = opts.holdTtlMs ?? defaults.HOLD_TTL_MS;
    this.maxLiveHolds = opts.maxLiveHoldsPerCustomer ?? defaults.MAX_LIVE_HOLDS_PER_CUSTOMER;
    this.limits = { ...DEFAULT_HOLD_LIMITS, ...opts.holdLimits };
  }

  // Vehicles -------------------------------------------------------------------------------

  async createVehicle(city: string, spec: VehicleSpec, opts: CommandOptions & { id?: string } = {}) {
    this.city(city);
    if (opts.id !== undefined) this.cityOf(opts.id, 'vehicle', city);
    requireText(spec.hostId, 'hostId');
    this.checkPatch(spec);
    // A generated id is not part of the request: a retry with the same key must match it.
    return this.upsert(city, opts.id ?? newId('vehicle', city), spec, 0, opts, opts.id ?? '');
  }

  async updateVehicle(
    vehicleId: string,
    patch: VehiclePatch,
    expectedVersion: number | undefined,
    opts: CommandOptions = {},
  ) {
    const city = this.cityOf(vehicleId, 'vehicle');
    this.checkPatch(patch);
    return this.upsert(city, vehicleId, patch, expectedVersion, opts, vehicleId);
  }

  async delist(vehicleId: string, reason = '', opts: CommandOptions = {}) {
    return this.setListing(vehicleId, 'delisted', reason, opts);
  }

  async relist(vehicleId: string, reason = '', opts: CommandOptions = {}) {
    return this.setListing(vehicleId, 'active', reason, opts);
  }

  /** Retire for good; `force` displaces the trips to come (they become conflicts, with offers). */
  async retire(vehicleId: string, force: boolean, reason = '', opts: CommandOptions = {}) {
    return this.setListing(vehicleId, 'retired', reason, opts, force);
  }

  // Holds and bookings ---------------------------------------------------------------------

  /**
   * A checkout hold. The customer's place among their live holds in every city is reserved first
   * (reserve_hold: the cap across cities and the hold rate, in the customer's own slot), then the
   * hold is placed in its city (place_hold: the per-city cap, the calendar); a refusal there gives
   * the place back.
   */
  async placeHold(
    input: { vehicleId: string; customerId: string; from: number; to: number; allowPast?: boolean },
    opts: CommandOptions = {},
  ) {
    const city = this.cityOf(input.vehicleId, 'vehicle');
    requireText(input.customerId, 'customerId');
    const holdId = newId('hold', city);
    const fingerprint = [input.vehicleId, input.customerId, input.from, input.to, flag(input.allowPast)];
    // A retry of an idempotent command that already took effect answers without a new place.
    const limited = Number.isFinite(this.limits.maxLiveHoldsTotal) || Number.isFinite(this.limits.holdsPerWindow);
    const known =
      !limited || opts.idempotencyKey === undefined
        ? undefined
        : await this.replayOf<{ hold: HoldEntry }>(city, 'place_hold', opts, fingerprint);
    if (known) return known;
    if (limited) {
      await runScript(
        this.redis,
        'reserve_hold',
        [keys.customerHoldReservations(input.customerId), keys.customerHoldRate(input.customerId)],
        [
          holdId,
          this.holdTtlMs,
          finite(this.limits.maxLiveHoldsTotal),
          finite(this.limits.holdsPerWindow),
          this.limits.holdRateWindowMs,
        ],
      );
    }
    try {
      const out = await this.command<{ hold: HoldEntry }>(
        'place_hold',
        city,
        input.vehicleId,
        opts,
        [keys.customerHolds(city, input.customerId)],
        [
          holdId,
          input.customerId,
          time(input.from, 'from'),
          time(input.to, 'to'),
          this.holdTtlMs,
          this.maxLiveHolds,
          flag(input.allowPast),
        ],
        fingerprint,
      );
      if (limited && out.hold.id !== holdId) await this.releaseReservation(input.customerId, holdId);
      return out;
    } catch (err) {
      if (limited) await this.releaseReservation(input.customerId, holdId);
      throw err;
    }
  }

  async releaseHold(holdId: string, customerId: string | undefined, opts: CommandOptions = {}) {
    const { city, vehicleId } = await this.locate(holdId, 'hold');
    const out = await this.command<{ hold: HoldEntry }>(
      'release_hold',
      city,
      vehicleId,
      opts,
      [],
      [holdId, customerId ?? ''],
      [holdId, customerId ?? ''],
    );
    await this.releaseReservation(out.hold.customerId, holdId);
    return out;
  }

  /** A hold no longer live gives its place among the customer's live holds back (best effort: it also lapses). */
  private async releaseReservation(customerId: string, holdId: string): Promise<void> {
    if (!Number.isFinite(this.limits.maxLiveHoldsTotal) && !Number.isFinite(this.limits.holdsPerWindow)) return;
    await runScript(
      this.redis,
      'release_hold_reservation',
      [keys.customerHoldReservations(customerId)],
      [holdId],
    ).catch((err: unknown) => survived('holds.release-reservation', err));
  }

  /** The stored answer of an idempotent command that already took effect, if any (read-only). */
  private async replayOf<T>(
    city: string,
    script: ScriptName,
    opts: CommandOptions,
    fingerprintArgs: unknown[],
  ): Promise<(T & CommandResult) | undefined> {
    const { key, fingerprint } = this.idempotency(city, script, opts, fingerprintArgs);
    const stored = await this.redis.get(key);
    if (!stored) return undefined;
    const sep = stored.indexOf('\n');
    if (stored.slice(0, sep) !== fingerprint) return undefined; // the command itself answers IDEMPOTENCY_CONFLICT
    const out = fromScript<T & CommandResult & { events: string[] | Record<string, never> }>(stored.slice(sep + 1));
    return { ...out, events: luaList(out.events), replayed: true };
  }

  async book(
    input: (
      | { vehicleId: string; customerId: string; from: number; to: number; allowPast?: boolean }
      | { holdId: string; customerId: string }
    ) & {
      /** Minutes the customer allows the trip to move (0-120), should it be displaced (docs/conflicts.md). */
      flexibleMinutes?: number;
    },
    opts: CommandOptions = {},
  ) {
    requireText(input.customerId, 'customerId');
    const flex = String(input.flexibleMinutes ?? 0);
    // The answer names the vehicle, so callers need not look the new booking up again.
    if ('holdId' in input) {
      const { city, vehicleId } = await this.locate(input.holdId, 'hold');
      const r = await this.command<{ booking: BookingEntry }>(
        'book',
        city,
        vehicleId,
        opts,
        [],
        [newId('booking', city), input.customerId, '', '', input.holdId, '0', flex],
        [input.customerId, input.holdId, flex],
      );
      await this.releaseReservation(input.customerId, input.holdId);
      return { ...r, vehicleId };
    }
    const city = this.cityOf(input.vehicleId, 'vehicle');
    const r = await this.command<{ booking: BookingEntry }>(
      'book',
      city,
      input.vehicleId,
      opts,
      [],
      [
        newId('booking', city),
        input.customerId,
        time(input.from, 'from'),
        time(input.to, 'to'),
        '',
        flag(input.allowPast),
        flex,
      ],
      [input.vehicleId, input.customerId, input.from, input.to, flag(input.allowPast), flex],
    );
    return { ...r, vehicleId: input.vehicleId };
  }

  /** `customerId` undefined: any customer's booking (ops, host). */
  async cancelBooking(
    bookingId: string,
    customerId: string | undefined,
    reason = 'customer',
    opts: CommandOptions = {},
  ) {
    const { city, vehicleId } = await this.locate(bookingId, 'booking');
    return this.command<{ booking: BookingEntry }>(
      'cancel_booking',
      city,
      vehicleId,
      opts,
      [],
      [bookingId, customerId ?? '', reason],
      [bookingId, customerId ?? '', reason],
    );
  }

  async startTrip(bookingId: string, customerId: string | undefined, opts: CommandOptions = {}) {
    const { city, vehicleId } = await this.locate(bookingId, 'booking');
    return this.command<{ booking: BookingEntry }>(
      'start_trip',
      city,
      vehicleId,
      opts,
      [],
      [bookingId, customerId ?? ''],
      [bookingId, customerId ?? ''],
    );
  }

  async completeTrip(bookingId: string, customerId: string | undefined, opts: CommandOptions = {}) {
    const { city, vehicleId } = await this.locate(bookingId, 'booking');
    return this.command<{ booking: BookingEntry }>(
      'complete_trip',
      city,
      vehicleId,
      opts,
      [],
      [bookingId, customerId ?? ''],
      [bookingId, customerId ?? ''],
    );
  }

  /** `force` (ops only): overlapped confirmed bookings become conflicted instead of refusing. */
  async extendBooking(
    bookingId: string,
    customerId: string | undefined,
    to: number,
    force = false,
    opts: CommandOptions = {},
  ) {
    const { city, vehicleId } = await this.locate(bookingId, 'booking');
    return this.command<{ booking: BookingEntry }>(
      'extend_booking',
      city,
      vehicleId,
      opts,
      [],
      [bookingId, customerId ?? '', time(to, 'to'), flag(force)],
      [bookingId, customerId ?? '', to, flag(force)],
    );
  }

  // Blocks ---------------------------------------------------------------------------------

  async placeBlock(
    input: { vehicleId: string; reason: BlockReason; from?: number; to?: number; allowPast?: boolean; note?: string },
    opts: CommandOptions = {},
  ) {
    const city = this.cityOf(input.vehicleId, 'vehicle');
    if (!BLOCK_REASONS.includes(input.reason))
      throw new DomainError('VALIDATION', 'reason must be accident, maintenance or host', { field: 'reason' });
    if (input.reason !== 'accident' && (input.from === undefined || input.to === undefined)) {
      throw new DomainError('INVALID_INTERVAL', `a ${input.reason} block needs from and to`, { problem: 'missing' });
    }
    if (input.note !== undefined && input.note.length > 512)
      throw new DomainError('VALIDATION', 'note too long', { field: 'note' });
    // An accident or a maintenance starts "now", at whatever second a person reports it: the
    // window widens to whole minutes (from rounded down, to up) instead of being refused.
    const widen = input.reason !== 'host';
    const from =
      input.from === undefined ? '' : widen ? floorMinute(time(input.from, 'from')) : time(input.from, 'from');
    const to = input.to === undefined ? '' : widen ? ceilMinute(time(input.to, 'to')) : time(input.to, 'to');
    return this.command<{ block: BlockEntry }>(
      'place_block',
      city,
      input.vehicleId,
      opts,
      [],
      [newId('block', city), input.reason, from, to, flag(input.allowPast), input.note ?? ''],
      [input.vehicleId, input.reason, from, to, flag(input.allowPast), input.note ?? ''],
    );
  }

  async removeBlock(blockId: string, opts: CommandOptions = {}) {
    const { city, vehicleId } = await this.locate(blockId, 'block');
    return this.command<{ block: BlockEntry }>('remove_block', city, vehicleId, opts, [], [blockId], [blockId]);
  }

  // Time-driven changes -------------------------------------------------------------------

  /**
   * One sweep over a city: lapsed holds expire and statuses move with the clock, for every
   * vehicle whose next status change is due. Returns how many vehicles were looked at.
   */
  async sweepCity(
    city: string,
    batch = 100,
  ): Promise<{ vehicles: number; expired: number; events: string[]; at?: number }> {
    this.city(city);
    // Candidates by our clock (a little ahead for skew); the script decides by the server's.
    const due = await this.redis.zrangebyscore(
      keys.statusDue(city),
      '-inf',
      this.clock.now() + 1_000,
      'LIMIT',
      0,
      batch,
    );
    if (due.length === 0) return { vehicles: 0, expired: 0, events: [] };
    const vehicleKeys = due.flatMap((v) => keys.vehicleKeys(city, v));
    const raw = await runScript(
      this.redis,
      'expire_holds',
      [...keys.cityScriptKeys(city), ...vehicleKeys],
      [randomUUID(), city, ...due],
    );
    const out = fromScript<{ expired: number; events: string[] | Record<string, never>; at: number }>(raw);
    return {
      vehicles: due.length,
      expired: out.expired,
      events: luaList(out.events),
      at: out.at,
    };
  }

  /**
   * Past, final entries leave the city's calendars once PostgreSQL has them (`syncedThrough`:
   * every change before it is synced). Returns how many entries were removed.
   */
  async trimCity(city: string, before: number, syncedThrough: number, batch = 200): Promise<number> {
    this.city(city);
    if (syncedThrough <= 0) return 0;
    let removed = 0;
    let cursor = '0';
    do {
      const [next, ids] = await this.redis.sscan(keys.vehicles(city), cursor, 'COUNT', batch);
      cursor = next;
      if (ids.length) {
        removed += Number(
          await runScript(
            this.redis,
            'trim_calendar',
            [keys.entries(city), ...ids.flatMap((v) => [keys.calendar(city, v), keys.calendarIndex(city, v)])],
            [time(before, 'before'), time(Math.min(syncedThrough, MAX_TIMESTAMP_MS), 'syncedThrough')],
          ),
        );
      }
    } while (cursor !== '0');
    return removed;
  }

  // Queries --------------------------------------------------------------------------------

  async getVehicleState(vehicleId: string): Promise<VehicleState> {
    const city = this.cityOf(vehicleId, 'vehicle');
    const raw = await runScript(this.redis, 'vehicle_state', keys.vehicleKeys(city, vehicleId), []);
    if (raw === null)
      throw new DomainError('NOT_FOUND', `vehicle ${vehicleId} not found`, { entity: 'vehicle', id: vehicleId });
    const s = fromScript<{
      vehicle: Record<string, string>;
      entries: CalendarEntry[] | Record<string, never>;
      status: VehicleStatus;
      due?: number;
      at: number;
    }>(raw);
    return {
      vehicle: vehicleFromHash(s.vehicle),
      entries: luaList(s.entries),
      status: s.status,
      due: s.due,
      at: s.at,
    };
  }

  /** Of the candidates (all in `city`), those free for [from, to) at this instant, in order. */
  async verifyAvailable(city: string, vehicleIds: readonly string[], from: number, to: number): Promise<string[]> {
    const c = this.city(city);
    if (vehicleIds.length === 0) return [];
    for (const id of vehicleIds) this.cityOf(id, 'vehicle', city);
    const k = vehicleIds.flatMap((v) => keys.vehicleKeys(city, v));
    const free = await runScript(this.redis, 'verify_available', k, [
      time(from, 'from'),
      time(to, 'to'),
      c.turnaroundMs,
      ...vehicleIds,
    ]);
    return stringList(free);
  }

  /** A host's vehicles in every city, by id (their states read together, pipelined on the connection). */
  async vehiclesOfHost(hostId: string): Promise<Vehicle[]> {
    const ids: string[] = [];
    for (const c of this.cities.all()) ids.push(...(await this.redis.smembers(keys.hostVehicles(c.id, hostId))));
    const states = await Promise.all(ids.sort().map((id) => this.getVehicleState(id)));
    return states.map((s) => s.vehicle);
  }

  /** The host of a vehicle (a vehicle never changes hands), or undefined when unknown. */
  async hostOfVehicle(vehicleId: string): Promise<string | undefined> {
    const city = this.cityOf(vehicleId, 'vehicle');
    return (await this.redis.hget(keys.vehicle(city, vehicleId), 'hostId')) ?? undefined;
  }

  /** A hold, booking or block with its vehicle, as Redis holds them now. */
  async getEntry<K extends CalendarEntry['kind']>(
    entryId: string,
    kind: K,
  ): Promise<{ entry: Extract<CalendarEntry, { kind: K }>; vehicle: Vehicle; at: number }> {
    const { vehicleId } = await this.locate(entryId, kind);
    const state = await this.getVehicleState(vehicleId);
    const entry = state.entries.find((e) => e.id === entryId && e.kind === kind);
    if (!entry) throw new DomainError('NOT_FOUND', `${kind} ${entryId} not found`, { entity: kind, id: entryId });
    return { entry: entry as Extract<CalendarEntry, { kind: K }>, vehicle: state.vehicle, at: state.at };
  }

  /** Where a hold, booking or block lives. */
  async locate(entryId: string, kind: IdKind): Promise<{ city: string; vehicleId: string }> {
    const city = this.cityOf(entryId, kind);
    const vehicleId = await this.redis.hget(keys.entries(city), entryId);
    if (!vehicleId) throw new DomainError('NOT_FOUND', `${kind} ${entryId} not found`, { entity: kind, id: entryId });
    return { city, vehicleId };
  }

  // Internals ------------------------------------------------------------------------------

  private async upsert(
    city: string,
    vehicleId: string,
    spec: Partial<VehicleSpec>,
    expectedVersion: number | undefined,
    opts: CommandOptions,
    requestedId: string,
  ) {
    const fields = JSON.stringify(spec);
    const expected = expectedVersion === undefined ? '' : String(expectedVersion);
    return this.command<{ created: boolean; vehicleId: string }>(
      'upsert_vehicle',
      city,
      vehicleId,
      opts,
      [keys.vehicles(city), keys.hostVehicles(city, spec.hostId ?? '-'), keys.geo(city)],
      [expected, fields],
      [requestedId, expected, fields],
    );
  }

  private async setListing(
    vehicleId: string,
    listing: ListingState,
    reason: string,
    opts: CommandOptions,
    force = false,
  ) {
    const city = this.cityOf(vehicleId, 'vehicle');
    if (reason.length > 512) throw new DomainError('VALIDATION', 'reason too long', { field: 'reason' });
    return this.command<Record<string, never>>(
      'set_listing',
      city,
      vehicleId,
      opts,
      [],
      [listing, reason, flag(force)],
      [vehicleId, listing, reason, flag(force)],
    );
  }

  /**
   * The idempotency record key and fingerprint of a command. Without a client key the command gets
   * one of its own (`auto:` fingerprint, kept 15 min): a command resent after a lost connection or
   * an unconfirmed write then returns its first result instead of applying twice (architecture.md §8).
   */
  idempotency(
    city: string,
    script: ScriptName,
    opts: CommandOptions,
    fingerprintArgs: unknown[],
  ): { key: string; fingerprint: string } {
    const digest = () =>
      createHash('sha1')
        .update(JSON.stringify([script, ...fingerprintArgs]))
        .digest('hex');
    if (opts.idempotencyKey === undefined)
      return { key: keys.idempotency(city, '~', randomUUID()), fingerprint: `auto:${digest()}` };
    if (!IDEMPOTENCY_KEY.test(opts.idempotencyKey))
      throw new DomainError('VALIDATION', 'idempotency key must be 1-200 printable characters', {
        field: 'idempotencyKey',
      });
    return { key: keys.idempotency(city, opts.actorId ?? '-', opts.idempotencyKey), fingerprint: digest() };
  }

  /**
   * Runs a single-vehicle script under the vehicle's lock. `fingerprintArgs` are what the caller
   * asked for, target included, and never generated ids: a retry of the same request matches.
   */
  private async command<T>(
    script: ScriptName,
    city: string,
    vehicleId: string,
    opts: CommandOptions,
    extraKeys: string[],
    args: (string | number)[],
    fingerprintArgs: unknown[],
  ): Promise<T & CommandResult> {
    const c = this.city(city);
    const { key: idemKey, fingerprint } = this.idempotency(city, script, opts, fingerprintArgs);
    const scriptKeys = [...keys.vehicleKeys(city, vehicleId), ...keys.cityScriptKeys(city), idemKey, ...extraKeys];
    const argv = [opts.commandId ?? randomUUID(), fingerprint, city, vehicleId, c.turnaroundMs, ...args];
    let reply: unknown;
    try {
      reply = await this.locks.run(`${city}:${vehicleId}`, () => runScript(this.redis, script, scriptKeys, argv));
      metrics.commands.inc({ command: script, outcome: 'ok' });
    } catch (err) {
      metrics.commands.inc({ command: script, outcome: err instanceof DomainError ? err.code : 'error' });
      throw err;
    }
    const { out, replayed } = commandReply<T & CommandResult & { events: string[] | Record<string, never> }>(reply);
    const events = luaList(out.events);
    await this.remoteAcks?.waitFor(city, events);
    return { ...out, events, replayed };
  }

  /**
   * DR_ACK=remote for a command whose reply names no events (a multi-vehicle script): waits for
   * the city's whole stream as it is now, which holds them.
   */
  async remotelyConfirmed(city: string): Promise<void> {
    if (!this.remoteAcks) return;
    const [head] = await this.redis.xrevrange(keys.events(city), '+', '-', 'COUNT', 1);
    if (head) await this.remoteAcks.waitFor(city, [head[0]]);
  }

  private city(id: string): City {
    const c = this.cities.get(id);
    if (!c) throw new DomainError('NOT_FOUND', `city ${id} not found`, { entity: 'city', id });
    return c;
  }

  /** The city an id belongs to; a malformed id, or one of the wrong kind, is not found. */
  private cityOf(id: string, kind: IdKind, expectedCity?: string): string {
    const parsed = typeof id === 'string' ? parseId(id) : undefined;
    if (!parsed || parsed.kind !== kind || (expectedCity !== undefined && parsed.city !== expectedCity)) {
      throw new DomainError('NOT_FOUND', `${kind} ${String(id)} not found`, { entity: kind, id });
    }
    this.city(parsed.city);
    return parsed.city;
  }

  private checkPatch(patch: VehiclePatch): void {
    const problems = validateVehiclePatch(patch);
    if (problems.length > 0)
      throw new DomainError('VALIDATION', `invalid ${problems.join(', ')}`, { fields: problems });
  }
}

function vehicleFromHash(h: Record<string, string>): Vehicle {
  return {
    id: h.id ?? '',
    city: h.city ?? '',
    hostId: h.hostId ?? '',
    category: oneOf(CATEGORIES, h.category, 'category'),
    seats: Number(h.seats),
    transmission: oneOf(TRANSMISSIONS, h.transmission, 'transmission'),
    fuel: oneOf(FUELS, h.fuel, 'fuel'),
    make: h.make ?? '',
    model: h.model ?? '',
    location: { lat: Number(h.lat), lng: Number(h.lng) },
    pricePerHour: Number(h.pricePerHour),
    listing: oneOf(LISTING_STATES, h.listing, 'listing'),
    status: oneOf(VEHICLE_STATUSES, h.status, 'status'),
    version: Number(h.version),
    createdAt: Number(h.createdAt),
    updatedAt: Number(h.updatedAt),
  };
}

const floorMinute = (t: number) => t - (t % MINUTE_MS);
const ceilMinute = (t: number) => (t % MINUTE_MS === 0 ? t : t - (t % MINUTE_MS) + MINUTE_MS);

function time(t: number, field: string): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0 || t > MAX_TIMESTAMP_MS) {
    throw new DomainError('INVALID_INTERVAL', `${field} must be epoch milliseconds`, { problem: 'range', field });
  }
  return t;
}

function requireText(v: unknown, field: string): void {
  if (typeof v !== 'string' || !PRINTABLE.test(v))
    throw new DomainError('VALIDATION', `${field} must be 1-128 printable characters`, { field });
}

const flag = (b: boolean | undefined) => (b ? '1' : '0');
/** Lua numbers: "no limit" as a count no one reaches. */
const finite = (n: number) => (Number.isFinite(n) ? n : 1e12);

/**
 * The inventory engine's commands (its queries: services/inventory-queries.ts), shared by the API,
 * the workers and the CLI.
 * Each command: validate the shape -> per-vehicle in-process lock -> one Lua script (which checks,
 * mutates, bumps the version and appends the events atomically) -> typed result.
 */
import { randomUUID } from 'node:crypto';
import type { BlockEntry, BlockReason, BookingEntry, HoldEntry } from '../domain/calendar.ts';
import { BLOCK_REASONS } from '../domain/calendar.ts';
import { defaults } from '../config.ts';
import { DomainError } from '../domain/errors.ts';
import { type ListingState, validateVehiclePatch, type VehiclePatch, type VehicleSpec } from '../domain/vehicle.ts';
import { keys } from '../redis/keys.ts';
import {
  commandReply,
  fromScript,
  luaList,
  runScript,
  type RedisConnection,
  type ScriptName,
} from '../redis/scripts.ts';
import { newId } from './ids.ts';
import { pricingOf } from '../domain/pricing.ts';
import { VehicleLocks } from './vehicle-locks.ts';
import { sweepCity, trimCity } from './city-sweep.ts';
import { InventoryQueries } from './inventory-queries.ts';
import {
  ceilMinute,
  finite,
  flag,
  floorMinute,
  idempotencyOf,
  pricingArgs,
  requireText,
  time,
  type CommandOptions,
  type CommandResult,
  type HoldLimits,
  type InventoryOptions,
} from './commands.ts';

export type { CommandOptions, CommandResult, HoldLimits, InventoryOptions, VehicleState } from './commands.ts';
import { metrics } from '../metrics.ts';
import { survived } from '../log.ts';

/** The scripts that fix a price, with the event, when they run (domain/pricing.ts). */
const PRICED: ReadonlySet<ScriptName> = new Set(['place_hold', 'book', 'extend_booking']);

export class Inventory extends InventoryQueries {
  readonly locks: VehicleLocks;
  /**
   * DR_ACK=remote (docs/regions.md, set by `fleet serve`): every command is answered only once
   * its events are applied on the cross-region DR standby. Unset: once Redis (and its replica) has it.
   */
  remoteAcks: { waitFor(city: string, eventIds: readonly string[]): Promise<void> } | undefined;
  private readonly holdTtlMs: number;
  private readonly maxLiveHolds: number;
  private readonly limits: HoldLimits;

  constructor(redis: RedisConnection, opts: InventoryOptions = {}) {
    super(redis, opts.cities, opts.clock);
    this.locks = opts.locks ?? new VehicleLocks();
    this.holdTtlMs = opts.holdTtlMs ?? defaults.HOLD_TTL_MS;
    this.maxLiveHolds = opts.maxLiveHoldsPerCustomer ?? defaults.MAX_LIVE_HOLDS_PER_CUSTOMER;
    this.limits = {
      maxLiveHoldsTotal: defaults.MAX_LIVE_HOLDS_PER_CUSTOMER_TOTAL,
      holdsPerWindow: defaults.HOLDS_PER_MINUTE_PER_CUSTOMER,
      holdRateWindowMs: 60_000,
      ...opts.holdLimits,
    };
  }

  // Vehicles -------------------------------------------------------------------------------

  async createVehicle(city: string, spec: VehicleSpec, opts: CommandOptions & { id?: string } = {}) {
    this.city(city);
    if (opts.id !== undefined) this.cityOf(opts.id, 'vehicle', city);
    requireText(spec.hostId, 'hostId');
    this.checkPatch(city, spec);
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
    this.checkPatch(city, patch);
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

  /** Lapsed holds expire and statuses move with the clock (services/city-sweep.ts). */
  sweepCity(city: string, batch?: number) {
    this.city(city);
    return sweepCity(this.redis, this.clock, city, batch);
  }

  /** Past, final entries PostgreSQL has leave the calendars (services/city-sweep.ts). */
  trimCity(city: string, before: number, syncedThrough: number, batch?: number): Promise<number> {
    this.city(city);
    return trimCity(this.redis, city, before, syncedThrough, batch);
  }

  // Internals ------------------------------------------------------------------------------

  private async upsert(
    city: string,
    vehicleId: string,
    spec: VehiclePatch & { hostId?: string },
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

  /** The idempotency record key and fingerprint of a command (services/commands.ts). */
  idempotency(city: string, script: ScriptName, opts: CommandOptions, fingerprintArgs: unknown[]) {
    return idempotencyOf(city, script, opts, fingerprintArgs);
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
    // The scripts that price (holds, bookings, extensions) take the city's currency last.
    const priced = PRICED.has(script) ? pricingArgs(c) : [];
    const argv = [opts.commandId ?? randomUUID(), fingerprint, city, vehicleId, c.turnaroundMs, ...args, ...priced];
    let reply: unknown;
    try {
      reply = await this.locks.run(`${city}:${vehicleId}`, () =>
        runScript(this.redis, script, scriptKeys, argv, opts.context),
      );
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

  /** Prices are checked in the city's currency: a whole number of its minor units. */
  private checkPatch(city: string, patch: VehiclePatch): void {
    const problems = validateVehiclePatch(patch, pricingOf(this.city(city)).exponent);
    if (problems.length > 0)
      throw new DomainError('VALIDATION', `invalid ${problems.join(', ')}`, { fields: problems });
  }
}

/**
 * What every inventory command takes and answers, and the checks its arguments pass before a
 * script sees them (services/inventory.ts runs the commands).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { CalendarEntry } from '../domain/calendar.ts';
import { MAX_TIMESTAMP_MS, MINUTE_MS } from '../domain/calendar.ts';
import type { CityCatalog } from '../domain/cities.ts';
import { DomainError } from '../domain/errors.ts';
import { pricingOf } from '../domain/pricing.ts';
import type { Vehicle, VehicleStatus } from '../domain/vehicle.ts';
import type { CallContext } from '../redis/call-context.ts';
import type { Clock } from '../redis/clock.ts';
import { keys } from '../redis/keys.ts';
import type { ScriptName } from '../redis/scripts.ts';
import type { VehicleLocks } from './vehicle-locks.ts';

export interface CommandOptions {
  /** Retrying with the same key returns the first result (24 h), never a second change. */
  idempotencyKey?: string;
  /** Whose keys these are: idempotency keys of different consumers never collide. */
  actorId?: string;
  /** Correlates the command's events (`cmd` field); defaults to a fresh UUID. */
  commandId?: string;
  /**
   * Who the change is made for, in which request: an API request passes its own here (the
   * scripts write it into their events); without it, the current call context (workers, CLI).
   */
  context?: CallContext;
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

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
export const PRINTABLE = /^[\x21-\x7e]{1,128}$/;

/**
 * The idempotency record key and fingerprint of a command. Without a client key the command gets
 * one of its own (`auto:` fingerprint, kept 15 min): a command resent after a lost connection or
 * an unconfirmed write then returns its first result instead of applying twice (architecture.md §8).
 */
export function idempotencyOf(
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

export const floorMinute = (t: number) => t - (t % MINUTE_MS);
export const ceilMinute = (t: number) => (t % MINUTE_MS === 0 ? t : t - (t % MINUTE_MS) + MINUTE_MS);

export function time(t: number, field: string): number {
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0 || t > MAX_TIMESTAMP_MS) {
    throw new DomainError('INVALID_INTERVAL', `${field} must be epoch milliseconds`, { problem: 'range', field });
  }
  return t;
}

export function requireText(v: unknown, field: string): void {
  if (typeof v !== 'string' || !PRINTABLE.test(v))
    throw new DomainError('VALIDATION', `${field} must be 1-128 printable characters`, { field });
}

export const flag = (b: boolean | undefined) => (b ? '1' : '0');
/** Lua numbers: "no limit" as a count no one reaches. */
export const finite = (n: number) => (Number.isFinite(n) ? n : 1e12);

/** The pricing scripts' last two arguments: the city's currency and its minor-unit exponent (domain/pricing.ts). */
export function pricingArgs(city: { currency: string }): [string, number] {
  const p = pricingOf(city);
  return [p.currency, p.exponent];
}

/**
 * The inventory's reads: a vehicle's state and calendar, availability checked against Redis, a
 * host's vehicles, where an entry lives. The commands (services/inventory.ts) extend it.
 */
import { CityCatalog, type City } from '../domain/cities.ts';
import type { CalendarEntry } from '../domain/calendar.ts';
import { DomainError } from '../domain/errors.ts';
import { idPrefix, parseId, type IdKind } from '../domain/ids.ts';
import { type Vehicle, type VehicleStatus, vehicleOf } from '../domain/vehicle.ts';
import { systemClock, type Clock } from '../redis/clock.ts';
import { keys } from '../redis/keys.ts';
import { fromScript, luaList, runScript, stringList, type RedisConnection } from '../redis/scripts.ts';
import { time, type VehicleState } from './commands.ts';

export class InventoryQueries {
  readonly cities: CityCatalog;
  readonly clock: Clock;

  constructor(
    protected readonly redis: RedisConnection,
    cities: CityCatalog | undefined,
    clock: Clock | undefined,
  ) {
    this.cities = cities ?? new CityCatalog();
    this.clock = clock ?? systemClock;
  }

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
      vehicle: vehicleOf(s.vehicle),
      entries: luaList(s.entries),
      status: s.status,
      due: s.due,
      at: s.at,
    };
  }

  /**
   * Of the candidates (all in `city`), those free for [from, to) at this instant, in order. A search
   * asks this for every page: an id is only parsed (and refused) when it lacks the city's prefix.
   */
  async verifyAvailable(city: string, vehicleIds: readonly string[], from: number, to: number): Promise<string[]> {
    const c = this.city(city);
    if (vehicleIds.length === 0) return [];
    const prefix = idPrefix('vehicle', city);
    for (const id of vehicleIds) if (!id.startsWith(prefix)) this.cityOf(id, 'vehicle', city);
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

  protected city(id: string): City {
    const c = this.cities.get(id);
    if (!c) throw new DomainError('NOT_FOUND', `city ${id} not found`, { entity: 'city', id });
    return c;
  }

  /** The city an id belongs to; a malformed id, or one of the wrong kind, is not found. */
  protected cityOf(id: string, kind: IdKind, expectedCity?: string): string {
    const parsed = typeof id === 'string' ? parseId(id) : undefined;
    if (!parsed || parsed.kind !== kind || (expectedCity !== undefined && parsed.city !== expectedCity)) {
      throw new DomainError('NOT_FOUND', `${kind} ${String(id)} not found`, { entity: kind, id });
    }
    this.city(parsed.city);
    return parsed.city;
  }
}

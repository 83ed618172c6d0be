/**
 * What a topic of `GET /v1/live` is, who may watch it, and which events it hears.
 *   city:<id>     operations and admin (a city's feed names every customer);
 *   vehicle:<id>  the vehicle's host, staff;
 *   booking:<id>  the booking's customer, the vehicle's host, staff;
 *   host:<id>     that host, staff (all the host's vehicles, every city; live only).
 */
import { DomainError } from '../../domain/errors.ts';
import type { StreamEvent } from '../../domain/events.ts';
import { parseId } from '../../domain/ids.ts';
import type { Inventory } from '../../services/inventory.ts';
import type { RegionMap } from '../../services/regions.ts';
import type { Actor } from '../auth.ts';
import {
  notFound,
  requireCityWatcher,
  requireHostWatcher,
  requireTripViewer,
  requireVehicleManager,
} from '../authorize.ts';

export interface Topic {
  name: string;
  kind: 'city' | 'vehicle' | 'booking' | 'host';
  id: string;
  /** The one city whose stream carries the topic; absent for a host's, which spans every city. */
  city?: string;
}

const TOPIC = /^(city|vehicle|booking|host):([A-Za-z0-9_-]{1,100})$/;

/** A topic's kind and id, or VALIDATION. */
function parseTopic(name: string): Pick<Topic, 'kind' | 'id'> {
  const m = TOPIC.exec(name);
  const [, kind, id] = m ?? [];
  if ((kind === 'city' || kind === 'vehicle' || kind === 'booking' || kind === 'host') && id) return { kind, id };
  throw new DomainError('VALIDATION', 'topics are city:<id>, vehicle:<id>, booking:<id> or host:<id>');
}

export class TopicPolicy {
  /** The host of each vehicle seen, for host topics (a vehicle's events do not all name it). */
  private readonly hostOfVehicle = new Map<string, string>();

  constructor(
    private readonly inventory: Inventory,
    private readonly regions: RegionMap | undefined,
  ) {}

  /**
   * Resolves a topic name for an actor, or refuses it (FORBIDDEN / NOT_FOUND / VALIDATION /
   * WRONG_REGION), by the rules of authorize.ts: another tenant's vehicle, booking or host is not
   * found, exactly as one that does not exist (as over HTTP); a role that may never watch a kind
   * of topic is forbidden.
   */
  async authorise(actor: Actor, name: string): Promise<Topic> {
    const { kind, id } = parseTopic(name);
    this.refuseOtherRegions(kind === 'city' ? id : kind === 'host' ? undefined : parseId(id)?.city);
    switch (kind) {
      case 'city':
        requireCityWatcher(actor, id);
        if (!this.inventory.cities.get(id)) throw notFound('city', id);
        return { name, kind, id, city: id };
      case 'host':
        requireHostWatcher(actor, id);
        return { name, kind, id };
      case 'vehicle': {
        if (parseId(id)?.kind !== 'vehicle') throw notFound('vehicle', id);
        const { vehicle } = await this.inventory.getVehicleState(id);
        requireVehicleManager(actor, vehicle);
        return { name, kind, id, city: vehicle.city };
      }
      case 'booking': {
        if (parseId(id)?.kind !== 'booking') throw notFound('booking', id);
        const { entry, vehicle } = await this.inventory.getEntry(id, 'booking');
        requireTripViewer(actor, entry, vehicle);
        return { name, kind, id, city: vehicle.city };
      }
    }
  }

  /** Whether the topic hears the event (for a host topic, the vehicle's host may need a lookup). */
  async matches(topic: Topic, e: StreamEvent): Promise<boolean> {
    switch (topic.kind) {
      case 'city':
        return e.city === topic.id;
      case 'vehicle':
        return e.vehicle === topic.id;
      case 'booking':
        return e.subject === topic.id;
      case 'host':
        return (await this.hostOf(e)) === topic.id;
    }
  }

  /** A topic of a city that another region serves: watch it there (its URL in the refusal). */
  private refuseOtherRegions(city: string | undefined): void {
    const route = city ? this.regions?.route(city) : undefined;
    if (route?.kind !== 'elsewhere') return;
    throw new DomainError(
      'WRONG_REGION',
      `city ${city} is served by region ${route.region}: subscribe at ${route.url}`,
      {
        region: route.region,
        url: route.url,
      },
    );
  }

  private async hostOf(e: StreamEvent): Promise<string | undefined> {
    if (e.type.startsWith('vehicle.') && typeof e.state?.hostId === 'string')
      this.hostOfVehicle.set(e.vehicle, e.state.hostId);
    let host = this.hostOfVehicle.get(e.vehicle);
    if (host === undefined) {
      host = (await this.inventory.hostOfVehicle(e.vehicle)) ?? '';
      if (this.hostOfVehicle.size > 100_000) this.hostOfVehicle.clear();
      this.hostOfVehicle.set(e.vehicle, host);
    }
    return host || undefined;
  }
}

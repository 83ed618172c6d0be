/**
 * The marketplace's traffic, as the simulator plays it against the real API: customers search
 * (50 reads to every write) and book realistic windows (hours to days, more of them on
 * weekends), cancel, extend, take trips that end early or late; hosts add vehicles, schedule
 * maintenance, upload bulk updates, report accidents; displaced customers weigh their offers.
 */
import type { Recorder } from './stats.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export { rng } from '../domain/random.ts';
import { pick } from '../domain/random.ts';
import { currencyExponent, minorRound } from '../domain/pricing.ts';

export interface Offer {
  id: string;
  vehicleId: string;
  category: string;
  distanceKm: number;
  incentive: { kind: string; amount: number };
}

export interface Api {
  /** One call; the recorder hears of it. Never throws: network failures answer status 0. */
  call(
    token: string,
    method: string,
    path: string,
    endpoint: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  token(role: 'customer' | 'host' | 'ops', sub: string, hostId?: string): Promise<string>;
}

export const CATEGORIES = ['hatchback', 'sedan', 'suv', 'premium', 'luxury'] as const;

export class Marketplace {
  readonly acknowledged = new Map<string, string>();
  readonly trips: Array<{ bookingId: string; customer: string; to: number; endAt: number }> = [];
  readonly funnel = {
    conflicts: 0,
    offered: 0,
    noAlternative: 0,
    accepted: 0,
    declined: 0,
    ignored: 0,
    lapsed: 0,
    acceptFailed: 0,
  };
  private readonly vehiclesByCity = new Map<string, string[]>();

  constructor(
    private readonly api: Api,
    private readonly recorder: Recorder,
    private readonly cities: readonly { id: string; center: { lat: number; lng: number }; currency: string }[],
    private readonly rand: () => number,
    private readonly customers: number,
  ) {}

  /** One marketplace step, chosen by weight: 50 reads to every write. */
  async step(): Promise<void> {
    const r = this.rand() * 51;
    if (r < 45) return this.search();
    if (r < 48) return this.readVehicle();
    if (r < 50) return this.readBooking();
    const w = this.rand();
    if (w < 0.5) return this.book();
    if (w < 0.6) return this.cancel();
    if (w < 0.7) return this.trip();
    if (w < 0.76) return this.extend();
    if (w < 0.84) return this.maintenance();
    if (w < 0.87) return this.accident();
    if (w < 0.93) return this.addVehicle();
    return this.bulkUpdate();
  }

  /** Trips whose time has come end: early, or late (a late return may displace the next booking). */
  async finishTrips(now: number, all = false): Promise<void> {
    const ending = this.trips.filter((t) => all || t.endAt <= now);
    this.trips.splice(0, this.trips.length, ...this.trips.filter((t) => !ending.includes(t)));
    for (const trip of ending) {
      const token = await this.api.token('customer', trip.customer);
      this.recorder.operation(now > trip.to ? 'trip.complete_late' : 'trip.complete_early');
      await this.api.call(
        token,
        'POST',
        `/v1/bookings/${trip.bookingId}/complete`,
        'POST /v1/bookings/{id}/complete',
        {},
      );
    }
  }

  /** A displaced customer weighs the offers: an upgrade or a near one tempts, a far one less. */
  async decide(bookingId: string, customer: string, offers: Offer[]): Promise<void> {
    const token = await this.api.token('customer', customer);
    const best = [...offers].sort((a, b) => appeal(b) - appeal(a))[0];
    const p = best ? appeal(best) : 0;
    const r = this.rand();
    if (best && r < p) {
      const res = await this.api.call(
        token,
        'POST',
        `/v1/bookings/${bookingId}/offers/${best.id}/accept`,
        'POST /v1/bookings/{id}/offers/{offerId}/accept',
        {},
      );
      if (res.status === 200) this.funnel.accepted++;
      else this.funnel.acceptFailed++;
      this.recorder.operation('offer.accept');
    } else if (r < p + (1 - p) * 0.7) {
      const res = await this.api.call(
        token,
        'POST',
        `/v1/bookings/${bookingId}/offers/decline`,
        'POST /v1/bookings/{id}/offers/decline',
        {},
      );
      if (res.status === 200) this.funnel.declined++;
      this.recorder.operation('offer.decline');
    } else {
      // Some never answer: their offers lapse.
      this.funnel.ignored++;
      this.recorder.operation('offer.ignore');
    }
  }

  private city() {
    return pick(this.cities, this.rand);
  }

  private customer(): string {
    return `sim-c${Math.floor(this.rand() * this.customers)}`;
  }

  /** A rental window: mostly hours, some days, a few a week; more starting on Fridays and Saturdays. */
  private window(): { from: number; to: number } {
    let start = 0;
    for (let tries = 0; tries < 4; tries++) {
      start = Math.ceil((Date.now() + HOUR) / HOUR) * HOUR + Math.floor(this.rand() * 30 * 24) * HOUR;
      const day = new Date(start).getUTCDay();
      if (day === 5 || day === 6 || this.rand() < 0.55) break;
    }
    const r = this.rand();
    const hours =
      r < 0.6
        ? 2 + Math.floor(this.rand() * 10)
        : r < 0.9
          ? 24 + Math.floor(this.rand() * 48)
          : 72 + Math.floor(this.rand() * 96);
    return { from: start, to: start + hours * HOUR };
  }

  private async search(): Promise<void> {
    const c = this.city();
    const w = this.window();
    const q = new URLSearchParams({ from: iso(w.from), to: iso(w.to) });
    if (this.rand() < 0.5) q.set('category', pick(CATEGORIES, this.rand));
    if (this.rand() < 0.3) q.set('orBetter', 'true');
    if (this.rand() < 0.5) {
      q.set(
        'near',
        `${(c.center.lat + (this.rand() - 0.5) * 0.2).toFixed(5)},${(c.center.lng + (this.rand() - 0.5) * 0.2).toFixed(5)}`,
      );
      q.set('sort', 'distance');
    }
    const token = await this.api.token('customer', this.customer());
    const r = await this.api.call(
      token,
      'GET',
      `/v1/cities/${c.id}/availability?${q}`,
      'GET /v1/cities/{city}/availability',
    );
    this.recorder.operation('search');
    const hits = (r.json.vehicles as Array<{ vehicleId: string }> | undefined) ?? [];
    if (hits.length) {
      const known = this.vehiclesByCity.get(c.id) ?? [];
      for (const h of hits.slice(0, 5))
        if (known.length < 5_000 && !known.includes(h.vehicleId)) known.push(h.vehicleId);
      this.vehiclesByCity.set(c.id, known);
    }
  }

  private async readVehicle(): Promise<void> {
    const v = this.knownVehicle();
    if (!v) return this.search();
    this.recorder.operation('vehicle.read');
    await this.api.call(
      await this.api.token('customer', this.customer()),
      'GET',
      `/v1/vehicles/${v}`,
      'GET /v1/vehicles/{id}',
    );
  }

  private async readBooking(): Promise<void> {
    const pick = this.someBooking();
    if (!pick) return this.search();
    this.recorder.operation('booking.read');
    await this.api.call(
      await this.api.token('customer', pick[1]),
      'GET',
      `/v1/bookings/${pick[0]}`,
      'GET /v1/bookings/{id}',
    );
  }

  /** One booking, as a customer of a booking storm makes it (search, pick, book). */
  bookOnce(): Promise<void> {
    return this.book();
  }

  /** Search, pick, then hold-and-book (checkout) or book at once. */
  private async book(): Promise<void> {
    const c = this.city();
    const w = this.window();
    const customer = this.customer();
    const token = await this.api.token('customer', customer);
    const found = await this.api.call(
      token,
      'GET',
      `/v1/cities/${c.id}/availability?${new URLSearchParams({ from: iso(w.from), to: iso(w.to), limit: '10' })}`,
      'GET /v1/cities/{city}/availability',
    );
    const hits = (found.json.vehicles as Array<{ vehicleId: string }> | undefined) ?? [];
    const pick = hits[Math.floor(this.rand() * hits.length)];
    if (!pick) return;
    this.recorder.operation('book');
    let r: { status: number; json: Record<string, unknown> };
    if (this.rand() < 0.5) {
      const hold = await this.api.call(token, 'POST', '/v1/holds', 'POST /v1/holds', {
        vehicleId: pick.vehicleId,
        from: iso(w.from),
        to: iso(w.to),
      });
      if (hold.status !== 201) return;
      r = await this.api.call(token, 'POST', '/v1/bookings', 'POST /v1/bookings', { holdId: hold.json.id });
    } else {
      r = await this.api.call(token, 'POST', '/v1/bookings', 'POST /v1/bookings', {
        vehicleId: pick.vehicleId,
        from: iso(w.from),
        to: iso(w.to),
      });
    }
    if (r.status === 201) this.acknowledged.set(String(r.json.id), customer);
  }

  private async cancel(): Promise<void> {
    const pick = this.someBooking();
    if (!pick) return this.book();
    this.recorder.operation('cancel');
    await this.api.call(
      await this.api.token('customer', pick[1]),
      'POST',
      `/v1/bookings/${pick[0]}/cancel`,
      'POST /v1/bookings/{id}/cancel',
      { reason: 'plans changed' },
    );
  }

  private async extend(): Promise<void> {
    const pick = this.someBooking();
    if (!pick) return this.book();
    const token = await this.api.token('customer', pick[1]);
    const b = await this.api.call(token, 'GET', `/v1/bookings/${pick[0]}`, 'GET /v1/bookings/{id}');
    if (b.status !== 200 || b.json.status !== 'confirmed') return;
    this.recorder.operation('extend');
    await this.api.call(token, 'POST', `/v1/bookings/${pick[0]}/extend`, 'POST /v1/bookings/{id}/extend', {
      to: iso(Date.parse(String(b.json.to)) + (1 + Math.floor(this.rand() * 6)) * HOUR),
    });
  }

  /**
   * A short-notice rental: booked from this minute, started at once, completed within the run —
   * early (an hours-long trip back after seconds), or late (a one-minute trip back after its end;
   * the next renter, booked right behind it, may be displaced).
   */
  private async trip(): Promise<void> {
    const c = this.city();
    const customer = this.customer();
    const token = await this.api.token('customer', customer);
    const late = this.rand() < 0.4;
    // This very minute may still be booked: a one-minute trip then ends within the run.
    const from = (late ? Math.floor : Math.ceil)(Date.now() / 60_000) * 60_000;
    const to = late ? from + 60_000 : from + (1 + Math.floor(this.rand() * 3)) * HOUR;
    const found = await this.api.call(
      token,
      'GET',
      `/v1/cities/${c.id}/availability?${new URLSearchParams({ from: iso(from), to: iso(to + HOUR), limit: '5' })}`,
      'GET /v1/cities/{city}/availability',
    );
    const pick = ((found.json.vehicles as Array<{ vehicleId: string }> | undefined) ?? [])[0];
    if (!pick) return;
    this.recorder.operation('trip.start');
    const b = await this.api.call(token, 'POST', '/v1/bookings', 'POST /v1/bookings', {
      vehicleId: pick.vehicleId,
      from: iso(from),
      to: iso(to),
    });
    if (b.status !== 201) return;
    this.acknowledged.set(String(b.json.id), customer);
    const s = await this.api.call(
      token,
      'POST',
      `/v1/bookings/${String(b.json.id)}/start`,
      'POST /v1/bookings/{id}/start',
      {},
    );
    if (s.status !== 200) return;
    this.trips.push({
      bookingId: String(b.json.id),
      customer,
      to,
      endAt: late ? to + 5_000 + this.rand() * 10_000 : Date.now() + 3_000 + this.rand() * 20_000,
    });
    if (late) {
      // Someone else books the car right after the turnaround: a late return lands on them.
      const next = this.customer();
      const after = to + 30 * 60_000;
      const r = await this.api.call(
        await this.api.token('customer', next),
        'POST',
        '/v1/bookings',
        'POST /v1/bookings',
        { vehicleId: pick.vehicleId, from: iso(after), to: iso(after + 2 * HOUR) },
      );
      if (r.status === 201) this.acknowledged.set(String(r.json.id), next);
    }
  }

  private async maintenance(): Promise<void> {
    const v = this.knownVehicle();
    if (!v) return this.search();
    const host = await this.hostOf(v);
    if (!host) return;
    const from = Math.ceil((Date.now() + this.rand() * 10 * DAY) / HOUR) * HOUR;
    this.recorder.operation('host.maintenance');
    await this.api.call(host, 'POST', `/v1/vehicles/${v}/blocks`, 'POST /v1/vehicles/{id}/blocks', {
      reason: 'maintenance',
      from: iso(from),
      to: iso(from + (4 + Math.floor(this.rand() * 44)) * HOUR),
      note: 'sim service',
    });
  }

  private async accident(): Promise<void> {
    const v = this.knownVehicle();
    if (!v) return this.search();
    const host = await this.hostOf(v);
    if (!host) return;
    this.recorder.operation('host.accident');
    await this.api.call(host, 'POST', `/v1/vehicles/${v}/blocks`, 'POST /v1/vehicles/{id}/blocks', {
      reason: 'accident',
      note: 'sim accident',
    });
  }

  private async addVehicle(): Promise<void> {
    const c = this.city();
    const hostId = `host-${c.id}-${1 + Math.floor(this.rand() * 10)}`;
    const token = await this.api.token('host', `sim-${hostId}`, hostId);
    this.recorder.operation('host.add_vehicle');
    const category = pick(CATEGORIES, this.rand, 1.6);
    const r = await this.api.call(token, 'POST', '/v1/vehicles', 'POST /v1/vehicles', {
      city: c.id,
      category,
      seats: category === 'suv' ? 7 : 5,
      make: 'Sim',
      model: 'Car',
      transmission: this.rand() < 0.6 ? 'automatic' : 'manual',
      fuel: 'petrol',
      location: { lat: c.center.lat + (this.rand() - 0.5) * 0.3, lng: c.center.lng + (this.rand() - 0.5) * 0.3 },
      // A whole number of the city's minor units (no fraction of a yen).
      pricePerHour: minorRound(5 + this.rand() * 30, currencyExponent(c.currency)),
    });
    if (r.status === 201) this.vehiclesByCity.get(c.id)?.push(String(r.json.id));
  }

  /** A host's bulk update: a maintenance day for several of its vehicles at once. */
  private async bulkUpdate(): Promise<void> {
    const c = this.city();
    const hostId = `host-${c.id}-${1 + Math.floor(this.rand() * 10)}`;
    const token = await this.api.token('host', `sim-${hostId}`, hostId);
    const fleet = await this.api.call(token, 'GET', `/v1/hosts/${hostId}/vehicles`, 'GET /v1/hosts/{hostId}/vehicles');
    const vehicles = ((fleet.json.vehicles as Array<{ id: string }> | undefined) ?? []).slice(0, 20);
    const [first] = vehicles;
    if (!first) return;
    const from = Math.ceil((Date.now() + (3 + this.rand() * 20) * DAY) / HOUR) * HOUR;
    this.recorder.operation('host.bulk_update');
    await this.api.call(token, 'POST', '/v1/blocks/batch', 'POST /v1/blocks/batch', {
      items: vehicles
        .filter(() => this.rand() < 0.3)
        .map((v) => ({ vehicleId: v.id, reason: 'maintenance', from: iso(from), to: iso(from + 6 * HOUR) }))
        .concat([
          { vehicleId: first.id, reason: 'maintenance', from: iso(from + DAY), to: iso(from + DAY + 2 * HOUR) },
        ]),
    });
  }

  private knownVehicle(): string | undefined {
    const list = this.vehiclesByCity.get(this.city().id);
    return list?.length ? list[Math.floor(this.rand() * list.length)] : undefined;
  }

  private someBooking(): [string, string] | undefined {
    if (this.acknowledged.size === 0) return undefined;
    const n = Math.floor(this.rand() * Math.min(this.acknowledged.size, 500));
    let i = 0;
    // The most recent few hundred: recent bookings are the ones customers touch.
    for (const e of [...this.acknowledged].slice(-500)) if (i++ === n) return e;
    return undefined;
  }

  private readonly hosts = new Map<string, string>();
  private async hostOf(vehicleId: string): Promise<string | undefined> {
    let hostId = this.hosts.get(vehicleId);
    if (!hostId) {
      const v = await this.api.call(
        await this.api.token('ops', 'sim-ops'),
        'GET',
        `/v1/vehicles/${vehicleId}`,
        'GET /v1/vehicles/{id}',
      );
      if (v.status !== 200) return undefined;
      hostId = String(v.json.hostId);
      this.hosts.set(vehicleId, hostId);
    }
    return this.api.token('host', `sim-${hostId}`, hostId);
  }
}

/** How likely a customer takes this offer: upgrades and credits tempt, distance puts off. */
export function appeal(o: Offer): number {
  const base = o.incentive.kind === 'free_upgrade' ? 0.85 : 0.65 + Math.min(0.1, o.incentive.amount / 250);
  return Math.max(0.05, Math.min(0.95, base - 0.03 * o.distanceKm));
}

const iso = (ms: number) => new Date(ms).toISOString();

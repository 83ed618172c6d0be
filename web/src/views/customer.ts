/**
 * A customer: search (city, window, category, a place picked on the map), hold then book, the
 * bookings with cancellation, and — live — a conflicted booking's offers to accept or decline.
 */
import { html, render } from 'lit';
import { api, liveFor, ok, type Client, type Session } from '../client.ts';
import type { Live } from '../live.ts';
import {
  CANCELLABLE,
  CATEGORIES,
  memberOf,
  type Booking,
  type Category,
  type City,
  type Hit,
  type Hold,
  type OffersDoc,
  type SearchQuery,
  type TripPhase,
} from '../types.ts';
import { cityMap, type MapPoint } from '../widgets/map.ts';
import {
  field,
  fromLocal,
  HOUR,
  localInput,
  money,
  nextHour,
  attempt,
  outcomeView,
  when,
  type Outcome,
} from '../ui.ts';

/** The bookings shown: current ones, and those that ended or were cancelled in the last day. */
const RECENT = 24 * HOUR;
const PAGE = 50;

/** The vehicles of a GBFS `vehicle_status.json` (GBFS 3: `data.vehicles[]` with `lat`/`lon`), as map points. */
function gbfsVehicles(doc: Record<string, unknown>): MapPoint[] {
  const data = doc.data;
  const vehicles = data && typeof data === 'object' && 'vehicles' in data ? data.vehicles : undefined;
  if (!Array.isArray(vehicles)) return [];
  return vehicles.flatMap((v: unknown) =>
    v &&
    typeof v === 'object' &&
    'vehicle_id' in v &&
    'lat' in v &&
    'lon' in v &&
    typeof v.lat === 'number' &&
    typeof v.lon === 'number'
      ? [{ id: String(v.vehicle_id), lat: v.lat, lng: v.lon }]
      : [],
  );
}

/** How each kind of alternative reads to the customer (the API's offer kinds, docs/conflicts.md). */
const KIND_LABEL: Record<string, string> = {
  upgrade: 'a class up ·',
  shifted: 'at another time ·',
  farther: 'delivered to you ·',
  downgrade: 'a class down ·',
  back_to_back: 'two cars, one after the other:',
};

export class CustomerView {
  private readonly client: Client;
  private readonly live: Live;
  private cities: City[] = [];
  private city = 'blr';
  private from = nextHour(2 * HOUR);
  private to = nextHour(2 * HOUR) + 4 * HOUR;
  private category: Category | '' = '';
  private near: { lat: number; lng: number } | undefined;
  private background: MapPoint[] = [];
  private hits: Hit[] = [];
  private hold: Hold | undefined;
  private bookings: Booking[] = [];
  /** More current bookings than one page of each phase: only the first are shown. */
  private more = false;
  private offers = new Map<string, OffersDoc>();
  private outcome: Outcome | undefined;
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(
    private readonly el: HTMLElement,
    session: Session,
  ) {
    this.client = api(session);
    this.live = liveFor(session);
    // Back after a drop: the booking topics resume after their last event, but a booking with no
    // event heard yet has no position to resume from, so the list and its offers are read again.
    this.live.onResume = () => void this.act(() => this.loadAll());
    this.live.onEvent = (topic, e) => {
      const id = topic.replace(/^booking:/, '');
      void this.act(async () => {
        await this.loadBookings();
        // A conflict's offers exist once `conflict.offers_ready` is heard (the resolver makes them
        // a moment after `booking.conflicted`); any other event may close them.
        if (e.type === 'conflict.offers_ready' || e.type === 'conflict.waiting') await this.loadOffers(id);
        else if (this.bookings.find((b) => b.id === id)?.status !== 'conflicted') this.offers.delete(id);
      });
    };
    // Offers lapse: their countdown moves every second.
    this.ticker = setInterval(() => this.offers.size && this.draw(), 1_000);
    void this.start();
  }

  stop(): void {
    this.live.close();
    clearInterval(this.ticker);
  }

  /** Runs an action and shows its outcome (a silent success keeps the last message). */
  private async act(run: () => Promise<string | void>): Promise<void> {
    this.outcome = (await attempt(run)) ?? this.outcome;
    this.draw();
  }

  private async start(): Promise<void> {
    await this.act(async () => {
      this.cities = (await ok(this.client.GET('/v1/cities'))).cities;
      this.city = this.cities.find((c) => c.id === 'blr')?.id ?? this.cities[0]?.id ?? '';
      await Promise.all([this.loadBackground(), this.loadAll()]);
    });
  }

  private async loadAll(): Promise<void> {
    await this.loadBookings();
    for (const b of this.bookings) await this.loadOffers(b.id);
  }

  /** The city's vehicles as GBFS publishes them: the map to pick a place on. */
  private async loadBackground(): Promise<void> {
    const doc = await ok(
      this.client.GET('/gbfs/{city}/{feed}', { params: { path: { city: this.city, feed: 'vehicle_status.json' } } }),
    );
    this.background = gbfsVehicles(doc);
  }

  /**
   * The bookings under way and to come, each phase asked of the API (however long the history),
   * then those that ended or were cancelled in the last day; the current ones are watched live.
   */
  private async loadBookings(): Promise<void> {
    const list = (when: TripPhase, from?: string) =>
      ok(
        this.client.GET('/v1/bookings', {
          params: { query: { when, limit: String(PAGE), ...(from ? { from } : {}) } },
        }),
      );
    const [active, upcoming, recent] = await Promise.all([
      list('active'),
      list('upcoming'),
      list('past', new Date(Date.now() - RECENT).toISOString()),
    ]);
    const current = [...active.bookings, ...upcoming.bookings];
    const shown = new Map<string, Booking>();
    // A booking that changed phase while the three were answered is shown once.
    for (const b of [...current, ...recent.bookings]) if (!shown.has(b.id)) shown.set(b.id, b);
    this.bookings = [...shown.values()];
    this.more = active.cursor !== null || upcoming.cursor !== null;
    for (const b of current) this.live.subscribe(`booking:${b.id}`);
  }

  private async loadOffers(bookingId: string): Promise<void> {
    const b = this.bookings.find((x) => x.id === bookingId);
    if (!b || b.status !== 'conflicted') {
      this.offers.delete(bookingId);
      return;
    }
    const r = await this.client.GET('/v1/bookings/{id}/offers', { params: { path: { id: bookingId } } });
    if (r.data && (r.data.status === 'open' || r.data.status === 'waiting')) this.offers.set(bookingId, r.data);
    else this.offers.delete(bookingId);
  }

  private search(): Promise<void> {
    return this.act(async () => {
      const query: SearchQuery = {
        from: new Date(this.from).toISOString(),
        to: new Date(this.to).toISOString(),
        limit: '20',
        sort: this.near ? 'distance' : 'price',
        ...(this.category ? { category: this.category } : {}),
        ...(this.near ? { near: `${this.near.lat.toFixed(5)},${this.near.lng.toFixed(5)}` } : {}),
      };
      const r = await ok(
        this.client.GET('/v1/cities/{city}/availability', { params: { path: { city: this.city }, query } }),
      );
      this.hits = r.vehicles;
      return `${r.vehicles.length} vehicle(s) free for that window.`;
    });
  }

  private holdVehicle(hit: Hit): Promise<void> {
    return this.act(async () => {
      this.hold = await ok(
        this.client.POST('/v1/holds', {
          body: {
            vehicleId: hit.vehicleId,
            from: new Date(this.from).toISOString(),
            to: new Date(this.to).toISOString(),
          },
        }),
      );
      return `Held ${hit.make} ${hit.model} until ${when(this.hold.expiresAt)}: book it to keep it.`;
    });
  }

  private book(): Promise<void> {
    return this.act(async () => {
      if (!this.hold) return;
      const b = await ok(this.client.POST('/v1/bookings', { body: { holdId: this.hold.id } }));
      this.hold = undefined;
      this.hits = [];
      await this.loadBookings();
      return `Booked: ${b.id}.`;
    });
  }

  private cancel(id: string): Promise<void> {
    return this.act(async () => {
      await ok(this.client.POST('/v1/bookings/{id}/cancel', { params: { path: { id } }, body: {} }));
      await this.loadBookings();
      return `Cancelled ${id}.`;
    });
  }

  private accept(bookingId: string, offerId: string): Promise<void> {
    return this.act(async () => {
      const b = await ok(
        this.client.POST('/v1/bookings/{id}/offers/{offerId}/accept', {
          params: { path: { id: bookingId, offerId } },
          body: {},
        }),
      );
      this.offers.delete(bookingId);
      await this.loadBookings();
      return `Moved to ${b.vehicleId}.`;
    });
  }

  private decline(bookingId: string): Promise<void> {
    return this.act(async () => {
      await ok(this.client.POST('/v1/bookings/{id}/offers/decline', { params: { path: { id: bookingId } }, body: {} }));
      this.offers.delete(bookingId);
      await this.loadBookings();
      return 'Declined: cancelled with a full refund.';
    });
  }

  private offerView(bookingId: string, rec: OffersDoc) {
    if (rec.status === 'waiting')
      return html`<section class="notice" role="alert" aria-labelledby="offer-${bookingId}">
        <h4 id="offer-${bookingId}">Booking ${bookingId} was displaced (${rec.cause})</h4>
        <p>No similar car is free yet: the first one freed is held for you and offered here, until
          ${rec.waitUntil ? when(rec.waitUntil) : 'shortly before your trip'}.</p>
      </section>`;
    const left = Math.max(0, Math.round((Date.parse(rec.expiresAt ?? '') - Date.now()) / 1000));
    return html`<section class="notice" role="alert" aria-labelledby="offer-${bookingId}">
      <h4 id="offer-${bookingId}">Booking ${bookingId} was displaced (${rec.cause})</h4>
      <p>Choose an alternative within ${Math.floor(left / 60)} min ${left % 60} s, or decline for a full refund.</p>
      <ul class="offers">${rec.offers.map(
        (o) => html`<li data-offer=${o.id}>${o.vehicleId} · ${o.category} · ${o.distanceKm.toFixed(1)} km away ·
          ${KIND_LABEL[o.kind ?? ''] ?? ''}
          ${o.legs ? html`then ${o.legs.vehicleId} (${o.legs.category}) from ${when(o.legs.at)} ·` : ''}
          ${o.incentive.kind === 'free_upgrade' ? 'free upgrade' : o.incentive.kind === 'refund' ? `refund and credit ${money(o.incentive.amount)}` : `credit ${money(o.incentive.amount)}`}
          ${o.from ? html` · ${when(o.from)}` : ''}
          <button type="button" @click=${() => this.accept(bookingId, o.id)}>Accept</button></li>`,
      )}</ul>
      <button type="button" @click=${() => this.decline(bookingId)}>Decline all</button>
    </section>`;
  }

  private draw(): void {
    const points: MapPoint[] = this.hits.length
      ? this.hits.map((h) => ({ id: h.vehicleId, lat: h.location.lat, lng: h.location.lng, status: 'available' }))
      : this.background;
    render(
      html`<main class="view customer">
        <h2>Find a car</h2>
        ${outcomeView(this.outcome)}
        ${[...this.offers].map(([id, rec]) => this.offerView(id, rec))}
        <form class="row wrap" @submit=${(e: SubmitEvent) => (e.preventDefault(), void this.search())}>
          ${field(
            'City',
            html`<select @change=${(e: Event) => {
              this.city = (e.target as HTMLSelectElement).value;
              this.near = undefined;
              this.hits = [];
              void this.act(() => this.loadBackground());
            }}>${this.cities.map((c) => html`<option value=${c.id} ?selected=${c.id === this.city}>${c.name}</option>`)}</select>`,
          )}
          ${field(
            'From',
            html`<input type="datetime-local" .value=${localInput(this.from)} @change=${(e: Event) => {
              this.from = Date.parse(fromLocal((e.target as HTMLInputElement).value));
            }} />`,
          )}
          ${field(
            'To',
            html`<input type="datetime-local" .value=${localInput(this.to)} @change=${(e: Event) => {
              this.to = Date.parse(fromLocal((e.target as HTMLInputElement).value));
            }} />`,
          )}
          ${field(
            'Category',
            html`<select @change=${(e: Event) => {
              const value = (e.target as HTMLSelectElement).value;
              this.category = value === '' ? '' : memberOf(CATEGORIES, value, 'category');
            }}>${['' as const, ...CATEGORIES].map((c) => html`<option value=${c} ?selected=${c === this.category}>${c || 'any'}</option>`)}</select>`,
          )}
          <button type="submit">Search</button>
        </form>
        <p class="muted">${this.near ? `Near ${this.near.lat.toFixed(4)}, ${this.near.lng.toFixed(4)} (click the map to move)` : 'Click the map to search near a place.'}</p>
        <div class="grid">
          ${cityMap(points, {
            title: `map of ${this.city}: click to choose a place`,
            onPick: (at) => {
              this.near = at;
              void this.search();
            },
            ...(this.near ? { marker: this.near } : {}),
          })}
          <section aria-labelledby="hits-h">
            <h3 id="hits-h">Results</h3>
            <ol class="hits">${this.hits.map(
              (h) => html`<li>${h.make} ${h.model} · ${h.category} · ${h.seats} seats · ${money(h.pricePerHour)}/h
                ${h.distanceKm !== undefined ? html` · ${h.distanceKm.toFixed(1)} km` : ''}
                <button type="button" @click=${() => this.holdVehicle(h)}>Hold</button></li>`,
            )}</ol>
            ${this.hold ? html`<p>Held ${this.hold.vehicleId} until ${when(this.hold.expiresAt)}. <button type="button" @click=${() => this.book()}>Book</button></p>` : ''}
          </section>
        </div>
        <section aria-labelledby="mine-h">
          <h3 id="mine-h">My bookings</h3>
          <table class="bookings">
            <thead><tr><th scope="col">Booking</th><th scope="col">Vehicle</th><th scope="col">When</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${this.bookings.map(
              (
                b,
              ) => html`<tr data-booking=${b.id}><td>${b.id}</td><td class="vehicle">${b.vehicleId}</td><td>${when(b.from)} → ${when(b.to)}</td>
                <td class="status">${b.status}</td>
                <td>${CANCELLABLE.includes(b.status) ? html`<button type="button" @click=${() => this.cancel(b.id)}>Cancel</button>` : ''}</td></tr>`,
            )}</tbody>
          </table>
          ${this.more ? html`<p class="muted">More than ${PAGE} current bookings: the first ${PAGE} of each kind are shown.</p>` : ''}
        </section>
      </main>`,
      this.el,
    );
  }
}

/**
 * Operations: every city's live counts, a live event feed, a city's map, its open conflicts and
 * their offers, the conflict funnel, utilization over time, the stores' health, and (admins) a
 * vehicle's or a booking's history with who did what (the audit trail).
 */
import { html, render } from 'lit';
import { api, liveFor, ok, type Client, type Session } from '../client.ts';
import type { Live } from '../live.ts';
import {
  VEHICLE_STATUSES,
  type AuditEntry,
  type CityCounts,
  type CityVehicle,
  type OffersDoc,
  type ReserveSlot,
} from '../types.ts';
import { drawUtilization } from '../widgets/chart.ts';
import { cityMap } from '../widgets/map.ts';
import { HOUR, outcomeOf, outcomeView, when, type Outcome } from '../ui.ts';

export class OpsView {
  private readonly client: Client;
  private readonly live: Live;
  private cities: CityCounts[] = [];
  private city = '';
  private feed: { topic: string; type: string; subject: string; time: string }[] = [];
  private vehicles: CityVehicle[] = [];
  private conflicts: OffersDoc[] = [];
  private reserve: ReserveSlot[] = [];
  private funnel: Record<string, number> = {};
  private health: Record<string, unknown> = {};
  private connected = false;
  private outcome: Outcome | undefined;
  private readonly timers: ReturnType<typeof setTimeout>[] = [];
  private pending: ReturnType<typeof setTimeout> | undefined;
  private readonly chart = document.createElement('div');
  private history: { subject: string; events: AuditEntry[] } | undefined;

  constructor(
    private readonly el: HTMLElement,
    private readonly session: Session,
  ) {
    this.client = api(session);
    this.live = liveFor(session);
    // Back after a drop: the city topics resume after their last event; the figures are read again.
    this.live.onResume = () => this.soon();
    this.live.onState = (c) => {
      this.connected = c;
      this.draw();
    };
    this.live.onEvent = (topic, e) => {
      this.feed = [{ topic, type: e.type, subject: e.subject, time: e.time }, ...this.feed].slice(0, 40);
      this.soon();
    };
    this.chart.className = 'chart';
    void this.load();
    this.timers.push(setInterval(() => void this.refreshSlow(), 5_000));
  }

  stop(): void {
    this.live.close();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.pending);
  }

  private async load(): Promise<void> {
    try {
      await this.refreshCounts();
      this.city = this.cities[0]?.city ?? '';
      for (const c of this.cities) this.live.subscribe(`city:${c.city}`);
      await Promise.all([this.refreshCity(), this.refreshSlow()]);
    } catch (err) {
      this.outcome = outcomeOf(err);
    }
    this.draw();
  }

  /** Events come in bursts: refresh what they change at most twice a second. */
  private soon(): void {
    this.draw();
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void Promise.all([this.refreshCounts(), this.refreshCity()])
        .catch((err: unknown) => {
          this.outcome = outcomeOf(err);
        })
        .then(() => this.draw());
    }, 500);
  }

  private async refreshCounts(): Promise<void> {
    this.cities = (await ok(this.client.GET('/v1/analytics/cities'))).cities;
  }

  private async refreshCity(): Promise<void> {
    if (!this.city) return;
    const params = { path: { city: this.city } };
    const [v, c, r] = await Promise.all([
      ok(this.client.GET('/v1/cities/{city}/vehicles', { params })),
      ok(this.client.GET('/v1/cities/{city}/conflicts', { params })),
      ok(this.client.GET('/v1/cities/{city}/reserve', { params })),
    ]);
    this.vehicles = v.vehicles;
    this.conflicts = c.conflicts;
    this.reserve = r.reserve;
  }

  /** PostgreSQL's figures (the funnel, utilization) and the stores' health. */
  private async refreshSlow(): Promise<void> {
    if (!this.city) return;
    const now = Date.now();
    try {
      const [funnel, utilization, ready] = await Promise.all([
        ok(
          this.client.GET('/v1/analytics/conflicts', {
            params: {
              query: {
                city: this.city,
                from: new Date(now - 7 * 24 * HOUR).toISOString(),
                to: new Date(now + HOUR).toISOString(),
              },
            },
          }),
        ),
        ok(
          this.client.GET('/v1/analytics/utilization', {
            params: {
              query: {
                city: this.city,
                from: new Date(Math.floor(now / HOUR) * HOUR - 24 * HOUR).toISOString(),
                to: new Date(Math.floor(now / HOUR) * HOUR + 24 * HOUR).toISOString(),
                granularity: 'hour',
              },
            },
          }),
        ),
        fetch('/readyz').then((r) => r.json() as Promise<Record<string, unknown>>),
      ]);
      const t = funnel.totals;
      this.funnel = {
        conflicts: t.conflicts,
        offered: t.offersMade,
        accepted: t.accepted,
        declined: t.declined,
        lapsed: t.lapsed,
        'no alternative': t.noAlternative,
        open: t.open,
      };
      this.health = ready;
      drawUtilization(this.chart, utilization.buckets);
    } catch (err) {
      this.outcome = outcomeOf(err);
    }
    this.draw();
  }

  /** The audit trail of one vehicle, hold, booking or block: every change, who made it, in which request. */
  private async showHistory(subject: string): Promise<void> {
    try {
      const r = await ok(this.client.GET('/v1/audit', { params: { query: { subject, limit: '100' } } }));
      this.history = { subject, events: r.events };
      this.outcome = undefined;
    } catch (err) {
      this.outcome = outcomeOf(err);
    }
    this.draw();
  }

  private historyView() {
    if (this.session.role !== 'admin')
      return html`<p class="muted">The audit trail is for admins: sign in with an admin token to see who did what.</p>`;
    const h = this.history;
    return html`<form class="row" @submit=${(e: SubmitEvent) => {
      e.preventDefault();
      const value = String(new FormData(e.target as HTMLFormElement).get('subject') ?? '').trim();
      if (value) void this.showHistory(value);
    }}>
        <label class="field"><span>Vehicle, hold, booking or block id</span><input name="subject" required maxlength="80" /></label>
        <button type="submit">Show history</button>
      </form>
      ${
        h
          ? html`<div class="scroll" tabindex="0" role="region" aria-label="history of ${h.subject}"><table class="history">
              <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Who</th><th scope="col">Request</th></tr></thead>
              <tbody>${h.events.map(
                (
                  e,
                ) => html`<tr data-type=${e.type}><td><time>${when(e.time)}</time></td><td><code>${e.type}</code> ${e.subject}</td>
                  <td>${e.actor ? html`${e.actor.sub} <span class="muted">(${e.actor.role})</span>` : html`<span class="muted">unknown</span>`}</td>
                  <td><code>${e.requestId ?? '—'}</code></td></tr>`,
              )}</tbody></table></div>
              ${h.events.length === 0 ? html`<p class="muted">No change recorded for ${h.subject} (yet: the trail is PostgreSQL's, a moment behind).</p>` : ''}`
          : ''
      }`;
  }

  private pick(city: string): void {
    this.city = city;
    void Promise.all([this.refreshCity(), this.refreshSlow()]).then(() => this.draw());
  }

  private draw(): void {
    render(
      html`<main class="view ops">
        <h2>Operations</h2>
        <p class="muted">Live: ${this.connected ? 'connected' : 'connecting…'}</p>
        ${outcomeView(this.outcome)}
        <section aria-labelledby="cities-h">
          <h3 id="cities-h">Cities</h3>
          <div class="scroll" tabindex="0" role="region" aria-label="live counts per city"><table class="counts">
            <thead><tr><th scope="col">City</th><th scope="col">Vehicles</th>${VEHICLE_STATUSES.map((s) => html`<th scope="col">${s}</th>`)}</tr></thead>
            <tbody>${this.cities.map(
              (c) => html`<tr class=${c.city === this.city ? 'selected' : ''} data-city=${c.city}>
                <th scope="row"><button type="button" class="link" @click=${() => this.pick(c.city)}>${c.city}</button></th>
                <td>${c.vehicles}</td>${VEHICLE_STATUSES.map((s) => html`<td data-status=${s}>${c.byStatus[s] ?? 0}</td>`)}</tr>`,
            )}</tbody>
          </table></div>
        </section>
        <div class="grid">
          <section aria-labelledby="map-h">
            <h3 id="map-h">Map of ${this.city}</h3>
            ${cityMap(
              this.vehicles.map((v) => ({ id: v.id, lat: v.location.lat, lng: v.location.lng, status: v.status })),
              { title: `vehicles of ${this.city} by status` },
            )}
          </section>
          <section aria-labelledby="feed-h">
            <h3 id="feed-h">Live events</h3>
            <ol class="feed" tabindex="0" aria-label="latest events">${this.feed.map((f) => html`<li><time>${f.time.slice(11, 19)}</time> <code>${f.type}</code> ${f.subject}</li>`)}</ol>
          </section>
        </div>
        <div class="grid">
          <section aria-labelledby="conf-h">
            <h3 id="conf-h">Open conflicts in ${this.city}</h3>
            ${this.conflicts.length === 0 ? html`<p class="muted">None open.</p>` : ''}
            <ul class="conflicts">${this.conflicts.map(
              (c) =>
                html`<li data-status=${c.status}><strong>${c.bookingId}</strong> (${c.cause}) — ${
                  c.status === 'waiting'
                    ? html`waiting for a car until ${c.waitUntil ? when(c.waitUntil) : '—'}`
                    : html`${c.offers.length} offer(s), until ${c.expiresAt ? when(c.expiresAt) : '—'}`
                }
                <ul>${c.offers.map((o) => html`<li>${o.vehicleId} · ${o.kind ?? o.category} · ${o.distanceKm.toFixed(1)} km · ${o.incentive.kind} ${o.incentive.amount}</li>`)}</ul></li>`,
            )}</ul>
            <p class="reserve" data-reserve=${this.reserve.length}>Conflict reserve: ${
              this.reserve.length === 0
                ? 'none held'
                : `${this.reserve.length} vehicle(s) kept back (${[...new Set(this.reserve.map((s) => `${s.category} ${s.area} ${when(s.hour)}`))].join('; ')})`
            }</p>
          </section>
          <section aria-labelledby="funnel-h">
            <h3 id="funnel-h">Conflict funnel (7 days)</h3>
            <dl class="funnel">${Object.entries(this.funnel).map(([k, v]) => html`<div data-stage=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>
          </section>
        </div>
        <section aria-labelledby="util-h"><h3 id="util-h">Utilization of ${this.city}</h3>${this.chart}</section>
        <section aria-labelledby="hist-h"><h3 id="hist-h">History: who did what</h3>${this.historyView()}</section>
        <section aria-labelledby="health-h">
          <h3 id="health-h">Stores and sync</h3>
          <pre class="health" tabindex="0">${JSON.stringify(this.health, null, 2)}</pre>
        </section>
      </main>`,
      this.el,
    );
  }
}

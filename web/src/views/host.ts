/**
 * A host's fleet: the vehicles, each one's calendar as a live timeline, adding vehicles (one, or
 * a CSV file through the batch API with a result per row), blocks, delisting, and iCalendar export
 * and import.
 */
import { html, render } from 'lit';
import { api, liveFor, ok, type Client, type Session } from '../client.ts';
import { parseCsv } from '../csv.ts';
import type { Live } from '../live.ts';
import {
  BLOCK_REASONS,
  CATEGORIES,
  FUELS,
  memberOf,
  members,
  TRANSMISSIONS,
  type BlockReason,
  type CalendarEntry,
  type City,
  type HostVehicle,
  type NewVehicle,
} from '../types.ts';
import { timeline } from '../widgets/timeline.ts';
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

type RowResult = { row: number; ok: boolean; text: string };

/**
 * The columns of a CSV of vehicles: the fields of `POST /v1/vehicles`, the location as lat and lng;
 * `pricePerDay` (the daily cap) may be added, and left empty for none.
 */
type CsvColumn = Exclude<keyof NewVehicle, 'location' | 'pricePerDay'> | 'lat' | 'lng';
const CSV_COLUMNS = members<CsvColumn>({
  city: true,
  category: true,
  seats: true,
  make: true,
  model: true,
  transmission: true,
  fuel: true,
  lat: true,
  lng: true,
  pricePerHour: true,
});
const REASON_LABEL: Record<BlockReason, string> = {
  maintenance: 'maintenance',
  accident: 'accident',
  host: 'host block',
};

/**
 * A CSV row as a batch item: every field of a new vehicle, as written (numbers read as numbers);
 * the batch API checks each item and answers for each.
 */
function vehicleItem(cells: Record<string, string>): Record<keyof NewVehicle, unknown> {
  const get = (k: CsvColumn) => cells[k] ?? '';
  return {
    city: get('city'),
    category: get('category'),
    seats: Number(get('seats')),
    make: get('make'),
    model: get('model'),
    transmission: get('transmission'),
    fuel: get('fuel'),
    location: { lat: Number(get('lat')), lng: Number(get('lng')) },
    pricePerHour: Number(get('pricePerHour')),
    pricePerDay: cells.pricePerDay ? Number(cells.pricePerDay) : undefined,
  };
}

export class HostView {
  private readonly client: Client;
  private readonly live: Live;
  private readonly hostId: string;
  private fleet: HostVehicle[] = [];
  private cities: City[] = [];
  private selected: string | undefined;
  private entries: CalendarEntry[] = [];
  private rows: RowResult[] = [];
  private outcome: Outcome | undefined;

  constructor(
    private readonly el: HTMLElement,
    session: Session,
  ) {
    this.client = api(session);
    this.hostId = session.hostId ?? '';
    this.live = liveFor(session);
    // Back after a drop: the vehicle topic resumes after its last event; the fleet is read again.
    this.live.onResume = () =>
      void this.act(async () => {
        await Promise.all([this.loadFleet(), this.loadCalendar()]);
      });
    this.live.onEvent = (topic) => {
      if (topic === `vehicle:${this.selected}`) void this.loadCalendar();
      void this.loadFleet();
    };
    void this.start();
  }

  stop(): void {
    this.live.close();
  }

  private async start(): Promise<void> {
    await this.act(async () => {
      this.cities = (await ok(this.client.GET('/v1/cities'))).cities;
      await this.loadFleet();
      this.select(this.fleet[0]?.id);
    });
  }

  /** Runs an action and shows its outcome (a silent success keeps the last message). */
  private async act(run: () => Promise<string | void>): Promise<void> {
    this.outcome = (await attempt(run)) ?? this.outcome;
    this.draw();
  }

  private async loadFleet(): Promise<void> {
    const r = await ok(this.client.GET('/v1/hosts/{hostId}/vehicles', { params: { path: { hostId: this.hostId } } }));
    this.fleet = r.vehicles;
    this.draw();
  }

  private select(id: string | undefined): void {
    this.selected = id;
    if (id) this.live.subscribe(`vehicle:${id}`);
    void this.act(() => this.loadCalendar());
  }

  private window() {
    const from = Math.floor(Date.now() / HOUR) * HOUR - 12 * HOUR;
    return { from, to: from + 8 * 24 * HOUR };
  }

  private async loadCalendar(): Promise<void> {
    if (!this.selected) return;
    const w = this.window();
    const r = await ok(
      this.client.GET('/v1/vehicles/{id}/calendar', {
        params: {
          path: { id: this.selected },
          query: { from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() },
        },
      }),
    );
    this.entries = r.entries;
    this.draw();
  }

  private addVehicle(form: HTMLFormElement): Promise<void> {
    const f = new FormData(form);
    return this.act(async () => {
      const v = await ok(
        this.client.POST('/v1/vehicles', {
          body: {
            city: String(f.get('city')),
            category: memberOf(CATEGORIES, f.get('category'), 'category'),
            seats: Number(f.get('seats')),
            make: String(f.get('make')),
            model: String(f.get('model')),
            transmission: memberOf(TRANSMISSIONS, f.get('transmission'), 'gearbox'),
            fuel: memberOf(FUELS, f.get('fuel'), 'fuel'),
            location: { lat: Number(f.get('lat')), lng: Number(f.get('lng')) },
            pricePerHour: Number(f.get('price')),
          },
        }),
      );
      await this.loadFleet();
      this.select(v.id);
      return `Added ${v.make} ${v.model} (${v.id}).`;
    });
  }

  /**
   * A CSV of vehicles (csv.ts; header: the batch fields) through the batch API: a result per row,
   * the rows the CSV itself spoils (an open quote, missing cells) among them, never sent.
   */
  private async bulkAdd(file: File): Promise<void> {
    const table = parseCsv(await file.text());
    const missing = CSV_COLUMNS.filter((c) => !table.header.includes(c));
    if (missing.length) {
      this.outcome = { kind: 'error', text: `The CSV lacks the columns: ${missing.join(', ')}` };
      return this.draw();
    }
    const spoilt: RowResult[] = table.problems.map((p) => ({ row: p.row, ok: false, text: p.text }));
    await this.act(async () => {
      const items = table.records.map((r) => vehicleItem(r.cells));
      const r = items.length ? await ok(this.client.POST('/v1/vehicles/batch', { body: { items } })) : { results: [] };
      const sent: RowResult[] = r.results.map((x) => ({
        row: table.records[x.index]?.row ?? x.index + 2,
        ok: x.ok,
        text: x.ok ? `added ${x.id ?? ''}` : `${x.detail ?? 'refused'} (${x.code ?? x.status})`,
      }));
      this.rows = [...sent, ...spoilt].sort((a, b) => a.row - b.row);
      await this.loadFleet();
      const added = sent.filter((x) => x.ok).length;
      return `${added} of ${items.length + spoilt.length} rows added.`;
    });
  }

  private block(form: HTMLFormElement): Promise<void> {
    const f = new FormData(form);
    return this.act(async () => {
      const reason = memberOf(BLOCK_REASONS, f.get('reason'), 'reason');
      if (!this.selected) throw new Error('Choose a vehicle first.');
      const b = await ok(
        this.client.POST('/v1/vehicles/{id}/blocks', {
          params: { path: { id: this.selected } },
          body: {
            reason,
            ...(f.get('from') ? { from: fromLocal(String(f.get('from'))) } : {}),
            ...(reason !== 'accident' || f.get('to') ? { to: fromLocal(String(f.get('to'))) } : {}),
          },
        }),
      );
      await this.loadCalendar();
      return `Blocked (${b.reason}) from ${when(b.from)}.`;
    });
  }

  private unblock(blockId: string): Promise<void> {
    return this.act(async () => {
      if (!this.selected) return;
      await ok(
        this.client.DELETE('/v1/vehicles/{id}/blocks/{blockId}', { params: { path: { id: this.selected, blockId } } }),
      );
      await this.loadCalendar();
      return 'Block removed.';
    });
  }

  private listing(action: 'delist' | 'relist'): Promise<void> {
    return this.act(async () => {
      if (!this.selected) return;
      const params = { params: { path: { id: this.selected } }, body: {} };
      const v = await ok(
        action === 'delist'
          ? this.client.POST('/v1/vehicles/{id}/delist', params)
          : this.client.POST('/v1/vehicles/{id}/relist', params),
      );
      await this.loadFleet();
      return `${v.id} is ${v.listing}.`;
    });
  }

  /** The calendar as iCalendar, saved through a download link (the request carries the token). */
  private exportIcs(): Promise<void> {
    return this.act(async () => {
      if (!this.selected) return;
      const ics = await ok(
        this.client.GET('/v1/vehicles/{id}/calendar.ics', { params: { path: { id: this.selected } }, parseAs: 'blob' }),
      );
      const a = document.createElement('a');
      a.href = URL.createObjectURL(ics);
      a.download = `${this.selected}.ics`;
      a.click();
      return 'Calendar exported.';
    });
  }

  private importIcs(file: File): Promise<void> {
    return this.act(async () => {
      if (!this.selected) return;
      const r = await ok(
        this.client.POST('/v1/vehicles/{id}/calendar', {
          params: { path: { id: this.selected } },
          headers: { 'content-type': 'text/calendar' },
          body: await file.text(),
          bodySerializer: (text) => text,
        }),
      );
      await this.loadCalendar();
      return `Imported ${r.imported} event(s) as blocks (${r.failed} refused).`;
    });
  }

  private draw(): void {
    const vehicle = this.fleet.find((v) => v.id === this.selected);
    const turnaround = (this.cities.find((c) => c.id === vehicle?.city)?.turnaroundMinutes ?? 30) * 60_000;
    const start = nextHour();
    render(
      html`<main class="view host">
        <h2>Fleet of ${this.hostId}</h2>
        ${outcomeView(this.outcome)}
        <div class="grid">
          <section aria-labelledby="fleet-h">
            <h3 id="fleet-h">Vehicles (${this.fleet.length})</h3>
            <div class="scroll" tabindex="0" role="region" aria-label="vehicles of the fleet"><table>
              <thead><tr><th scope="col">Vehicle</th><th scope="col">City</th><th scope="col">Status</th><th scope="col">Price/h</th></tr></thead>
              <tbody>${this.fleet.map(
                (v) => html`<tr class=${v.id === this.selected ? 'selected' : ''}>
                  <th scope="row"><button type="button" class="link" @click=${() => this.select(v.id)}>${v.make} ${v.model}</button><br /><small>${v.id}</small></th>
                  <td>${v.city}</td><td>${v.listing === 'active' ? v.status : v.listing}</td><td>${money(v.pricePerHour)}</td></tr>`,
              )}</tbody>
            </table></div>
          </section>
          <section aria-labelledby="cal-h">
            <h3 id="cal-h">Calendar ${vehicle ? `of ${vehicle.make} ${vehicle.model}` : ''}</h3>
            ${vehicle ? timeline(this.entries, this.window(), turnaround, `calendar of ${vehicle.id}`) : html`<p class="muted">Choose a vehicle.</p>`}
            <ul class="entries">${this.entries.map(
              (
                e,
              ) => html`<li data-kind=${e.kind}>${e.kind} · ${e.status} · ${when(e.from)} → ${e.to ? when(e.to) : 'open'}
                ${e.kind === 'block' && e.status === 'active' ? html`<button type="button" @click=${() => this.unblock(e.id)}>Unblock</button>` : ''}</li>`,
            )}</ul>
            <form class="row" @submit=${(e: SubmitEvent) => (e.preventDefault(), void this.block(e.target as HTMLFormElement))}>
              ${field('Reason', html`<select name="reason">${BLOCK_REASONS.map((r) => html`<option value=${r}>${REASON_LABEL[r]}</option>`)}</select>`)}
              ${field('From', html`<input type="datetime-local" name="from" .value=${localInput(start)} />`)}
              ${field('To', html`<input type="datetime-local" name="to" .value=${localInput(start + 4 * HOUR)} />`)}
              <button type="submit">Block</button>
            </form>
            <div class="row">
              <button type="button" @click=${() => this.listing('delist')}>Delist</button>
              <button type="button" @click=${() => this.listing('relist')}>Relist</button>
              <button type="button" @click=${() => this.exportIcs()}>Export iCalendar</button>
              ${field(
                'Import iCalendar',
                html`<input type="file" accept=".ics,text/calendar" @change=${(e: Event) => {
                  const file = (e.target as HTMLInputElement).files?.[0];
                  if (file) void this.importIcs(file);
                }} />`,
              )}
            </div>
          </section>
        </div>
        <section aria-labelledby="add-h">
          <h3 id="add-h">Add a vehicle</h3>
          <form class="row wrap" @submit=${(e: SubmitEvent) => (e.preventDefault(), void this.addVehicle(e.target as HTMLFormElement))}>
            ${field('City', html`<select name="city">${this.cities.map((c) => html`<option value=${c.id}>${c.name}</option>`)}</select>`)}
            ${field('Category', html`<select name="category">${CATEGORIES.map((c) => html`<option>${c}</option>`)}</select>`)}
            ${field('Seats', html`<input name="seats" type="number" min="1" max="60" value="5" required />`)}
            ${field('Make', html`<input name="make" required value="Toyota" />`)}
            ${field('Model', html`<input name="model" required value="Corolla" />`)}
            ${field('Gearbox', html`<select name="transmission">${TRANSMISSIONS.map((t) => html`<option>${t}</option>`)}</select>`)}
            ${field('Fuel', html`<select name="fuel">${FUELS.map((f) => html`<option>${f}</option>`)}</select>`)}
            ${field('Latitude', html`<input name="lat" type="number" step="any" value="12.97" required />`)}
            ${field('Longitude', html`<input name="lng" type="number" step="any" value="77.59" required />`)}
            ${field('Price per hour', html`<input name="price" type="number" step="0.01" min="0" value="12" required />`)}
            <button type="submit">Add vehicle</button>
          </form>
          ${field(
            'Bulk add from CSV',
            html`<input type="file" accept=".csv,text/csv" @change=${(e: Event) => {
              const file = (e.target as HTMLInputElement).files?.[0];
              if (file) void this.bulkAdd(file);
            }} />`,
          )}
          <p class="muted">Columns: ${CSV_COLUMNS.join(', ')}</p>
          ${
            this.rows.length
              ? html`<table class="rows"><thead><tr><th scope="col">Row</th><th scope="col">Result</th></tr></thead>
                  <tbody>${this.rows.map((r) => html`<tr class=${r.ok ? 'ok' : 'error'}><td>${r.row}</td><td>${r.text}</td></tr>`)}</tbody></table>`
              : ''
          }
        </section>
      </main>`,
      this.el,
    );
  }
}

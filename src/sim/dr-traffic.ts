/** A disaster drill's customers: marketplace traffic on both regions, bursts of bookings, the RTO probe. */
import { setTimeout as sleep } from 'node:timers/promises';
import { mintToken } from '../api/auth.ts';
import { percentile, round } from './stats.ts';
import { inTurn } from '../domain/random.ts';

/** The drill's token secret: its services verify what its customers present. */
export const SECRET = 'fleet-dr-drill-secret-of-32-bytes-or-more';
const HOUR = 3_600_000;

export interface BurstFigures {
  bookings: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Region b's p99 before the loss, while a's cities fail over, and while a is down. */
export interface PhaseP99 {
  baselineMs: number;
  failoverMs: number;
  outageMs: number;
}

export interface Sample {
  region: 'a' | 'b';
  op: 'search' | 'book';
  /** Before the kill; from the kill until a's cities take bookings again; after that, a still down. */
  phase: 'baseline' | 'failover' | 'outage';
  ms: number;
  ok: boolean;
}

export interface Ack {
  id: string;
  at: number;
  customer: string;
}

const secretKey = new TextEncoder().encode(SECRET);
export async function customerHeaders(sub: string): Promise<Record<string, string>> {
  return {
    authorization: `Bearer ${await mintToken(secretKey, { sub, role: 'customer' })}`,
    'content-type': 'application/json',
  };
}

/** fetch that follows a region's 307 with its credentials (fetch drops them across origins). */
async function call(url: string, init: RequestInit): Promise<Response> {
  let target = url;
  for (let hop = 0; hop < 3; hop++) {
    const res = await fetch(target, { ...init, redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    const next = res.headers.get('location');
    if (res.status !== 307 || !next) return res;
    await res.arrayBuffer();
    target = new URL(next, target).toString();
  }
  return fetch(target, { ...init, signal: AbortSignal.timeout(15_000) });
}

export async function freeVehicle(
  base: string,
  city: string,
  headers: Record<string, string>,
  aheadMs: number,
): Promise<{ id: string; from: number } | undefined> {
  const from = Math.ceil((Date.now() + aheadMs) / HOUR) * HOUR;
  const q = `from=${new Date(from).toISOString()}&to=${new Date(from + HOUR).toISOString()}&limit=5`;
  const r = await call(`${base}/v1/cities/${city}/availability?${q}`, { headers });
  if (r.status !== 200) {
    await r.arrayBuffer();
    return undefined;
  }
  const hits = ((await r.json()) as { vehicles: { vehicleId: string }[] }).vehicles;
  const hit = hits[Math.floor(Math.random() * hits.length)];
  return hit ? { id: hit.vehicleId, from } : undefined;
}

export function book(
  base: string,
  headers: Record<string, string>,
  vehicleId: string,
  from: number,
): Promise<Response> {
  return call(`${base}/v1/bookings`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ vehicleId, from: new Date(from).toISOString(), to: new Date(from + HOUR).toISOString() }),
  });
}

/** `concurrency` customers booking as fast as they can on one region, for `ms`. */
export async function bookingBurst(
  base: string,
  cities: string[],
  concurrency: number,
  ms: number,
  tag: string,
): Promise<BurstFigures> {
  const latencies: number[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      const headers = await customerHeaders(`${tag}-${c}`);
      for (let k = 0; Date.now() < until; k++) {
        const city = inTurn(cities, c + k);
        // Far apart in time: every booking finds its window free.
        const vehicle = await freeVehicle(base, city, headers, (400 + c * 500 + k * 3) * HOUR).catch(() => undefined); // a region away: the next try
        if (!vehicle) continue;
        const started = performance.now();
        const r = await book(base, headers, vehicle.id, vehicle.from).catch(() => undefined); // a region away: not counted as booked
        if (r?.status === 201) latencies.push(performance.now() - started);
        await r?.arrayBuffer();
      }
    }),
  );
  latencies.sort((x, y) => x - y);
  return {
    bookings: latencies.length,
    perSecond: round(latencies.length / (ms / 1000)),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

/** Open-loop marketplace traffic on both regions: searches and bookings of their own cities. */
export class Traffic {
  phase: Sample['phase'] = 'baseline';
  readonly samples: Sample[] = [];
  readonly acks: Record<'a' | 'b', Ack[]> = { a: [], b: [] };
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly direct: Record<'a' | 'b', string>,
    private readonly bUrl: string,
    private readonly cities: Record<'a' | 'b', string[]>,
    private readonly rate: number,
    private readonly tag: string,
  ) {}

  start(phase: Sample['phase']): void {
    this.phase = phase;
    this.running = true;
    // a's customers keep coming; once a is lost they come through b (307 to the standby deployment).
    this.loops = (['a', 'b'] as const).flatMap((region) => Array.from({ length: 4 }, (_, w) => this.loop(region, w)));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private base(region: 'a' | 'b'): string {
    return region === 'a' && this.phase !== 'baseline' ? this.bUrl : this.direct[region];
  }

  private async loop(region: 'a' | 'b', worker: number): Promise<void> {
    const customer = `${this.tag}-${region}-${worker}`;
    const headers = await customerHeaders(customer);
    const cities = this.cities[region];
    const everyMs = (4 * 1000) / this.rate;
    for (let k = 0; this.running; k++) {
      const next = Date.now() + everyMs;
      const city = inTurn(cities, worker + k);
      const phase = this.phase;
      const started = performance.now();
      let ok = false;
      // Region a books heavily (half its operations), so that its loss catches bookings in flight.
      const isBooking = region === 'a' ? k % 2 === 1 : k % 5 === 4;
      try {
        const vehicle = await freeVehicle(this.base(region), city, headers, (20 + worker * 300 + k) * HOUR);
        ok = vehicle !== undefined;
        if (isBooking && vehicle) {
          const bookStarted = performance.now();
          const r = await book(this.base(region), headers, vehicle.id, vehicle.from);
          const body = (await r.json()) as { id?: string };
          if (r.status === 201 && body.id) this.acks[region].push({ id: body.id, at: Date.now(), customer });
          this.samples.push({ region, op: 'book', phase, ms: performance.now() - bookStarted, ok: r.status < 500 });
        }
      } catch {
        ok = false;
      }
      this.samples.push({ region, op: 'search', phase, ms: performance.now() - started, ok });
      await sleep(Math.max(0, next - Date.now()));
    }
  }

  p99Of(region: 'a' | 'b'): PhaseP99 {
    const of = (phase: Sample['phase']) =>
      this.samples
        .filter((s) => s.region === region && s.phase === phase && s.ok)
        .map((s) => s.ms)
        .sort((x, y) => x - y);
    return {
      baselineMs: round(percentile(of('baseline'), 99)),
      failoverMs: round(percentile(of('failover'), 99)),
      outageMs: round(percentile(of('outage'), 99)),
    };
  }
}

/** Books through region b (following the 307 with the token) until one of a's cities takes a booking. */
export async function firstBookingThrough(b: string, aCities: string[], deadline: number): Promise<number | undefined> {
  const headers = await customerHeaders('rto-probe');
  let k = 0;
  while (Date.now() < deadline) {
    const city = inTurn(aCities, k++);
    const vehicle = await freeVehicle(b, city, headers, 200 * HOUR + k * 2 * HOUR).catch(() => undefined); // a's cities not served yet: asked again
    if (vehicle) {
      const r = await book(b, headers, vehicle.id, vehicle.from).catch(() => undefined); // a's cities not served yet: asked again
      if (r?.status === 201) return Date.now();
    }
    await sleep(250);
  }
  return undefined;
}

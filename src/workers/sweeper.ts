/**
 * The sweeper: lapsed holds expire and statuses follow the clock (a trip window opens, a block
 * ends) in every city, every `intervalMs`. Any number of processes may run it: the script decides
 * by the server's clock, so two sweeps of one vehicle change it once.
 */
import type { Logger } from 'pino';
import type { Inventory } from '../services/inventory.ts';
import { systemActor, withCallContext } from '../redis/call-context.ts';

/** One pass over every city: drain each city's due vehicles batch by batch. */
export async function sweepAllCities(inventory: Inventory, batch = 200, shouldStop: () => boolean = () => false) {
  let vehicles = 0;
  let expired = 0;
  for (const city of inventory.cities.all()) {
    for (;;) {
      const r = await inventory.sweepCity(city.id, batch);
      vehicles += r.vehicles;
      expired += r.expired;
      if (r.vehicles < batch || shouldStop()) break; // a short batch: nothing more is due
    }
  }
  return { vehicles, expired };
}

export interface Sweeper {
  stop(): Promise<void>;
  /** One pass over every city now (tests, CLI). */
  sweepOnce(): Promise<{ vehicles: number; expired: number }>;
}

/** Trimming of past, final calendar entries (architecture.md §3), once PostgreSQL has them. */
export interface TrimOptions {
  everyMs: number;
  /** Entries whose window ended longer ago than this may leave Redis. */
  retentionMs: number;
  /** Every change of the city before this instant is in PostgreSQL (see syncedThrough in sync.ts). */
  syncedThrough: (city: string) => Promise<number>;
}

export async function trimAllCities(inventory: Inventory, trim: Omit<TrimOptions, 'everyMs'>): Promise<number> {
  let removed = 0;
  for (const city of inventory.cities.all()) {
    removed += await inventory.trimCity(city.id, Date.now() - trim.retentionMs, await trim.syncedThrough(city.id));
  }
  return removed;
}

export function startSweeper(
  inventory: Inventory,
  opts: { intervalMs: number; batch?: number; log?: Logger; trim?: TrimOptions },
): Sweeper {
  const batch = opts.batch ?? 200;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let lastTrim = 0;

  // Holds that lapse and trips that move with the clock are the sweeper's doing (the audit trail).
  const sweepOnce = () =>
    withCallContext({ actor: systemActor('sweeper') }, () => sweepAllCities(inventory, batch, () => stopped));
  const maybeTrim = async () => {
    if (!opts.trim || stopped || Date.now() - lastTrim < opts.trim.everyMs) return;
    lastTrim = Date.now();
    const removed = await trimAllCities(inventory, opts.trim);
    if (removed > 0) opts.log?.info({ removed }, 'past calendar entries trimmed from Redis (PostgreSQL keeps them)');
  };

  const tick = () => {
    running = sweepOnce()
      .then(async (r) => {
        await maybeTrim();
        return r;
      })
      .then((r) => {
        if (r.expired > 0) opts.log?.debug(r, 'sweep');
      })
      .catch((err: unknown) => opts.log?.error({ err }, 'sweep failed; retrying next tick'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, opts.intervalMs);
      });
  };
  timer = setTimeout(tick, 0);

  return {
    sweepOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

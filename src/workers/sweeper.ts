/**
 * The sweeper: lapsed holds expire and statuses follow the clock (a trip window opens, a block
 * ends) in every city, every `intervalMs`. Any number of processes may run it: the script decides
 * by the server's clock, so two sweeps of one vehicle change it once.
 */
import type { Logger } from 'pino';
import type { Inventory } from '../services/inventory.ts';

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

export function startSweeper(inventory: Inventory, opts: { intervalMs: number; batch?: number; log?: Logger }): Sweeper {
  const batch = opts.batch ?? 200;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();

  const sweepOnce = () => sweepAllCities(inventory, batch, () => stopped);

  const tick = () => {
    running = sweepOnce()
      .then((r) => { if (r.expired > 0) opts.log?.debug(r, 'sweep'); })
      .catch((err: unknown) => opts.log?.error({ err }, 'sweep failed; retrying next tick'))
      .finally(() => { if (!stopped) timer = setTimeout(tick, opts.intervalMs); });
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

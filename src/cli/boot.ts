/**
 * Start-up steps that need a store. A long-running process (`fleet serve`, `fleet worker`) that
 * starts while Redis or PostgreSQL is away waits for it, with back-off, and says so: a supervisor
 * expects a starting service to become ready when its stores come back, not to exit, and never to
 * stay up half-started. Any other failure (a bad configuration, a bug) is thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { messageOf, storeUnreachable } from '../domain/errors.ts';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

export async function whenStoresAnswer<T>(what: string, step: () => Promise<T>, log: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!storeUnreachable(err)) throw err;
      const retryInMs = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
      log.warn({ err: messageOf(err), attempt, retryInMs }, `${what}: a store is unreachable; waiting for it`);
      await sleep(retryInMs);
    }
  }
}

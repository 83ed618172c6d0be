/** `fleet trim`: past, final calendar entries leave Redis once PostgreSQL has them (CALENDAR_RETENTION_MS). */
import { trimAllCities } from '../../workers/sweeper.ts';
import { syncedThrough } from '../../workers/sync.ts';
import { print, type Command } from '../context.ts';

export const trimCommand: Command = {
  name: 'trim',
  async run({ config, inventory, redis }) {
    const removed = await trimAllCities(inventory, {
      retentionMs: config.CALENDAR_RETENTION_MS,
      syncedThrough: (city) => syncedThrough(redis, city),
    });
    print({ removed });
  },
};

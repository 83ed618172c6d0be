/** `fleet lag`: events not yet in PostgreSQL, per city. */
import { cityLag } from '../../workers/sync.ts';
import { print, type Command } from '../context.ts';

export const lagCommand: Command = {
  name: 'lag',
  async run({ inventory, redis }) {
    print(await Promise.all(inventory.cities.all().map((c) => cityLag(redis, c.id))));
  },
};

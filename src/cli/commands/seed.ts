/** `fleet seed [--vehicles-per-city N] [--city X]`: demo fleets for empty cities. */
import { print, type Command } from '../context.ts';
import { seedAll } from '../wiring.ts';

export const seedCommand: Command = {
  name: 'seed',
  async run({ inventory, redis, opt }) {
    print(await seedAll(inventory, redis, Number(opt['vehicles-per-city'] ?? 200), opt.city));
  },
};

/** `fleet counters --city X`: live counts by status and category. */
import { readCityCounts } from '../../redis/counters.ts';
import { need, print, type Command } from '../context.ts';

export const countersCommand: Command = {
  name: 'counters',
  async run({ redis, opt }) {
    print(await readCityCounts(redis, need('--city', opt.city)));
  },
};

/** `fleet events --city X [--after ID] [--limit N]`: the city's event stream. */
import { readStream } from '../../redis/events.ts';
import { need, print, type Command } from '../context.ts';

export const eventsCommand: Command = {
  name: 'events',
  async run({ redis, opt }) {
    print(await readStream(redis, need('--city', opt.city), opt.after ?? '0-0', Number(opt.limit ?? 50)));
  },
};

/** `fleet sweep`: expire lapsed holds and move statuses with the clock, once. */
import { sweepAllCities } from '../../workers/sweeper.ts';
import { print, type Command } from '../context.ts';

export const sweepCommand: Command = {
  name: 'sweep',
  async run({ inventory }) {
    print(await sweepAllCities(inventory));
  },
};

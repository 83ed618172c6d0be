/** `fleet offers <bookingId>`: a conflicted booking's offers. */
import { need, print, type Command } from '../context.ts';
import { conflictDesk } from '../wiring.ts';

export const offersCommand: Command = {
  name: 'offers',
  async run({ config, inventory, redis, arg }) {
    print(await conflictDesk(config, inventory, redis).offersOf(need('bookingId', arg)));
  },
};

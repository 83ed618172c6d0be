/** `fleet decline <bookingId>`: decline every offer (cancelled, full refund). */
import { need, print, type Command } from '../context.ts';
import { conflictDesk } from '../wiring.ts';

export const declineCommand: Command = {
  name: 'decline',
  async run({ config, inventory, redis, arg, idem }) {
    print(await conflictDesk(config, inventory, redis).decline(need('bookingId', arg), undefined, idem));
  },
};

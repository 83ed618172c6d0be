/** `fleet accept <bookingId> --offer O`: take an offer for the customer (the booking moves). */
import { need, print, type Command } from '../context.ts';
import { conflictDesk } from '../wiring.ts';

export const acceptCommand: Command = {
  name: 'accept',
  async run({ config, inventory, redis, arg, opt, idem }) {
    print(
      await conflictDesk(config, inventory, redis).accept(
        need('bookingId', arg),
        need('--offer', opt.offer),
        undefined,
        idem,
      ),
    );
  },
};

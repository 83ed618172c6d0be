/** `fleet extend <bookingId> --to T [--force]`: a longer booking (forced: over later bookings, which become conflicts). */
import { need, print, time, type Command } from '../context.ts';

export const extendCommand: Command = {
  name: 'extend',
  async run({ inventory, arg, opt, idem }) {
    print(
      await inventory.extendBooking(need('bookingId', arg), undefined, time('to', opt.to), opt.force ?? false, idem),
    );
  },
};

/** `fleet cancel <bookingId>`: cancel a booking (as ops). */
import { need, print, type Command } from '../context.ts';

export const cancelCommand: Command = {
  name: 'cancel',
  async run({ inventory, arg, idem }) {
    print(await inventory.cancelBooking(need('bookingId', arg), undefined, 'ops', idem));
  },
};

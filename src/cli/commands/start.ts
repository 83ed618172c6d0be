/** `fleet start <bookingId>`: start the trip (pickup). */
import { need, print, type Command } from '../context.ts';

export const startCommand: Command = {
  name: 'start',
  async run({ inventory, arg, idem }) {
    print(await inventory.startTrip(need('bookingId', arg), undefined, idem));
  },
};

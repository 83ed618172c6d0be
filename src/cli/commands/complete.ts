/** `fleet complete <bookingId>`: complete the trip (return). */
import { need, print, type Command } from '../context.ts';

export const completeCommand: Command = {
  name: 'complete',
  async run({ inventory, arg, idem }) {
    print(await inventory.completeTrip(need('bookingId', arg), undefined, idem));
  },
};

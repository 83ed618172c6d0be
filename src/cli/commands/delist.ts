/** `fleet delist <vehicleId>`: take a vehicle off the market (its bookings become conflicts). */
import { need, print, type Command } from '../context.ts';

export const delistCommand: Command = {
  name: 'delist',
  async run({ inventory, arg, idem }) {
    print(await inventory.delist(need('vehicleId', arg), 'cli', idem));
  },
};

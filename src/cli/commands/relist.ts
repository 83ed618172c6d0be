/** `fleet relist <vehicleId>`: put a vehicle back on the market. */
import { need, print, type Command } from '../context.ts';

export const relistCommand: Command = {
  name: 'relist',
  async run({ inventory, arg, idem }) {
    print(await inventory.relist(need('vehicleId', arg), 'cli', idem));
  },
};

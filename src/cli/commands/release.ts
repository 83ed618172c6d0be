/** `fleet release <holdId>`: release a hold. */
import { need, print, type Command } from '../context.ts';

export const releaseCommand: Command = {
  name: 'release',
  async run({ inventory, arg, idem }) {
    print(await inventory.releaseHold(need('holdId', arg), undefined, idem));
  },
};

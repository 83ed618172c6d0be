/** `fleet unblock <blockId>`: clear or cancel a block. */
import { need, print, type Command } from '../context.ts';

export const unblockCommand: Command = {
  name: 'unblock',
  async run({ inventory, arg, idem }) {
    print(await inventory.removeBlock(need('blockId', arg), idem));
  },
};

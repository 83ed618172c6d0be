/** `fleet resolve <bookingId>`: make a conflicted booking's offers now. */
import { need, print, type Command } from '../context.ts';
import { withConflictDesk } from '../wiring.ts';

export const resolveCommand: Command = {
  name: 'resolve',
  async run(ctx) {
    const bookingId = need('bookingId', ctx.arg);
    print(await withConflictDesk(ctx.config, ctx.inventory, ctx.redis, undefined, (desk) => desk.resolve(bookingId)));
  },
};

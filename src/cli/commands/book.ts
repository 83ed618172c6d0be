/** `fleet book --vehicle V --customer C --from T --to T [--allow-past]` or `book --hold H --customer C`. */
import { need, print, time, type Command } from '../context.ts';

export const bookCommand: Command = {
  name: 'book',
  async run({ inventory, opt, idem }) {
    const customerId = need('--customer', opt.customer);
    print(
      opt.hold
        ? await inventory.book({ holdId: opt.hold, customerId }, idem)
        : await inventory.book(
            {
              vehicleId: need('--vehicle', opt.vehicle),
              customerId,
              from: time('from', opt.from),
              to: time('to', opt.to),
              allowPast: opt['allow-past'] ?? false,
            },
            idem,
          ),
    );
  },
};

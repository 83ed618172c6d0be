/** `fleet hold --vehicle V --customer C --from T --to T`: a checkout hold. */
import { need, print, time, type Command } from '../context.ts';

export const holdCommand: Command = {
  name: 'hold',
  async run({ inventory, opt, idem }) {
    print(
      await inventory.placeHold(
        {
          vehicleId: need('--vehicle', opt.vehicle),
          customerId: need('--customer', opt.customer),
          from: time('from', opt.from),
          to: time('to', opt.to),
        },
        idem,
      ),
    );
  },
};

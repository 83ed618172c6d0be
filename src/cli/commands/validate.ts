/** `fleet validate [--city X]`: the post-validation pass — find overlaps, turn them into conflicts with offers. */
import { print, type Command } from '../context.ts';
import { withConflictDesk } from '../wiring.ts';

export const validateCommand: Command = {
  name: 'validate',
  async run({ config, inventory, redis, opt }) {
    const cities = inventory.cities.all().filter((c) => !opt.city || c.id === opt.city);
    print(
      await withConflictDesk(config, inventory, redis, opt.city, async (desk) => {
        const out = [];
        for (const c of cities) out.push({ city: c.id, ...(await desk.postValidate(c.id)) });
        return out;
      }),
    );
  },
};

/** `fleet block --vehicle V --reason accident|maintenance|host [--from T] [--to T] [--note N]`. */
import { BLOCK_REASONS, type BlockReason } from '../../domain/calendar.ts';
import { DomainError } from '../../domain/errors.ts';
import { need, print, time, type Command } from '../context.ts';

export const blockCommand: Command = {
  name: 'block',
  async run({ inventory, opt, idem }) {
    const reason = need('--reason', opt.reason) as BlockReason;
    if (!BLOCK_REASONS.includes(reason))
      throw new DomainError('VALIDATION', '--reason must be accident, maintenance or host', { field: 'reason' });
    print(
      await inventory.placeBlock(
        {
          vehicleId: need('--vehicle', opt.vehicle),
          reason,
          ...(opt.from ? { from: time('from', opt.from) } : {}),
          ...(opt.to ? { to: time('to', opt.to) } : {}),
          ...(opt.note ? { note: opt.note } : {}),
          allowPast: true,
        },
        idem,
      ),
    );
  },
};

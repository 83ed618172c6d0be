/** `fleet durability`: can acknowledged writes be lost on this Redis? */
import { inspectDurability } from '../../redis/connection.ts';
import { print, type Command } from '../context.ts';

export const durabilityCommand: Command = {
  name: 'durability',
  async run({ redis }) {
    print(await inspectDurability(redis));
  },
};

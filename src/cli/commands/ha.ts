/** `fleet ha up | env | promote-pg | down`: a highly available topology on this machine (../ha.ts). */
import type { Command } from '../context.ts';
import { haCommand } from '../ha.ts';

export const haCliCommand: Command = {
  name: 'ha',
  needsStore: false,
  run: ({ arg, opt }) =>
    haCommand(arg, {
      ...(opt.dir ? { dir: opt.dir } : {}),
      ...(opt['base-port'] ? { basePort: Number(opt['base-port']) } : {}),
    }),
};

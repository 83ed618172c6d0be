/** `fleet token --role R [--sub S] [--host-id H] [--scope 'a b'] [--cities blr,del]`: a development token (HS256, JWT_SECRET). */
import { ROLES, mintToken, type Role } from '../../api/auth.ts';
import { DomainError } from '../../domain/errors.ts';
import { need, type Command } from '../context.ts';

export const tokenCommand: Command = {
  name: 'token',
  needsStore: false,
  async run({ config, opt }) {
    const role = need('--role', opt.role) as Role;
    if (!ROLES.includes(role))
      throw new DomainError('VALIDATION', `--role must be one of ${ROLES.join(', ')}`, { field: 'role' });
    if (!config.JWT_SECRET)
      throw new DomainError('VALIDATION', "set JWT_SECRET (the same as the server's) to mint tokens", {
        field: 'JWT_SECRET',
      });
    console.log(
      await mintToken(new TextEncoder().encode(config.JWT_SECRET), {
        sub: opt.sub ?? `${role}-cli`,
        role,
        ...(role === 'host' ? { hostId: need('--host-id', opt['host-id']) } : {}),
        ...(opt.scope !== undefined ? { scope: opt.scope } : {}),
        ...(opt.cities !== undefined ? { cities: opt.cities.split(',').filter(Boolean) } : {}),
      }),
    );
  },
};

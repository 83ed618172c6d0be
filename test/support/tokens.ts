/** The cast of the API tests: two customers (and a third), two hosts, operations and an admin. */
import { mintToken } from '../../src/api/auth.ts';

export const TENANTS = {
  alice: { sub: 'alice', role: 'customer' },
  bob: { sub: 'bob', role: 'customer' },
  carol: { sub: 'carol', role: 'customer' },
  hostA: { sub: 'ha', role: 'host', hostId: 'host-a' },
  hostB: { sub: 'hb', role: 'host', hostId: 'host-b' },
  ops: { sub: 'olga', role: 'ops' },
  admin: { sub: 'adam', role: 'admin' },
} as const;

export type Tenant = keyof typeof TENANTS;

/** A token for each of the cast, signed with `secret`. */
export async function tenantTokens(secret: Uint8Array): Promise<Record<Tenant, string>> {
  const out = {} as Record<Tenant, string>;
  for (const [name, claims] of Object.entries(TENANTS)) out[name as Tenant] = await mintToken(secret, claims);
  return out;
}

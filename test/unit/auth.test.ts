/**
 * The authenticator remembers verified tokens (a caller sends the same one with every request),
 * but never past their expiry, and only for exactly those bytes: a token with the same claims and
 * another signature is checked, and refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { authenticator, mintToken, unlessRevoked } from '../../src/api/auth.ts';
import type { DomainError } from '../../src/domain/errors.ts';

const SECRET = new TextEncoder().encode('unit-secret-of-at-least-32-bytes-long!!');
const refused = (p: Promise<unknown>) => assert.rejects(p, (e: DomainError) => e.code === 'UNAUTHENTICATED');

test('a remembered token still expires on time', async () => {
  // The authenticator's clock, moved by the test instead of waiting for the token to lapse.
  let shift = 0;
  const clock = { now: () => Date.now() + shift };
  const authenticate = authenticator({ secret: SECRET, clock });
  const token = await mintToken(SECRET, { sub: 'alice', role: 'customer' }, 2);
  // Every minted token has its own id (the audit trail names it).
  const jti = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).jti;
  assert.equal(typeof jti, 'string');
  assert.deepEqual(await authenticate(`Bearer ${token}`), { id: 'alice', role: 'customer', jti });
  assert.deepEqual(await authenticate(`Bearer ${token}`), { id: 'alice', role: 'customer', jti });
  shift = 2_100;
  await refused(authenticate(`Bearer ${token}`));
});

test('same claims, another signature: refused although the genuine token is remembered', async () => {
  const authenticate = authenticator({ secret: SECRET });
  const token = await mintToken(SECRET, { sub: 'alice', role: 'customer' });
  await authenticate(`Bearer ${token}`);
  const [h, p] = token.split('.');
  await refused(authenticate(`Bearer ${h}.${p}.${'A'.repeat(43)}`));
  const forged = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!!'));
  await refused(authenticate(`Bearer ${forged}`));
});

test("an API client's token names the client; another issuer's client_id does not make one", async () => {
  const authenticate = authenticator({ secret: SECRET });
  const token = await mintToken(SECRET, {
    sub: 'client:cli_0123456789abcdef',
    role: 'ops',
    cities: ['blr'],
    client: { id: 'cli_0123456789abcdef', generation: 2 },
  });
  const actor = await authenticate(`Bearer ${token}`);
  assert.deepEqual(actor.client, { id: 'cli_0123456789abcdef', generation: 2 });
  assert.equal(actor.role === 'ops' && actor.cities?.has('blr'), true);
  // An identity provider's access token for a user (RFC 9068 carries client_id): the user's.
  const users = await new SignJWT({ role: 'customer', client_id: 'some-app' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime('1h')
    .sign(SECRET);
  assert.equal((await authenticate(`Bearer ${users}`)).client, undefined);
  const badGeneration = await new SignJWT({ role: 'customer', client_id: 'c1', client_gen: 'x' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('client:c1')
    .setExpirationTime('1h')
    .sign(SECRET);
  await refused(authenticate(`Bearer ${badGeneration}`));
});

test('a revoked token is refused although the authenticator remembers it', async () => {
  const revoked = new Set<string>();
  const authenticate = unlessRevoked(authenticator({ secret: SECRET }), {
    isRevoked: (t) => t.jti !== undefined && revoked.has(t.jti),
  });
  const token = await mintToken(SECRET, { sub: 'alice', role: 'customer' });
  const actor = await authenticate(`Bearer ${token}`);
  revoked.add(actor.jti ?? '');
  await refused(authenticate(`Bearer ${token}`));
});

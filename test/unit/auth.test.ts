/**
 * The authenticator remembers verified tokens (a caller sends the same one with every request),
 * but never past their expiry, and only for exactly those bytes: a token with the same claims and
 * another signature is checked, and refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import type { DomainError } from '../../src/domain/errors.ts';

const SECRET = new TextEncoder().encode('unit-secret-of-at-least-32-bytes-long!!');
const refused = (p: Promise<unknown>) => assert.rejects(p, (e: DomainError) => e.code === 'UNAUTHENTICATED');

test('a remembered token still expires on time', async () => {
  // The authenticator's clock, moved by the test instead of waiting for the token to lapse.
  let shift = 0;
  const clock = { now: () => Date.now() + shift };
  const authenticate = authenticator({ secret: SECRET, clock });
  const token = await mintToken(SECRET, { sub: 'alice', role: 'customer' }, 2);
  assert.deepEqual(await authenticate(`Bearer ${token}`), { id: 'alice', role: 'customer' });
  assert.deepEqual(await authenticate(`Bearer ${token}`), { id: 'alice', role: 'customer' });
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

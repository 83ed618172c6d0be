/**
 * Tokens from an identity provider (JWKS_URL): RS256 and EdDSA keys served by a local JWKS
 * endpoint, checked through the API. A key rotated in while the service runs is accepted (the set
 * is fetched again for an unknown `kid`); a key the provider no longer publishes, a token signed by
 * a key it never published, and an HS256 token forged with a public key are refused.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator } from '../../src/api/auth.ts';
import { newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { setTimeout as sleep } from 'node:timers/promises';

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'EdDSA';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(kid: string, alg: SigningKey['alg']): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const sign = (key: SigningKey, claims: Record<string, unknown>, sub = 'idp-user') =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key.privateKey);

const city = testCity();
let stores: Stores;
let jwksServer: Server;
let published: SigningKey[] = [];
let fetches = 0;
let app: App;
let base: string;

before(async () => {
  stores = await startStores();
  jwksServer = createServer((_req, res) => {
    fetches++;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ keys: published.map((k) => k.jwk) }));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => jwksServer.once('listening', r));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
  app = await buildApp({
    inventory: newInventory(stores.redis, city),
    redis: stores.redis,
    authenticate: authenticator({
      secret: new TextEncoder().encode('jwks-test-hmac-secret-of-32-bytes!!'),
      jwksUrl,
      jwksCooldownMs: 200,
    }),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app?.close();
  jwksServer?.close();
  await stores?.stop();
});

const cities = (token: string) =>
  fetch(`${base}/v1/cities`, { headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as { code?: string },
  }));

test('RS256 and EdDSA tokens from the JWKS verify; a key rotated in while running is accepted', async () => {
  const rsa = await signingKey('rsa-1', 'RS256');
  const ed = await signingKey('ed-1', 'EdDSA');
  published = [rsa, ed];
  assert.equal((await cities(await sign(rsa, { role: 'customer' }))).status, 200);
  assert.equal((await cities(await sign(ed, { role: 'ops' }, 'ops-user'))).status, 200);

  // The provider rotates: a new key is published and signs the next tokens.
  const rotated = await signingKey('rsa-2', 'RS256');
  published = [rsa, ed, rotated];
  const before = fetches;
  await sleep(250); // past the cooldown since the last fetch
  assert.equal((await cities(await sign(rotated, { role: 'customer' }, 'after-rotation'))).status, 200);
  assert.equal(fetches, before + 1, 'the unknown kid made the service fetch the set again, once');
});

test('refused: a key never published, a key withdrawn, an HS256 token forged with a public key, a token without a role', async () => {
  const rsa = await signingKey('rsa-3', 'RS256');
  published = [rsa];
  const stranger = await signingKey('rsa-3', 'RS256'); // same kid, another key
  let r = await cities(await sign(stranger, { role: 'admin' }));
  assert.equal(r.status, 401);
  assert.equal(r.body.code, 'UNAUTHENTICATED');

  const withdrawn = await signingKey('old-1', 'EdDSA');
  await sleep(250);
  r = await cities(await sign(withdrawn, { role: 'ops' }, 'withdrawn'));
  assert.equal(r.status, 401, 'a kid the provider does not publish');

  // The classic confusion: the RSA public key used as an HMAC secret.
  const forged = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256', kid: 'rsa-3' })
    .setSubject('mallory')
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JSON.stringify(rsa.jwk)));
  r = await cities(forged);
  assert.equal(r.status, 401);

  r = await cities(await sign(rsa, {}, 'no-role'));
  assert.equal(r.status, 401);
});

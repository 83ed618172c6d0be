/**
 * API clients (docs/api.md, "API clients"), over HTTP, on two API processes sharing Redis and
 * PostgreSQL: an admin registers a client (its secret shown once), the client trades its
 * credentials for a short-lived token (OAuth 2.0 client credentials), its role, scopes and cities
 * hold, it is charged to its own quota and burst (others unaffected), its usage is counted per
 * minute, and its tokens are revoked — by jti, or all of them, or by deleting the client — on
 * every process within a second.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { addVehicle, connect, newInventory, testCity } from '../support/engine.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { tenantTokens, type Tenant } from '../support/tokens.ts';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const PLENTY = { customer: 100_000, host: 100_000, ops: 100_000, admin: 100_000, anonymous: 100_000 };
const city = testCity();
const other = testCity();
let stores: Stores;
const apps: App[] = [];
const connections: Redis[] = [];
const bases: string[] = [];
let tok: Record<Tenant, string>;
const v = { a1: '', b1: '' };

type Json = Record<string, unknown>;

async function call(base: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json: Json = text ? JSON.parse(text) : {};
  return { status: res.status, json, headers: res.headers };
}

const admin = (method: string, path: string, body?: unknown) => call(bases[0] ?? '', tok.admin, method, path, body);

/** POST /v1/oauth/token with a form body (and, when given, an Authorization header). */
async function tokenRequest(form: Record<string, string> | string, authorization?: string, base = bases[0] ?? '') {
  const res = await fetch(`${base}/v1/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(authorization ? { authorization } : {}),
    },
    body: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
  });
  const json: Json = await res.json();
  return { status: res.status, json, headers: res.headers };
}

interface Registered {
  clientId: string;
  clientSecret: string;
}

async function register(body: Json): Promise<Registered> {
  const r = await admin('POST', '/v1/admin/clients', body);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const { clientId, clientSecret } = r.json;
  assert.ok(typeof clientId === 'string' && typeof clientSecret === 'string');
  return { clientId, clientSecret };
}

async function tokenOf(c: Registered, extra: Record<string, string> = {}): Promise<string> {
  const r = await tokenRequest({
    grant_type: 'client_credentials',
    client_id: c.clientId,
    client_secret: c.clientSecret,
    ...extra,
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const token = r.json.access_token;
  assert.ok(typeof token === 'string');
  return token;
}

/** A JWT's claims (read, not verified: the service verifies). */
function claimsOf(token: string): Json {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

/** Polls `base` with `token` until it is refused (401); how long that took, from `since`. */
async function refusedWithin(base: string, token: string, since: number, timeoutMs = 3_000): Promise<number> {
  for (;;) {
    const r = await call(base, token, 'GET', '/v1/cities');
    if (r.status === 401) {
      assert.equal(r.json.reason, 'revoked', JSON.stringify(r.json));
      return Date.now() - since;
    }
    assert.equal(r.status, 200, JSON.stringify(r.json));
    if (Date.now() - since > timeoutMs) assert.fail(`still accepted after ${timeoutMs} ms`);
    await sleep(10);
  }
}

before(async () => {
  stores = await startStores();
  const inv = newInventory(stores.redis, city);
  v.a1 = await addVehicle(inv, city, { hostId: 'host-a' });
  v.b1 = await addVehicle(inv, city, { hostId: 'host-b' });
  for (let i = 0; i < 2; i++) {
    // Two API processes: each its own Redis connection, the same stores.
    const own = connect(stores.server.url);
    connections.push(own);
    const app = await buildApp({
      inventory: inv,
      redis: own,
      pool: stores.pool,
      authenticate: authenticator({ secret: SECRET }),
      tokenSecret: SECRET,
      rateLimits: PLENTY,
    });
    apps.push(app);
    bases.push(await app.listen({ port: 0, host: '127.0.0.1' }));
  }
  tok = await tenantTokens(SECRET);
});

after(async () => {
  for (const a of apps) await a.close();
  for (const c of connections) c.disconnect();
  await stores.stop();
});

describe('registration', () => {
  test('only admin manages clients and revocations', async () => {
    const routes: [string, string, unknown?][] = [
      ['POST', '/v1/admin/clients', { name: 'x', role: 'customer', quotaPerMinute: 10, burst: 5 }],
      ['GET', '/v1/admin/clients'],
      ['DELETE', '/v1/admin/clients/cli_0000000000000000'],
      ['GET', '/v1/admin/clients/cli_0000000000000000/usage'],
      ['POST', '/v1/admin/revocations', { jti: 'x' }],
    ];
    for (const [method, path, body] of routes) {
      for (const who of ['alice', 'hostA', 'ops'] as const) {
        const r = await call(bases[0] ?? '', tok[who], method, path, body);
        assert.equal(r.status, 403, `${who} ${method} ${path}: ${JSON.stringify(r.json)}`);
      }
      const anonymous = await fetch(`${bases[0]}${path}`, { method });
      assert.equal(anonymous.status, 401, `${method} ${path} without a token`);
    }
    const listed = await admin('GET', '/v1/admin/clients');
    assert.deepEqual(listed.json.clients, [], 'nothing was registered');
  });

  test('the secret is shown once; the list has no secrets; bad shapes are refused', async () => {
    const r = await admin('POST', '/v1/admin/clients', {
      name: 'partner',
      role: 'host',
      hostId: 'host-a',
      scopes: ['fleet:read'],
      quotaPerMinute: 100,
      burst: 10,
    });
    assert.equal(r.status, 201);
    assert.match(String(r.json.clientSecret), /^fcs_/);
    assert.equal(r.json.createdBy, 'adam');
    const listed = await admin('GET', '/v1/admin/clients');
    const clients = listed.json.clients;
    assert.ok(Array.isArray(clients));
    const mine = clients.find((c: Json) => c.clientId === r.json.clientId);
    assert.deepEqual(Object.keys(mine).sort(), [
      'burst',
      'clientId',
      'createdAt',
      'createdBy',
      'hostId',
      'name',
      'quotaPerMinute',
      'role',
      'scopes',
    ]);
    assert.ok(!JSON.stringify(listed.json).includes(String(r.json.clientSecret)));
    const { rows } = await stores.pool.query<{ secret_hash: string }>('SELECT secret_hash FROM api_clients');
    for (const row of rows) {
      assert.match(row.secret_hash, /^scrypt\$16384\$8\$1\$/, 'a salted scrypt hash');
      assert.ok(!row.secret_hash.includes(String(r.json.clientSecret)));
    }
    for (const bad of [
      { name: 'h', role: 'host', quotaPerMinute: 10, burst: 5 },
      { name: 'c', role: 'customer', hostId: 'host-a', quotaPerMinute: 10, burst: 5 },
      { name: 'c', role: 'customer', cities: [city.id], quotaPerMinute: 10, burst: 5 },
      { name: 'a', role: 'admin', quotaPerMinute: 10, burst: 5 },
      { name: 'o', role: 'ops', quotaPerMinute: 10, burst: 11 },
      { name: 'o', role: 'ops', quotaPerMinute: 0, burst: 1 },
      { name: 'o', role: 'ops', scopes: ['everything'], quotaPerMinute: 10, burst: 1 },
    ]) {
      const refused = await admin('POST', '/v1/admin/clients', bad);
      assert.equal(refused.status, 400, `${JSON.stringify(bad)}: ${JSON.stringify(refused.json)}`);
      assert.equal(refused.json.code, 'VALIDATION');
    }
  });
});

describe('client credentials', () => {
  let c: Registered;
  before(async () => {
    c = await register({
      name: 'reader',
      role: 'customer',
      scopes: ['bookings:read'],
      quotaPerMinute: 1000,
      burst: 100,
    });
  });

  test('the right secret gets a short-lived token naming the client', async () => {
    const r = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: c.clientId,
      client_secret: c.clientSecret,
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.token_type, 'Bearer');
    assert.equal(r.json.expires_in, 900);
    assert.equal(r.json.scope, 'bookings:read');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const claims = claimsOf(String(r.json.access_token));
    assert.equal(claims.sub, `client:${c.clientId}`);
    assert.equal(claims.client_id, c.clientId);
    assert.equal(claims.role, 'customer');
    assert.equal(claims.scope, 'bookings:read');
    assert.equal(typeof claims.jti, 'string');
    assert.equal(Number(claims.exp) - Number(claims.iat), 900);
    // HTTP Basic (RFC 6749 §2.3.1: each part form-encoded, then base64).
    const basic = Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString(
      'base64',
    );
    const viaBasic = await tokenRequest({ grant_type: 'client_credentials' }, `Basic ${basic}`);
    assert.equal(viaBasic.status, 200, JSON.stringify(viaBasic.json));
  });

  test("refusals are OAuth's: invalid_client, unsupported_grant_type, invalid_request, invalid_scope", async () => {
    const base = { grant_type: 'client_credentials', client_id: c.clientId };
    const cases: [Record<string, string> | string, number, string, string?][] = [
      [{ ...base, client_secret: `${c.clientSecret}x` }, 401, 'invalid_client'],
      [{ ...base, client_id: 'cli_0123456789abcdef', client_secret: c.clientSecret }, 401, 'invalid_client'],
      [{ grant_type: 'client_credentials' }, 401, 'invalid_client'],
      [{ ...base, client_secret: c.clientSecret, grant_type: 'password' }, 400, 'unsupported_grant_type'],
      [{ client_id: c.clientId, client_secret: c.clientSecret }, 400, 'invalid_request'],
      [
        `grant_type=client_credentials&client_id=${c.clientId}&client_id=${c.clientId}&client_secret=x`,
        400,
        'invalid_request',
      ],
      [{ ...base, client_secret: c.clientSecret, scope: 'bookings:write' }, 400, 'invalid_scope'],
      [
        { ...base, client_secret: c.clientSecret },
        400,
        'invalid_request',
        `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`,
      ],
    ];
    for (const [form, status, error, authorization] of cases) {
      const r = await tokenRequest(form, authorization);
      assert.equal(r.status, status, `${JSON.stringify(form)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error, error, JSON.stringify(r.json));
      assert.equal(typeof r.json.error_description, 'string');
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
    }
    const json = await fetch(`${bases[0]}/v1/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...base, client_secret: c.clientSecret }),
    });
    assert.equal(json.status, 400);
    assert.equal((await json.json()).error, 'invalid_request', 'a JSON body is not a token request');
  });

  test("the client's role, scopes and cities hold", async () => {
    const reader = await tokenOf(c);
    const base = bases[0] ?? '';
    assert.equal((await call(base, reader, 'GET', '/v1/cities')).status, 200);
    const hold = await call(base, reader, 'POST', '/v1/holds', {
      vehicleId: v.a1,
      from: new Date(Date.now() + 48 * 3_600_000).toISOString(),
      to: new Date(Date.now() + 49 * 3_600_000).toISOString(),
    });
    assert.equal(hold.status, 403);
    assert.equal(hold.json.scope, 'bookings:write');
    const host = await tokenOf(
      await register({ name: 'pms', role: 'host', hostId: 'host-a', quotaPerMinute: 1000, burst: 100 }),
    );
    assert.equal((await call(base, host, 'GET', `/v1/vehicles/${v.a1}/calendar`)).status, 200);
    assert.equal((await call(base, host, 'GET', `/v1/vehicles/${v.b1}/calendar`)).status, 404, "another host's");
    assert.equal((await call(base, host, 'GET', '/v1/analytics/cities')).status, 403, 'a host is no staff');
    const opsHere = await tokenOf(
      await register({ name: 'ops-here', role: 'ops', cities: [city.id], quotaPerMinute: 1000, burst: 100 }),
    );
    const opsAway = await tokenOf(
      await register({ name: 'ops-away', role: 'ops', cities: [other.id], quotaPerMinute: 1000, burst: 100 }),
    );
    assert.equal((await call(base, opsHere, 'GET', `/v1/vehicles/${v.b1}/calendar`)).status, 200);
    assert.equal((await call(base, opsAway, 'GET', `/v1/vehicles/${v.b1}/calendar`)).status, 404);
    assert.deepEqual((await call(base, opsAway, 'GET', '/v1/analytics/cities')).json.cities, []);
    // A narrower scope may be asked for; the token carries only it.
    const narrowed = await tokenOf(
      await register({ name: 'pms2', role: 'host', hostId: 'host-a', quotaPerMinute: 1000, burst: 100 }),
      { scope: 'fleet:read' },
    );
    assert.equal(claimsOf(narrowed).scope, 'fleet:read');
    const write = await call(base, narrowed, 'POST', `/v1/vehicles/${v.a1}/delist`, {});
    assert.equal(write.status, 403);
    assert.equal(write.json.scope, 'fleet:write');
  });
});

describe('limits and usage per client', () => {
  test('a client is charged to its own quota; other clients and roles are not', async () => {
    const small = await register({ name: 'small', role: 'customer', quotaPerMinute: 5, burst: 5 });
    const big = await register({ name: 'big', role: 'customer', quotaPerMinute: 1000, burst: 100 });
    const smallToken = await tokenOf(small);
    const bigToken = await tokenOf(big);
    const base = bases[0] ?? '';
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await call(base, smallToken, 'GET', '/v1/cities');
      statuses.push(r.status);
      if (i === 0) assert.equal(r.headers.get('ratelimit-limit'), '5', "the client's own quota");
      if (r.status === 429) assert.equal(r.json.code, 'RATE_LIMITED');
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // A second token of the same client shares its budget.
    assert.equal((await call(base, await tokenOf(small), 'GET', '/v1/cities')).status, 429);
    for (let i = 0; i < 10; i++) assert.equal((await call(base, bigToken, 'GET', '/v1/cities')).status, 200);
    assert.equal((await call(base, tok.alice, 'GET', '/v1/cities')).status, 200, 'a role budget is untouched');
    const r = await call(base, bigToken, 'GET', '/v1/cities');
    assert.equal(r.headers.get('ratelimit-limit'), '1000');

    // Usage: every request and every refusal, in the current minute (flushed within a second).
    let usage: Json = {};
    const deadline = Date.now() + 5_000;
    for (;;) {
      usage = (await admin('GET', `/v1/admin/clients/${small.clientId}/usage`)).json;
      const totals = usage.totals;
      if (JSON.stringify(totals) === JSON.stringify({ requests: 8, units: 8, refused: 3 })) break;
      if (Date.now() > deadline) assert.fail(`usage ${JSON.stringify(totals)}`);
      await sleep(50);
    }
    assert.equal(usage.granularity, 'minute');
    const buckets = usage.buckets;
    assert.ok(Array.isArray(buckets));
    assert.equal(buckets.length, 60, 'the last hour, by minute');
    const used = buckets.filter((b: Json) => Number(b.requests) > 0);
    assert.ok(used.length >= 1 && used.length <= 2, JSON.stringify(used));
    const hourly = (await admin('GET', `/v1/admin/clients/${small.clientId}/usage?granularity=hour`)).json;
    assert.deepEqual(hourly.totals, { requests: 8, units: 8, refused: 3 });
    assert.equal(Array.isArray(hourly.buckets) ? hourly.buckets.length : 0, 24);
    const bigUsage = (await admin('GET', `/v1/admin/clients/${big.clientId}/usage`)).json.totals;
    assert.deepEqual(bigUsage, { requests: 11, units: 11, refused: 0 });
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const backwards = await admin(
      'GET',
      `/v1/admin/clients/${small.clientId}/usage?from=${iso(now)}&to=${iso(now - 3_600_000)}`,
    );
    assert.equal(backwards.status, 400);
    const tooLong = await admin('GET', `/v1/admin/clients/${small.clientId}/usage?from=${iso(now - 2 * 86_400_000)}`);
    assert.equal(tooLong.status, 400, 'two days by minute is too many buckets');
    assert.equal((await admin('GET', '/v1/admin/clients/cli_0123456789abcdef/usage')).status, 404);
  });

  test("a burst past the client's is refused for the second, not the minute", async () => {
    const bursty = await tokenOf(await register({ name: 'bursty', role: 'customer', quotaPerMinute: 100, burst: 3 }));
    const base = bases[0] ?? '';
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(base, bursty, 'GET', '/v1/cities')));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 200, 200, 429, 429, 429]);
    const refused = answers.find((a) => a.status === 429);
    assert.match(String(refused?.json.detail), /burst/);
    assert.equal(refused?.headers.get('retry-after'), '1');
  });
});

describe('revocation, on every process within a second', () => {
  test('by jti: that token is refused on the other process; its siblings are not', async () => {
    const c = await register({ name: 'rev-jti', role: 'customer', quotaPerMinute: 10_000, burst: 1000 });
    const token = await tokenOf(c);
    const sibling = await tokenOf(c);
    // The other process has verified the token (and remembers it: auth.ts's cache).
    assert.equal((await call(bases[1] ?? '', token, 'GET', '/v1/cities')).status, 200);
    const since = Date.now();
    const r = await admin('POST', '/v1/admin/revocations', { jti: claimsOf(token).jti });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((await call(bases[0] ?? '', token, 'GET', '/v1/cities')).status, 401, 'at once where revoked');
    const took = await refusedWithin(bases[1] ?? '', token, since);
    assert.ok(took < 1_000, `refused on the other process after ${took} ms`);
    for (const base of bases) assert.equal((await call(base, sibling, 'GET', '/v1/cities')).status, 200);
    console.log(`revoked by jti: refused on the other process ${took} ms after the revocation was asked for`);
  });

  test("a user's token (not a client's) is revoked by jti as well", async () => {
    const token = await mintToken(SECRET, { sub: 'dora', role: 'customer' });
    assert.equal((await call(bases[1] ?? '', token, 'GET', '/v1/cities')).status, 200);
    const since = Date.now();
    const exp = new Date(Number(claimsOf(token).exp) * 1000).toISOString();
    const r = await admin('POST', '/v1/admin/revocations', { jti: claimsOf(token).jti, expiresAt: exp });
    assert.equal(r.json.until, exp);
    assert.ok((await refusedWithin(bases[1] ?? '', token, since)) < 1_000);
  });

  test('by client: every token it holds is refused everywhere; a new one works', async () => {
    const c = await register({ name: 'rev-all', role: 'customer', quotaPerMinute: 10_000, burst: 1000 });
    const tokens = [await tokenOf(c), await tokenOf(c)];
    for (const t of tokens)
      for (const base of bases) assert.equal((await call(base, t, 'GET', '/v1/cities')).status, 200);
    const since = Date.now();
    const r = await admin('POST', '/v1/admin/revocations', { clientId: c.clientId });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.generation, 1);
    for (const t of tokens) {
      const took = await refusedWithin(bases[1] ?? '', t, since);
      assert.ok(took < 1_000, `refused after ${took} ms`);
    }
    const fresh = await tokenOf(c);
    assert.equal(claimsOf(fresh).client_gen, 1);
    for (const base of bases) assert.equal((await call(base, fresh, 'GET', '/v1/cities')).status, 200);
    assert.equal((await admin('POST', '/v1/admin/revocations', { clientId: 'cli_0123456789abcdef' })).status, 404);
    assert.equal((await admin('POST', '/v1/admin/revocations', { jti: 'x', clientId: c.clientId })).status, 400);
    assert.equal((await admin('POST', '/v1/admin/revocations', {})).status, 400);
  });

  test('DELETE a client: its tokens die everywhere, and it gets no new one', async () => {
    const c = await register({ name: 'doomed', role: 'ops', quotaPerMinute: 10_000, burst: 1000 });
    const token = await tokenOf(c);
    assert.equal((await call(bases[0] ?? '', token, 'GET', '/v1/cities')).status, 200);
    const since = Date.now();
    // Deleted through the second process; refused by the first.
    const r = await call(bases[1] ?? '', tok.admin, 'DELETE', `/v1/admin/clients/${c.clientId}`);
    assert.equal(r.status, 204);
    const took = await refusedWithin(bases[0] ?? '', token, since);
    assert.ok(took < 1_000, `refused after ${took} ms`);
    const again = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: c.clientId,
      client_secret: c.clientSecret,
    });
    assert.equal(again.status, 401);
    assert.equal(again.json.error, 'invalid_client');
    const listed = (await admin('GET', '/v1/admin/clients')).json.clients;
    assert.ok(Array.isArray(listed) && !listed.some((x: Json) => x.clientId === c.clientId));
    assert.equal((await admin('DELETE', `/v1/admin/clients/${c.clientId}`)).status, 404);
  });
});

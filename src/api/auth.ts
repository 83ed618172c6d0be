/**
 * Who is calling: a verified JWT (`sub`, `role`, `hostId` for hosts, `exp` required), HS256 with
 * JWT_SECRET, or RS256/EdDSA keys from JWKS_URL. Algorithms are pinned: `alg: none`, a wrong
 * key, an expired token or a missing claim is UNAUTHENTICATED. An API client's token (`client_id`,
 * POST /v1/oauth/token) names its client; `unlessRevoked` refuses tokens revoked before they expire.
 */
import { randomUUID } from 'node:crypto';
import { createSecretKey } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { codeOf, DomainError, messageOf } from '../domain/errors.ts';
import type { EventActor } from '../services/audit.ts';
import type { TokenRevocations } from '../services/token-revocations.ts';

export const ROLES = ['customer', 'host', 'ops', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What a token may be narrowed to (`scope`, space-separated, RFC 8693 §4.2); docs/api.md, "Permissions". */
export const SCOPES = [
  'bookings:read',
  'bookings:write',
  'fleet:read',
  'fleet:write',
  'analytics:read',
  'webhooks:manage',
] as const;
export type Scope = (typeof SCOPES)[number];

interface Caller {
  id: string;
  /** The token's id (`jti`), when it has one: the audit trail names it. */
  jti?: string;
  /** Set when the token carries `scope`: only these; unset, the role's every permission. */
  scopes?: ReadonlySet<Scope>;
  /**
   * Set for an API client's token (`client_id`, with `sub` = `client:<client_id>`): the client's
   * own quota, usage and revocation; `generation` (`client_gen`) is the generation of the client's
   * tokens it belongs to (revoking them all makes a new one).
   */
  client?: { id: string; generation: number };
}

/** The verified caller, by role: a host names its fleet; ops may be limited to some cities. */
export type Actor =
  | (Caller & { role: 'customer' })
  | (Caller & {
      role: 'host';
      /** The fleet the host owns. */
      hostId: string;
    })
  | (Caller & {
      role: 'ops';
      /** Set when the token carries `cities`: the only cities they may see or change. */
      cities?: ReadonlySet<string>;
    })
  | (Caller & { role: 'admin' });

/** Each caller's event actor, made once: a verified token's Actor is the same object for a minute. */
const eventActors = new WeakMap<Actor, EventActor>();

/** The caller as the events they cause name them (the audit trail, services/audit.ts). */
export function eventActorOf(actor: Actor): EventActor {
  let made = eventActors.get(actor);
  if (!made) {
    made = {
      sub: actor.id,
      role: actor.role,
      ...(actor.role === 'host' ? { hostId: actor.hostId } : {}),
      ...(actor.role === 'customer' ? { customerId: actor.id } : {}),
      ...(actor.jti ? { jti: actor.jti } : {}),
    };
    eventActors.set(actor, made);
  }
  return made;
}

export const isRole = (value: unknown): value is Role => ROLES.some((r) => r === value);
const isScope = (value: string): value is Scope => SCOPES.some((s) => s === value);

export interface AuthConfig {
  secret: Uint8Array;
  jwksUrl?: string;
  /**
   * A token signed with a key the cached set does not hold makes the set be fetched again, at most
   * once per this long (a rotated-in key is accepted within it; random `kid`s cannot hammer the
   * identity provider). The set is fetched again anyway once it is `JWKS_MAX_AGE_MS` old.
   */
  jwksCooldownMs?: number;
  /** The clock tokens are judged by (`exp`, and how long a verified one is remembered); tests move it. Default: the system's. */
  clock?: { now(): number };
}

const JWKS_COOLDOWN_MS = 5_000;
const JWKS_MAX_AGE_MS = 5 * 60_000;

/** Verified tokens are remembered this long at most (and never past their `exp`). */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

export function authenticator(cfg: AuthConfig): (authorization: string | undefined) => Promise<Actor> {
  const jwks = cfg.jwksUrl
    ? createRemoteJWKSet(new URL(cfg.jwksUrl), {
        cooldownDuration: cfg.jwksCooldownMs ?? JWKS_COOLDOWN_MS,
        cacheMaxAge: JWKS_MAX_AGE_MS,
      })
    : undefined;
  // The HMAC key is imported once: handing jose the raw bytes re-imports it on every request.
  const hmacKey = createSecretKey(cfg.secret);
  // A caller sends the same token with every request: the signature check (a third of a booking's
  // CPU) is done once per token and minute. Keyed by the whole token, so a cached answer is the
  // answer for exactly those bytes; bounded in size and time (key rotation, `exp`).
  const verified = new Map<string, { actor: Actor; until: number }>();
  const clock = cfg.clock ?? { now: () => Date.now() };
  return async (authorization) => {
    const m = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(authorization ?? '');
    if (!m?.[1]) throw new DomainError('UNAUTHENTICATED', 'a Bearer token is required', { reason: 'missing' });
    const now = clock.now();
    const hit = verified.get(m[1]);
    if (hit && hit.until > now) return hit.actor;
    let payload: JWTPayload;
    // jose judges `exp` at `currentDate` (its default: the system clock): the same clock as the cache.
    const at = { currentDate: new Date(now) };
    try {
      payload =
        jwks && !isHmac(m[1])
          ? (await jwtVerify(m[1], jwks, { algorithms: ['RS256', 'EdDSA'], requiredClaims: ['exp', 'sub'], ...at }))
              .payload
          : (await jwtVerify(m[1], hmacKey, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], ...at })).payload;
    } catch (err) {
      throw new DomainError('UNAUTHENTICATED', `invalid token: ${messageOf(err)}`, {
        reason: codeOf(err) ?? 'invalid',
      });
    }
    const actor = actorOf(payload);
    if (verified.size >= VERIFIED_MAX) {
      const oldest = verified.keys().next();
      if (!oldest.done) verified.delete(oldest.value);
    }
    // `exp` is a required claim: jose has checked it is there, and a number.
    const exp = typeof payload.exp === 'number' ? payload.exp * 1000 : now;
    verified.set(m[1], { actor, until: Math.min(now + VERIFIED_TTL_MS, exp) });
    return actor;
  };
}

/** The caller a verified token names; a missing or malformed claim refuses the token. */
function actorOf(payload: JWTPayload): Actor {
  const { sub, role } = payload;
  if (typeof sub !== 'string' || !sub || !isRole(role)) {
    throw new DomainError('UNAUTHENTICATED', 'token needs sub and a known role', { reason: 'claims' });
  }
  const hostId = role === 'host' ? hostIdOf(payload) : '';
  const { scopes, cities } = narrowing(payload);
  const client = clientOf(payload, sub);
  const caller = {
    id: sub,
    ...(scopes ? { scopes } : {}),
    ...(typeof payload.jti === 'string' && payload.jti ? { jti: payload.jti } : {}),
    ...(client ? { client } : {}),
  };
  switch (role) {
    case 'host':
      return { ...caller, role, hostId };
    case 'ops':
      return { ...caller, role, ...(cities ? { cities } : {}) };
    default:
      return { ...caller, role };
  }
}

/**
 * An API client's token (POST /v1/oauth/token): `client_id` and `sub` = `client:<client_id>`. A
 * `client_id` on someone else's token (an identity provider's access token for a user) is not
 * this service's client: that token is its user's.
 */
function clientOf(payload: JWTPayload, sub: string): { id: string; generation: number } | undefined {
  const id = payload.client_id;
  if (typeof id !== 'string' || !id || sub !== `client:${id}`) return undefined;
  const generation = payload.client_gen ?? 0;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0)
    throw new DomainError('UNAUTHENTICATED', 'client_gen must be a whole number', { reason: 'claims' });
  return { id, generation };
}

/**
 * `authenticate`, refusing a revoked token (services/token-revocations.ts). Checked on every
 * request, after the verified-token cache: a revoked token is refused although its signature was
 * checked before.
 */
export function unlessRevoked(
  authenticate: (authorization: string | undefined) => Promise<Actor>,
  revocations: Pick<TokenRevocations, 'isRevoked'>,
): (authorization: string | undefined) => Promise<Actor> {
  return async (authorization) => {
    const actor = await authenticate(authorization);
    if (revocations.isRevoked(actor))
      throw new DomainError('UNAUTHENTICATED', 'this token was revoked', { reason: 'revoked' });
    return actor;
  };
}

function hostIdOf(payload: JWTPayload): string {
  if (typeof payload.hostId !== 'string' || !payload.hostId)
    throw new DomainError('UNAUTHENTICATED', 'a host token needs hostId', { reason: 'claims' });
  return payload.hostId;
}

/** The token's `scope` and (staff) `cities` claims; a malformed one refuses the token rather than widen it. */
function narrowing(payload: JWTPayload): { scopes?: ReadonlySet<Scope>; cities?: ReadonlySet<string> } {
  const out: { scopes?: Set<Scope>; cities?: Set<string> } = {};
  if (payload.scope !== undefined) {
    const words = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : undefined;
    const scopes = words?.filter(isScope);
    if (!words || !scopes || scopes.length !== words.length)
      throw new DomainError('UNAUTHENTICATED', `scope must be space-separated scopes of ${SCOPES.join(', ')}`, {
        reason: 'claims',
      });
    out.scopes = new Set(scopes);
  }
  if (payload.cities !== undefined) {
    const cities = payload.cities;
    if (!Array.isArray(cities) || !cities.every((c): c is string => typeof c === 'string'))
      throw new DomainError('UNAUTHENTICATED', 'cities must be an array of city ids', { reason: 'claims' });
    if (payload.role !== 'ops')
      throw new DomainError('UNAUTHENTICATED', 'only ops tokens are limited to cities', { reason: 'claims' });
    out.cities = new Set(cities);
  }
  return out;
}

function isHmac(token: string): boolean {
  try {
    const header: unknown = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && 'alg' in header && header.alg === 'HS256';
  } catch {
    return false;
  }
}

/**
 * A token signed with the HS256 secret: a dev token (`fleet token`, `npm start`), or an API
 * client's (`client`: `client_id` and `client_gen`; POST /v1/oauth/token).
 */
export async function mintToken(
  secret: Uint8Array,
  claims: {
    sub: string;
    role: Role;
    hostId?: string;
    scope?: string;
    cities?: string[];
    client?: { id: string; generation: number };
  },
  ttlSeconds = 24 * 3600,
): Promise<string> {
  return (
    new SignJWT({
      role: claims.role,
      ...(claims.hostId ? { hostId: claims.hostId } : {}),
      ...(claims.scope !== undefined ? { scope: claims.scope } : {}),
      ...(claims.cities ? { cities: claims.cities } : {}),
      ...(claims.client ? { client_id: claims.client.id, client_gen: claims.client.generation } : {}),
    })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(claims.sub)
      // Each token its own id: the audit trail names it, and a token can be told apart from its siblings.
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(secret)
  );
}

/** The demo identities (`npm start`, the console's sign-in): a customer, a host of `hostId`, ops, an admin. */
export async function mintDemoTokens(secret: Uint8Array, hostId: string) {
  return {
    customer: await mintToken(secret, { sub: 'demo-customer', role: 'customer' }),
    host: await mintToken(secret, { sub: 'demo-host', role: 'host', hostId }),
    ops: await mintToken(secret, { sub: 'demo-ops', role: 'ops' }),
    admin: await mintToken(secret, { sub: 'demo-admin', role: 'admin' }),
  };
}

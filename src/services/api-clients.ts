/**
 * API clients (docs/api.md, "API clients"): integration partners and internal services an admin
 * registers, each with its own identity, role, narrowing (scopes, cities), quota and burst. A
 * client proves who it is with its secret (client credentials, `POST /v1/oauth/token`), shown once
 * at registration; only a salted scrypt hash of it is kept, compared in constant time. Deleting a
 * client revokes every token it holds (services/token-revocations.ts).
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type pg from 'pg';
import { DomainError } from '../domain/errors.ts';
import { survived } from '../log.ts';
import {
  deleteApiClient,
  getApiClient,
  insertApiClient,
  listApiClients,
  type ApiClientRecord,
  type StoredApiClient,
} from '../pg/api-clients.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import { ClientUsage } from './client-usage.ts';
import { EVERY_GENERATION, type TokenRevocations } from './token-revocations.ts';

export type ApiClient = ApiClientRecord;
export type ApiClientRole = ApiClient['role'];

export interface NewApiClient {
  name: string;
  role: ApiClientRole;
  hostId?: string;
  scopes?: string[];
  cities?: string[];
  quotaPerMinute: number;
  burst: number;
}

/** What the rate limiter charges a client against. */
export interface ClientQuota {
  quotaPerMinute: number;
  burst: number;
}

/** scrypt's cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of ms on the libuv pool, off the event loop). */
const SCRYPT: ScryptOptions = { N: 16_384, r: 8, p: 1 };
const KEY_BYTES = 32;
/** The ids this registry gives (`cli_` and 16 hex digits); anything else is no client of it. */
const CLIENT_ID = /^cli_[0-9a-f]{16}$/;
/** How long a process trusts a client's quota it read (a deleted client's tokens are refused by revocation). */
const QUOTA_CACHE_MS = 10_000;

const scryptAsync = (secret: string, salt: Buffer, o: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) =>
    scrypt(secret, salt, KEY_BYTES, o, (err, key) => (err ? reject(err) : resolve(key))),
  );

/** `scrypt$N$r$p$salt$hash` (base64url). */
async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `secret` is the one `stored` hashes; constant time in the secret. */
async function secretMatches(secret: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptAsync(secret, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

const publicOf = ({ secretHash: _hidden, ...client }: StoredApiClient): ApiClient => client;

function checkShape(c: NewApiClient): void {
  const refuse = (field: string, why: string) => {
    throw new DomainError('VALIDATION', why, { field });
  };
  if (c.role === 'host' && !c.hostId) refuse('hostId', 'a host client names its hostId');
  if (c.role !== 'host' && c.hostId !== undefined) refuse('hostId', 'only a host client has a hostId');
  if (c.cities !== undefined && c.role !== 'ops') refuse('cities', 'only an ops client is limited to cities');
  if (c.burst > c.quotaPerMinute) refuse('burst', 'burst is at most quotaPerMinute');
}

export class ApiClientDesk {
  readonly usage: ClientUsage;
  private readonly quotas = new Map<string, { quota: ClientQuota | undefined; until: number }>();
  private readonly loading = new Map<string, Promise<ClientQuota | undefined>>();
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    redis: RedisConnection,
    private readonly revocations: TokenRevocations,
    o: { usageFlushMs?: number } = {},
  ) {
    this.usage = new ClientUsage(redis, o.usageFlushMs !== undefined ? { flushMs: o.usageFlushMs } : {});
  }

  /** Registers a client; its secret is answered here and never again. */
  async create(input: NewApiClient, createdBy: string): Promise<{ client: ApiClient; secret: string }> {
    checkShape(input);
    const secret = `fcs_${randomBytes(32).toString('base64url')}`;
    const stored = await insertApiClient(this.pool, {
      ...input,
      id: `cli_${randomBytes(8).toString('hex')}`, // CLIENT_ID
      secretHash: await hashSecret(secret),
      createdBy,
    });
    return { client: publicOf(stored), secret };
  }

  async list(): Promise<ApiClient[]> {
    return (await listApiClients(this.pool)).map(publicOf);
  }

  /** The client, or 404. */
  async get(id: string): Promise<ApiClient> {
    const stored = await getApiClient(this.pool, id);
    if (!stored) throw new DomainError('NOT_FOUND', `API client ${id} not found`, { entity: 'client', id });
    return publicOf(stored);
  }

  /** Removes the client and revokes every token it holds (first: a failure leaves the client, to delete again). */
  async delete(id: string): Promise<void> {
    await this.get(id);
    await this.revocations.forgetClient(id);
    await deleteApiClient(this.pool, id);
    this.quotas.delete(id);
  }

  /** Revokes every token the client holds now (404 for an unknown client); answers its tokens' next generation. */
  async revokeTokens(id: string): Promise<number> {
    await this.get(id);
    return this.revocations.revokeClient(id);
  }

  /**
   * The client these credentials prove, with the generation its new token carries; undefined for
   * an unknown client or a wrong secret alike (an unknown id costs the same scrypt as a wrong secret).
   */
  async authenticate(id: string, secret: string): Promise<{ client: ApiClient; generation: number } | undefined> {
    const stored = CLIENT_ID.test(id) ? await getApiClient(this.pool, id) : undefined;
    if (!stored) {
      this.dummyHash ??= hashSecret(randomBytes(32).toString('base64url'));
      await secretMatches(secret, await this.dummyHash);
      return undefined;
    }
    if (!(await secretMatches(secret, stored.secretHash))) return undefined;
    const generation = await this.revocations.generationOf(id);
    return generation >= EVERY_GENERATION ? undefined : { client: publicOf(stored), generation };
  }

  /**
   * The client's quota and burst, read again at most every 10 s (meanwhile the last one read is
   * used); undefined for a client the registry does not know, or cannot be asked about yet.
   */
  async quotaOf(id: string, now = Date.now()): Promise<ClientQuota | undefined> {
    if (!CLIENT_ID.test(id)) return undefined;
    const cached = this.quotas.get(id);
    if (cached && cached.until > now) return cached.quota;
    const refresh = this.loading.get(id) ?? this.load(id, now);
    // A known quota keeps serving while it is read again; a first read is waited for.
    return cached ? cached.quota : refresh;
  }

  async close(): Promise<void> {
    await this.usage.close();
  }

  private load(id: string, now: number): Promise<ClientQuota | undefined> {
    const loading = (async () => {
      try {
        const c = await getApiClient(this.pool, id);
        const quota = c ? { quotaPerMinute: c.quotaPerMinute, burst: c.burst } : undefined;
        if (this.quotas.size > 10_000) this.quotas.clear();
        this.quotas.set(id, { quota, until: now + QUOTA_CACHE_MS });
        return quota;
      } catch (err) {
        // The registry away: the client is charged by its role meanwhile (or its last known quota).
        survived('api-clients.quota', err);
        return this.quotas.get(id)?.quota;
      } finally {
        this.loading.delete(id);
      }
    })();
    this.loading.set(id, loading);
    return loading;
  }
}

/**
 * Revoked tokens, as every API process reads them (services/token-revocations.ts): token ids
 * (`jti`) until their expiry, and per API client the oldest generation of its tokens still valid.
 * Every change raises a version counter in the same MULTI; a process reloads both when it moves.
 */
import { keys } from './keys.ts';
import type { RedisConnection } from './scripts.ts';

export interface RevocationState {
  /** The version counter when read ('' before the first revocation ever). */
  version: string;
  /** jti -> expiry (ms), expired ones left out. */
  tokens: Map<string, number>;
  /** clientId -> the oldest generation of its tokens still valid. */
  clients: Map<string, number>;
}

/** The version counter alone: what a process polls. */
export async function revocationsVersion(redis: RedisConnection): Promise<string> {
  return (await redis.get(keys.revocationsVersion())) ?? '';
}

/** Everything revoked and not yet expired at `now`, with the version it is as of. */
export async function readRevocations(redis: RedisConnection, now: number): Promise<RevocationState> {
  const replies = await redis
    .multi()
    .get(keys.revocationsVersion())
    .zrangebyscore(keys.revokedTokens(), now, '+inf', 'WITHSCORES')
    .hgetall(keys.clientTokenGenerations())
    .exec();
  const [version, tokens, clients] = (replies ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  const out: RevocationState = {
    version: typeof version === 'string' ? version : '',
    tokens: new Map(),
    clients: new Map(),
  };
  if (Array.isArray(tokens))
    for (let i = 0; i + 1 < tokens.length; i += 2) out.tokens.set(String(tokens[i]), Number(tokens[i + 1]));
  if (clients && typeof clients === 'object')
    for (const [id, gen] of Object.entries(clients)) out.clients.set(id, Number(gen));
  return out;
}

async function run(tx: ReturnType<RedisConnection['multi']>): Promise<unknown[]> {
  const replies = await tx.exec();
  if (!replies) throw new Error('the revocation transaction was discarded');
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** Revokes the token `jti` until `until` (ms); revocations already expired at `now` are dropped. */
export async function revokeTokenId(redis: RedisConnection, jti: string, until: number, now: number): Promise<void> {
  await run(
    redis
      .multi()
      // GT: a new member is added; a known one only ever kept longer.
      .zadd(keys.revokedTokens(), 'GT', until, jti)
      .zremrangebyscore(keys.revokedTokens(), '-inf', `(${now}`)
      .incr(keys.revocationsVersion()),
  );
}

/**
 * Revokes every token the client holds: its oldest valid generation becomes at least `to`, or (no
 * `to`) one past the current one. Answers the new oldest valid generation.
 */
export async function raiseClientGeneration(redis: RedisConnection, clientId: string, to?: number): Promise<number> {
  const key = keys.clientTokenGenerations();
  const tx = redis.multi();
  if (to === undefined) tx.hincrby(key, clientId, 1);
  else tx.hset(key, clientId, to);
  tx.hget(key, clientId).incr(keys.revocationsVersion());
  const [, generation] = await run(tx);
  return Number(generation);
}

/** The generation a token issued to the client now carries (0 until its tokens are first revoked). */
export async function clientGeneration(redis: RedisConnection, clientId: string): Promise<number> {
  return Number((await redis.hget(keys.clientTokenGenerations(), clientId)) ?? 0);
}

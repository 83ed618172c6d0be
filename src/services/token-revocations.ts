/**
 * Tokens revoked before they expire (docs/api.md, "API clients"): one token by its `jti`, or every
 * token of an API client. Kept in Redis (redis/token-revocations.ts) and checked by every API
 * process on every request against its own copy, so a check costs no round trip: each process
 * polls the revocations' version every `pollMs` (200 ms) and reloads them when it moved, so a
 * revocation made anywhere is in force everywhere within `pollMs` plus a round trip — well within
 * a second. The process that revokes applies it at once.
 *
 * When Redis cannot be reached, a process keeps checking against the last revocations it read
 * (and learns the new ones once Redis answers again): revocation fails open, as the rate limiter does.
 */
import { setTimeout as wait } from 'node:timers/promises';
import { survived } from '../log.ts';
import {
  clientGeneration,
  raiseClientGeneration,
  readRevocations,
  revocationsVersion,
  revokeTokenId,
  type RevocationState,
} from '../redis/token-revocations.ts';
import type { RedisConnection } from '../redis/scripts.ts';

/** What a verified token says that revocation looks at. */
export interface RevocableToken {
  jti?: string;
  /** An API client's token: the client and the generation of tokens it belongs to. */
  client?: { id: string; generation: number };
}

/** The oldest valid generation of a deleted client: none of its tokens, past or future, is valid. */
export const EVERY_GENERATION = 1e15;

export class TokenRevocations {
  private state: RevocationState = { version: '', tokens: new Map(), clients: new Map() };
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly pollMs: number;
  /** Who hears that the revocations changed (the WebSocket hub closes the revoked connections). */
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly redis: RedisConnection,
    o: { pollMs?: number } = {},
  ) {
    this.pollMs = o.pollMs ?? 200;
  }

  /** Starts polling; resolves after the first read, or after `waitMs` when Redis is slow to answer. */
  async start(waitMs = 500): Promise<void> {
    const first = this.poll();
    await Promise.race([first, wait(waitMs, undefined, { ref: false })]);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Calls `listener` whenever this process learns of new revocations; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  /** Whether the token was revoked, as this process knows now. */
  isRevoked(token: RevocableToken, now = Date.now()): boolean {
    const until = token.jti === undefined ? undefined : this.state.tokens.get(token.jti);
    if (until !== undefined && until > now) return true;
    if (!token.client) return false;
    const oldest = this.state.clients.get(token.client.id);
    return oldest !== undefined && (oldest >= EVERY_GENERATION || token.client.generation < oldest);
  }

  /** Revokes the token `jti` until `until` (ms: its expiry, or a bound on it). */
  async revokeToken(jti: string, until: number): Promise<void> {
    await revokeTokenId(this.redis, jti, until, Date.now());
    this.state.tokens.set(jti, Math.max(until, this.state.tokens.get(jti) ?? 0));
    this.changed();
  }

  /** Revokes every token the client holds now; answers the generation its next tokens carry. */
  async revokeClient(clientId: string): Promise<number> {
    const generation = await raiseClientGeneration(this.redis, clientId);
    this.state.clients.set(clientId, Math.max(generation, this.state.clients.get(clientId) ?? 0));
    this.changed();
    return generation;
  }

  /** A deleted client: every token it holds or could be given is refused. */
  async forgetClient(clientId: string): Promise<void> {
    await raiseClientGeneration(this.redis, clientId, EVERY_GENERATION);
    this.state.clients.set(clientId, EVERY_GENERATION);
    this.changed();
  }

  /** The generation a token issued to the client now carries (read from Redis, not this process's copy). */
  generationOf(clientId: string): Promise<number> {
    return clientGeneration(this.redis, clientId);
  }

  private async poll(): Promise<void> {
    try {
      const version = await revocationsVersion(this.redis);
      if (!this.loaded || version !== this.state.version) {
        this.state = await readRevocations(this.redis, Date.now());
        this.loaded = true;
        this.changed();
      }
    } catch (err) {
      survived('token-revocations.poll', err);
    } finally {
      if (!this.closed) {
        this.timer = setTimeout(() => void this.poll(), this.pollMs);
        this.timer.unref();
      }
    }
  }
}

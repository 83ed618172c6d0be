/**
 * Answers reused for a few seconds (the analytics routes): a small TTL cache, and the freshness
 * headers a cached answer is sent with.
 */
import type { FastifyReply } from 'fastify';

/** A small TTL cache of answers (in flight ones included, so a burst of equal requests runs one query). */
export class AnswerCache<V> {
  private readonly entries = new Map<string, { at: number; value: Promise<V> }>();
  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The cached answer and its age, or a fresh one from `compute`. */
  async get(key: string, compute: () => Promise<V>): Promise<{ value: V; hit: boolean; ageMs: number }> {
    const now = Date.now();
    const found = this.entries.get(key);
    if (found && now - found.at < this.ttlMs) return { value: await found.value, hit: true, ageMs: now - found.at };
    if (found) this.entries.delete(key);
    const entry = { at: now, value: compute() };
    this.entries.set(key, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(oldest);
    }
    try {
      return { value: await entry.value, hit: false, ageMs: 0 };
    } catch (err) {
      if (this.entries.get(key) === entry) this.entries.delete(key); // failures are never cached
      throw err;
    }
  }
}

/** A cached answer with its freshness headers (`private`: staff-only figures). */
export function cached<T>(reply: FastifyReply, answer: { value: T; hit: boolean; ageMs: number }, ttlMs: number): T {
  const maxAge = Math.max(0, Math.ceil((ttlMs - answer.ageMs) / 1000));
  void reply.header('cache-control', `private, max-age=${maxAge}`).header('x-cache', answer.hit ? 'hit' : 'miss');
  return answer.value;
}

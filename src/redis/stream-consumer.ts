/**
 * The one way the service reads its city streams, for all four readers: the sync into PostgreSQL,
 * the conflict resolver, the webhook dispatcher (each a consumer group) and the read model's tail
 * (every process reads everything). Event-driven: a reader waits in `XREADGROUP … BLOCK` (or
 * `XREAD … BLOCK`) on a connection of its own and wakes when an entry arrives, not on a timer.
 *
 * For a consumer group it also creates the group, hands a city's own pending entries (a batch that
 * failed, entries taken over from a dead consumer) to the handler before anything new of that
 * city, acknowledges what the handler says is done, takes over entries another consumer left
 * pending longer than `claimIdleMs`, backs off while a store is away, and stops cleanly (the
 * blocked read is cut by closing its connection).
 *
 * One blocking read covers every city on a single server or Sentinel; on a Redis Cluster each city
 * is its own slot and a read may not span slots, so each city gets its own blocking connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { messageOf } from '../domain/errors.ts';
import { survived } from '../log.ts';
import { isCluster } from './connection.ts';
import { keys } from './keys.ts';
import type { RedisConnection } from './scripts.ts';

export interface StreamEntry {
  id: string;
  fields: string[];
}

export interface ConsumerGroup {
  name: string;
  consumer: string;
  /** Where a new group starts: `0` (the whole stream: nothing recorded before is missed) or `$` (from now). */
  start: '0' | '$';
  /** An entry pending this long with another consumer belongs to a dead one and is taken over. */
  claimIdleMs: number;
}

export interface StreamConsumerOptions {
  /** For logs and the survived-errors metric (`<name>.consume`). */
  name: string;
  redis: RedisConnection;
  cities: () => readonly string[];
  /** Read through this consumer group; absent: a tail that reads everything after `position`. */
  group?: ConsumerGroup;
  /** A tail's position per city (undefined: the city is not read yet). */
  position?: (city: string) => string | undefined;
  /** Entries per city per read. */
  count: number;
  /** Longest one blocking read waits before it is sent again (kept under the command timeout). */
  blockMs?: number;
  /** Cities handled at once after one read. */
  concurrency?: number;
  /**
   * After a read that handled entries but fewer than `count`, wait this long before the next one
   * (default 0): under a steady flow, batches gather more entries each, fewer and larger (the
   * sync's transactions); an idle stream is not slowed, its first entry still wakes the reader.
   */
  lingerMs?: number;
  /**
   * A city's entries, in stream order. Returns the ids to acknowledge (a group); an entry not
   * returned stays pending and comes back, before anything newer of its city. A throw leaves the
   * whole batch pending and backs the reader off.
   */
  handle(city: string, entries: StreamEntry[]): Promise<readonly string[] | undefined>;
  /** Hears each failure the reader survives (it backs off and tries again); it is counted either way. */
  onError?: (err: unknown) => void;
}

type Reply = [string, [string, string[] | null][]][] | null;

/** Whether a failure means the stream or its group is gone (a Redis that lost its data, a wiped city). */
const GROUP_GONE = /NOGROUP|no longer exists/i;
const MAX_BACKOFF_MS = 5_000;

export class StreamConsumer {
  private stopped = false;
  /** Cuts every pause short at `stop`. */
  private stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly blockers = new Set<RedisConnection>();
  /** Cities whose own pending entries are read before anything new (all of them at start). */
  private readonly pending = new Set<string>();
  private groupsMade = false;
  /** When each city's stream was last searched for entries of dead consumers. */
  private readonly lastClaim = new Map<string, number>();
  private readonly blockMs: number;
  /** The handler's cities in flight, one batch at a time per city (the loop and `consumeOnce`). */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  constructor(private readonly o: StreamConsumerOptions) {
    this.blockMs = Math.max(10, Math.min(o.blockMs ?? 2_000, Math.floor(commandTimeoutOf(o.redis) / 2)));
    if (o.group) for (const c of o.cities()) this.pending.add(c);
  }

  /** Creates the group on every city stream (idempotent; the stream is made when missing). */
  async ensureGroups(): Promise<void> {
    const g = this.o.group;
    if (!g || this.groupsMade) return;
    for (const city of this.o.cities()) {
      try {
        await this.o.redis.xgroup('CREATE', keys.events(city), g.name, g.start, 'MKSTREAM');
      } catch (err) {
        if (!/BUSYGROUP/.test(messageOf(err))) throw err;
      }
    }
    this.groupsMade = true;
  }

  /** Starts reading; a reader stopped before starts again (a webhook dispatcher that leads again). */
  start(): void {
    if (this.loops.length) return;
    this.stopped = false;
    this.stopping = new AbortController();
    // Whatever this consumer left pending when it stopped is handled first.
    if (this.o.group) for (const c of this.o.cities()) this.pending.add(c);
    for (const p of this.partitions(this.o.cities())) this.loops.push(this.run(p));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    // A blocked read returns only when its connection closes.
    for (const b of this.blockers) b.disconnect();
    await Promise.all(this.loops);
    this.loops.length = 0;
  }

  /**
   * One pass without blocking (tests, `drain`, the CLI): every city's pending entries, then what
   * is new. Returns how many entries were handled.
   */
  async consumeOnce(): Promise<number> {
    try {
      return await this.passOnce();
    } catch (err) {
      // A Redis that lost its data (then rebuilt) has streams without the group: made again.
      if (!GROUP_GONE.test(messageOf(err))) throw err;
      this.groupsMade = false;
      return this.passOnce();
    }
  }

  private async passOnce(): Promise<number> {
    await this.ensureGroups();
    const cities = this.o.cities();
    await this.claimDue(cities);
    let handled = 0;
    if (this.o.group) handled += (await this.drainPending(cities)).handled;
    for (const part of this.partitions(cities.filter((c) => !this.pending.has(c))))
      handled += await this.handleReply(part, await this.readNew(this.o.redis, part, undefined));
    return handled;
  }

  /** The cities one read may cover: all of them, or one each on a Redis Cluster (a read may not span slots). */
  private partitions(cities: readonly string[]): (readonly string[])[] {
    if (!cities.length) return [];
    return isCluster(this.o.redis) ? cities.map((c) => [c]) : [cities];
  }

  /** Every `claimIdleMs`, what dead consumers left pending is taken over. */
  private async claimDue(cities: readonly string[]): Promise<void> {
    const g = this.o.group;
    if (!g) return;
    for (const c of cities) {
      if (Date.now() - (this.lastClaim.get(c) ?? 0) < Math.min(g.claimIdleMs, 5_000)) continue;
      this.lastClaim.set(c, Date.now());
      await this.claim(c, g);
    }
  }

  private async run(cities: readonly string[]): Promise<void> {
    const redis = this.o.redis;
    const blocker: RedisConnection = isCluster(redis) ? redis.duplicate() : redis.duplicate();
    blocker.on('error', () => {}); // a failing read says why, in the loop below
    this.blockers.add(blocker);
    let backoff = 0;
    let stuckFor = 0;
    try {
      while (!this.stopped) {
        try {
          await this.ensureGroups();
          const g = this.o.group;
          await this.claimDue(cities);
          let block = this.blockMs;
          if (g) {
            const { stuck } = await this.drainPending(cities);
            // A batch its handler left pending (a store away, an event waiting for its retry) is
            // tried again after a pause that grows while it stays stuck; its city reads nothing new.
            stuckFor = stuck ? Math.min(Math.max(100, stuckFor * 2), MAX_BACKOFF_MS) : 0;
            if (stuck) block = Math.min(block, stuckFor);
          }
          const open = cities.filter((c) => !this.pending.has(c));
          if (open.length === 0) {
            await this.pause(block);
            continue;
          }
          const reply = await this.readNew(blocker, open, block);
          if (this.stopped) break;
          const handled = await this.handleReply(open, reply);
          backoff = 0;
          const linger = this.o.lingerMs ?? 0;
          if (linger > 0 && handled > 0 && !reply?.some(([, e]) => e.length >= this.o.count)) await this.pause(linger);
        } catch (err) {
          if (this.stopped) break;
          if (GROUP_GONE.test(messageOf(err))) this.groupsMade = false;
          if (this.o.group) for (const c of cities) this.pending.add(c);
          survived(`${this.o.name}.consume`, err);
          this.o.onError?.(err);
          backoff = Math.min(Math.max(100, backoff * 2), MAX_BACKOFF_MS);
          await this.pause(backoff);
        }
      }
    } finally {
      this.blockers.delete(blocker);
      blocker.disconnect();
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => undefined); // cut short by stop
  }

  /** New entries of `cities`: blocking up to `blockMs` on `conn`, or not at all (`undefined`). */
  private async readNew(conn: RedisConnection, cities: readonly string[], blockMs: number | undefined): Promise<Reply> {
    const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
    const g = this.o.group;
    if (g) {
      const streams = cities.map((c) => keys.events(c));
      return replyOf(
        await conn.call(
          'XREADGROUP',
          ...['GROUP', g.name, g.consumer, 'COUNT', this.o.count, ...block, 'STREAMS', ...streams],
          ...streams.map(() => '>'),
        ),
      );
    }
    const read = cities.flatMap((c) => {
      const at = this.o.position?.(c);
      return at === undefined ? [] : [{ stream: keys.events(c), at }];
    });
    if (!read.length) {
      if (blockMs !== undefined) await this.pause(blockMs);
      return null;
    }
    return replyOf(
      await conn.call(
        'XREAD',
        ...['COUNT', this.o.count, ...block, 'STREAMS'],
        ...read.map((r) => r.stream),
        ...read.map((r) => r.at),
      ),
    );
  }

  /** Every city of the reply to its handler (`concurrency` at once); cities not fully acknowledged become pending. */
  private async handleReply(cities: readonly string[], reply: Reply): Promise<number> {
    if (!reply) return 0;
    const byStream = new Map(cities.map((c) => [keys.events(c), c]));
    const work = reply.flatMap(([stream, entries]) => {
      const city = byStream.get(stream);
      return city && entries.length ? [{ city, entries }] : [];
    });
    let handled = 0;
    const queue = [...work];
    await Promise.all(
      Array.from({ length: Math.min(this.o.concurrency ?? 1, queue.length) }, async () => {
        for (let w = queue.shift(); w; w = queue.shift()) {
          const { acked, total } = await this.handleCity(w.city, w.entries);
          if (this.o.group && acked < total) this.pending.add(w.city);
          handled += acked;
        }
      }),
    );
    return handled;
  }

  /**
   * Each pending city's own entries, until none is left or a batch is not fully acknowledged
   * (`stuck`: its handler waits for something; tried again on a later pass).
   */
  private async drainPending(cities: readonly string[]): Promise<{ handled: number; stuck: boolean }> {
    const g = this.o.group;
    if (!g) return { handled: 0, stuck: false };
    let handled = 0;
    let stuck = false;
    for (const city of cities) {
      while (this.pending.has(city) && !this.stopped) {
        const reply = replyOf(
          await this.o.redis.call(
            'XREADGROUP',
            'GROUP',
            g.name,
            g.consumer,
            'COUNT',
            this.o.count,
            'STREAMS',
            keys.events(city),
            '0',
          ),
        );
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length === 0) {
          this.pending.delete(city);
          break;
        }
        const { acked, total } = await this.handleCity(city, entries);
        handled += acked;
        if (acked < total) {
          stuck = true;
          break;
        }
      }
    }
    return { handled, stuck };
  }

  /** One city's batch through the handler (serialised per city), then its acknowledgement. */
  private async handleCity(city: string, raw: [string, string[] | null][]): Promise<{ acked: number; total: number }> {
    const prior = this.inFlight.get(city) ?? Promise.resolve();
    const run = prior.then(async () => {
      // An entry trimmed away while pending comes back without fields: nothing to handle.
      const gone = raw.filter(([, f]) => !f).map(([id]) => id);
      const entries = raw.flatMap(([id, f]) => (f ? [{ id, fields: f }] : []));
      const done = entries.length ? ((await this.o.handle(city, entries)) ?? []) : [];
      const ack = [...gone, ...done];
      const g = this.o.group;
      if (g && ack.length) await this.o.redis.xack(keys.events(city), g.name, ...ack);
      return { acked: ack.length, total: raw.length };
    });
    const settled = run.catch(() => undefined); // its failure is its caller's (awaited below); the next batch of the city only waits for it
    this.inFlight.set(city, settled);
    try {
      return await run;
    } finally {
      if (this.inFlight.get(city) === settled) this.inFlight.delete(city);
    }
  }

  /** Entries another consumer left pending past `claimIdleMs` become ours, read before anything new. */
  private async claim(city: string, g: ConsumerGroup): Promise<void> {
    let cursor = '0-0';
    let claimed = 0;
    do {
      const [next, ids] = (await this.o.redis.xautoclaim(
        keys.events(city),
        g.name,
        g.consumer,
        g.claimIdleMs,
        cursor,
        'COUNT',
        this.o.count,
        'JUSTID',
      )) as [string, string[]];
      cursor = next;
      claimed += ids.length;
    } while (cursor !== '0-0');
    if (claimed) this.pending.add(city);
  }
}

/**
 * An XREAD or XREADGROUP reply as pairs of stream and entries. Through `call`, ioredis hands the
 * reply over flat (stream, entries, stream, entries…); its typed methods nest each pair.
 */
function replyOf(reply: unknown): Reply {
  if (!Array.isArray(reply) || reply.length === 0) return null;
  if (Array.isArray(reply[0])) return reply as NonNullable<Reply>;
  const pairs: NonNullable<Reply> = [];
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1]]);
  return pairs;
}

/** The connection's command timeout (a blocked read must return before it). */
function commandTimeoutOf(redis: RedisConnection): number {
  return (isCluster(redis) ? redis.options.redisOptions?.commandTimeout : redis.options.commandTimeout) ?? 10_000;
}

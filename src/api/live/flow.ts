/**
 * Replay and backpressure: what is sent to a client is sent only while it keeps reading. A
 * subscriber that falls past the high-water mark for too long (or far past it) is closed; a
 * replay pages through the city stream only as fast as the client reads.
 */
import type { StreamEvent } from '../../domain/events.ts';
import { toCloudEvent } from '../../services/cloud-events.ts';
import { streamPage } from '../../services/event-feed.ts';
import type { RedisConnection } from '../../services/stores.ts';
import { metrics } from '../../metrics.ts';
import type { Client } from './client.ts';
import { CLOSE_SLOW } from './protocol.ts';
import type { Topic } from './topics.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FlowLimits {
  highWaterBytes: number;
  slowConsumerMs: number;
  replayPageSize: number;
}

export class Flow {
  constructor(
    private readonly redis: RedisConnection,
    private readonly limits: FlowLimits,
    private readonly matches: (topic: Topic, event: StreamEvent) => Promise<boolean>,
  ) {}

  /** Sends a message, or closes a client that has fallen too far behind to catch up. */
  send(client: Client, message: unknown): void {
    const ws = client.ws;
    if (ws.readyState !== ws.OPEN) return;
    const behind = ws.bufferedAmount;
    if (behind > this.limits.highWaterBytes) {
      client.slowSince ??= Date.now();
      if (behind > 4 * this.limits.highWaterBytes || Date.now() - client.slowSince > this.limits.slowConsumerMs) {
        this.closeSlow(client);
        return;
      }
    } else {
      client.slowSince = undefined;
    }
    ws.send(JSON.stringify(message));
  }

  closeSlow(client: Client): void {
    metrics.liveRefused.inc({ reason: 'slow_consumer' });
    client.ws.close(CLOSE_SLOW, `slow consumer: ${client.ws.bufferedAmount} bytes unread`);
    // A client that does not read does not read the close frame either.
    setTimeout(() => client.ws.terminate(), 1_000).unref();
  }

  /**
   * Replays what the city stream holds after the cursor, a page at a time, each page only once
   * the client has read most of the one before. Returns the last id read, or undefined when the
   * client went away (or was closed for reading too slowly) meanwhile.
   */
  async replay(client: Client, topic: Topic, city: string, after: string): Promise<string | undefined> {
    let cursor = after;
    for (;;) {
      if (!(await this.drained(client))) return undefined;
      const page = await streamPage(this.redis, city, cursor, this.limits.replayPageSize);
      cursor = page.last;
      for (const event of page.events)
        if (await this.matches(topic, event))
          this.send(client, { type: 'event', topic: topic.name, event: toCloudEvent(event) });
      if (page.read < this.limits.replayPageSize) return cursor;
    }
  }

  /**
   * Waits until the client has read most of what was sent (unsent bytes under half the high-water
   * mark). A client that stays behind for `slowConsumerMs` is closed; returns false then.
   */
  private async drained(client: Client): Promise<boolean> {
    const since = Date.now();
    while (client.ws.bufferedAmount > this.limits.highWaterBytes / 2) {
      if (client.ws.readyState !== client.ws.OPEN) return false;
      if (Date.now() - since > this.limits.slowConsumerMs) {
        this.closeSlow(client);
        return false;
      }
      await sleep(25);
    }
    return client.ws.readyState === client.ws.OPEN;
  }
}

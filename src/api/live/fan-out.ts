/**
 * Fan-out: each batch of a city's events from the feed (the process's read model, which tails
 * every city stream) goes to every subscription of that city, in stream order, each event once.
 */
import { compareStreamIds, type StreamEvent } from '../../domain/events.ts';
import { toCloudEvent } from '../../services/cloud-events.ts';
import { inSpan, isTracing } from '../../telemetry/spans.ts';
import type { Client, Subscription } from './client.ts';
import type { Flow } from './flow.ts';
import type { TopicPolicy } from './topics.ts';

/** Live events a replaying subscription may hold back; past it, the subscriber cannot keep up. */
const MAX_BUFFERED = 10_000;

export class FanOut {
  constructor(
    private readonly clients: ReadonlySet<Client>,
    private readonly topics: TopicPolicy,
    private readonly flow: Flow,
  ) {}

  /** One batch of a city's events from the feed, to every subscription of that city. */
  async dispatch(city: string, events: StreamEvent[]): Promise<void> {
    if (this.clients.size === 0) return;
    // One span per batch pushed (tracing on): in the first event's trace, linked to the others'.
    const traced = isTracing() ? events.map((e) => e.traceparent).filter((tp) => tp !== undefined) : [];
    const span = { parent: traced[0], links: traced.slice(1), attributes: { 'fleet.city': city } };
    await inSpan('live.push', span, () => this.dispatchNow(city, events));
  }

  private async dispatchNow(city: string, events: StreamEvent[]): Promise<void> {
    for (const event of events) {
      for (const client of this.clients) {
        for (const sub of client.subs.values()) {
          if (sub.topic.city !== undefined && sub.topic.city !== city) continue;
          if (sub.buffer) {
            // Live events wait while the subscription replays; a replay that cannot keep up ends.
            sub.buffer.push(event);
            if (sub.buffer.length > MAX_BUFFERED) this.flow.closeSlow(client);
          } else await this.deliver(client, sub, event);
        }
      }
    }
  }

  /** After a replay: the live events that arrived meanwhile, those not already replayed. */
  async release(client: Client, sub: Subscription): Promise<void> {
    const buffered = sub.buffer ?? [];
    sub.buffer = null;
    for (const event of buffered) await this.deliver(client, sub, event);
  }

  private async deliver(client: Client, sub: Subscription, event: StreamEvent): Promise<void> {
    const sent = sub.sent.get(event.city);
    if (sent !== undefined && compareStreamIds(event.id, sent) <= 0) return;
    sub.sent.set(event.city, event.id);
    if (await this.topics.matches(sub.topic, event))
      this.flow.send(client, { type: 'event', topic: sub.topic.name, event: toCloudEvent(event) });
  }
}

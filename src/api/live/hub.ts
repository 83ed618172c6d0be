/**
 * Real time over WebSocket (`GET /v1/live`): a client subscribes to topics and receives every
 * matching city event as a CloudEvent, in stream order, with heartbeats.
 *
 * Resume: `{"type":"subscribe","topic":"city:ber","after":"<last event id>"}` replays the city
 * stream after that id, then continues live with nothing missed or repeated (the event id is the
 * stream id, so the cursor is the same one `GET /v1/events` takes).
 *
 * One hub per process, fed by the process's search read model, which already tails every city
 * stream (architecture.md §6: the same tail feeds the WebSocket fan-out). The stream is the outbox, so a
 * process that restarts loses no event a client cannot replay.
 *
 * The hub holds the connections and the subscribe flow; the jobs are apart: upgrade.ts (upgrade
 * and authentication), topics.ts (topic policy), flow.ts (replay and backpressure), fan-out.ts
 * (the feed to the subscriptions), protocol.ts (the messages), client.ts (a connection's state).
 */
import type { Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { defaults } from '../../config.ts';
import { DomainError } from '../../domain/errors.ts';
import { survived } from '../../log.ts';
import { metrics } from '../../metrics.ts';
import type { Inventory } from '../../services/inventory.ts';
import type { ReadModel } from '../../services/read-model.ts';
import type { RedisConnection } from '../../services/stores.ts';
import type { Actor } from '../auth.ts';
import { newClient, withinBudget, type Client, type MessageBudget, type Subscription } from './client.ts';
import { FanOut } from './fan-out.ts';
import { Flow } from './flow.ts';
import { CLOSE_POLICY, errorMessage, parseClientMessage, TopicRefusal, type LiveOptions } from './protocol.ts';
import { TopicPolicy, type Topic } from './topics.ts';
import { UpgradeGate, type Admitted } from './upgrade.ts';

export class LiveHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
  private readonly clients = new Set<Client>();
  private readonly heartbeatMs: number;
  private readonly maxTopics: number;
  private readonly budget: MessageBudget;
  private readonly charge: LiveOptions['charge'];
  private readonly gate: UpgradeGate;
  private readonly topics: TopicPolicy;
  private readonly flow: Flow;
  private readonly fanOut: FanOut;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly revocations: LiveOptions['revocations'];
  private unrevoke: (() => void) | undefined;
  private unfeed: (() => void) | undefined;
  /** Batches from the feed, delivered one after another (a delivery may wait for a host lookup). */
  private delivering: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    redis: RedisConnection,
    private readonly inventory: Inventory,
    authenticate: (authorization: string | undefined) => Promise<Actor>,
    /** The process's search read model: its tail of the city streams is the hub's feed too. */
    private readonly feed: ReadModel | undefined,
    opts: LiveOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? defaults.WS_HEARTBEAT_MS;
    this.maxTopics = opts.maxTopics ?? defaults.WS_MAX_TOPICS;
    this.budget = {
      messagesPerSecond: opts.messagesPerSecond ?? defaults.WS_MESSAGES_PER_SECOND,
      messageBurst: opts.messageBurst ?? defaults.WS_MESSAGE_BURST,
    };
    this.charge = opts.charge;
    this.revocations = opts.revocations;
    this.gate = new UpgradeGate({
      authenticate,
      charge: opts.charge,
      maxConnectionsPerCaller: opts.maxConnectionsPerCaller ?? defaults.WS_MAX_CONNECTIONS_PER_CALLER,
      open: () => !this.closed,
      fed: feed !== undefined,
    });
    this.topics = new TopicPolicy(inventory, opts.regions);
    this.flow = new Flow(
      redis,
      {
        highWaterBytes: opts.highWaterBytes ?? defaults.WS_HIGH_WATER_BYTES,
        slowConsumerMs: opts.slowConsumerMs ?? defaults.WS_SLOW_CONSUMER_MS,
        replayPageSize: opts.replayPageSize ?? defaults.WS_REPLAY_PAGE_SIZE,
      },
      (topic, event) => this.topics.matches(topic, event),
    );
    this.fanOut = new FanOut(this.clients, this.topics, this.flow);
  }

  /** Takes over HTTP upgrades on `server` for LIVE_PATH; any other upgrade is refused. */
  attach(server: Server): void {
    this.gate.listen(server, (req, socket, head, admitted) =>
      this.wss.handleUpgrade(req, socket, head, (ws) => this.connect(ws, admitted)),
    );
    // Events are wanted while someone is connected; one who connects later replays from Redis.
    this.unfeed = this.feed?.onEvents(
      (city, events) => {
        this.delivering = this.delivering
          .then(() => this.fanOut.dispatch(city, events))
          .catch((err: unknown) => survived('live.dispatch', err));
      },
      () => this.clients.size > 0,
    );
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs).unref();
    this.unrevoke = this.revocations?.onChange(() => this.closeRevoked());
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unfeed?.();
    clearInterval(this.heartbeat);
    this.unrevoke?.();
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  get connections(): number {
    return this.clients.size;
  }

  /** Bytes queued in this process for each open connection (what a slow reader costs the server). */
  bufferedBytes(): number[] {
    return [...this.clients].map((c) => c.ws.bufferedAmount);
  }

  private connect(ws: WebSocket, { actor, address, caller }: Admitted): void {
    const client = newClient(ws, actor, address, this.budget.messageBurst);
    this.clients.add(client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => {
      this.clients.delete(client);
      this.gate.release(caller);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', (raw) => {
      client.alive = true;
      if (!withinBudget(client, this.budget, (m) => this.flow.send(client, m))) return;
      void this.receive(client, raw.toString()).catch((err: unknown) => this.flow.send(client, errorMessage(err)));
    });
    this.flow.send(client, { type: 'welcome', subject: actor.id, role: actor.role, heartbeatMs: this.heartbeatMs });
  }

  private async receive(client: Client, raw: string): Promise<void> {
    const msg = parseClientMessage(raw);
    if (msg.type === 'ping') return this.flow.send(client, { type: 'pong', time: new Date().toISOString() });
    if (msg.type === 'unsubscribe') {
      client.subs.delete(msg.topic);
      return this.flow.send(client, { type: 'unsubscribed', topic: msg.topic });
    }
    const { topic: name, after } = msg;
    let topic: Topic | undefined;
    try {
      topic = await this.admit(client, name, after);
    } catch (err) {
      throw new TopicRefusal(name, err);
    }
    if (!topic) return this.flow.send(client, { type: 'subscribed', topic: name });
    const sub: Subscription = { topic, sent: new Map(), buffer: after !== undefined ? [] : null };
    client.subs.set(name, sub);
    // (A topic spanning cities has no cursor to resume from: `admit` refused that.)
    if (after === undefined || topic.city === undefined) {
      // Live from here: what the feed has already passed on is not this subscriber's.
      const cities = topic.city === undefined ? this.inventory.cities.all().map((c) => c.id) : [topic.city];
      for (const city of cities) sub.sent.set(city, this.feed?.position(city) ?? '0-0');
      return this.flow.send(client, { type: 'subscribed', topic: name });
    }
    this.flow.send(client, { type: 'subscribed', topic: name, after });
    // Replay what the stream holds after the cursor; then release the live events that arrived meanwhile.
    const cursor = await this.flow.replay(client, topic, topic.city, after);
    if (cursor === undefined) return;
    sub.sent.set(topic.city, cursor);
    await this.fanOut.release(client, sub);
  }

  /**
   * A subscription let through: the caller's budget charged, the topic cap kept, the topic
   * authorised. Undefined when the client already has it.
   */
  private async admit(client: Client, name: string, after: string | undefined): Promise<Topic | undefined> {
    if (this.charge && !(await this.charge(client.actor, client.address, 1)))
      throw new DomainError('RATE_LIMITED', 'request budget spent; retry later', { retryAfterMs: 1_000 });
    if (client.subs.has(name)) return undefined;
    // The slot is taken before the lookup: a burst of subscribes cannot pass the cap meanwhile.
    if (client.subs.size + client.reserved >= this.maxTopics) {
      metrics.liveRefused.inc({ reason: 'topics' });
      throw new DomainError('VALIDATION', `at most ${this.maxTopics} topics per connection`);
    }
    client.reserved++;
    let topic: Topic;
    try {
      topic = await this.answer(client, name);
    } finally {
      client.reserved--;
    }
    if (client.subs.has(name)) return undefined;
    if (after !== undefined && topic.city === undefined)
      throw new DomainError('VALIDATION', 'host topics span cities and are live only; resume per vehicle or city');
    return topic;
  }

  /**
   * The authorisation answer for a topic, remembered for the connection — refusals too, and
   * lookups still under way (a burst of the same topic waits for the one lookup).
   */
  private answer(client: Client, name: string): Promise<Topic> {
    let answer = client.answers.get(name);
    if (!answer) {
      if (client.answers.size >= 10 * this.maxTopics) client.answers.clear();
      answer = this.topics.authorise(client.actor, name);
      client.answers.set(name, answer);
      // Refusals the store did not cause (forbidden, not found, malformed) are final for this connection.
      answer.catch((err: unknown) => {
        if (!(err instanceof DomainError) || err.code === 'UNAVAILABLE') client.answers.delete(name);
      });
    }
    return answer;
  }

  /**
   * A revoked token ends its open connections as it ends its HTTP requests: a last error message
   * (UNAUTHENTICATED, reason revoked), then a policy close — as soon as this process learns of the
   * revocation (at once where it was made, within the revocations' poll elsewhere).
   */
  private closeRevoked(): void {
    const revocations = this.revocations;
    if (!revocations) return;
    for (const c of this.clients) {
      if (!revocations.isRevoked(c.actor)) continue;
      this.flow.send(
        c,
        errorMessage(new DomainError('UNAUTHENTICATED', 'this token was revoked', { reason: 'revoked' })),
      );
      c.ws.close(CLOSE_POLICY, 'token revoked');
      this.clients.delete(c);
    }
  }

  private beat(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
      this.flow.send(c, { type: 'heartbeat', time: new Date().toISOString() });
    }
  }
}

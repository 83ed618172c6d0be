/**
 * Real time over WebSocket (`GET /v1/live`): a client subscribes to topics and receives every
 * matching city event as a CloudEvent, in stream order, with heartbeats.
 *
 * Topics, each authorised when subscribed:
 *   city:<id>     operations and admin (a city's feed names every customer);
 *   vehicle:<id>  the vehicle's host, staff;
 *   booking:<id>  the booking's customer, the vehicle's host, staff;
 *   host:<id>     that host, staff (all the host's vehicles, every city; live only).
 * Resume: `{"type":"subscribe","topic":"city:ber","after":"<last event id>"}` replays the city
 * stream after that id, then continues live with nothing missed or repeated (the event id is the
 * stream id, so the cursor is the same one `GET /v1/events` takes).
 *
 * One hub per process, fed by the process's search read model, which already tails every city
 * stream (architecture.md §6: the same tail feeds the WebSocket fan-out). The stream is the outbox, so a
 * process that restarts loses no event a client cannot replay.
 */
import { defaults } from '../config.ts';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { DomainError, ERROR_CODES, storeUnreachable } from '../domain/errors.ts';
import type { RegionMap } from '../services/regions.ts';
import { parseId } from '../domain/ids.ts';
import { compareStreamIds, type StreamEvent } from '../domain/events.ts';
import { streamPage } from '../services/event-feed.ts';
import type { RedisConnection } from '../services/stores.ts';
import type { Inventory } from '../services/inventory.ts';
import type { ReadModel } from '../services/read-model.ts';
import type { Actor } from './auth.ts';
import { canSeeTrip, isStaff, mayManageVehicle } from './authorize.ts';
import { PROBLEM_TYPE_BASE, problemOf } from './problems.ts';
import { toCloudEvent } from '../services/cloud-events.ts';
import { metrics } from '../metrics.ts';
import { survived } from '../log.ts';

export const LIVE_PATH = '/v1/live';

export interface LiveOptions {
  /** The regions: a topic of another region's city is refused with WRONG_REGION, naming its URL. */
  regions?: RegionMap;
  /** Heartbeat period (a JSON message and a ping frame); a client silent for two periods is dropped. */
  heartbeatMs?: number;
  /** Subscriptions per connection. */
  maxTopics?: number;
  /** Open connections per caller (in this process). */
  maxConnectionsPerCaller?: number;
  /** Each connection's message budget: a token bucket refilled at this rate, holding `messageBurst`. */
  messagesPerSecond?: number;
  messageBurst?: number;
  /** Unsent bytes a subscriber may have: past it replay pauses; past it for `slowConsumerMs`, or past 4×, the connection is closed. */
  highWaterBytes?: number;
  slowConsumerMs?: number;
  /** Events per replay page. */
  replayPageSize?: number;
  /** Charges the caller's HTTP budget (rate-limit.ts); false when spent. */
  charge?: (actor: Actor, address: string, cost: number) => Promise<boolean>;
}

/** Close codes (RFC 6455): the message budget was exceeded; the client reads too slowly. */
export const CLOSE_POLICY = 1008;
export const CLOSE_SLOW = 1013;

interface Topic {
  name: string;
  kind: 'city' | 'vehicle' | 'booking' | 'host';
  id: string;
  cities: 'all' | string;
}

interface Subscription {
  topic: Topic;
  /** Last event id sent, per city: live events at or before it were already replayed. */
  sent: Map<string, string>;
  /** While replaying, live events wait here. */
  buffer: StreamEvent[] | null;
}

interface Client {
  ws: WebSocket;
  actor: Actor;
  address: string;
  subs: Map<string, Subscription>;
  /** Subscriptions being authorised: they count against the topic cap already. */
  reserved: number;
  /** Authorisation answers, per topic name: a repeated or refused topic costs no second lookup. */
  answers: Map<string, Promise<Topic>>;
  alive: boolean;
  tokens: number;
  refilledAt: number;
  /** Messages refused in a row for the budget; past the burst, the connection is closed. */
  strikes: number;
  slowSince?: number;
}

type ClientMessage =
  | { type: 'subscribe'; topic: string; after?: string }
  | { type: 'unsubscribe'; topic: string }
  | { type: 'ping' };

const STREAM_ID = /^\d{1,16}-\d{1,10}$/;

export class LiveHub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 });
  private readonly clients = new Set<Client>();
  private readonly hostOfVehicle = new Map<string, string>();
  private readonly heartbeatMs: number;
  private readonly maxTopics: number;
  private readonly o: Required<Omit<LiveOptions, 'heartbeatMs' | 'maxTopics' | 'charge' | 'regions'>> &
    Pick<LiveOptions, 'charge' | 'regions'>;
  private readonly perCaller = new Map<string, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private unfeed: (() => void) | undefined;
  /** Batches from the feed, delivered one after another (a delivery may wait for a host lookup). */
  private delivering: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly inventory: Inventory,
    private readonly authenticate: (authorization: string | undefined) => Promise<Actor>,
    /** The process's search read model: its tail of the city streams is the hub's feed too. */
    private readonly feed: ReadModel | undefined,
    opts: LiveOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.maxTopics = opts.maxTopics ?? defaults.WS_MAX_TOPICS;
    this.o = {
      maxConnectionsPerCaller: opts.maxConnectionsPerCaller ?? defaults.WS_MAX_CONNECTIONS_PER_CALLER,
      messagesPerSecond: opts.messagesPerSecond ?? defaults.WS_MESSAGES_PER_SECOND,
      messageBurst: opts.messageBurst ?? defaults.WS_MESSAGE_BURST,
      highWaterBytes: opts.highWaterBytes ?? defaults.WS_HIGH_WATER_BYTES,
      slowConsumerMs: opts.slowConsumerMs ?? defaults.WS_SLOW_CONSUMER_MS,
      replayPageSize: opts.replayPageSize ?? 100,
      ...(opts.charge ? { charge: opts.charge } : {}),
      ...(opts.regions ? { regions: opts.regions } : {}),
    };
  }

  /** Takes over HTTP upgrades on `server` for LIVE_PATH; any other upgrade is refused. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Anything an upgrade request can throw (a URL `new URL` refuses, a store away) is answered
      // as a problem on that socket: one bad request must never end the process.
      this.upgrade(req, socket, head).catch((err: unknown) => {
        if (!(err instanceof DomainError) && !storeUnreachable(err)) survived('live.upgrade', err);
        refuse(socket, err instanceof TypeError ? new DomainError('VALIDATION', 'malformed request target') : err);
      });
    });
    this.unfeed = this.feed?.onEvents((city, events) => {
      this.delivering = this.delivering
        .then(() => this.dispatch(city, events))
        .catch((err: unknown) => survived('live.dispatch', err));
    });
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unfeed?.();
    clearInterval(this.heartbeat);
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

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname !== LIVE_PATH || this.closed)
      return refuse(socket, new DomainError('ROUTE_NOT_FOUND', `no WebSocket at ${url.pathname}`));
    if (!this.feed)
      return refuse(
        socket,
        new DomainError('UNAVAILABLE', 'real time needs the read model, and this process has none'),
      );
    // Browsers cannot set headers on a WebSocket: the token may come as `?access_token=`.
    const token = url.searchParams.get('access_token');
    let actor: Actor;
    try {
      actor = await this.authenticate(req.headers.authorization ?? (token ? `Bearer ${token}` : undefined));
    } catch (err) {
      return refuse(socket, err);
    }
    const address = req.socket.remoteAddress ?? '';
    // The upgrade is a request like any other: it spends the caller's budget.
    if (this.o.charge && !(await this.o.charge(actor, address, 1))) {
      return refuse(
        socket,
        new DomainError('RATE_LIMITED', 'request budget spent; retry later', { retryAfterMs: 1_000 }),
      );
    }
    const caller = `${actor.role}:${actor.id}`;
    if ((this.perCaller.get(caller) ?? 0) >= this.o.maxConnectionsPerCaller) {
      metrics.liveRefused.inc({ reason: 'connections' });
      return refuse(
        socket,
        new DomainError('RATE_LIMITED', `at most ${this.o.maxConnectionsPerCaller} live connections per caller`, {
          limit: this.o.maxConnectionsPerCaller,
          retryAfterMs: 1_000,
        }),
      );
    }
    this.perCaller.set(caller, (this.perCaller.get(caller) ?? 0) + 1);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connect(ws, actor, address, caller));
  }

  private connect(ws: WebSocket, actor: Actor, address: string, caller: string): void {
    const client: Client = {
      ws,
      actor,
      address,
      subs: new Map(),
      reserved: 0,
      answers: new Map(),
      alive: true,
      tokens: this.o.messageBurst,
      refilledAt: performance.now(),
      strikes: 0,
    };
    this.clients.add(client);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => {
      this.clients.delete(client);
      const left = (this.perCaller.get(caller) ?? 1) - 1;
      if (left <= 0) this.perCaller.delete(caller);
      else this.perCaller.set(caller, left);
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', (raw) => {
      client.alive = true;
      if (!this.withinBudget(client)) return;
      void this.receive(client, raw.toString()).catch((err: unknown) => this.send(client, errorMessage(err)));
    });
    this.send(client, { type: 'welcome', subject: actor.id, role: actor.role, heartbeatMs: this.heartbeatMs });
  }

  /**
   * The connection's token bucket, charged before anything is parsed or looked up: a message past
   * it is answered RATE_LIMITED; a burst of them closes the connection.
   */
  private withinBudget(client: Client): boolean {
    const now = performance.now();
    client.tokens = Math.min(
      this.o.messageBurst,
      client.tokens + ((now - client.refilledAt) / 1000) * this.o.messagesPerSecond,
    );
    client.refilledAt = now;
    if (client.tokens >= 1) {
      client.tokens -= 1;
      client.strikes = 0;
      return true;
    }
    client.strikes++;
    metrics.liveRefused.inc({ reason: 'message_budget' });
    if (client.strikes > this.o.messageBurst) {
      client.ws.close(CLOSE_POLICY, 'message budget exceeded');
      return false;
    }
    if (client.strikes === 1 || client.strikes % 10 === 0) {
      this.send(client, {
        type: 'error',
        code: 'RATE_LIMITED',
        status: 429,
        detail: `more than ${this.o.messagesPerSecond} messages per second (burst ${this.o.messageBurst}); slow down or be disconnected`,
      });
    }
    return false;
  }

  private async receive(client: Client, raw: string): Promise<void> {
    let msg: ClientMessage;
    try {
      msg = JSON.parse(raw) as ClientMessage;
    } catch {
      throw new DomainError('VALIDATION', 'messages are JSON objects');
    }
    if (msg?.type === 'ping') return this.send(client, { type: 'pong', time: new Date().toISOString() });
    if ((msg?.type !== 'subscribe' && msg?.type !== 'unsubscribe') || typeof msg.topic !== 'string') {
      throw new DomainError(
        'VALIDATION',
        'expected {"type":"subscribe"|"unsubscribe","topic":"<kind>:<id>"} or {"type":"ping"}',
      );
    }
    if (msg.type === 'unsubscribe') {
      client.subs.delete(msg.topic);
      return this.send(client, { type: 'unsubscribed', topic: msg.topic });
    }
    const after = msg.after;
    if (after !== undefined && (typeof after !== 'string' || !STREAM_ID.test(after))) {
      throw withTopic(new DomainError('VALIDATION', '`after` is an event id such as 1700000000000-0'), msg.topic);
    }
    if (this.o.charge && !(await this.o.charge(client.actor, client.address, 1))) {
      throw withTopic(
        new DomainError('RATE_LIMITED', 'request budget spent; retry later', { retryAfterMs: 1_000 }),
        msg.topic,
      );
    }
    if (client.subs.has(msg.topic)) return this.send(client, { type: 'subscribed', topic: msg.topic });
    // The slot is taken before the lookup: a burst of subscribes cannot pass the cap meanwhile.
    if (client.subs.size + client.reserved >= this.maxTopics) {
      metrics.liveRefused.inc({ reason: 'topics' });
      throw withTopic(new DomainError('VALIDATION', `at most ${this.maxTopics} topics per connection`), msg.topic);
    }
    client.reserved++;
    let topic: Topic;
    try {
      topic = await this.answer(client, msg.topic);
    } catch (err) {
      throw withTopic(err, msg.topic);
    } finally {
      client.reserved--;
    }
    if (client.subs.has(msg.topic)) return this.send(client, { type: 'subscribed', topic: msg.topic });
    if (after !== undefined && topic.cities === 'all') {
      throw withTopic(
        new DomainError('VALIDATION', 'host topics span cities and are live only; resume per vehicle or city'),
        msg.topic,
      );
    }
    const sub: Subscription = { topic, sent: new Map(), buffer: after !== undefined ? [] : null };
    client.subs.set(msg.topic, sub);
    const cities = topic.cities === 'all' ? this.inventory.cities.all().map((c) => c.id) : [topic.cities];
    if (after === undefined) {
      // Live from here: what the feed has already passed on is not this subscriber's.
      for (const city of cities) sub.sent.set(city, this.feed?.position(city) ?? '0-0');
      return this.send(client, { type: 'subscribed', topic: msg.topic });
    }
    const city = topic.cities as string;
    this.send(client, { type: 'subscribed', topic: msg.topic, after });
    // Replay what the stream holds after the cursor, a page at a time, each page only once the
    // client has read most of the one before; then release the live events that arrived meanwhile.
    let cursor = after;
    for (;;) {
      if (!(await this.drained(client))) return;
      const page = await streamPage(this.redis, city, cursor, this.o.replayPageSize);
      cursor = page.last;
      for (const event of page.events)
        if (await this.matches(topic, event))
          this.send(client, { type: 'event', topic: msg.topic, event: toCloudEvent(event) });
      if (page.read < this.o.replayPageSize) break;
    }
    sub.sent.set(city, cursor);
    const buffered = sub.buffer ?? [];
    sub.buffer = null;
    for (const event of buffered) await this.deliver(client, sub, event);
  }

  /**
   * The authorisation answer for a topic, remembered for the connection — refusals too, and
   * lookups still under way (a burst of the same topic waits for the one lookup).
   */
  private answer(client: Client, name: string): Promise<Topic> {
    let answer = client.answers.get(name);
    if (!answer) {
      if (client.answers.size >= 10 * this.maxTopics) client.answers.clear();
      answer = this.authorise(client.actor, name);
      client.answers.set(name, answer);
      // Refusals the store did not cause (forbidden, not found, malformed) are final for this connection.
      answer.catch((err: unknown) => {
        if (!(err instanceof DomainError) || err.code === 'UNAVAILABLE') client.answers.delete(name);
      });
    }
    return answer;
  }

  /**
   * Waits until the client has read most of what was sent (unsent bytes under half the high-water
   * mark). A client that stays behind for `slowConsumerMs` is closed; returns false then.
   */
  private async drained(client: Client): Promise<boolean> {
    const since = Date.now();
    while (client.ws.bufferedAmount > this.o.highWaterBytes / 2) {
      if (client.ws.readyState !== client.ws.OPEN) return false;
      if (Date.now() - since > this.o.slowConsumerMs) {
        this.closeSlow(client);
        return false;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return client.ws.readyState === client.ws.OPEN;
  }

  private closeSlow(client: Client): void {
    metrics.liveRefused.inc({ reason: 'slow_consumer' });
    client.ws.close(CLOSE_SLOW, `slow consumer: ${client.ws.bufferedAmount} bytes unread`);
    // A client that does not read does not read the close frame either.
    setTimeout(() => client.ws.terminate(), 1_000).unref();
  }

  /** Sends a message, or closes a client that has fallen too far behind to catch up. */
  private send(client: Client, message: unknown): void {
    const ws = client.ws;
    if (ws.readyState !== ws.OPEN) return;
    const behind = ws.bufferedAmount;
    if (behind > this.o.highWaterBytes) {
      client.slowSince ??= Date.now();
      if (behind > 4 * this.o.highWaterBytes || Date.now() - client.slowSince > this.o.slowConsumerMs) {
        this.closeSlow(client);
        return;
      }
    } else {
      client.slowSince = undefined;
    }
    ws.send(JSON.stringify(message));
  }

  /** A topic of a city that another region serves: watch it there (its URL in the refusal). */
  private refuseOtherRegions(city: string | undefined): void {
    const route = city ? this.o.regions?.route(city) : undefined;
    if (route?.kind !== 'elsewhere') return;
    throw new DomainError(
      'WRONG_REGION',
      `city ${city} is served by region ${route.region}: subscribe at ${route.url}`,
      {
        region: route.region,
        url: route.url,
      },
    );
  }

  /** Resolves a topic name for an actor, or refuses it (FORBIDDEN / NOT_FOUND / VALIDATION / WRONG_REGION). */
  private async authorise(actor: Actor, name: string): Promise<Topic> {
    const m = /^(city|vehicle|booking|host):([A-Za-z0-9_-]{1,100})$/.exec(name);
    if (!m) throw new DomainError('VALIDATION', 'topics are city:<id>, vehicle:<id>, booking:<id> or host:<id>');
    const kind = m[1] as Topic['kind'];
    const id = m[2]!;
    this.refuseOtherRegions(kind === 'city' ? id : kind === 'host' ? undefined : parseId(id)?.city);
    const forbidden = () =>
      new DomainError('FORBIDDEN', `${actor.role} ${actor.id} may not watch ${name}`, { topic: name });
    switch (kind) {
      case 'city':
        if (!isStaff(actor) || (actor.cities && !actor.cities.has(id))) throw forbidden();
        if (!this.inventory.cities.get(id))
          throw new DomainError('NOT_FOUND', `city ${id} not found`, { entity: 'city', id });
        return { name, kind, id, cities: id };
      case 'host':
        // A host's fleet spans cities: staff limited to some cities watch it city by city instead.
        if (!(isStaff(actor) && !actor.cities) && !(actor.role === 'host' && actor.hostId === id)) throw forbidden();
        return { name, kind, id, cities: 'all' };
      case 'vehicle': {
        if (parseId(id)?.kind !== 'vehicle')
          throw new DomainError('NOT_FOUND', `vehicle ${id} not found`, { entity: 'vehicle', id });
        const { vehicle } = await this.inventory.getVehicleState(id);
        if (!mayManageVehicle(actor, vehicle)) throw forbidden();
        return { name, kind, id, cities: vehicle.city };
      }
      case 'booking': {
        if (parseId(id)?.kind !== 'booking')
          throw new DomainError('NOT_FOUND', `booking ${id} not found`, { entity: 'booking', id });
        const { entry, vehicle } = await this.inventory.getEntry(id, 'booking');
        if (!canSeeTrip(actor, entry, vehicle)) throw forbidden();
        return { name, kind, id, cities: vehicle.city };
      }
    }
  }

  private async matches(topic: Topic, e: StreamEvent): Promise<boolean> {
    switch (topic.kind) {
      case 'city':
        return e.city === topic.id;
      case 'vehicle':
        return e.vehicle === topic.id;
      case 'booking':
        return e.subject === topic.id;
      case 'host':
        return (await this.hostOf(e)) === topic.id;
    }
  }

  private async hostOf(e: StreamEvent): Promise<string | undefined> {
    if (e.type.startsWith('vehicle.') && typeof e.state?.hostId === 'string')
      this.hostOfVehicle.set(e.vehicle, e.state.hostId);
    let host = this.hostOfVehicle.get(e.vehicle);
    if (host === undefined) {
      host = (await this.inventory.hostOfVehicle(e.vehicle)) ?? '';
      if (this.hostOfVehicle.size > 100_000) this.hostOfVehicle.clear();
      this.hostOfVehicle.set(e.vehicle, host);
    }
    return host || undefined;
  }

  /** One batch of a city's events from the feed, to every subscription of that city. */
  private async dispatch(city: string, events: StreamEvent[]): Promise<void> {
    for (const event of events) {
      for (const client of this.clients) {
        for (const sub of client.subs.values()) {
          if (sub.topic.cities !== 'all' && sub.topic.cities !== city) continue;
          if (sub.buffer) {
            // Live events wait while the subscription replays; a replay that cannot keep up ends.
            sub.buffer.push(event);
            if (sub.buffer.length > 10_000) this.closeSlow(client);
          } else await this.deliver(client, sub, event);
        }
      }
    }
  }

  private async deliver(client: Client, sub: Subscription, event: StreamEvent): Promise<void> {
    const sent = sub.sent.get(event.city);
    if (sent !== undefined && compareStreamIds(event.id, sent) <= 0) return;
    sub.sent.set(event.city, event.id);
    if (await this.matches(sub.topic, event))
      this.send(client, { type: 'event', topic: sub.topic.name, event: toCloudEvent(event) });
  }

  private beat(): void {
    for (const c of this.clients) {
      if (!c.alive) {
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
      this.send(c, { type: 'heartbeat', time: new Date().toISOString() });
    }
  }
}

function withTopic(err: unknown, topic: string): unknown {
  if (err instanceof DomainError) (err as DomainError & { topic?: string }).topic = topic;
  return err;
}

function errorMessage(err: unknown) {
  const p = problemOf(err);
  return {
    type: 'error',
    ...(typeof (err as { topic?: unknown }).topic === 'string' ? { topic: (err as { topic: string }).topic } : {}),
    code: p.code,
    status: p.status,
    detail: p.detail,
    ...(p.code === 'WRONG_REGION' ? p.extra : {}),
  };
}

/** Refuses an upgrade with a plain HTTP problem response, then drops the socket. */
function refuse(socket: Duplex, err: unknown): void {
  const p = problemOf(err);
  const title = ERROR_CODES[p.code].title;
  const body = JSON.stringify({
    type: `${PROBLEM_TYPE_BASE}${p.code.toLowerCase()}`,
    title,
    status: p.status,
    detail: p.detail,
    code: p.code,
    instance: LIVE_PATH,
  });
  socket.end(
    `HTTP/1.1 ${p.status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.destroy();
}

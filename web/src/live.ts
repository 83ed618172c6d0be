/**
 * The console's `/v1/live` connection (docs/api.md, "Real time"): subscribe to topics, hear their
 * events, and survive drops without losing any.
 *
 * - Reconnects with exponential backoff and jitter (0.5 s doubling to 30 s, each wait drawn in
 *   its upper half), reset once a connection has stayed up for 10 s: a server that is down or
 *   refusing is not hammered every second, and a blip costs half a second.
 * - Resubscribes each topic with `after` = the id of the last event seen on it (the event id is
 *   the city stream's id): the hub replays what happened meanwhile, then continues live — nothing
 *   missed, nothing twice. `onResume` tells the view a connection came back, for what it shows
 *   that no event of its topics has told it yet (a topic with no event seen has no position).
 * - A connection silent for more than two heartbeats (the server sends one every `heartbeatMs`,
 *   announced in `welcome`) is given up and replaced: a dead network does not look connected.
 *
 * The socket and the clock are injected, so all of it runs in a unit test (test/unit/console-live.test.ts).
 */
import type { CloudEvent } from './types.ts';

export interface Backoff {
  /** The first wait, doubled at each failed attempt up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /** A connection open this long resets the schedule. */
  stableMs: number;
}

export const BACKOFF: Backoff = { baseMs: 500, maxMs: 30_000, stableMs: 10_000 };

/** The wait before reconnection attempt `attempt` (0: the first after a drop), in [ceiling/2, ceiling]. */
export function backoffDelay(attempt: number, random: () => number = Math.random, o: Backoff = BACKOFF): number {
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(0, attempt), 32));
  return Math.round(ceiling / 2 + Math.min(1, Math.max(0, random())) * (ceiling / 2));
}

/** Failed attempts in a row: each drop asks for the next wait; a stable connection starts over. */
export class Reconnects {
  private attempt = 0;
  private openedAt: number | undefined;

  constructor(
    private readonly o: Backoff = BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  opened(now: number): void {
    this.openedAt = now;
  }

  /** The connection closed, or never opened: how long to wait before the next attempt. */
  closed(now: number): number {
    if (this.openedAt !== undefined && now - this.openedAt >= this.o.stableMs) this.attempt = 0;
    this.openedAt = undefined;
    return backoffDelay(this.attempt++, this.random, this.o);
  }
}

/** An event id as the hub takes it in `after`: `<ms>-<seq>` (a city stream id). */
const EVENT_ID = /^(\d{1,16})-(\d{1,10})$/;

/** Orders two event ids (`<ms>-<seq>`, numbers of any length compared exactly). */
export function compareEventIds(a: string, b: string): number {
  const [, am = '', as = ''] = EVENT_ID.exec(a) ?? [];
  const [, bm = '', bs = ''] = EVENT_ID.exec(b) ?? [];
  const num = (x: string, y: string) => x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
  return Math.sign(
    num(am.replace(/^0+/, ''), bm.replace(/^0+/, '')) || num(as.replace(/^0+/, ''), bs.replace(/^0+/, '')),
  );
}

/** `host:` topics span cities and are live only: the hub refuses `after` on them. */
const resumable = (topic: string) => !topic.startsWith('host:');

/** The last event id seen per topic: where its subscription resumes. */
export class Positions {
  private readonly last = new Map<string, string>();

  seen(topic: string, eventId: string): void {
    if (!resumable(topic) || !EVENT_ID.test(eventId)) return;
    const prior = this.last.get(topic);
    if (prior === undefined || compareEventIds(eventId, prior) > 0) this.last.set(topic, eventId);
  }

  after(topic: string): string | undefined {
    return this.last.get(topic);
  }

  forget(topic: string): void {
    this.last.delete(topic);
  }

  /** The subscribe message for a topic: resuming after the last event seen on it, if any. */
  subscribe(topic: string): { type: 'subscribe'; topic: string; after?: string } {
    const after = this.last.get(topic);
    return after === undefined ? { type: 'subscribe', topic } : { type: 'subscribe', topic, after };
  }
}

/** A connection as Live drives it (client.ts adapts the browser's WebSocket; a test, a fake). */
export interface Socket {
  /** Open, so a message sent now goes out. */
  readonly open: boolean;
  send(data: string): void;
  close(): void;
}

/** What a socket tells Live: opened, a message, closed (or failed to open). */
export interface SocketEvents {
  opened(): void;
  message(data: string): void;
  closed(): void;
}

export interface Clock {
  now(): number;
  setTimeout(run: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
  random(): number;
}

const BROWSER_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
  random: () => Math.random(),
};

/** The hub's refusals of a topic that another attempt would not change: it is not resubscribed. */
const FINAL_REFUSALS = new Set(['FORBIDDEN', 'NOT_FOUND', 'VALIDATION', 'WRONG_REGION']);

type ServerMessage = {
  type?: string;
  topic?: string;
  event?: CloudEvent;
  code?: string;
  heartbeatMs?: number;
};

/** `/v1/live`: subscribe to topics, hear their events; reconnects and resumes by itself. */
export class Live {
  private ws: Socket | undefined;
  private readonly topics = new Set<string>();
  private readonly positions = new Positions();
  private readonly reconnects: Reconnects;
  private retry: unknown;
  private watchdog: unknown;
  private heartbeatMs = 15_000;
  private everOpened = false;
  private closed = false;
  onEvent: (topic: string, event: CloudEvent) => void = () => {};
  onState: (connected: boolean) => void = () => {};
  /** A connection is back after a drop (its topics resubscribed): refresh what no event may tell. */
  onResume: () => void = () => {};

  constructor(
    private readonly connect: (events: SocketEvents) => Socket,
    private readonly clock: Clock = BROWSER_CLOCK,
    backoff: Backoff = BACKOFF,
  ) {
    this.reconnects = new Reconnects(backoff, () => clock.random());
    this.open();
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.send(this.positions.subscribe(topic));
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.retry);
    this.clock.clearTimeout(this.watchdog);
    this.ws?.close();
  }

  private send(msg: unknown): void {
    if (this.ws?.open) this.ws.send(JSON.stringify(msg));
  }

  private open(): void {
    // Whatever a replaced socket still says is not heard.
    const ws: Socket = this.connect({
      opened: () => ws === this.ws && this.opened(),
      message: (data) => {
        if (ws !== this.ws) return;
        this.listen();
        this.receive(data);
      },
      closed: () => this.drop(ws),
    });
    this.ws = ws;
  }

  private opened(): void {
    this.reconnects.opened(this.clock.now());
    this.listen();
    this.onState(true);
    for (const topic of this.topics) this.send(this.positions.subscribe(topic));
    if (this.everOpened) this.onResume();
    this.everOpened = true;
  }

  private receive(raw: string): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(raw) as ServerMessage;
    } catch {
      return;
    }
    if (msg.type === 'welcome' && typeof msg.heartbeatMs === 'number' && msg.heartbeatMs > 0) {
      this.heartbeatMs = msg.heartbeatMs;
      this.listen();
    } else if (msg.type === 'event' && msg.topic && msg.event) {
      this.positions.seen(msg.topic, msg.event.id);
      this.onEvent(msg.topic, msg.event);
    } else if (msg.type === 'error' && msg.topic && FINAL_REFUSALS.has(msg.code ?? '')) {
      this.topics.delete(msg.topic);
      this.positions.forget(msg.topic);
    }
  }

  /** Heard from the server: the connection is alive for two more heartbeats. */
  private listen(): void {
    this.clock.clearTimeout(this.watchdog);
    const ws = this.ws;
    this.watchdog = this.clock.setTimeout(
      () => {
        if (ws && ws === this.ws) {
          ws.close();
          this.drop(ws);
        }
      },
      2 * this.heartbeatMs + 1_000,
    );
  }

  /** `ws` is gone (closed, failed to open, or silent): wait, then open another. Once per socket. */
  private drop(ws: Socket): void {
    if (ws !== this.ws) return;
    this.ws = undefined;
    this.clock.clearTimeout(this.watchdog);
    this.onState(false);
    if (this.closed) return;
    this.retry = this.clock.setTimeout(() => this.open(), this.reconnects.closed(this.clock.now()));
  }
}

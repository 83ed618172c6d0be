/** One WebSocket connection of `GET /v1/live`: its caller, subscriptions and message budget. */
import type { WebSocket } from 'ws';
import type { StreamEvent } from '../../domain/events.ts';
import { metrics } from '../../metrics.ts';
import type { Actor } from '../auth.ts';
import { CLOSE_POLICY } from './protocol.ts';
import type { Topic } from './topics.ts';

export interface Subscription {
  topic: Topic;
  /** Last event id sent, per city: live events at or before it were already replayed. */
  sent: Map<string, string>;
  /** While replaying, live events wait here. */
  buffer: StreamEvent[] | null;
}

export interface Client {
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

export function newClient(ws: WebSocket, actor: Actor, address: string, burst: number): Client {
  return {
    ws,
    actor,
    address,
    subs: new Map(),
    reserved: 0,
    answers: new Map(),
    alive: true,
    tokens: burst,
    refilledAt: performance.now(),
    strikes: 0,
  };
}

export interface MessageBudget {
  messagesPerSecond: number;
  messageBurst: number;
}

/**
 * The connection's token bucket, charged before anything is parsed or looked up: a message past
 * it is answered RATE_LIMITED (`warn`); a burst of them closes the connection.
 */
export function withinBudget(client: Client, budget: MessageBudget, warn: (message: unknown) => void): boolean {
  const now = performance.now();
  client.tokens = Math.min(
    budget.messageBurst,
    client.tokens + ((now - client.refilledAt) / 1000) * budget.messagesPerSecond,
  );
  client.refilledAt = now;
  if (client.tokens >= 1) {
    client.tokens -= 1;
    client.strikes = 0;
    return true;
  }
  client.strikes++;
  metrics.liveRefused.inc({ reason: 'message_budget' });
  if (client.strikes > budget.messageBurst) {
    client.ws.close(CLOSE_POLICY, 'message budget exceeded');
    return false;
  }
  if (client.strikes === 1 || client.strikes % 10 === 0) {
    warn({
      type: 'error',
      code: 'RATE_LIMITED',
      status: 429,
      detail: `more than ${budget.messagesPerSecond} messages per second (burst ${budget.messageBurst}); slow down or be disconnected`,
    });
  }
  return false;
}

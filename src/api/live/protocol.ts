/**
 * The protocol of `GET /v1/live` (docs/api.md, "Real time"): its path, options and close codes,
 * the messages a client sends (one TypeBox schema checks them) and the error message the hub
 * answers with.
 */
import { Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DomainError } from '../../domain/errors.ts';
import type { RegionMap } from '../../services/regions.ts';
import type { TokenRevocations } from '../../services/token-revocations.ts';
import type { Actor } from '../auth.ts';
import { problemOf } from '../problems.ts';

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
  /**
   * The revoked tokens as this process knows them (services/token-revocations.ts): when they
   * change, the connections opened with a token now revoked are closed (CLOSE_POLICY).
   */
  revocations?: Pick<TokenRevocations, 'isRevoked' | 'onChange'>;
}

/** Close codes (RFC 6455): the message budget was exceeded; the client reads too slowly. */
export const CLOSE_POLICY = 1008;
export const CLOSE_SLOW = 1013;

/** A stream id, the cursor `after` takes (the event id of a CloudEvent). */
const STREAM_ID = /^\d{1,16}-\d{1,10}$/;

const ClientMessageCheck = TypeCompiler.Compile(
  Type.Union([
    Type.Object({ type: Type.Literal('ping') }),
    Type.Object({ type: Type.Literal('unsubscribe'), topic: Type.String() }),
    // `after` is checked apart: a bad cursor is refused naming the topic.
    Type.Object({ type: Type.Literal('subscribe'), topic: Type.String(), after: Type.Optional(Type.Unknown()) }),
  ]),
);

export type ClientMessage =
  | { type: 'ping' }
  | { type: 'unsubscribe'; topic: string }
  | { type: 'subscribe'; topic: string; after?: string };

/** A client's message, or VALIDATION (naming the topic when the message names one). */
export function parseClientMessage(raw: string): ClientMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    throw new DomainError('VALIDATION', 'messages are JSON objects');
  }
  if (!ClientMessageCheck.Check(msg)) {
    throw new DomainError(
      'VALIDATION',
      'expected {"type":"subscribe"|"unsubscribe","topic":"<kind>:<id>"} or {"type":"ping"}',
    );
  }
  if (msg.type !== 'subscribe') return msg;
  const { topic, after } = msg;
  if (after === undefined) return { type: 'subscribe', topic };
  if (typeof after !== 'string' || !STREAM_ID.test(after))
    throw new TopicRefusal(topic, new DomainError('VALIDATION', '`after` is an event id such as 1700000000000-0'));
  return { type: 'subscribe', topic, after };
}

/** A refusal of one topic: the error message names it. */
export class TopicRefusal extends Error {
  constructor(
    readonly topic: string,
    readonly reason: unknown,
  ) {
    super(`topic ${topic} refused`);
  }
}

/** The `error` message for a failure: the API's code, status and detail (and the topic it concerns). */
export function errorMessage(err: unknown) {
  const reason = err instanceof TopicRefusal ? err.reason : err;
  const p = problemOf(reason);
  return {
    type: 'error',
    ...(err instanceof TopicRefusal ? { topic: err.topic } : {}),
    code: p.code,
    status: p.status,
    detail: p.detail,
    ...(p.code === 'WRONG_REGION' ? p.extra : {}),
  };
}

/**
 * The console's only way to the service: the public REST API, typed from its OpenAPI document
 * (openapi.d.ts, generated), and the `/v1/live` WebSocket. Every error the API returns surfaces
 * with its `detail`.
 */
import createClient from 'openapi-fetch';
import type { components, paths } from './openapi.d.ts';

export type Schemas = components['schemas'];
/** A conflicted booking's offers, as the API answers them. */
export type OffersDoc = paths['/v1/bookings/{id}/offers']['get']['responses'][200]['content']['application/json'];

export interface Session {
  token: string;
  role: 'customer' | 'host' | 'ops' | 'admin';
  sub: string;
  hostId?: string;
}

/** The claims of a token (its signature is the server's business). */
export function sessionOf(token: string): Session {
  const part = token.split('.')[1] ?? '';
  const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
  const role = claims.role;
  if (role !== 'customer' && role !== 'host' && role !== 'ops' && role !== 'admin') throw new Error('unknown role');
  return {
    token,
    role,
    sub: String(claims.sub),
    ...(typeof claims.hostId === 'string' ? { hostId: claims.hostId } : {}),
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

export function api(session: Session | undefined) {
  const client = createClient<paths>({ baseUrl: location.origin });
  if (session)
    client.use({
      onRequest({ request }) {
        request.headers.set('authorization', `Bearer ${session.token}`);
        return request;
      },
    });
  return client;
}

export type Client = ReturnType<typeof api>;

/** The data of an answer, or the API's problem as an ApiError (its `detail` is what people read). */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok && data !== undefined) return data;
  if (response.ok && response.status === 204) return undefined as T;
  const p = (error ?? {}) as { code?: string; detail?: string; title?: string };
  throw new ApiError(response.status, p.code ?? 'HTTP', p.detail ?? p.title ?? `HTTP ${response.status}`);
}

type LiveEvent = { type: string; subject: string; time: string; data: Record<string, unknown> };

/** `/v1/live`: subscribe to topics, hear their events; reconnects and resubscribes by itself. */
export class Live {
  private ws: WebSocket | undefined;
  private readonly topics = new Set<string>();
  private closed = false;
  onEvent: (topic: string, event: LiveEvent) => void = () => {};
  onState: (connected: boolean) => void = () => {};

  constructor(private readonly session: Session) {
    this.open();
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.send({ type: 'subscribe', topic });
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
  }

  private send(msg: unknown): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private open(): void {
    const url = `${location.origin.replace(/^http/, 'ws')}/v1/live?access_token=${encodeURIComponent(this.session.token)}`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.onState(true);
      for (const topic of this.topics) this.send({ type: 'subscribe', topic });
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(String(m.data)) as { type: string; topic?: string; event?: LiveEvent };
      if (msg.type === 'event' && msg.topic && msg.event) this.onEvent(msg.topic, msg.event);
    };
    ws.onclose = () => {
      this.onState(false);
      if (!this.closed) setTimeout(() => this.open(), 1_000);
    };
  }
}

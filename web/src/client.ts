/**
 * The console's only way to the service: the public REST API, typed from its OpenAPI document
 * (openapi.d.ts, generated; the shapes the views use are in types.ts), and the `/v1/live`
 * WebSocket (live.ts). Every error the API returns surfaces with its `detail`.
 */
import createClient from 'openapi-fetch';
import { Live } from './live.ts';
import type { paths } from './openapi.d.ts';

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

/** The session's `/v1/live` connection over the browser's WebSocket (live.ts: backoff, resume). */
export function liveFor(session: Session): Live {
  const url = `${location.origin.replace(/^http/, 'ws')}/v1/live?access_token=${encodeURIComponent(session.token)}`;
  return new Live((events) => {
    const ws = new WebSocket(url);
    ws.onopen = () => events.opened();
    ws.onmessage = (m) => events.message(String(m.data));
    ws.onclose = () => events.closed();
    return {
      get open() {
        return ws.readyState === WebSocket.OPEN;
      },
      send: (data) => ws.send(data),
      close: () => ws.close(),
    };
  });
}

/**
 * The simulated consumers' HTTP client: tokens minted per caller (once each), every call timed and
 * recorded by endpoint and outcome; a network failure answers status 0 and is recorded too.
 */
import { mintToken, type Role } from '../api/auth.ts';
import type { Api } from './marketplace.ts';
import type { Recorder } from './stats.ts';

export interface ApiOptions {
  /** A client that waits at most this long for an answer (default: no limit). */
  timeoutMs?: number;
  /** Told of every acknowledged write (a 2xx answer to anything but GET). */
  onWrite?: () => void;
}

export function httpApi(base: string, recorder: Recorder, secret: string, o: ApiOptions = {}): Api {
  const key = new TextEncoder().encode(secret);
  const tokens = new Map<string, Promise<string>>();
  return {
    token(role: Role, sub: string, hostId?: string) {
      const k = `${role}:${sub}`;
      let t = tokens.get(k);
      if (!t) {
        t = mintToken(key, { sub, role, ...(hostId ? { hostId } : {}) });
        tokens.set(k, t);
      }
      return t;
    },
    async call(token: string, method: string, path: string, endpoint: string, body?: unknown) {
      const started = performance.now();
      try {
        const res = await fetch(`${base}${path}`, {
          method,
          ...(o.timeoutMs ? { signal: AbortSignal.timeout(o.timeoutMs) } : {}),
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const json = (await res.json().catch(() => ({}))) as Record<string, unknown>; // a body that is not JSON: the status says what happened
        recorder.call(
          endpoint,
          performance.now() - started,
          res.status,
          typeof json.code === 'string' ? json.code : undefined,
        );
        if (method !== 'GET' && res.status < 300) o.onWrite?.();
        return { status: res.status, json };
      } catch {
        recorder.call(endpoint, performance.now() - started, 0, 'NETWORK');
        return { status: 0, json: {} };
      }
    },
  };
}

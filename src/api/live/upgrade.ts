/**
 * Upgrade and authentication: the HTTP upgrade to `GET /v1/live` is a request like any other —
 * authenticated (a header, or `?access_token=` since browsers cannot set one), charged to the
 * caller's budget, and capped per caller. A refusal is a plain HTTP problem on the socket.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { DomainError, ERROR_CODES, storeUnreachable } from '../../domain/errors.ts';
import { survived } from '../../log.ts';
import { metrics } from '../../metrics.ts';
import type { Actor } from '../auth.ts';
import { PROBLEM_TYPE_BASE, problemOf } from '../problems.ts';
import { LIVE_PATH, type LiveOptions } from './protocol.ts';

/** An upgrade let through: who, from where, and the key its connection counts under. */
export interface Admitted {
  actor: Actor;
  address: string;
  caller: string;
}

export interface GateOptions {
  authenticate: (authorization: string | undefined) => Promise<Actor>;
  charge: LiveOptions['charge'];
  maxConnectionsPerCaller: number;
  /** False once the hub is closing: upgrades are refused (404) then. */
  open: () => boolean;
  /** Real time needs the read model's tail; without one, upgrades answer 503. */
  fed: boolean;
}

export class UpgradeGate {
  private readonly perCaller = new Map<string, number>();

  constructor(private readonly o: GateOptions) {}

  /** Takes over HTTP upgrades on `server`: admitted ones go to `accept`, any other is refused. */
  listen(server: Server, accept: (req: IncomingMessage, socket: Duplex, head: Buffer, admitted: Admitted) => void) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Anything an upgrade request can throw (a URL `new URL` refuses, a store away) is answered
      // as a problem on that socket: one bad request must never end the process.
      this.admit(req, socket)
        .then((admitted) => {
          if (admitted) accept(req, socket, head, admitted);
        })
        .catch((err: unknown) => {
          if (!(err instanceof DomainError) && !storeUnreachable(err)) survived('live.upgrade', err);
          refuse(socket, err instanceof TypeError ? new DomainError('VALIDATION', 'malformed request target') : err);
        });
    });
  }

  /** A connection admitted by `admit` has closed. */
  release(caller: string): void {
    const left = (this.perCaller.get(caller) ?? 1) - 1;
    if (left <= 0) this.perCaller.delete(caller);
    else this.perCaller.set(caller, left);
  }

  /** The caller of an upgrade, counted against its cap; undefined when refused (the socket answered). */
  private async admit(req: IncomingMessage, socket: Duplex): Promise<Admitted | undefined> {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname !== LIVE_PATH || !this.o.open())
      return refuse(socket, new DomainError('ROUTE_NOT_FOUND', `no WebSocket at ${url.pathname}`));
    if (!this.o.fed)
      return refuse(
        socket,
        new DomainError('UNAVAILABLE', 'real time needs the read model, and this process has none'),
      );
    // Browsers cannot set headers on a WebSocket: the token may come as `?access_token=`.
    const token = url.searchParams.get('access_token');
    let actor: Actor;
    try {
      actor = await this.o.authenticate(req.headers.authorization ?? (token ? `Bearer ${token}` : undefined));
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
    const max = this.o.maxConnectionsPerCaller;
    if ((this.perCaller.get(caller) ?? 0) >= max) {
      metrics.liveRefused.inc({ reason: 'connections' });
      return refuse(
        socket,
        new DomainError('RATE_LIMITED', `at most ${max} live connections per caller`, {
          limit: max,
          retryAfterMs: 1_000,
        }),
      );
    }
    this.perCaller.set(caller, (this.perCaller.get(caller) ?? 0) + 1);
    return { actor, address, caller };
  }
}

/** Refuses an upgrade with a plain HTTP problem response, then drops the socket. */
function refuse(socket: Duplex, err: unknown): undefined {
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
  return undefined;
}

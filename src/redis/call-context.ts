/**
 * Who a change is made for, and in which request and trace: carried to every script a caller runs
 * (the one trailing argument `ctx:<json>`, taken off ARGV by the scripts' core like `clock:`) and
 * written into each event the script appends (`actor`, `req`, `tp`). Set once per HTTP request by
 * the API and once per loop by each worker; nothing between them passes it by hand.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventActor } from '../domain/events.ts';
import { currentTraceparent } from '../telemetry/spans.ts';

export type { EventActor } from '../domain/events.ts';

export interface CallContext {
  actor?: EventActor;
  /** The request id the caller got back (`x-request-id`). */
  requestId?: string;
  /** W3C trace context of the span the change was made in (tracing on). */
  traceparent?: string;
}

const storage = new AsyncLocalStorage<CallContext>();

/** Runs `fn` with `ctx` as the call context of every script it runs (merged over an outer one). */
export function withCallContext<T>(ctx: CallContext, fn: () => T): T {
  const outer = storage.getStore();
  return storage.run(outer ? { ...outer, ...ctx } : ctx, fn);
}

/** Sets the context for the rest of the current asynchronous flow (a request's hooks and handler). */
export function enterCallContext(ctx: CallContext): void {
  storage.enterWith(ctx);
}

export function callContext(): CallContext | undefined {
  return storage.getStore();
}

/** A part of the service acting on its own. */
export const systemActor = (
  name: 'sweeper' | 'resolver' | 'failover' | 'sync' | 'cli' | 'demo' | 'webhooks',
): EventActor => ({
  sub: `system:${name}`,
  role: 'system',
});

/** The script argument for the current context, or none. */
export function contextArgument(): string | undefined {
  const ctx = storage.getStore();
  // The span the script runs in (tracing on), else what the caller was given.
  const tp = currentTraceparent() ?? ctx?.traceparent;
  if (!ctx?.actor && !ctx?.requestId && !tp) return undefined;
  return `ctx:${JSON.stringify({
    ...(ctx?.actor ? { actor: ctx.actor } : {}),
    ...(ctx?.requestId ? { req: ctx.requestId } : {}),
    ...(tp ? { tp } : {}),
  })}`;
}

/**
 * Who a change is made for, and in which request and trace: carried to every script a caller runs
 * (the one trailing argument `ctx:...`, taken off ARGV by the scripts' core like `clock:`) and
 * written into each event the script appends (`actor`, `req`, `tp`). An API request passes its own
 * explicitly with its commands (`CommandOptions.context`, from `commandOptions(request)`); each
 * worker sets its own once per loop (`withCallContext`), for everything the loop runs.
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

/**
 * `FLEET_CALL_CONTEXT_CHECK=1` (npm test sets it): an API request's handler runs inside a marked
 * context, and a script that appends events inside it without the request's context passed
 * explicitly (`CommandOptions.context`) throws: the tests find a write path that would record no
 * actor. Without the check no request enters the store at all, so an API process pays no promise
 * hook for it (Node 20's AsyncLocalStorage hooks every promise once any context was entered).
 */
const CHECK = process.env.FLEET_CALL_CONTEXT_CHECK === '1';
const requests = new WeakSet<CallContext>();

/** Runs an API request's handler: marked for the check (tests), as it is otherwise. */
export function asRequest<T>(ctx: CallContext, fn: () => T): T {
  if (!CHECK) return fn();
  requests.add(ctx);
  return storage.run(ctx, fn);
}

/** Runs `fn` with `ctx` as the call context of every script it runs (merged over an outer one). */
export function withCallContext<T>(ctx: CallContext, fn: () => T): T {
  const outer = storage.getStore();
  return storage.run(outer ? { ...outer, ...ctx } : ctx, fn);
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

/** Each actor's JSON, encoded once: a request's actor is its caller's, the same object every time. */
const encodedActors = new WeakMap<EventActor, string>();
/** Separates the argument's parts (ASCII unit separator): never inside a request id or a traceparent. */
const SEP = '\u001f';

/**
 * The script argument for `explicit` (an API request's context, passed down with its command
 * options) or else the current context, or none: `ctx:<request id>\x1f<traceparent>\x1f<actor
 * json>` (src/redis/lua/includes/engine.lua splits it and writes the parts into the events as they
 * are). JSON escapes the separator inside the actor; the request id has it removed.
 */
export function contextArgument(script: string, explicit?: CallContext): string | undefined {
  const stored = storage.getStore();
  if (CHECK && !explicit && stored && requests.has(stored))
    throw new Error(`${script} ran in an API request without the request's call context (pass CommandOptions.context)`);
  const ctx = explicit ?? stored;
  // The span the script runs in (tracing on), else what the caller was given.
  const tp = currentTraceparent() ?? ctx?.traceparent;
  if (!ctx?.actor && !ctx?.requestId && !tp) return undefined;
  let actor = '';
  if (ctx?.actor) {
    const known = encodedActors.get(ctx.actor);
    actor = known ?? JSON.stringify(ctx.actor);
    if (known === undefined) encodedActors.set(ctx.actor, actor);
  }
  const req = ctx?.requestId ? ctx.requestId.replaceAll(SEP, '') : '';
  return `ctx:${req}${SEP}${tp ? tp.replaceAll(SEP, '') : ''}${SEP}${actor}`;
}

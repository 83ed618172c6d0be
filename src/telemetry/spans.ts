/**
 * The service's own spans, and the trace context that crosses the city streams: a command's
 * script writes the W3C `traceparent` of its span into its event (redis/call-context.ts), and the
 * readers of that event — the sync's transaction, the resolver's offers, a webhook delivery, a
 * WebSocket push — continue that trace (a span of one event: its child; a batch of many: a child of
 * the first, linked to the others). Off (no `OTEL_*`), every function here is a plain call: no
 * span, no context, no allocation.
 */
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Link } from '@opentelemetry/api';

let on = false;

/** Called once the SDK is started (telemetry/tracing.ts). */
export function tracingOn(): void {
  on = true;
}

export const isTracing = () => on;

const tracer = () => trace.getTracer('fleet-inventory');

function contextOf(traceparent: string) {
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

export interface SpanOptions {
  /** Continue this trace (an event's `traceparent`) instead of the current one. */
  parent?: string | undefined;
  /** Other traces this work serves (the rest of a batch). */
  links?: readonly (string | undefined)[];
  attributes?: Record<string, string | number | boolean>;
}

/** Runs `fn` in a span named `name` (tracing on), ended when `fn` settles; a throw marks it failed. */
export function inSpan<T>(name: string, opts: SpanOptions, fn: () => Promise<T>): Promise<T> {
  if (!on) return fn();
  const parent = opts.parent ? contextOf(opts.parent) : context.active();
  const links: Link[] = [];
  for (const tp of opts.links ?? []) {
    const sc = tp ? trace.getSpanContext(contextOf(tp)) : undefined;
    if (sc) links.push({ context: sc });
  }
  return tracer().startActiveSpan(
    name,
    { links, ...(opts.attributes ? { attributes: opts.attributes } : {}) },
    parent,
    async (span) => {
      try {
        return await fn();
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/** The current span's `traceparent` (tracing on), to write into an event or send on. */
export function currentTraceparent(): string | undefined {
  if (!on) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

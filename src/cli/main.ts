/**
 * `fleet`: the entry. When tracing is configured (the standard `OTEL_*` variables,
 * docs/operations.md), it starts before the rest of the service is loaded, so that its
 * instrumentations see http, ioredis and pg as they load; otherwise nothing of it is loaded at all.
 * The command line itself is cli/run.ts.
 */
import { tracingConfigured } from '../telemetry/config.ts';

if (tracingConfigured(process.env)) await (await import('../telemetry/tracing.ts')).startTracing();
await import('./run.ts');

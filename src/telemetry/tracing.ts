/**
 * Starts OpenTelemetry tracing (only when `OTEL_*` configures it: cli/main.ts asks first). The SDK
 * takes everything from the standard variables — the exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_PROTOCOL`), the service name (`OTEL_SERVICE_NAME`), the sampler
 * (`OTEL_TRACES_SAMPLER`) — with the maintained instrumentations for http, fastify (@fastify/otel),
 * ioredis and pg. The ESM loader hook goes in first, so that modules imported after this are
 * instrumented too. The service's own spans (a script, the sync's transaction, the resolver, a
 * webhook delivery, a WebSocket push) are telemetry/spans.ts's.
 */
import { register } from 'node:module';
import { createAddHookMessageChannel } from 'import-in-the-middle';
import { tracingOn } from './spans.ts';

export async function startTracing(): Promise<void> {
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);
  const [{ NodeSDK }, { HttpInstrumentation }, { IORedisInstrumentation }, { PgInstrumentation }, fastifyOtel] =
    await Promise.all([
      import('@opentelemetry/sdk-node'),
      import('@opentelemetry/instrumentation-http'),
      import('@opentelemetry/instrumentation-ioredis'),
      import('@opentelemetry/instrumentation-pg'),
      import('@fastify/otel'),
    ]);
  const sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? 'fleet-inventory',
    instrumentations: [
      new HttpInstrumentation(),
      new fastifyOtel.FastifyOtelInstrumentation({ registerOnInitialization: true }),
      new IORedisInstrumentation(),
      new PgInstrumentation(),
    ],
  });
  sdk.start();
  await waitForAllMessagesAcknowledged();
  tracingOn();
  // What is still buffered goes out before the process ends.
  const shutdown = () => void sdk.shutdown().catch(() => undefined); // exiting: nothing left to tell
  process.once('beforeExit', shutdown);
  process.once('SIGTERM', shutdown);
}

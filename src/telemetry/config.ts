/**
 * Whether tracing is on: only the standard OpenTelemetry variables decide
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). None set,
 * or `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`: off, and nothing of the SDK loads.
 */
export function tracingConfigured(env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Object.keys(env).some((k) => k.startsWith('OTEL_') && env[k] !== undefined && env[k] !== '');
}

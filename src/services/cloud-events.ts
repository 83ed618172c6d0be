/** An event as the outside world reads it (the feed, webhooks): CloudEvents 1.0 JSON. */
import type { StreamEvent } from '../redis/events.ts';

export type CloudEventDoc = ReturnType<typeof toCloudEvent>;

export function toCloudEvent(e: StreamEvent) {
  return {
    specversion: '1.0' as const,
    id: e.id,
    source: `/cities/${e.city}/vehicles/${e.vehicle}`,
    type: e.type,
    subject: e.subject || e.vehicle,
    time: new Date(e.time).toISOString(),
    datacontenttype: 'application/json' as const,
    data: {
      ...e.data,
      city: e.city,
      vehicleId: e.vehicle,
      version: e.version,
      vehicleStatus: e.status,
      state: e.state,
    },
    // The CloudEvents distributed-tracing extension: the trace the change was made in (tracing on).
    ...(e.traceparent ? { traceparent: e.traceparent } : {}),
  };
}

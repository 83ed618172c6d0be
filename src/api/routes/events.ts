/**
 * The replayable event feed of a city, as CloudEvents 1.0 JSON, from a cursor (`after` = the last
 * event id seen). Recent events come from the city's stream; older ones, once trimmed from it,
 * from PostgreSQL's event log.
 */
import { Type } from '@sinclair/typebox';
import { eventsAfter } from '../../services/event-feed.ts';
import { toCloudEvent } from '../../services/cloud-events.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import { requireRole } from '../authorize.ts';
import { READ_PROBLEMS, visibleCity } from '../route-kit.ts';
import { EventsQuery } from '../schemas.ts';

export const CloudEvent = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String(),
    source: Type.String(),
    type: Type.String(),
    subject: Type.String(),
    time: Type.String(),
    datacontenttype: Type.Literal('application/json'),
    data: Type.Record(Type.String(), Type.Unknown()),
    traceparent: Type.Optional(
      Type.String({ description: 'CloudEvents distributed tracing: the W3C trace context of the change' }),
    ),
  },
  { $id: 'CloudEvent' },
);

export const eventRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory, redis, pool }) => {
  app.get(
    '/v1/events',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['events'],
        summary: "A city's events from a cursor (CloudEvents 1.0)",
        querystring: EventsQuery,
        response: {
          200: Type.Object({ events: Type.Array(CloudEvent), next: Type.Union([Type.String(), Type.Null()]) }),
          ...READ_PROBLEMS,
        },
      },
    },
    async (request) => {
      requireRole(request.actor, 'ops', 'admin');
      const { city, after = '0-0' } = request.query;
      const limit = Number(request.query.limit ?? 100);
      visibleCity({ inventory }, request.actor, city);
      const events = await eventsAfter(redis, pool, city, after, limit);
      return { events: events.map(toCloudEvent), next: events.at(-1)?.id ?? null };
    },
  );
};

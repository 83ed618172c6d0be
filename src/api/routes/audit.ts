/**
 * The audit trail (admin): who did what, when, in which request — every event with its actor, from
 * PostgreSQL's event log, newest first, filtered and paged by cursor (docs/operations.md).
 */
import { Type } from '@sinclair/typebox';
import { AuditTrail } from '../../services/audit.ts';
import { requireRole } from '../authorize.ts';
import { READ_PROBLEMS, needs, visibleCity } from '../route-kit.ts';
import { IsoTime } from '../schemas.ts';

const AuditQuery = Type.Object(
  {
    city: Type.Optional(Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' })),
    actor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'the actor subject (`sub`), e.g. system:sweeper' }),
    ),
    subject: Type.Optional(
      Type.String({ minLength: 1, maxLength: 80, description: 'a vehicle, hold, booking or block id' }),
    ),
    type: Type.Optional(Type.String({ minLength: 3, maxLength: 64, pattern: '^[a-z_]+\\.[a-z_]+$' })),
    from: Type.Optional(IsoTime),
    to: Type.Optional(IsoTime),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    limit: Type.Optional(
      Type.String({ pattern: '^(?:[1-9][0-9]{0,2}|1000)$', description: '1 to 1000 (default 100)' }),
    ),
  },
  { additionalProperties: false },
);

const AuditActor = Type.Object({
  sub: Type.String(),
  role: Type.String(),
  hostId: Type.Optional(Type.String()),
  customerId: Type.Optional(Type.String()),
  jti: Type.Optional(Type.String()),
});

const AuditEntry = Type.Object(
  {
    id: Type.String({ description: 'the event id in its city stream' }),
    city: Type.String(),
    type: Type.String(),
    vehicle: Type.String(),
    subject: Type.String(),
    time: Type.String(),
    actor: Type.Union([AuditActor, Type.Null()], { description: 'null for events written before the audit trail' }),
    requestId: Type.Union([Type.String(), Type.Null()]),
    traceparent: Type.Union([Type.String(), Type.Null()]),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'AuditEntry' },
);

export const auditRoutes = needs('the audit trail', ['pool'], async (app, deps) => {
  const trail = new AuditTrail(deps.pool);
  app.get(
    '/v1/audit',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['operations'],
        summary: 'The audit trail: every change with who made it, newest first (admin)',
        querystring: AuditQuery,
        response: {
          200: Type.Object({ events: Type.Array(AuditEntry), next: Type.Union([Type.String(), Type.Null()]) }),
          ...READ_PROBLEMS,
        },
      },
    },
    async (request) => {
      requireRole(request.actor, 'admin');
      const q = request.query;
      if (q.city) visibleCity(deps, request.actor, q.city);
      const { events, next } = await trail.page(
        {
          ...(q.city ? { cities: [q.city] } : {}),
          ...(q.actor ? { actor: q.actor } : {}),
          ...(q.subject ? { subject: q.subject } : {}),
          ...(q.type ? { type: q.type } : {}),
          ...(q.from ? { from: Date.parse(q.from) } : {}),
          ...(q.to ? { to: Date.parse(q.to) } : {}),
        },
        q.cursor,
        Number(q.limit ?? 100),
      );
      return {
        events: events.map((e) => ({
          id: e.id,
          city: e.city,
          type: e.type,
          vehicle: e.vehicle,
          subject: e.subject,
          time: new Date(e.time).toISOString(),
          actor: e.actor ?? null,
          requestId: e.requestId ?? null,
          traceparent: e.traceparent ?? null,
          data: e.data,
        })),
        next,
      };
    },
  );
});

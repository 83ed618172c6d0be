/**
 * Outbound webhooks (docs/webhooks.md): every signed-in role may subscribe to what it may see
 * (hosts their fleet, customers their trips, staff cities and types); admin manages every one.
 */
import { Type } from '@sinclair/typebox';
import type { StoredSubscription, WebhookOwner } from '../../services/webhooks.ts';
import type { Actor } from '../auth.ts';
import { citiesOf } from '../authorize.ts';
import { IdParams } from '../schemas.ts';
import { needs, READ_PROBLEMS } from '../route-kit.ts';
const EventType = Type.String({ pattern: '^[a-z_]+\\.([a-z_]+|\\*)$', maxLength: 64 });

const Webhook = Type.Object({
  id: Type.String(),
  url: Type.String(),
  types: Type.Optional(Type.Array(Type.String())),
  cities: Type.Optional(Type.Array(Type.String())),
  status: Type.String({ description: 'active, or disabled (after failing for the whole retry horizon)' }),
  disabledReason: Type.Optional(Type.String()),
  disabledAt: Type.Optional(Type.String()),
  ownerId: Type.String(),
  createdAt: Type.String(),
});
const WithSecret = Type.Composite([
  Webhook,
  Type.Object({ secret: Type.String({ description: 'whsec_…, shown only here' }) }),
]);

const out = (s: StoredSubscription) => ({
  id: s.id,
  url: s.url,
  status: s.status,
  ownerId: s.ownerId,
  createdAt: new Date(s.createdAt).toISOString(),
  ...(s.types ? { types: [...s.types] } : {}),
  ...(s.cities ? { cities: [...s.cities] } : {}),
  ...(s.disabledReason ? { disabledReason: s.disabledReason } : {}),
  ...(s.disabledAt ? { disabledAt: new Date(s.disabledAt).toISOString() } : {}),
});

const ownerOf = (a: Actor): WebhookOwner => {
  const cities = citiesOf(a);
  return {
    id: a.id,
    role: a.role,
    ...(a.role === 'host' ? { hostId: a.hostId } : {}),
    ...(cities ? { cities } : {}),
  };
};

const config = { scope: 'webhooks:manage' } as const;

/** Subscriptions: create, list, read, delete, rotate the secret. */
export const webhookRoutes = needs('webhooks', ['webhooks'], async (app, { webhooks }) => {
  app.post(
    '/v1/webhooks',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'Subscribe an endpoint; the secret is shown once',
        body: Type.Object(
          {
            url: Type.String({ minLength: 8, maxLength: 2048 }),
            types: Type.Optional(Type.Array(EventType, { minItems: 1, maxItems: 50, uniqueItems: true })),
            cities: Type.Optional(
              Type.Array(Type.String({ pattern: '^[a-z0-9]{2,16}$' }), {
                minItems: 1,
                maxItems: 100,
                uniqueItems: true,
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: WithSecret, ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      const sub = await webhooks.create(ownerOf(request.actor), request.body);
      return reply.code(201).send({ ...out(sub), secret: sub.secret });
    },
  );

  app.get(
    '/v1/webhooks',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: "The caller's subscriptions (admin: every one)",
        response: { 200: Type.Object({ webhooks: Type.Array(Webhook) }), ...READ_PROBLEMS },
      },
    },
    async (request) => ({ webhooks: (await webhooks.list(ownerOf(request.actor))).map(out) }),
  );

  app.get(
    '/v1/webhooks/:id',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'A subscription',
        params: IdParams,
        response: { 200: Webhook, ...READ_PROBLEMS },
      },
    },
    async (request) => out(await webhooks.get(ownerOf(request.actor), request.params.id)),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'Unsubscribe',
        params: IdParams,
        response: { 204: Type.Null(), ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      await webhooks.delete(ownerOf(request.actor), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'A new secret (shown once); the old one keeps signing beside it for the grace period',
        params: IdParams,
        response: { 200: WithSecret, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      const { sub, secret } = await webhooks.rotate(ownerOf(request.actor), request.params.id);
      return { ...out(sub), secret };
    },
  );
});

/** What was sent: the attempts, and replays from an event. */
export const webhookDeliveryRoutes = needs('webhooks', ['webhooks'], async (app, { webhooks }) => {
  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'The latest delivery attempts, newest first: status, HTTP answer, latency',
        params: IdParams,
        querystring: Type.Object(
          { limit: Type.Optional(Type.String({ pattern: '^(?:[1-9][0-9]{0,2}|1000)$' })) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            attempts: Type.Array(
              Type.Object({
                webhookId: Type.String(),
                type: Type.String(),
                deliveryStatus: Type.String({ description: 'pending, delivered or dead (dead letter)' }),
                attempt: Type.Integer(),
                at: Type.String(),
                httpStatus: Type.Union([Type.Integer(), Type.Null()]),
                latencyMs: Type.Integer(),
                error: Type.Union([Type.String(), Type.Null()]),
              }),
            ),
          }),
          ...READ_PROBLEMS,
        },
      },
    },
    async (request) => {
      const rows = await webhooks.attempts(
        ownerOf(request.actor),
        request.params.id,
        Number(request.query.limit ?? 100),
      );
      return {
        attempts: rows.map(({ messageId, at, ...r }) => ({
          webhookId: messageId,
          at: new Date(at).toISOString(),
          ...r,
        })),
      };
    },
  );

  app.post(
    '/v1/webhooks/:id/replay',
    {
      config,
      schema: {
        tags: ['webhooks'],
        summary: 'Send again, in order, every event this subscription hears from an event id (its webhook-id) on',
        params: IdParams,
        body: Type.Object(
          { from: Type.String({ maxLength: 80, description: 'a webhook-id, e.g. msg_blr_1733000000000-0' }) },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ queued: Type.Integer() }), ...READ_PROBLEMS },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await webhooks.replay(ownerOf(request.actor), request.params.id, request.body.from)),
  );
});

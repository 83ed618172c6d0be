/**
 * iCalendar: a vehicle's calendar as text/calendar for the host's other channels, and their
 * calendars imported back as `host` blocks (idempotent per UID + DTSTART). Decisions: docs/api.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DomainError } from '../../domain/errors.ts';
import { HORIZON_MS, importKey, parseICalendar, toICalendar } from '../../services/icalendar.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import type { Actor } from '../auth.ts';
import type { FastifyRequest } from 'fastify';
import type { CalendarEntry } from '../../domain/calendar.ts';
import type { Inventory } from '../../services/inventory.ts';
import { mayWriteThePast, requireRole, requireVehicleManager } from '../authorize.ts';
import { problemOf } from '../problems.ts';
import { CalendarQuery, IdParams, toMs } from '../schemas.ts';
import { problem, requestContext } from '../route-kit.ts';

const ImportResult = Type.Object({
  uid: Type.String(),
  status: Type.Union([Type.Literal('created'), Type.Literal('exists'), Type.Literal('skipped'), Type.Literal('error')]),
  from: Type.Optional(Type.String({ description: 'DTSTART of the event or occurrence (UTC)' })),
  blockId: Type.Optional(Type.String()),
  reason: Type.Optional(
    Type.String({ description: 'why skipped: cancelled, transparent, past, no-duration, own-export' }),
  ),
  error: Type.Optional(Type.Object({ code: Type.String(), detail: Type.String() })),
});
const ImportResponse = Type.Object({
  imported: Type.Integer(),
  skipped: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(ImportResult),
});

export const icalRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  // This plugin is a scope of its own: text/calendar bodies are read as text for these routes only
  // (app.ts refuses text elsewhere).
  app.addContentTypeParser('text/calendar', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.get(
    '/v1/vehicles/:id/calendar.ics',
    {
      config: { scope: 'fleet:read' },
      schema: {
        tags: ['vehicles'],
        summary: "A vehicle's calendar as iCalendar (RFC 5545), overlapping [from, to)",
        params: IdParams,
        querystring: CalendarQuery,
        response: {
          200: {
            description:
              "text/calendar; one VEVENT per hold, booking and block, in the city's local time (TZID, with its VTIMEZONE)",
            content: { 'text/calendar': { schema: Type.String() } },
          },
          401: problem,
          404: problem,
        },
      },
    },
    async (request, reply) => {
      const { vehicle, entries, at } = await visibleCalendar(request.actor, request.params.id);
      const from = request.query.from ? toMs(request.query.from) : Number.NEGATIVE_INFINITY;
      const to = request.query.to ? toMs(request.query.to) : Number.POSITIVE_INFINITY;
      const ics = toICalendar({
        name: `${vehicle.make} ${vehicle.model} (${vehicle.id})`,
        timeZone: inventory.cities.get(vehicle.city)?.timeZone ?? 'UTC',
        now: at,
        entries: entries.filter((e) => e.from < to && (e.to ?? Number.POSITIVE_INFINITY) > from),
        openEndedUntil: Number.isFinite(to) ? to : at + HORIZON_MS,
      });
      return reply.type('text/calendar; charset=utf-8').send(ics);
    },
  );

  app.post(
    '/v1/vehicles/:id/calendar',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['blocks'],
        summary: "Import another channel's iCalendar VEVENTs as host blocks (idempotent per UID and DTSTART)",
        params: IdParams,
        consumes: ['text/calendar'],
        body: Type.String({ description: 'an iCalendar (RFC 5545) VCALENDAR' }),
        response: {
          200: ImportResponse,
          400: problem,
          401: problem,
          403: problem,
          404: problem,
          413: problem,
          415: problem,
        },
      },
      // Only iCalendar here: JSON (parsed by the app's parser) must not slip through as a string.
      preParsing: async (request, _reply, payload) => {
        if (!/^text\/calendar\s*(;|$)/i.test(request.headers['content-type'] ?? '')) {
          throw new DomainError('UNSUPPORTED_MEDIA_TYPE', 'send the calendar as text/calendar', {
            accepted: ['text/calendar'],
          });
        }
        return payload;
      },
    },
    async (request) => {
      requireRole(request.actor, 'host', 'ops', 'admin');
      const { entries } = await visibleCalendar(request.actor, request.params.id);
      const items = parseICalendar(request.body, Date.now());
      // An import costs what its occurrences cost: one unit of the caller's budget each.
      await request.charge(items.length - 1);
      return importItems(inventory, request, entries, items);
    },
  );

  /** The vehicle's calendar, if the caller is its host or staff (others: not found). */
  async function visibleCalendar(actor: Actor, vehicleId: string) {
    const state = await inventory.getVehicleState(vehicleId);
    requireVehicleManager(actor, state.vehicle, 'vehicle calendar');
    return state;
  }
};

/**
 * The parsed occurrences, each placed as a host block unless an earlier import placed it
 * (identity: vehicle + UID + DTSTART, kept in the block's note and used as idempotency key).
 */
async function importItems(
  inventory: Inventory,
  request: FastifyRequest<{ Params: { id: string } }>,
  entries: CalendarEntry[],
  items: ReturnType<typeof parseICalendar>,
) {
  const vehicleId = request.params.id;
  // Blocks this vehicle already has from earlier imports, by identity (their note starts with it).
  const known = new Map<string, string>();
  for (const e of entries) if (e.kind === 'block' && e.note?.startsWith('ical:')) known.set(e.note.slice(5, 37), e.id);

  const results: Static<typeof ImportResult>[] = [];
  for (const item of items) {
    const base = {
      uid: item.uid,
      ...(item.start === undefined ? {} : { from: new Date(item.start).toISOString() }),
    };
    if ('skipped' in item) {
      results.push({ ...base, status: 'skipped', reason: item.skipped });
      continue;
    }
    if ('error' in item) {
      results.push({ ...base, status: 'error', error: item.error });
      continue;
    }
    const key = importKey(vehicleId, item.uid, item.start);
    const existing = known.get(key);
    if (existing) {
      results.push({ ...base, status: 'exists', blockId: existing });
      continue;
    }
    try {
      // The key doubles as idempotency key, scoped to the import rather than the caller: two
      // imports of the same event racing (host and staff alike) make one block.
      const r = await inventory.placeBlock(
        {
          vehicleId,
          reason: 'host',
          from: item.from,
          to: item.to,
          note: `ical:${key} ${item.uid}`.slice(0, 512),
          allowPast: mayWriteThePast(request.actor),
        },
        {
          actorId: 'ical-import',
          idempotencyKey: `ical:${key}`,
          commandId: request.id,
          context: requestContext(request),
        },
      );
      known.set(key, r.block.id);
      results.push({ ...base, status: r.replayed ? 'exists' : 'created', blockId: r.block.id });
    } catch (err) {
      const p = problemOf(err);
      if (p.status >= 500) throw err;
      // The same event was placed by an import within the last 24 h (with another window, e.g. clipped to now).
      if (p.code === 'IDEMPOTENCY_CONFLICT') {
        results.push({ ...base, status: 'exists' });
        continue;
      }
      results.push({ ...base, status: 'error', error: { code: p.code, detail: p.detail } });
    }
  }
  const count = (s: string) => results.filter((r) => r.status === s).length;
  return {
    imported: count('created'),
    skipped: count('skipped') + count('exists'),
    failed: count('error'),
    results,
  };
}

/**
 * Batch endpoints: up to 1,000 items, each run as its own command; one bad item never sinks the
 * rest. The answer has a result per item, in order: 201-like success or the item's problem.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { DomainError } from '../../domain/errors.ts';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import { mayWriteThePast, requireRole, requireVehicleManager } from '../authorize.ts';
import { problemOf } from '../problems.ts';
import { BlockCreate, EntityId, VehicleCreate, blockOut, toMs } from '../schemas.ts';
import { IdempotencyHeaders } from './bookings.ts';
import { commandOptions } from '../route-kit.ts';
import { problem } from '../route-kit.ts';

export const MAX_BATCH = 1000;

const ItemResult = Type.Object({
  index: Type.Integer(),
  ok: Type.Boolean(),
  status: Type.Integer(),
  id: Type.Optional(Type.String()),
  code: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
});
const BatchResponse = Type.Object({
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(ItemResult),
});

/**
 * Runs every item, sequentially (a batch is one caller's work, not a way around the locks).
 * Items are validated one by one against `check` (an item's schema, compiled), so a malformed item
 * is that item's 400.
 */
async function runItems<S extends TSchema>(
  request: FastifyRequest,
  check: TypeCheck<S>,
  items: unknown[],
  run: (item: Static<S>, index: number) => Promise<{ id: string; status: number }>,
) {
  const results = [];
  for (const [i, item] of items.entries()) {
    try {
      if (!check.Check(item)) {
        const first = check.Errors(item).First();
        throw new DomainError('VALIDATION', `item ${i}${first ? `${first.path}: ${first.message}` : ''}`, { index: i });
      }
      const r = await run(item, i);
      results.push({ index: i, ok: true, status: r.status, id: r.id });
    } catch (err) {
      const p = problemOf(err);
      if (p.status >= 500) throw err;
      results.push({ index: i, ok: false, status: p.status, code: p.code, detail: p.detail });
    }
  }
  const succeeded = results.filter((r) => r.ok).length;
  return { succeeded, failed: results.length - succeeded, results };
}

const Items = Type.Object(
  { items: Type.Array(Type.Unknown(), { minItems: 1, maxItems: MAX_BATCH }) },
  { additionalProperties: false },
);
const VehicleItem = TypeCompiler.Compile(VehicleCreate);
const BlockItem = TypeCompiler.Compile(
  Type.Object({ vehicleId: EntityId, ...BlockCreate.properties }, { additionalProperties: false }),
);

/** Each item gets its own idempotency key derived from the batch's: a retried batch is safe. */
function itemOptions(request: FastifyRequest, index: number) {
  const o = commandOptions(request);
  return { ...o, ...(o.idempotencyKey ? { idempotencyKey: `${o.idempotencyKey}#${index}` } : {}) };
}

export const batchRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { inventory }) => {
  app.post(
    '/v1/vehicles/batch',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['batch'],
        summary: `List up to ${MAX_BATCH} vehicles; a result per item`,
        headers: IdempotencyHeaders,
        body: Items,
        response: { 200: BatchResponse, 400: problem, 401: problem, 403: problem },
      },
    },
    async (request) => {
      const { actor } = request;
      requireRole(actor, 'host');
      // A batch costs what its items cost: one unit of the caller's budget each (the request paid one).
      await request.charge(request.body.items.length - 1);
      return runItems(request, VehicleItem, request.body.items, async ({ city, ...spec }, i) => {
        const r = await inventory.createVehicle(city, { ...spec, hostId: actor.hostId }, itemOptions(request, i));
        return { id: r.vehicleId, status: 201 };
      });
    },
  );

  app.post(
    '/v1/blocks/batch',
    {
      config: { scope: 'fleet:write' },
      schema: {
        tags: ['batch'],
        summary: `Block up to ${MAX_BATCH} vehicles (e.g. a fleet-wide maintenance day); a result per item`,
        headers: IdempotencyHeaders,
        body: Items,
        response: { 200: BatchResponse, 400: problem, 401: problem, 403: problem },
      },
    },
    async (request) => {
      requireRole(request.actor, 'host', 'ops', 'admin');
      await request.charge(request.body.items.length - 1);
      return runItems(request, BlockItem, request.body.items, async (item, i) => {
        requireVehicleManager(request.actor, (await inventory.getVehicleState(item.vehicleId)).vehicle);
        const r = await inventory.placeBlock(
          {
            vehicleId: item.vehicleId,
            reason: item.reason,
            ...(item.from ? { from: toMs(item.from) } : {}),
            ...(item.to ? { to: toMs(item.to) } : {}),
            ...(item.note ? { note: item.note } : {}),
            allowPast: mayWriteThePast(request.actor),
          },
          itemOptions(request, i),
        );
        return { id: blockOut(r.block, item.vehicleId).id, status: 201 };
      });
    },
  );
};

/** Operations' view of the market: live counts per city, straight from the exact Redis counters. */
import { Type } from '@sinclair/typebox';
import { keys } from '../../redis/keys.ts';
import type { App, AppDeps } from '../app.ts';
import { requireRole } from '../authorize.ts';

const problem = { $ref: 'Problem#' } as const;
const Counts = Type.Record(Type.String(), Type.Integer());

export function analyticsRoutes(app: App, { inventory, redis }: AppDeps): void {
  app.get('/v1/analytics/cities', {
    schema: {
      tags: ['analytics'], summary: 'Live vehicle counts per city, by status and by category (exact, real time)',
      response: { 200: Type.Object({ cities: Type.Array(Type.Object({ city: Type.String(), vehicles: Type.Integer(), byStatus: Counts, byCategory: Counts, byCategoryAndStatus: Type.Record(Type.String(), Counts) })) }), 401: problem, 403: problem },
    },
  }, async (request) => {
    requireRole(request.actor, 'ops', 'admin');
    const cities = [];
    for (const c of inventory.cities.all()) {
      const raw = await redis.hgetall(keys.counters(c.id));
      const byStatus: Record<string, number> = {};
      const byCategory: Record<string, number> = {};
      const byCategoryAndStatus: Record<string, Record<string, number>> = {};
      for (const [k, v] of Object.entries(raw)) {
        const n = Number(v);
        if (n === 0) continue;
        const [kind, a, b] = k.split(':');
        if (kind === 's' && a) byStatus[a] = n;
        else if (kind === 'c' && a) byCategory[a] = n;
        else if (kind === 'cs' && a && b) (byCategoryAndStatus[a] ??= {})[b] = n;
      }
      cities.push({ city: c.id, vehicles: Object.values(byCategory).reduce((x, y) => x + y, 0), byStatus, byCategory, byCategoryAndStatus });
    }
    return { cities };
  });
}

/** Real-time availability search: answered from the read model, verified against Redis. */
import { Type } from '@sinclair/typebox';
import { CATEGORIES, type Category } from '../../domain/vehicle.ts';
import { DomainError } from '../../domain/errors.ts';
import { describeInterval, intervalFault } from '../../domain/calendar.ts';
import { decodeCursor, encodeCursor } from '../../domain/cursor.ts';
import { IsoTime, toMs } from '../schemas.ts';
import { requireRole } from '../authorize.ts';
import { rankingFor, type Ranking } from '../../domain/ranking.ts';
import { CustomerProfiles } from '../../services/profiles.ts';
import { needs, READ_PROBLEMS } from '../route-kit.ts';

const digits = (max: number, description: string) => Type.String({ pattern: `^[0-9]{1,${max}}$`, description });

const Query = Type.Object(
  {
    from: IsoTime,
    to: IsoTime,
    category: Type.Optional(Type.Unsafe<Category>(Type.Union(CATEGORIES.map((c) => Type.Literal(c))))),
    orBetter: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], {
        description: 'with category: that category or higher',
      }),
    ),
    minSeats: Type.Optional(digits(2, 'at least this many seats')),
    near: Type.Optional(
      Type.String({ pattern: '^-?[0-9]{1,2}(\\.[0-9]{1,8})?,-?[0-9]{1,3}(\\.[0-9]{1,8})?$', description: 'lat,lng' }),
    ),
    radiusKm: Type.Optional(digits(4, 'with near: only vehicles within this distance')),
    sort: Type.Optional(
      Type.Union([Type.Literal('distance'), Type.Literal('price'), Type.Literal('for_you')], {
        description:
          'for_you (customers): ordered by how likely the caller is to book each vehicle, from their past trips, with the reasons; every free vehicle is still listed',
      }),
    ),
    limit: Type.Optional(Type.String({ pattern: '^(?:[1-9][0-9]?|100)$', description: '1 to 100 (default 20)' })),
    cursor: Type.Optional(
      Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'from the previous page (opaque)' }),
    ),
  },
  { additionalProperties: false },
);

const Hit = Type.Object({
  vehicleId: Type.String(),
  category: Type.String(),
  seats: Type.Integer(),
  make: Type.String(),
  model: Type.String(),
  transmission: Type.String(),
  fuel: Type.String(),
  location: Type.Object({ lat: Type.Number(), lng: Type.Number() }),
  pricePerHour: Type.Number(),
  pricePerDay: Type.Optional(Type.Number({ description: 'the daily cap, when the vehicle has one' })),
  price: Type.Object(
    { currency: Type.String(), total: Type.Integer() },
    {
      description:
        "the window's total by the pricing rule, in minor units of the city's currency (docs/api.md, Prices)",
    },
  ),
  distanceKm: Type.Optional(Type.Number()),
  forYou: Type.Optional(
    Type.Object(
      { score: Type.Number(), reasons: Type.Array(Type.String()) },
      { description: 'sort=for_you: the log-likelihood the page is ordered by, and its parts in words' },
    ),
  ),
});

export const searchRoutes = needs(
  'search',
  ['readModel'],
  async (app, { readModel, pool, forecasts, searchDemand }) => {
    const profiles = new CustomerProfiles(readModel, pool);
    app.get(
      '/v1/cities/:city/availability',
      {
        schema: {
          tags: ['search'],
          summary: 'Vehicles free for [from, to), checked against the truth before the answer',
          params: Type.Object({ city: Type.String({ pattern: '^[a-z0-9]{2,16}$' }) }),
          querystring: Query,
          response: {
            200: Type.Object({
              vehicles: Type.Array(Hit),
              cursor: Type.Union([Type.String(), Type.Null()]),
              likelyToSellOut: Type.Optional(
                Type.Boolean({
                  description:
                    'by the latest demand forecast, the category asked for (or every category) is predicted ≥ 90% in use during the window (absent: no forecast yet)',
                }),
              ),
            }),
            ...READ_PROBLEMS,
          },
        },
      },
      async (request) => {
        const q = request.query;
        const from = toMs(q.from);
        const to = toMs(q.to);
        const fault = intervalFault(from, to, Date.now());
        if (fault) throw new DomainError('INVALID_INTERVAL', describeInterval(fault), fault);
        const [lat, lng] = q.near ? q.near.split(',').map(Number) : [];
        if (lat !== undefined && (Math.abs(lat) > 90 || Math.abs(lng ?? 0) > 180))
          throw new DomainError('VALIDATION', 'near must be a valid lat,lng', { field: 'near' });
        let rank: Ranking | undefined;
        if (q.sort === 'for_you') {
          // The ranking is the caller's own: only a customer has trips to learn from.
          requireRole(request.actor, 'customer');
          rank = rankingFor(await profiles.profile(request.actor.id));
        }
        const { hits, next } = await readModel.search(request.params.city, {
          from,
          to,
          sort: q.sort ?? (q.near ? 'distance' : 'price'),
          ...(rank ? { rank } : {}),
          limit: Number(q.limit ?? 20),
          ...(q.cursor ? { after: decodeCursor(q.cursor) } : {}),
          ...(q.category ? { category: q.category, orBetter: q.orBetter === 'true' } : {}),
          ...(q.minSeats ? { minSeats: Number(q.minSeats) } : {}),
          ...(lat !== undefined && lng !== undefined ? { near: { lat, lng } } : {}),
          ...(q.radiusKm ? { radiusKm: Number(q.radiusKm) } : {}),
        });
        const limit = Number(q.limit ?? 20);
        // A first page that found fewer than it asked for is demand the city did not serve.
        if (!q.cursor) searchDemand?.record(request.params.city, q.category, from, hits.length, limit);
        const sellOut = forecasts?.likelyToSellOut(request.params.city, from, to, q.category);
        return {
          vehicles: hits,
          cursor: next ? encodeCursor(next) : null,
          ...(sellOut !== undefined ? { likelyToSellOut: sellOut } : {}),
        };
      },
    );
  },
);

/**
 * Operations' view of the market: live counts per city, straight from the exact Redis counters;
 * utilization over time and conflict tracking (how displaced bookings ended), computed in
 * PostgreSQL from the projected tables (a read replica when one is configured), cached briefly
 * in process.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DomainError } from '../../domain/errors.ts';
import { DAY_MS, HOUR_MS, bucketBounds, timeZoneOf, type Granularity } from '../../domain/local-time.ts';
import { defaults, learningPolicy } from '../../config.ts';
import { IncentiveLearner } from '../../services/incentives.ts';
import { computeConflicts, computeUtilization, readCityCounts } from '../../services/analytics.ts';
import { AnswerCache, cached } from '../answer-cache.ts';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import { analyticsHost, citiesOf, requireRole, seesCity } from '../authorize.ts';
import { IsoTime, toMs } from '../schemas.ts';
import { needs, problem, READ_PROBLEMS, visibleCity, type With } from '../route-kit.ts';

const Counts = Type.Record(Type.String(), Type.Integer());

/** How long a utilization answer is reused (and the `Cache-Control: max-age` it is sent with). */
export const UTILIZATION_CACHE_TTL_MS = 10_000;
/** Cached utilization answers kept at most; the oldest is dropped beyond. */
export const UTILIZATION_CACHE_MAX_ENTRIES = 500;
/** Buckets per request at most: 92 days of hours, or ten years of days. */
export const UTILIZATION_MAX_BUCKETS = { hour: 24 * 92, day: 3660 } as const;

const UtilizationQuery = Type.Object(
  {
    city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }),
    hostId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        pattern: '^[\\x21-\\x7e]+$',
        description: "one host's fleet (a host's token: always its own)",
      }),
    ),
    from: IsoTime,
    to: IsoTime,
    granularity: Type.Unsafe<Granularity>({
      type: 'string',
      enum: ['hour', 'day'],
      description: 'local hours or local days, in `tz`',
    }),
    tz: Type.Optional(
      Type.String({
        maxLength: 64,
        description:
          "the IANA time zone of the buckets (Asia/Kolkata, America/Los_Angeles, UTC); the city's own by default; an unknown zone is 400 INVALID_TIME_ZONE",
      }),
    ),
  },
  { additionalProperties: false },
);

const LocalTime = Type.String({
  format: 'date-time',
  maxLength: 40,
  description: 'RFC 3339 in the local time and offset of `timeZone`, e.g. 2026-12-03T00:00:00.000+05:30 (Z when 0)',
});
const Bucket = Type.Object({
  start: LocalTime,
  end: LocalTime,
  vehicles: Type.Integer({
    description: 'vehicles of the city listed now (not delisted) and created before the bucket ends',
  }),
  bookedHours: Type.Number({
    description: 'vehicle-hours of confirmed, active and completed bookings inside the bucket',
  }),
  blockedHours: Type.Number({ description: 'vehicle-hours of active and cleared blocks inside the bucket' }),
  utilization: Type.Number({ description: 'bookedHours / (vehicles × hours in the bucket); 0 without vehicles' }),
  blockedShare: Type.Number({ description: 'blockedHours / (vehicles × hours in the bucket); 0 without vehicles' }),
});
const Utilization = Type.Object({
  city: Type.String(),
  hostId: Type.Optional(Type.String()),
  timeZone: Type.String({ description: 'the IANA time zone the buckets are cut and written in' }),
  from: LocalTime,
  to: LocalTime,
  granularity: Type.Unsafe<Granularity>({ type: 'string', enum: ['hour', 'day'] }),
  buckets: Type.Array(Bucket),
});
type UtilizationT = Static<typeof Utilization>;

/** How long a conflicts answer is reused (and the `Cache-Control: max-age` it is sent with). */
export const CONFLICTS_CACHE_TTL_MS = 10_000;
/** Cached conflicts answers kept at most; the oldest is dropped beyond. */
export const CONFLICTS_CACHE_MAX_ENTRIES = 500;

const ConflictsQuery = Type.Object(
  {
    city: Type.Optional(Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' })),
    hostId: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        pattern: '^[\\x21-\\x7e]+$',
        description: 'the host of the original (displaced) vehicle',
      }),
    ),
    from: Type.String({
      format: 'date-time',
      maxLength: 40,
      description: 'ISO 8601 with offset: conflicts whose booking became conflicted at or after this instant',
    }),
    to: Type.String({ format: 'date-time', maxLength: 40, description: 'ISO 8601 with offset: and before this one' }),
  },
  { additionalProperties: false },
);

const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const figureFields = {
  conflicts: Type.Integer({
    description: 'bookings that became conflicted in [from, to) (a booking conflicted twice counts twice)',
  }),
  byCause: Type.Record(Type.String(), Type.Integer(), {
    description: 'conflicts per cause (maintenance, accident, delisted, late_return, ...)',
  }),
  offersMade: Type.Integer({ description: 'offers (held alternatives) made for these conflicts' }),
  accepted: Type.Integer({ description: 'conflicts closed by accepting an offer' }),
  declined: Type.Integer({ description: 'conflicts closed by declining the offers' }),
  lapsed: Type.Integer({ description: 'conflicts whose offers lapsed' }),
  noAlternative: Type.Integer({ description: 'conflicts cancelled with NO_ALTERNATIVE' }),
  cancelled: Type.Integer({
    description:
      'conflicted bookings cancelled another way (by the customer or ops) before any outcome; not in acceptanceRate',
  }),
  open: Type.Integer({
    description:
      'conflicts without an outcome yet; conflicts = accepted + declined + lapsed + noAlternative + cancelled + open',
  }),
  acceptanceRate: Type.Union([Type.Number(), Type.Null()], {
    description: 'accepted / (accepted + declined + lapsed + noAlternative), 6 decimals; null when that is 0',
  }),
  timeToFirstOffer: Type.Object(
    {
      p50Ms: NullableInt,
      p99Ms: NullableInt,
    },
    {
      description:
        'from the booking becoming conflicted to its offers (or its NO_ALTERNATIVE cancellation), in ms: percentile_disc (nearest rank, an observed value); null without any',
    },
  ),
  incentiveCost: Type.Number({
    description: "the accepted offers' incentive amounts plus the NO_ALTERNATIVE credits, 2 decimals",
  }),
};
const Figures = Type.Object(figureFields);
const ConflictsAnswer = Type.Object({
  from: IsoTime,
  to: IsoTime,
  filters: Type.Object({ city: Type.Optional(Type.String()), hostId: Type.Optional(Type.String()) }),
  totals: Figures,
  byCity: Type.Array(Type.Object({ city: Type.String(), ...figureFields })),
  byHost: Type.Array(
    Type.Object({
      hostId: Type.Union([Type.String(), Type.Null()], {
        description: 'null when the vehicle is unknown to PostgreSQL',
      }),
      ...figureFields,
    }),
  ),
  conversion: Type.Object(
    {
      byAlternative: Type.Array(
        Type.Object({
          alternative: Type.String({
            description: 'same_category, upgrade, shifted (unknown: made before kinds were recorded)',
          }),
          offered: Type.Integer(),
          accepted: Type.Integer(),
          conversion: Type.Number({ description: 'accepted / offered' }),
        }),
      ),
      byIncentive: Type.Array(
        Type.Object({
          incentive: Type.String({ description: 'credit or free_upgrade' }),
          amount: Type.Number(),
          offered: Type.Integer(),
          accepted: Type.Integer(),
          conversion: Type.Number(),
        }),
      ),
    },
    {
      description:
        'Offers of the selected conflicts: how many were made and accepted, per kind of alternative and per incentive',
    },
  ),
});
type ConflictsAnswerT = Static<typeof ConflictsAnswer>;

/** [from, to) of an analytics query, in ms; `from` must come first. */
function windowOf(q: { from: string; to: string }): { from: number; to: number } {
  const from = toMs(q.from);
  const to = toMs(q.to);
  if (!(from < to)) throw new DomainError('INVALID_INTERVAL', 'from must be before to', { from: q.from, to: q.to });
  return { from, to };
}

/** The zone asked for (`tz`), else the city's; 400 INVALID_TIME_ZONE for a name that is no zone. */
function zoneOf(tz: string | undefined, cityZone: string): string {
  if (tz === undefined) return cityZone;
  const zone = timeZoneOf(tz);
  if (!zone)
    throw new DomainError('INVALID_TIME_ZONE', `${JSON.stringify(tz)} is not an IANA time zone`, {
      field: 'tz',
      timeZone: tz,
    });
  return zone;
}

/** PostgreSQL for the analytics: the read replica when one is configured, else the primary. */
const analyticsDb = ({ pool, replicaPool }: With<'pool'>) => replicaPool ?? pool;

/** How conflicts ended, per city and host (PostgreSQL, cached). */
export const conflictsAnalyticsRoutes = needs('conflict analytics', ['pool'], async (app, deps) => {
  const conflictsCache = new AnswerCache<ConflictsAnswerT>(CONFLICTS_CACHE_TTL_MS, CONFLICTS_CACHE_MAX_ENTRIES);
  app.get(
    '/v1/analytics/conflicts',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary:
          'How conflicted bookings ended: offers, outcomes, time to first offer, incentive cost (PostgreSQL; cached 10 s)',
        description:
          'Conflicts whose booking became conflicted in [from, to), optionally of one city and/or one host (the host of the original, displaced vehicle); totals, per city and per host. Read from the replica when one is configured; the answer may lag the live engine by the sync delay plus the cache time. See docs/conflicts.md, "Tracking".',
        querystring: ConflictsQuery,
        response: { 200: ConflictsAnswer, ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      const { city } = request.query;
      const hostId = analyticsHost(request.actor, request.query.hostId);
      const { from, to } = windowOf(request.query);
      if (city !== undefined) visibleCity(deps, request.actor, city);
      const cities = city === undefined ? citiesOf(request.actor) : undefined;
      const db = analyticsDb(deps);
      const q = {
        from,
        to,
        ...(city !== undefined ? { city } : {}),
        ...(hostId !== undefined ? { hostId } : {}),
        ...(cities ? { cities: [...cities].sort() } : {}),
      };
      const answer = await conflictsCache.get(JSON.stringify([from, to, city ?? null, hostId ?? null, q.cities]), () =>
        computeConflicts(db, q),
      );
      return cached(reply, answer, CONFLICTS_CACHE_TTL_MS);
    },
  );
});

/** Utilization over time (PostgreSQL, cached). */
export const utilizationAnalyticsRoutes = needs('utilization', ['pool'], async (app, deps) => {
  const cache = new AnswerCache<UtilizationT>(UTILIZATION_CACHE_TTL_MS, UTILIZATION_CACHE_MAX_ENTRIES);
  app.get(
    '/v1/analytics/utilization',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary: 'Booked and blocked vehicle-hours per local hour or day, and utilization (PostgreSQL; cached 10 s)',
        description:
          'Buckets are the local hours or days covering [from, to), in the city\'s time zone or `tz` (docs/api.md, "Local time"). Read from the replica when one is configured; the answer may lag the live engine by the sync delay plus the cache time.',
        querystring: UtilizationQuery,
        response: { 200: Utilization, ...READ_PROBLEMS },
      },
    },
    async (request, reply) => {
      const { granularity } = request.query;
      const hostId = analyticsHost(request.actor, request.query.hostId);
      const { from, to } = windowOf(request.query);
      const city = visibleCity(deps, request.actor, request.query.city);
      const timeZone = zoneOf(request.query.tz, city.timeZone);
      const max = UTILIZATION_MAX_BUCKETS[granularity];
      const bounds = bucketBounds(timeZone, granularity, from, to, max);
      if (bounds.length - 1 > max) {
        const buckets = Math.max(max + 1, Math.ceil((to - from) / (granularity === 'day' ? DAY_MS : HOUR_MS)));
        throw new DomainError(
          'VALIDATION',
          `at most ${max} ${granularity} buckets per request (asked for about ${buckets})`,
          { buckets, max },
        );
      }
      const db = analyticsDb(deps);
      const key = JSON.stringify([city.id, from, to, granularity, timeZone, hostId ?? null]);
      const answer = await cache.get(key, () =>
        computeUtilization(db, city.id, { from, to, granularity, timeZone, bounds, ...(hostId ? { hostId } : {}) }),
      );
      return cached(reply, answer, UTILIZATION_CACHE_TTL_MS);
    },
  );
});

/** Live counts per city, from the exact Redis counters. */
export const citiesAnalyticsRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, deps) => {
  app.get(
    '/v1/analytics/cities',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary: 'Live vehicle counts per city, by status and by category (exact, real time)',
        response: {
          200: Type.Object({
            cities: Type.Array(
              Type.Object({
                city: Type.String(),
                vehicles: Type.Integer(),
                byStatus: Counts,
                byCategory: Counts,
                byCategoryAndStatus: Type.Record(Type.String(), Counts),
              }),
            ),
          }),
          401: problem,
          403: problem,
        },
      },
    },
    async (request) => {
      requireRole(request.actor, 'ops', 'admin');
      const cities = [];
      for (const c of deps.inventory.cities.all())
        if (seesCity(request.actor, c.id)) cities.push({ city: c.id, ...(await readCityCounts(deps.redis, c.id)) });
      return { cities };
    },
  );
};

const ForecastHour = Type.Object({
  start: Type.String(),
  inUse: Type.Number(),
  utilization: Type.Number(),
  unservedSearches: Type.Number(),
});
const CityForecast = Type.Object({
  city: Type.String(),
  timeZone: Type.String({
    description:
      "the city's IANA time zone: the forecast's times are written in its local time and offset (its hours are those of the UTC clock)",
  }),
  generatedAt: Type.String(),
  horizonHours: Type.Integer(),
  historyWeeks: Type.Integer(),
  categories: Type.Array(
    Type.Object({
      category: Type.String(),
      fleet: Type.Integer(),
      byArea: Type.Array(Type.Object({ area: Type.String(), fleet: Type.Integer(), peakUtilization: Type.Number() })),
      hours: Type.Array(ForecastHour),
    }),
  ),
  shortfalls: Type.Array(
    Type.Object({
      category: Type.String(),
      area: Type.String(),
      start: Type.String(),
      utilization: Type.Number(),
      fleet: Type.Integer(),
    }),
    { description: 'the first hour each category sells out (≥ 90% predicted in use) in each area' },
  ),
  moves: Type.Array(
    Type.Object({
      category: Type.String(),
      from: Type.String(),
      to: Type.String(),
      vehicles: Type.Integer(),
      by: Type.String(),
      reason: Type.String(),
    }),
    { description: 'vehicles an area with room (under 60% predicted) could send to one about to sell out' },
  ),
  accuracy: Type.Array(
    Type.Object({
      horizonHours: Type.Integer(),
      mape: Type.Number(),
      bias: Type.Number(),
      naiveMape: Type.Number(),
      naiveBias: Type.Number(),
      points: Type.Integer(),
    }),
    { description: 'backtest on the same history: this forecast against the same hour last week' },
  ),
});

/** Predicted utilization, shortfalls and suggested fleet moves (PostgreSQL history, cached 5 min). */
export const forecastAnalyticsRoutes = needs('forecasts', ['forecasts'], async (app, deps) => {
  app.get(
    '/v1/analytics/forecast',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary:
          'Predicted utilization per category and hour, shortfalls and suggested fleet moves (docs/prediction.md)',
        description:
          'From the last five weeks of bookings and of searches that found too little: a weekly seasonal baseline times the recent trend, per area of the city and category; with its backtested accuracy. Cached 5 minutes.',
        querystring: Type.Object(
          {
            city: Type.String({ pattern: '^[a-z0-9]{2,16}$' }),
            horizonHours: Type.Optional(
              Type.String({ pattern: '^(?:[1-9][0-9]?|1[0-5][0-9]|16[0-8])$', description: '1 to 168 (default 24)' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: CityForecast, ...READ_PROBLEMS },
      },
    },
    async (request) => {
      requireRole(request.actor, 'ops', 'admin');
      const { city } = request.query;
      visibleCity(deps, request.actor, city);
      return await deps.forecasts.get(city, Number(request.query.horizonHours ?? 24));
    },
  );
});

const Learned = Type.Object({
  enabled: Type.Boolean(),
  target: Type.Number({ description: 'the conversion the policy aims for' }),
  maxLevel: Type.Number({ description: 'the budget: the highest multiple of the configured credit it may offer' }),
  learned: Type.Array(
    Type.Object({
      city: Type.String(),
      kind: Type.String(),
      arms: Type.Array(
        Type.Object({
          level: Type.Number(),
          offers: Type.Integer(),
          accepted: Type.Integer(),
          conversion: Type.Union([Type.Number(), Type.Null()]),
          posteriorMean: Type.Number(),
        }),
      ),
    }),
  ),
});

/** What the learning offer policy has learnt (PostgreSQL's offers and conflicts; cached a minute). */
export const incentivesAnalyticsRoutes = needs('incentive analytics', ['pool'], async (app, deps) => {
  const cache = new AnswerCache<Static<typeof Learned>>(60_000, 4);
  app.get(
    '/v1/analytics/incentives',
    {
      config: { scope: 'analytics:read' },
      schema: {
        tags: ['analytics'],
        summary: 'What the learning offer policy has learnt: conversion per credit level, city and kind of alternative',
        response: { 200: Learned, 401: problem, 403: problem },
      },
    },
    async (request, reply) => {
      requireRole(request.actor, 'ops', 'admin');
      const db = analyticsDb(deps);
      const config = deps.config ?? defaults;
      const answer = await cache.get('all', async () => {
        const learner = new IncentiveLearner(db, learningPolicy(config));
        await learner.refresh();
        return { enabled: config.INCENTIVE_LEARNING === 1, ...learner.policy, learned: learner.report() };
      });
      const all = cached(reply, answer, 60_000);
      // Staff limited to cities see theirs only.
      return { ...all, learned: all.learned.filter((x) => seesCity(request.actor, x.city)) };
    },
  );
});

import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import { City } from '../schemas.ts';
import { pricingOf } from '../../domain/pricing.ts';

export const cityRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, deps) => {
  app.get(
    '/v1/cities',
    {
      schema: {
        tags: ['cities'],
        summary: 'The cities served',
        response: { 200: Type.Object({ cities: Type.Array(City) }) },
      },
    },
    async () => ({
      cities: deps.inventory.cities.all().map((c) => {
        const { currency: code, exponent } = pricingOf(c);
        return {
          id: c.id,
          name: c.name,
          timeZone: c.timeZone,
          turnaroundMinutes: c.turnaroundMs / 60_000,
          currency: { code, exponent },
        };
      }),
    }),
  );
};

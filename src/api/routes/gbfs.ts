/** GBFS 3.1 feeds per city: public and read-only (services/gbfs.ts builds them). */
import { Type } from '@sinclair/typebox';
import { GBFS_FEEDS, GbfsFeeds } from '../../services/gbfs.ts';
import { knownCity, needs, problem } from '../route-kit.ts';

export const gbfsRoutes = needs('GBFS', ['readModel'], async (app, deps) => {
  const feeds = new GbfsFeeds(deps.readModel);
  app.get(
    '/gbfs/:city/:feed',
    {
      config: { public: true },
      schema: {
        tags: ['gbfs'],
        summary: "A city's GBFS 3.1 feed: gbfs.json (discovery) and the feeds it lists",
        security: [],
        params: Type.Object({
          city: Type.String({ minLength: 2, maxLength: 16, pattern: '^[a-z0-9]+$' }),
          feed: Type.Union(['gbfs', ...GBFS_FEEDS].map((f) => Type.Literal(`${f}.json`))),
        }),
        response: { 200: Type.Record(Type.String(), Type.Unknown()), 400: problem, 404: problem },
      },
    },
    async (request, reply) => {
      const city = knownCity(deps, request.params.city);
      const name = (['gbfs', ...GBFS_FEEDS] as const).find((f) => `${f}.json` === request.params.feed) ?? 'gbfs';
      const base = `${request.protocol}://${request.host}/gbfs/${city.id}`;
      reply.header('cache-control', 'public, max-age=60');
      return feeds.feed(city, name, base);
    },
  );
});

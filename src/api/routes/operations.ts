/**
 * The operations endpoints, public: `/openapi.json`, `/healthz`, `/readyz` (stores, durability,
 * failover verification, sync lag) and Prometheus `/metrics`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { registry } from '../../metrics.ts';
import { readiness } from '../../services/health.ts';
import type { AppDeps } from '../types.ts';

export const operationsRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, deps) => {
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({
    status: 'ok',
    pid: process.pid,
  }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const r = await readiness(deps);
    return reply.code(r.status === 'unavailable' ? 503 : 200).send(r);
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await (deps.metrics ? deps.metrics() : registry.metrics())),
  );
};

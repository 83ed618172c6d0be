/**
 * The operations endpoints, public: `/openapi.json`, `/healthz`, `/readyz` (stores, durability,
 * failover verification, sync lag) and Prometheus `/metrics`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { registry } from '../../metrics.ts';
import { inspectDurability } from '../../services/health.ts';
import type { AppDeps } from '../types.ts';
import { messageOf } from '../../domain/errors.ts';

export const operationsRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, deps) => {
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({
    status: 'ok',
    pid: process.pid,
  }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
    const checks: Record<string, unknown> = {};
    let ready = true;
    try {
      await deps.redis.ping();
      checks.redis = { ok: true, ...deps.redisTopology, durability: await inspectDurability(deps.redis) };
    } catch (err) {
      ready = false;
      checks.redis = { ok: false, error: messageOf(err) };
    }
    // A failover's verification under way (as the city streams tell it): still serving, but say so.
    const failover = deps.readModel?.failoverState();
    if (failover) checks.failover = failover;
    if (deps.pool) {
      try {
        await deps.pool.query('SELECT 1');
        checks.postgres = {
          ok: true,
          ...('writer' in deps.pool && deps.pool.writer ? { writer: deps.pool.writer } : {}),
        };
      } catch (err) {
        // PostgreSQL down does not stop commands (they go to Redis); readiness says so plainly.
        checks.postgres = { ok: false, error: messageOf(err) };
      }
    }
    if (deps.lag) {
      const lag = await deps.lag().catch(() => []);
      checks.sync = {
        eventsBehind: lag.reduce((n, l) => n + l.eventsBehind, 0),
        secondsBehind: Math.max(0, ...lag.map((l) => l.secondsBehind)),
      };
    }
    return reply
      .code(ready ? 200 : 503)
      .send({ status: ready ? (failover?.status === 'verifying' ? 'verifying' : 'ready') : 'unavailable', checks });
  });
  app.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await (deps.metrics ? deps.metrics() : registry.metrics())),
  );
};

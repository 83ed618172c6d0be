/** Admin only: the running configuration (secrets and credentials redacted). Ops may not read it. */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppDeps } from '../types.ts';
import { requireAdmin } from '../authorize.ts';
import { loadConfig } from '../../config.ts';
import { problem } from '../route-kit.ts';

/** A value as an operator may see it: secrets hidden, passwords cut out of URLs. */
export function redacted(name: string, value: unknown): unknown {
  if (/SECRET|PASSWORD|TOKEN/.test(name)) return value === '' ? '' : '<redacted>';
  if (typeof value === 'string') return value.replace(/(\/\/[^:/@]+:)[^@]*@/g, '$1<redacted>@');
  return value;
}

export const adminRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { config }) => {
  app.get(
    '/v1/admin/config',
    {
      schema: {
        tags: ['admin'],
        summary: 'The running configuration, secrets redacted (admin only)',
        response: {
          200: Type.Object({ config: Type.Record(Type.String(), Type.Unknown()) }),
          401: problem,
          403: problem,
        },
      },
    },
    async (request) => {
      requireAdmin(request.actor);
      // An app built without one (tests, embedding) runs with the environment's.
      const running = config ?? loadConfig();
      return { config: Object.fromEntries(Object.entries(running).map(([k, v]) => [k, redacted(k, v)])) };
    },
  );
};

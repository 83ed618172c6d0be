/**
 * The web console (docs/console.md): `/`, its script, styles and icon, built into `web/dist` by
 * `npm run build:web` (part of `npm start` and `npm test`), read once at start-up. In demo mode,
 * the demo identities the console offers.
 */
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { mintDemoTokens } from '../auth.ts';
import { DomainError } from '../../domain/errors.ts';
import type { AppDeps } from '../types.ts';
import { problem } from '../route-kit.ts';

const DIST = new URL('../../../web/dist/', import.meta.url);
const FILES = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/app.css', 'app.css', 'text/css; charset=utf-8'],
  // The page names /favicon.svg; /favicon.ico is what a browser asks for when a page names none.
  ['/favicon.svg', 'favicon.svg', 'image/svg+xml'],
  ['/favicon.ico', 'favicon.svg', 'image/svg+xml'],
] as const;

function read(file: string): Buffer | undefined {
  try {
    return readFileSync(new URL(file, DIST));
  } catch {
    return undefined;
  }
}

export const consoleRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app, { demo }) => {
  for (const [path, file, type] of FILES) {
    const body = read(file);
    app.get(path, { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
      if (!body) throw new DomainError('UNAVAILABLE', 'the console is not built: run npm run build:web');
      return reply.type(type).header('cache-control', 'no-cache').send(body);
    });
  }

  app.get(
    '/v1/demo/identities',
    {
      config: { public: true },
      schema: {
        tags: ['console'],
        summary: 'Demo mode only: a token for the demo customer, host, operations and admin (24 h)',
        security: [],
        response: {
          200: Type.Object({
            customer: Type.String(),
            host: Type.String(),
            ops: Type.String(),
            admin: Type.String(),
            hostId: Type.String(),
          }),
          404: problem,
        },
      },
    },
    async () => {
      if (!demo) throw new DomainError('NOT_FOUND', 'not in demo mode', { entity: 'demo' });
      return { ...(await mintDemoTokens(demo.secret, demo.hostId)), hostId: demo.hostId };
    },
  );
};

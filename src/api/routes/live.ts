/** `GET /v1/live` as a plain request: the WebSocket is answered on the raw server (live/hub.ts); this documents it. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DomainError } from '../../domain/errors.ts';
import { LIVE_PATH } from '../live/protocol.ts';
import type { AppDeps } from '../types.ts';
import { problem } from '../route-kit.ts';

export const liveRoutes: FastifyPluginAsyncTypebox<AppDeps> = async (app) => {
  app.get(
    LIVE_PATH,
    {
      schema: {
        tags: ['live'],
        summary: 'Real-time events over WebSocket (send `Upgrade: websocket`); see docs/api.md for the protocol',
        description:
          'Subscribe with {"type":"subscribe","topic":"city:<id>|vehicle:<id>|booking:<id>|host:<id>","after":"<event id>"?}. Events arrive as {"type":"event","topic","event":<CloudEvent>}, with heartbeats. The token may also be passed as ?access_token=.',
        response: { 401: problem, 426: problem },
      },
    },
    async () => {
      throw new DomainError('UPGRADE_REQUIRED', 'GET /v1/live is a WebSocket: send Upgrade: websocket');
    },
  );
};

/** Every error leaves the API as RFC 9457 problem+json with a stable `code`; mapped only here. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { codeOf, DomainError, ERROR_CODES, httpStatusOf, storeUnreachable, type ErrorCode } from '../domain/errors.ts';
import { log } from '../log.ts';

const RETRY_LATER: ReadonlySet<ErrorCode> = new Set([
  'BUSY',
  'RATE_LIMITED',
  'HOLD_LIMIT',
  'HOLD_RATE_LIMITED',
  'UNAVAILABLE',
]);

export const PROBLEM_TYPE_BASE = 'https://fleet-inventory.example/problems/';

export function problemOf(err: unknown): {
  code: ErrorCode;
  status: number;
  detail: string;
  extra: Record<string, unknown>;
} {
  if (err instanceof DomainError) {
    // The problem's own members win; an entity's `status` travels as `currentStatus`.
    const { at: _at, status, type: _t, title: _ti, detail: _d, code: _c, instance: _i, ...extra } = err.detail;
    return {
      code: err.code,
      status: httpStatusOf(err.code),
      detail: err.message,
      extra: status === undefined ? extra : { ...extra, currentStatus: status },
    };
  }
  if (storeUnreachable(err))
    return { code: 'UNAVAILABLE', status: 503, detail: 'a store is unreachable; retry shortly', extra: {} };
  const f = fastifyFields(err);
  if (f.validation)
    return { code: 'VALIDATION', status: 400, detail: f.message ?? 'invalid request', extra: { errors: f.validation } };
  switch (codeOf(err)) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { code: 'URI_TOO_LONG', status: 414, detail: 'a path parameter is too long', extra: {} };
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return { code: 'VALIDATION', status: 400, detail: f.message ?? 'bad URL', extra: {} };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'PAYLOAD_TOO_LARGE', status: 413, detail: 'request body too large', extra: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'UNSUPPORTED_MEDIA_TYPE', status: 415, detail: f.message ?? 'unsupported media type', extra: {} };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return { code: 'VALIDATION', status: 400, detail: f.message ?? 'invalid body', extra: {} };
    default:
      if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
        return { code: 'VALIDATION', status: f.statusCode, detail: f.message ?? 'bad request', extra: {} };
      }
      return { code: 'INTERNAL', status: 500, detail: 'internal error', extra: {} };
  }
}

/** What fastify's errors carry besides a code: ajv's `validation` errors and an HTTP `statusCode`. */
function fastifyFields(err: unknown): { validation?: unknown[]; statusCode?: number; message?: string } {
  if (typeof err !== 'object' || err === null) return {};
  return {
    validation: 'validation' in err && Array.isArray(err.validation) ? err.validation : undefined,
    statusCode: 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : undefined,
    message: err instanceof Error ? err.message : undefined,
  };
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const p = problemOf(err);
  // A 500 is a bug: the service's own log says it (fleet serve builds the app without request
  // logs), with the request id the caller got. A 503 is a store away: the request log's, if any.
  if (p.status === 500)
    log.error({ err, reqId: request.id, method: request.method, url: request.url }, 'unhandled error');
  else if (p.status > 500) request.log.warn({ err: p.code }, 'unavailable');
  // Refusals that pass with time say when (`retryAfterMs` of the refusal); a busy vehicle frees up within a second.
  const retryAfterMs = typeof p.extra.retryAfterMs === 'number' ? p.extra.retryAfterMs : undefined;
  if (retryAfterMs !== undefined) void reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  else if (RETRY_LATER.has(p.code)) void reply.header('retry-after', '1');
  return reply
    .code(p.status)
    .type('application/problem+json')
    .send({
      type: `${PROBLEM_TYPE_BASE}${p.code.toLowerCase()}`,
      title: ERROR_CODES[p.code].title,
      status: p.status,
      ...p.extra,
      detail: p.detail,
      code: p.code,
      instance: request.url,
    });
}

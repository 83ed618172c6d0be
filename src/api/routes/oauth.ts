/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4): an API client trades its id and secret for a
 * short-lived token (docs/api.md, "API clients"). The request is form-encoded, as OAuth asks
 * (a parser for this route only); the credentials come in HTTP Basic (§2.3.1) or in the form.
 * The token is signed like the service's own (HS256, `JWT_SECRET`). Refusals are OAuth's (§5.2:
 * `{error, error_description}`, 400, or 401 for `invalid_client`), which OAuth client libraries
 * read; what comes before OAuth's turn — the address's budget (429), a process without the
 * registry (503) — is problem+json, as on every route.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { codeOf } from '../../domain/errors.ts';
import { mintToken, SCOPES } from '../auth.ts';
import { sendProblem } from '../problems.ts';
import { needs, problem } from '../route-kit.ts';

/** A token's life: short, as client credentials' are; the client asks again. */
export const CLIENT_TOKEN_TTL_S = 900;

type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'unsupported_grant_type' | 'invalid_scope';

class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    description: string,
  ) {
    super(description);
  }
}

const TokenRequest = Type.Object(
  {
    grant_type: Type.String({ description: '`client_credentials`' }),
    client_id: Type.Optional(Type.String({ description: 'with client_secret, when not in HTTP Basic' })),
    client_secret: Type.Optional(Type.String()),
    scope: Type.Optional(Type.String({ description: "space-separated; at most the client's scopes" })),
  },
  { additionalProperties: true },
);

const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds' }),
  scope: Type.Optional(Type.String()),
});

const OAuthErrorBody = Type.Object({
  error: Type.String({ description: 'invalid_request, invalid_client, unsupported_grant_type, invalid_scope' }),
  error_description: Type.Optional(Type.String()),
});

/** A form parameter; an empty one is as if omitted (§3.2). */
function param(form: unknown, name: string): string | undefined {
  if (typeof form !== 'object' || form === null || !Object.hasOwn(form, name)) return undefined;
  const value: unknown = Object.getOwnPropertyDescriptor(form, name)?.value;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** `application/x-www-form-urlencoded`; a parameter given twice is refused (§3.2). */
function parseForm(body: string): Record<string, string> {
  const seen = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(body)) {
    if (seen.has(k)) throw new OAuthError('invalid_request', `${k} is given more than once`);
    seen.set(k, v);
  }
  return Object.fromEntries(seen);
}

/** Basic credentials are form-encoded before base64 (§2.3.1). */
function formDecoded(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new OAuthError('invalid_client', 'malformed HTTP Basic credentials');
  }
}

/** The client's id and secret: HTTP Basic, or the form (one method per request, §2.3). */
function credentials(authorization: string | undefined, form: unknown): { id: string; secret: string } {
  const basic = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization ?? '')?.[1];
  const formId = param(form, 'client_id');
  const formSecret = param(form, 'client_secret');
  if (basic !== undefined) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new OAuthError('invalid_client', 'malformed HTTP Basic credentials');
    const id = formDecoded(decoded.slice(0, colon));
    if (formSecret !== undefined || (formId !== undefined && formId !== id))
      throw new OAuthError('invalid_request', 'one client authentication method per request: HTTP Basic or the form');
    return { id, secret: formDecoded(decoded.slice(colon + 1)) };
  }
  if (formId === undefined || formSecret === undefined)
    throw new OAuthError(
      'invalid_client',
      'client authentication is required (HTTP Basic, or client_id and client_secret)',
    );
  return { id: formId, secret: formSecret };
}

/** The scope the token carries: what was asked (within the client's), or the client's own. */
function grantedScope(asked: string | undefined, allowed: readonly string[] | undefined): string | undefined {
  if (asked === undefined) return allowed?.join(' ');
  const words = asked.split(' ').filter(Boolean);
  const within = allowed ?? SCOPES;
  const outside = words.filter((w) => !within.includes(w));
  if (!words.length || outside.length)
    throw new OAuthError('invalid_scope', `scope beyond what this client may have: ${outside.join(' ') || '(none)'}`);
  return [...new Set(words)].join(' ');
}

/** An error of this route in OAuth's shape, when OAuth has a word for it (a malformed request). */
function oauthErrorOf(err: unknown): OAuthError | undefined {
  if (err instanceof OAuthError) return err;
  const code = codeOf(err) ?? '';
  const validation = typeof err === 'object' && err !== null && 'validation' in err;
  if (validation || code.startsWith('FST_ERR_CTP_'))
    return new OAuthError(
      'invalid_request',
      'a form-encoded (application/x-www-form-urlencoded) token request is required',
    );
  return undefined;
}

const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

export const oauthRoutes = needs('client credentials', ['clients', 'tokenSecret'], async (app, deps) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 8192 },
    (_r, body, done) => {
      try {
        done(null, parseForm(String(body)));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)), undefined);
      }
    },
  );
  app.setErrorHandler((err, request, reply) => {
    const oauth = oauthErrorOf(err);
    if (!oauth) return sendProblem(request, reply, err);
    if (oauth.error === 'invalid_client') void reply.header('www-authenticate', 'Basic realm="fleet-inventory"');
    return noStore(reply)
      .code(oauth.error === 'invalid_client' ? 401 : 400)
      .type('application/json')
      .send({ error: oauth.error, error_description: oauth.message });
  });

  app.post(
    '/v1/oauth/token',
    {
      config: { public: true },
      attachValidation: true,
      schema: {
        tags: ['auth'],
        summary: "An API client's token (OAuth 2.0 client credentials, RFC 6749 §4.4)",
        description:
          'Form-encoded. The client authenticates with HTTP Basic (client_id:client_secret) or client_id and client_secret in the form. Refusals are OAuth errors (RFC 6749 §5.2), not problem+json.',
        consumes: ['application/x-www-form-urlencoded'],
        security: [],
        body: TokenRequest,
        response: { 200: TokenResponse, 400: OAuthErrorBody, 401: OAuthErrorBody, 429: problem },
      },
    },
    async (request, reply) => {
      if (request.validationError)
        throw oauthErrorOf(request.validationError) ?? new OAuthError('invalid_request', 'a malformed token request');
      const form: unknown = request.body;
      const { id, secret } = credentials(request.headers.authorization, form);
      const grant = param(form, 'grant_type');
      if (grant === undefined) throw new OAuthError('invalid_request', 'grant_type is required');
      if (grant !== 'client_credentials')
        throw new OAuthError('unsupported_grant_type', 'this server grants client_credentials only');
      const proven = await deps.clients.authenticate(id, secret);
      if (!proven) throw new OAuthError('invalid_client', 'unknown client or wrong secret');
      const { client, generation } = proven;
      const scope = grantedScope(param(form, 'scope'), client.scopes);
      const token = await mintToken(
        deps.tokenSecret,
        {
          sub: `client:${client.id}`,
          role: client.role,
          ...(client.hostId !== undefined ? { hostId: client.hostId } : {}),
          ...(scope !== undefined ? { scope } : {}),
          ...(client.cities ? { cities: client.cities } : {}),
          client: { id: client.id, generation },
        },
        CLIENT_TOKEN_TTL_S,
      );
      return noStore(reply).send({
        access_token: token,
        token_type: 'Bearer' as const,
        expires_in: CLIENT_TOKEN_TTL_S,
        ...(scope !== undefined ? { scope } : {}),
      });
    },
  );
});

/**
 * The OpenAPI document is a valid OpenAPI 3.1 document by a standard validator
 * (@seriousme/openapi-schema-validator, references resolved), every schema in it is a valid
 * JSON Schema 2020-12 schema (the 3.1 dialect, which that validator leaves unchecked), and it
 * covers every `/v1` route the app serves — and only routes the app serves.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { buildApp, type App } from '../../src/api/app.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { connect, newInventory, testCity } from '../support/engine.ts';

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  responses?: Record<string, unknown>;
}
interface Doc {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, unknown> };
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** A WebSocket; documenting it is welcome but not required. */
const OPTIONAL = new Set(['GET /v1/live']);

let server: RedisServer;
let redis: Redis;
let app: App;
let doc: Doc;
/** Every route the app registered, as `METHOD /path` (seen through fastify's onRoute hook). */
const routes = new Set<string>();

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  // Fastify announces each new instance on this channel before any route exists: the onRoute
  // hook added here sees every route, in every plugin, without touching app.ts.
  const onInit = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', (route: RouteOptions) => {
      for (const method of [route.method].flat()) routes.add(`${method.toUpperCase()} ${route.url}`);
    });
  };
  subscribe('fastify.initialization', onInit);
  try {
    app = await buildApp({
      inventory: newInventory(redis, testCity()),
      redis,
      authenticate: async () => {
        throw new Error('no calls here');
      },
    });
  } finally {
    unsubscribe('fastify.initialization', onInit);
  }
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  assert.equal(res.statusCode, 200);
  doc = res.json() as Doc;
});

after(async () => {
  await app?.close();
  redis?.disconnect();
  await server?.stop();
});

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');
const toFastifyPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

function operations(): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => HTTP_METHODS.includes(m))
      .map(([m, op]) => [m.toUpperCase(), path, op] as [string, string, Operation]),
  );
}

describe('OpenAPI document', () => {
  test('is valid OpenAPI 3.1 (standard validator, every $ref resolves)', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    assert.deepEqual(result.errors, undefined, `validator errors: ${JSON.stringify(result.errors, null, 2)}`);
    assert.equal(result.valid, true);
    assert.equal(validator.version, '3.1');
    assert.doesNotThrow(() => validator.resolveRefs(), 'every reference resolves');
  });

  test('every schema is a valid JSON Schema 2020-12 schema', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const schemas: [string, unknown][] = Object.entries(doc.components?.schemas ?? {}).map(([name, s]) => [
      `#/components/schemas/${name}`,
      s,
    ]);
    const collect = (node: unknown, at: string): void => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node)) {
        // `schema` of a parameter or media type; a property named "schema" is inside a schema already.
        if (k === 'schema' && v && typeof v === 'object' && !at.endsWith('/properties'))
          schemas.push([`${at}/schema`, v]);
        else collect(v, `${at}/${k}`);
      }
    };
    collect(doc.paths, '#/paths');
    assert.ok(schemas.length > 50, `found the schemas (${schemas.length})`);
    const invalid = schemas.filter(([, s]) => !ajv.validateSchema(s as object)).map(([at]) => at);
    assert.deepEqual(invalid, [], 'schemas that are not JSON Schema 2020-12');
  });

  test('covers every /v1 and /gbfs route, and documents only routes that exist', () => {
    const served = [...routes].filter((r) => /^\/(v1|gbfs)\//.test(r.split(' ')[1] ?? '') && !r.startsWith('HEAD '));
    assert.ok(served.length >= 20, `saw the routes (${served.length})`);
    const documented = new Set(operations().map(([m, p]) => `${m} ${p}`));
    const missing = served.filter((r) => {
      const [method, url] = r.split(' ') as [string, string];
      return !OPTIONAL.has(r) && !documented.has(`${method} ${toOpenApiPath(url)}`);
    });
    assert.deepEqual(missing, [], 'routes missing from the OpenAPI document');
    for (const [method, path] of operations()) {
      assert.ok(/^\/(v1|gbfs)\//.test(path), `only /v1 and /gbfs routes are documented (${method} ${path})`);
      assert.ok(app.hasRoute({ method: method as 'GET', url: toFastifyPath(path) }), `${method} ${path} is served`);
    }
  });

  test('every operation declares its path parameters and its responses', () => {
    for (const [method, path, op] of operations()) {
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      assert.deepEqual(declared.map((p) => p.name).sort(), templated.sort(), `${method} ${path}: path parameters`);
      assert.ok(
        declared.every((p) => p.required === true),
        `${method} ${path}: path parameters are required`,
      );
      assert.ok(Object.keys(op.responses ?? {}).length > 0, `${method} ${path}: responses`);
    }
  });
});

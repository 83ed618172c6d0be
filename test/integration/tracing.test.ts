/**
 * Traces across the event flow (issue 26): `fleet serve` as users run it, with the standard
 * OTEL_* variables pointing at an OTLP/HTTP receiver of the test's own. One booking, made with the
 * caller's `traceparent`, is one trace: the HTTP request (joining the caller's trace), the Lua
 * script under it, the sync's transaction and the webhook delivery continuing it from the event,
 * and the delivery sends the trace on to the receiver. Without OTEL_*, the events carry no trace.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { mintToken } from '../../src/api/auth.ts';
import { createTestDatabase, type TestDatabase } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';

const SECRET = 'tracing-secret-of-32-bytes-or-more!!';
const HOUR = 3_600_000;

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  links?: { traceId: string; spanId: string }[];
  attributes?: { key: string; value: { stringValue?: string } }[];
}

let collector: Server;
let hooks: Server;
let redis: RedisServer;
let db: TestDatabase;
let fleet: ServedFleet;
const spans: Span[] = [];
const deliveries: { headers: IncomingHttpHeaders; body: { subject: string; type: string; traceparent?: string } }[] =
  [];

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function bodyOf(req: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => resolve(body));
  });
}

before(async () => {
  // OTLP/HTTP with JSON bodies (OTEL_EXPORTER_OTLP_PROTOCOL=http/json): resourceSpans -> scopeSpans -> spans.
  collector = createServer(async (req, res) => {
    const body = JSON.parse(await bodyOf(req)) as {
      resourceSpans?: { scopeSpans?: { spans?: Span[] }[] }[];
    };
    for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  hooks = createServer(async (req, res) => {
    deliveries.push({ headers: req.headers, body: JSON.parse(await bodyOf(req)) });
    res.writeHead(204).end();
  });
  const collectorPort = await listen(collector);
  await listen(hooks);
  redis = await startRedis({ external: 'never' });
  db = await createTestDatabase();
  fleet = await startServe(
    {
      WEB_CONCURRENCY: '1',
      CITIES: 'blr',
      REDIS_URL: redis.url,
      DATABASE_URL: db.url,
      JWT_SECRET: SECRET,
      WEBHOOK_ALLOW_PRIVATE: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'fleet-inventory-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
    ['--demo', '--vehicles-per-city', '6'],
  );
});

after(async () => {
  await fleet?.stop();
  collector?.close();
  hooks?.close();
  await redis?.stop();
  await db?.drop();
});

async function until<T>(what: string, find: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

test("one booking is one trace: the request, its script, the sync's transaction and the webhook delivery", {
  timeout: 120_000,
}, async () => {
  const secret = new TextEncoder().encode(SECRET);
  const ops = await mintToken(secret, { sub: 'olga', role: 'ops' });
  const alice = await mintToken(secret, { sub: 'alice', role: 'customer' });
  const { port } = hooks.address() as AddressInfo;
  const sub = await fetch(`${fleet.base}/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, types: ['booking.confirmed'], cities: ['blr'] }),
  });
  assert.equal(sub.status, 201, await sub.clone().text());
  const list = await fetch(`${fleet.base}/v1/cities/blr/vehicles?limit=10`, {
    headers: { authorization: `Bearer ${ops}` },
  });
  const vehicleId = ((await list.json()) as { vehicles: { id: string }[] }).vehicles[0]?.id;
  assert.ok(vehicleId);

  // The caller's own trace: the service's spans join it.
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  const from = Math.ceil((Date.now() + 30 * 24 * HOUR) / HOUR) * HOUR;
  const r = await fetch(`${fleet.base}/v1/bookings`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${alice}`,
      'content-type': 'application/json',
      traceparent: `00-${traceId}-${callerSpan}-01`,
    },
    body: JSON.stringify({ vehicleId, from: new Date(from).toISOString(), to: new Date(from + HOUR).toISOString() }),
  });
  assert.equal(r.status, 201, await r.clone().text());
  const booking = ((await r.json()) as { id: string }).id;

  const delivery = await until('the webhook delivery', () => deliveries.find((d) => d.body.subject === booking));
  const inTrace = (name: string | RegExp) =>
    spans.find((s) => s.traceId === traceId && (typeof name === 'string' ? s.name === name : name.test(s.name)));
  const script = await until('the script span', () => inTrace('script book'));
  const syncTx = await until('the sync transaction span', () => inTrace('sync.apply'));
  const deliver = await until('the webhook delivery span', () => inTrace('webhook.deliver'));
  const byId = (id: string | undefined) => spans.find((s) => s.spanId === id);
  const ancestors = (s: Span): Span[] => {
    const up: Span[] = [];
    for (let p = byId(s.parentSpanId); p; p = byId(p.parentSpanId)) up.push(p);
    return up;
  };

  // The HTTP request joined the caller's trace: its server span's parent is the caller's span.
  const request = await until('the request span', () =>
    spans.find((s) => s.traceId === traceId && s.parentSpanId === callerSpan),
  );
  assert.ok(
    ancestors(script).some((s) => s.spanId === request.spanId),
    `the script runs under the request (${ancestors(script).map((s) => s.name)})`,
  );
  // The event carried the script's trace context: what read it continues from there.
  assert.equal(syncTx.parentSpanId, script.spanId, "the sync's transaction continues the script's trace");
  assert.equal(deliver.parentSpanId, script.spanId, 'the webhook delivery continues it too');
  assert.equal(delivery.body.traceparent?.split('-')[1], traceId, 'the CloudEvent carries its trace');
  const sent = String(delivery.headers.traceparent ?? '');
  assert.equal(sent.split('-')[1], traceId, 'the delivery sends the trace on to the receiver');
  assert.equal(sent.split('-')[2], deliver.spanId, "as the delivery span's child");
  // The instrumented stores under the service's own spans (ioredis's and pg's instrumentations).
  assert.ok(
    spans.some((s) => s.traceId === traceId && s.parentSpanId === script.spanId && /fcall/i.test(s.name)),
    `the script's Redis command under its span (${spans.filter((s) => s.traceId === traceId).map((s) => s.name)})`,
  );
  assert.ok(
    spans.some((s) => s.traceId === traceId && ancestors(s).some((a) => a.spanId === syncTx.spanId)),
    "PostgreSQL's statements under the sync's transaction",
  );
});

/**
 * Limits that hold when a WebSocket client misbehaves (issue 11): the topic cap holds under a
 * burst, a refused topic is looked up once, a flood of messages is refused then disconnected
 * without starving anyone else, a client that never reads is held under the high-water mark and
 * closed, and a caller cannot open more connections than its cap.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { CLOSE_POLICY, CLOSE_SLOW, type LiveOptions } from '../../src/api/live/protocol.ts';
import { authenticator } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, SEDAN, connect, futureHour, testCity } from '../support/engine.ts';
import { tenantTokens } from '../support/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('limits-live-secret-of-32-bytes-or-more!');
const city = testCity();
const busy = testCity();
let server: RedisServer;
let redis: Redis;
let inv: Inventory;
let readModel: ReadModel;
const apps: App[] = [];
let tok: Awaited<ReturnType<typeof tenantTokens>>;
let vehicle: string;

before(async () => {
  server = await startRedis({ external: 'never' });
  redis = connect(server.url);
  inv = new Inventory(redis, { cities: new CityCatalog([city, busy]) });
  vehicle = (await inv.createVehicle(city.id, { ...SEDAN, hostId: 'host-b' })).vehicleId;
  readModel = new ReadModel(redis, inv);
  await readModel.start();
  tok = await tenantTokens(SECRET);
});
after(async () => {
  for (const a of apps) await a.close();
  await readModel.stop();
  redis.disconnect();
  await server.stop();
});

async function serve(live: LiveOptions): Promise<{ app: App; url: string }> {
  const app = await buildApp({
    inventory: inv,
    redis,
    readModel,
    authenticate: authenticator({ secret: SECRET }),
    live,
    rateLimits: { customer: 1e6, host: 1e6, ops: 1e6, admin: 1e6 },
  });
  apps.push(app);
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `${base.replace('http', 'ws')}/v1/live` };
}

interface Message {
  type: string;
  topic?: string;
  code?: string;
}

async function open(
  url: string,
  token: string,
): Promise<{ ws: WebSocket; messages: Message[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const messages: Message[] = [];
  ws.on('message', (raw) => messages.push(JSON.parse(raw.toString()) as Message));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, messages, closed };
}

async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('a burst of 1,000 subscribes ends with no more topics than the cap', async () => {
  const { url } = await serve({ maxTopics: 100, messageBurst: 5_000, messagesPerSecond: 5_000 });
  const c = await open(url, tok.ops);
  for (let i = 0; i < 1_000; i++) c.ws.send(JSON.stringify({ type: 'subscribe', topic: `host:burst-${i}` }));
  const answered = () => c.messages.filter((m) => m.type === 'subscribed' || m.type === 'error').length;
  await until(() => answered() >= 1_000, 15_000, 'an answer to every subscribe');
  assert.equal(c.messages.filter((m) => m.type === 'subscribed').length, 100, 'exactly the cap');
  assert.equal(c.messages.filter((m) => m.type === 'error' && m.code === 'VALIDATION').length, 900);
  c.ws.close();
});

test('a refused topic is looked up once', async () => {
  const { url } = await serve({});
  const c = await open(url, tok.hostA);
  // Count the lookups the hub makes (the vehicle's state, from Redis).
  let lookups = 0;
  const read = inv.getVehicleState.bind(inv);
  inv.getVehicleState = (id: string) => {
    lookups++;
    return read(id);
  };
  try {
    for (let i = 0; i < 5; i++) c.ws.send(JSON.stringify({ type: 'subscribe', topic: `vehicle:${vehicle}` }));
    await until(() => c.messages.filter((m) => m.type === 'error').length >= 5, 5_000, 'five refusals');
  } finally {
    inv.getVehicleState = read;
  }
  // Another host's vehicle: not found, as over HTTP.
  assert.ok(c.messages.filter((m) => m.type === 'error').every((m) => m.code === 'NOT_FOUND'));
  assert.equal(lookups, 1, 'the vehicle was read once, for the first refusal');
  c.ws.close();
});

test('a connection flooding messages gets errors, then is closed; another connection keeps its events', async () => {
  const { url } = await serve({ messagesPerSecond: 20, messageBurst: 40 });
  const quiet = await open(url, tok.ops);
  quiet.ws.send(JSON.stringify({ type: 'subscribe', topic: `city:${city.id}` }));
  await until(() => quiet.messages.some((m) => m.type === 'subscribed'));
  const flood = await open(url, tok.admin);
  for (let i = 0; i < 2_000 && flood.ws.readyState === WebSocket.OPEN; i++)
    flood.ws.send(JSON.stringify({ type: 'ping' }));
  const closed = await flood.closed;
  assert.equal(closed.code, CLOSE_POLICY);
  assert.match(closed.reason, /message budget/);
  assert.ok(
    flood.messages.some((m) => m.type === 'error' && m.code === 'RATE_LIMITED'),
    'it was told before being closed',
  );
  assert.ok(flood.messages.filter((m) => m.type === 'pong').length <= 45, 'at most the burst was answered');
  const t = futureHour(HOUR);
  await inv.book({ vehicleId: vehicle, customerId: 'alice', from: t, to: t + HOUR });
  await until(() => quiet.messages.some((m) => m.type === 'event'), 5_000, "the quiet subscriber's event");
  quiet.ws.close();
});

test('a client that never reads, asking for replays, stays under the high-water mark and is closed', {
  timeout: 120_000,
}, async () => {
  // A city with a long history to replay: more than the kernel's socket buffers can absorb (~18 MB).
  const vehicles: string[] = [];
  for (let i = 0; i < 60; i++) vehicles.push((await inv.createVehicle(busy.id, { ...SEDAN })).vehicleId);
  const t = futureHour(HOUR);
  await Promise.all(
    vehicles.map(async (v) => {
      for (let k = 0; k < 350; k++)
        await inv.book({ vehicleId: v, customerId: 'alice', from: t + k * 2 * HOUR, to: t + k * 2 * HOUR + HOUR });
    }),
  );
  const HIGH_WATER = 256 * 1024;
  const { app, url } = await serve({ highWaterBytes: HIGH_WATER, slowConsumerMs: 2_000 });
  const hub = app.live;
  const c = await open(url, tok.ops);
  // The client stops reading: its socket's buffers fill, then the server's.
  (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  c.ws.send(JSON.stringify({ type: 'subscribe', topic: `city:${busy.id}`, after: '0-0' }));
  let most = 0;
  const sampler = setInterval(() => {
    most = Math.max(most, ...hub.bufferedBytes(), 0);
  }, 5);
  await until(() => hub.connections === 0, 30_000, 'the slow consumer to be closed');
  clearInterval(sampler);
  console.log(`most buffered for the slow client: ${most} bytes (high-water mark ${HIGH_WATER})`);
  assert.ok(most <= HIGH_WATER, `buffered ${most} bytes`);
  const reasons = (await import('../../src/metrics.ts')).metrics.liveRefused;
  const slow = (await reasons.get()).values.find((v) => v.labels.reason === 'slow_consumer')?.value ?? 0;
  assert.ok(slow >= 1, 'closed as a slow consumer');
  void CLOSE_SLOW;
});

test('a caller cannot hold more live connections than its cap', async () => {
  const { url } = await serve({ maxConnectionsPerCaller: 3 });
  const held = [];
  for (let i = 0; i < 3; i++) held.push(await open(url, tok.bob));
  await assert.rejects(open(url, tok.bob), /429/);
  const other = await open(url, tok.carol);
  for (const c of [...held, other]) c.ws.close();
});

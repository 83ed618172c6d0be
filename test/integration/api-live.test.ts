/**
 * WebSocket `/v1/live`: a city subscriber gets every event of that city in stream order and
 * none of another city's; topics are authorised; a reconnect with the last event id misses
 * nothing and repeats nothing, even while writes keep coming.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { CityCatalog } from '../../src/domain/cities.ts';
import { Inventory } from '../../src/services/inventory.ts';
import { ReadModel } from '../../src/services/read-model.ts';
import { TokenRevocations } from '../../src/services/token-revocations.ts';
import { keys } from '../../src/redis/keys.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { HOUR, SEDAN, connect, futureHour, testCity } from '../support/engine.ts';
import { TENANTS, tenantTokens } from '../support/tokens.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const cityA = testCity();
const cityB = testCity();
let server: RedisServer;
let redis: Redis;
let inv: Inventory;
let readModel: ReadModel;
let app: App;
let wsBase: string;
const tok: Record<string, string> = {};
let vehA: string;
let vehA2: string;
let vehB: string;
/** A vehicle in each city of a host nobody watches: their bookings are the markers of `settled`. */
let markA: string;
let markB: string;
let markers = 0;

interface Message {
  type: string;
  topic?: string;
  code?: string;
  status?: number;
  detail?: string;
  event?: { id: string; type: string; subject: string; source: string; data: Record<string, unknown> };
}

/** A client that records every message and can wait for one that matches. */
class LiveClient {
  readonly messages: Message[] = [];
  private waiters: Array<() => void> = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      this.messages.push(JSON.parse(raw.toString()) as Message);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(token: string, how: 'header' | 'query' = 'header'): Promise<LiveClient> {
    const ws =
      how === 'header'
        ? new WebSocket(`${wsBase}/v1/live`, { headers: { authorization: `Bearer ${token}` } })
        : new WebSocket(`${wsBase}/v1/live?access_token=${token}`);
    const client = new LiveClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await client.waitFor((m) => m.type === 'welcome');
    return client;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** A ping answered: the server sent the pong after everything it had sent this client before. */
  async ping(): Promise<void> {
    const pongs = () => this.messages.filter((m) => m.type === 'pong').length;
    const before = pongs();
    this.send({ type: 'ping' });
    await this.waitFor(() => pongs() > before);
  }

  /** Whether the client subscribed to `topic`. */
  hears(topic: string): boolean {
    return this.messages.some((m) => m.type === 'subscribed' && m.topic === topic);
  }

  async waitFor(pred: (m: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.messages.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async subscribe(topic: string, afterId?: string): Promise<Message> {
    this.send({ type: 'subscribe', topic, ...(afterId ? { after: afterId } : {}) });
    return this.waitFor((m) => m.topic === topic && (m.type === 'subscribed' || m.type === 'error'));
  }

  events(topic?: string) {
    return this.messages.filter((m) => m.type === 'event' && (!topic || m.topic === topic)).map((m) => m.event!);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((r) => {
      this.ws.once('close', () => r());
      this.ws.close();
    });
  }
}

async function streamIds(city: string, afterId = '-'): Promise<string[]> {
  return (await redis.xrange(keys.events(city), afterId === '-' ? '-' : `(${afterId}`, '+')).map(([id]) => id);
}

async function lastId(city: string): Promise<string> {
  return (await redis.xrevrange(keys.events(city), '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
}

/** Writes in both cities: holds, bookings and cancellations by two customers. */
async function churn(n: number, offsetHours: number): Promise<string[]> {
  const bookings: string[] = [];
  for (let i = 0; i < n; i++) {
    const from = futureHour(24 * HOUR) + (offsetHours + i * 3) * HOUR;
    const b = await inv.book({ vehicleId: i % 2 ? vehA : vehA2, customerId: 'alice', from, to: from + HOUR });
    bookings.push(b.booking.id);
    await inv.book({ vehicleId: vehB, customerId: 'bob', from, to: from + HOUR });
    if (i % 3 === 0) await inv.cancelBooking(b.booking.id, 'alice');
  }
  return bookings;
}

/**
 * Returns once each client holds every message the hub will send it for the events written so far,
 * so that what a client lacks then, it will never get. The hub delivers one batch after another,
 * each city's events in stream order, to each client in turn, and each connection keeps its order.
 * So a marker booked in city B and heard by a probe, then one in city A heard by the probe, were
 * delivered after every earlier event was delivered to every client; a pong the client gets after
 * that was sent after all of it. A client subscribed to city A waits for the marker itself first
 * (a replaying subscription holds live events until its replay is done).
 */
async function settled(...clients: LiveClient[]): Promise<void> {
  const probe = await LiveClient.open(tok.admin!);
  for (const city of [cityB, cityA]) assert.equal((await probe.subscribe(`city:${city.id}`)).type, 'subscribed');
  for (const [city, vehicleId] of [
    [cityB, markB],
    [cityA, markA],
  ] as const) {
    const from = futureHour(24 * HOUR) + (5000 + 2 * markers++) * HOUR;
    await inv.book({ vehicleId, customerId: 'marker', from, to: from + HOUR });
    const marker = await lastId(city.id);
    await probe.waitFor((m) => m.event?.id === marker);
    for (const c of clients) if (c.hears(`city:${city.id}`)) await c.waitFor((m) => m.event?.id === marker);
  }
  for (const c of clients) await c.ping();
  await probe.close();
}

async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  inv = new Inventory(redis, { cities: new CityCatalog([cityA, cityB]) });
  vehA = (await inv.createVehicle(cityA.id, { ...SEDAN, hostId: 'host-a' })).vehicleId;
  vehA2 = (await inv.createVehicle(cityA.id, { ...SEDAN, hostId: 'host-b' })).vehicleId;
  vehB = (await inv.createVehicle(cityB.id, { ...SEDAN, hostId: 'host-a' })).vehicleId;
  markA = (await inv.createVehicle(cityA.id, { ...SEDAN, hostId: 'host-marker' })).vehicleId;
  markB = (await inv.createVehicle(cityB.id, { ...SEDAN, hostId: 'host-marker' })).vehicleId;
  // The hub hears the streams through the read model's tail, as in every API process.
  readModel = new ReadModel(redis, inv);
  await readModel.start();
  app = await buildApp({
    inventory: inv,
    redis,
    readModel,
    authenticate: authenticator({ secret: SECRET }),
    live: { heartbeatMs: 300 },
  });
  wsBase = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws');
  Object.assign(tok, await tenantTokens(SECRET));
});

after(async () => {
  await app.close();
  await readModel.stop();
  redis.disconnect();
  await server.stop();
});

describe('WebSocket /v1/live', () => {
  test('a city subscriber gets every event of the city in order, and none of another city', async () => {
    const ops = await LiveClient.open(tok.ops!);
    assert.equal((await ops.subscribe(`city:${cityA.id}`)).type, 'subscribed');
    const start = await lastId(cityA.id);
    await churn(12, 0);
    assert.ok((await streamIds(cityA.id, start)).length >= 12);
    await settled(ops);
    const expected = await streamIds(cityA.id, start);
    const got = ops.events();
    assert.deepEqual(
      got.map((e) => e.id),
      expected,
      'every event of city A, in stream order, once',
    );
    assert.ok(
      got.every((e) => e.source.startsWith(`/cities/${cityA.id}/`)),
      'nothing from city B',
    );
    await ops.close();
  });

  test('each topic is authorised: refused topics get an error and no events', async () => {
    const bookingOfAlice = (
      await inv.book({ vehicleId: vehA, customerId: 'alice', from: futureHour(400 * HOUR), to: futureHour(401 * HOUR) })
    ).booking.id;
    const alice = await LiveClient.open(tok.alice!, 'query');
    const bob = await LiveClient.open(tok.bob!);
    const hostA = await LiveClient.open(tok.hostA!);
    const hostB = await LiveClient.open(tok.hostB!);
    const refusals: Array<[LiveClient, string, string]> = [
      [alice, `city:${cityA.id}`, 'FORBIDDEN'],
      [hostA, `city:${cityA.id}`, 'FORBIDDEN'],
      // Another tenant's vehicle, booking or host: not found, as over HTTP (test below).
      [alice, `vehicle:${vehA}`, 'NOT_FOUND'],
      [hostB, `vehicle:${vehA}`, 'NOT_FOUND'],
      [bob, `booking:${bookingOfAlice}`, 'NOT_FOUND'],
      [hostB, `booking:${bookingOfAlice}`, 'NOT_FOUND'],
      [hostB, 'host:host-a', 'NOT_FOUND'],
      [alice, 'host:host-a', 'NOT_FOUND'],
      [alice, 'planet:mars', 'VALIDATION'],
      [alice, `booking:bkg_${cityA.id}_nope`, 'NOT_FOUND'],
    ];
    for (const [client, topic, code] of refusals) {
      const answer = await client.subscribe(topic);
      assert.equal(answer.type, 'error', `${topic} refused`);
      assert.equal(answer.code, code, topic);
    }
    assert.equal((await alice.subscribe(`booking:${bookingOfAlice}`)).type, 'subscribed');
    assert.equal((await hostA.subscribe(`vehicle:${vehA}`)).type, 'subscribed');
    assert.equal((await hostA.subscribe('host:host-a')).type, 'subscribed');
    await inv.cancelBooking(bookingOfAlice, 'alice');
    await inv.book({ vehicleId: vehB, customerId: 'bob', from: futureHour(500 * HOUR), to: futureHour(501 * HOUR) });
    await inv.book({ vehicleId: vehA2, customerId: 'bob', from: futureHour(500 * HOUR), to: futureHour(501 * HOUR) });
    await alice.waitFor((m) => m.type === 'event' && m.event?.type === 'booking.cancelled');
    await until(() => hostA.events('host:host-a').length >= 2);
    await settled(alice, bob, hostA, hostB);
    assert.deepEqual(
      alice.events().map((e) => e.subject),
      [bookingOfAlice],
      'only her booking',
    );
    assert.ok(hostA.events(`vehicle:${vehA}`).every((e) => e.source.endsWith(vehA)));
    const hostVehicles = new Set(hostA.events('host:host-a').map((e) => e.source.split('/').at(-1)));
    assert.deepEqual(
      [...hostVehicles].sort(),
      [vehA, vehB].sort(),
      "the host's vehicles in every city, not another host's",
    );
    for (const c of [bob, hostB]) assert.equal(c.events().length, 0, 'refused subscribers get nothing');
    await Promise.all([alice, bob, hostA, hostB].map((c) => c.close()));
  });

  test("another tenant's vehicle, booking, host or city: not found, exactly as one that does not exist, and as over HTTP", async () => {
    const bookingOfAlice = (
      await inv.book({ vehicleId: vehA, customerId: 'alice', from: futureHour(600 * HOUR), to: futureHour(601 * HOUR) })
    ).booking.id;
    const bobToken = await mintToken(SECRET, TENANTS.bob);
    const hostBToken = await mintToken(SECRET, TENANTS.hostB);
    const bob = await LiveClient.open(bobToken);
    const hostB = await LiveClient.open(hostBToken);
    const opsOfB = await LiveClient.open(await mintToken(SECRET, { sub: 'olaf', role: 'ops', cities: [cityB.id] }));
    const noVehicle = `veh_${cityA.id}_nothere000`;
    const noBooking = `bkg_${cityA.id}_nothere000`;
    // [client, another tenant's topic, a topic of the same kind that does not exist]
    const cases: Array<[LiveClient, string, string]> = [
      [hostB, `vehicle:${vehA}`, `vehicle:${noVehicle}`],
      [bob, `booking:${bookingOfAlice}`, `booking:${noBooking}`],
      [hostB, `booking:${bookingOfAlice}`, `booking:${noBooking}`],
      [hostB, 'host:host-a', 'host:host-nobody'],
      [opsOfB, `city:${cityA.id}`, 'city:nowhere'],
      [opsOfB, `vehicle:${vehA}`, `vehicle:${noVehicle}`],
      [opsOfB, `booking:${bookingOfAlice}`, `booking:${noBooking}`],
    ];
    const seen = (m: Message, topic: string) => {
      const id = topic.slice(topic.indexOf(':') + 1);
      return { type: m.type, code: m.code, status: m.status, detail: m.detail?.replace(id, '<id>') };
    };
    for (const [client, foreign, missing] of cases) {
      const a = await client.subscribe(foreign);
      const b = await client.subscribe(missing);
      assert.equal(a.code, 'NOT_FOUND', foreign);
      assert.equal(a.status, 404, foreign);
      assert.deepEqual(seen(a, foreign), seen(b, missing), `${foreign} is told apart from ${missing}`);
    }
    // The same answer as the REST API's for the same resource.
    const http = async (token: string, path: string): Promise<{ code: string; status: number }> => {
      const res = await fetch(`${wsBase.replace('ws', 'http')}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return res.json();
    };
    for (const [client, token, topic, path] of [
      [bob, bobToken, `booking:${bookingOfAlice}`, `/v1/bookings/${bookingOfAlice}`],
      [hostB, hostBToken, `vehicle:${vehA}`, `/v1/vehicles/${vehA}/calendar`],
      [hostB, hostBToken, 'host:host-a', '/v1/hosts/host-a/vehicles'],
    ] as const) {
      const ws = client.messages.find((m) => m.type === 'error' && m.topic === topic);
      const rest = await http(token, path);
      assert.deepEqual(
        { code: ws?.code, status: ws?.status },
        { code: rest.code, status: rest.status },
        `${topic} as ${path}`,
      );
    }
    await Promise.all([bob, hostB, opsOfB].map((c) => c.close()));
  });

  test('an upgrade without a valid token is refused with 401; another path with 404', async () => {
    const status = (url: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(url, { headers });
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          res.resume();
          ws.terminate();
        });
        ws.on('open', () => {
          ws.terminate();
          reject(new Error('opened'));
        });
        ws.on('error', () => undefined);
      });
    assert.equal(await status(`${wsBase}/v1/live`), 401);
    assert.equal(await status(`${wsBase}/v1/live`, { authorization: 'Bearer not.a.token' }), 401);
    assert.equal(await status(`${wsBase}/v1/elsewhere`, { authorization: `Bearer ${tok.ops}` }), 404);
    const plain = await fetch(`${wsBase.replace('ws', 'http')}/v1/live`, {
      headers: { authorization: `Bearer ${tok.ops}` },
    });
    assert.equal(plain.status, 426);
  });

  test('a reconnect with the last event id misses nothing and repeats nothing, while writes go on', async () => {
    const topic = `city:${cityA.id}`;
    const start = await lastId(cityA.id);
    const first = await LiveClient.open(tok.ops!);
    await first.subscribe(topic);
    await churn(5, 1000);
    await until(async () => first.events().length === (await streamIds(cityA.id, start)).length);
    const seen = first.events().map((e) => e.id);
    await first.close();
    // Written while nobody listens, then while the second client replays.
    await churn(5, 2000);
    const second = await LiveClient.open(tok.ops!);
    const writing = churn(8, 3000);
    assert.equal((await second.subscribe(topic, seen.at(-1))).type, 'subscribed');
    await writing;
    await settled(second);
    const expected = await streamIds(cityA.id, start);
    assert.deepEqual([...seen, ...second.events().map((e) => e.id)], expected);
    await second.close();
  });

  test('heartbeats arrive; bad messages get an error and the connection stays', async () => {
    const c = await LiveClient.open(tok.ops!);
    await c.waitFor((m) => m.type === 'heartbeat', 2000);
    c.ws.send('not json');
    assert.equal((await c.waitFor((m) => m.type === 'error')).code, 'VALIDATION');
    c.send({ type: 'subscribe', topic: `city:${cityB.id}`, after: 'yesterday' });
    assert.equal((await c.waitFor((m) => m.type === 'error' && m.topic === `city:${cityB.id}`)).code, 'VALIDATION');
    c.send({ type: 'ping' });
    await c.waitFor((m) => m.type === 'pong');
    await c.close();
  });

  test("a revoked token's open connection is closed within a second; another token's stays", async () => {
    const token = await mintToken(SECRET, { sub: 'erin', role: 'customer' });
    const jti = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).jti;
    assert.ok(typeof jti === 'string' && jti, 'the token has a jti');
    const revokedClient = await LiveClient.open(token);
    const other = await LiveClient.open(tok.alice ?? '');
    const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
      revokedClient.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })),
    );
    // Revoked as an admin's POST /v1/admin/revocations does: in Redis, where every process polls it.
    const revocations = new TokenRevocations(redis);
    const since = Date.now();
    await revocations.revokeToken(jti, Date.now() + HOUR);
    const end = await Promise.race([
      closed,
      sleep(3_000).then(() => assert.fail('the connection is still open 3 s after the revocation')),
    ]);
    assert.equal(end.code, 1008);
    assert.equal(end.reason, 'token revoked');
    assert.ok(end.at - since < 1_000, `closed ${end.at - since} ms after the revocation`);
    const last = revokedClient.messages.at(-1);
    assert.equal(last?.type, 'error');
    assert.equal(last?.code, 'UNAUTHENTICATED');
    await other.ping();
    assert.equal(other.ws.readyState, WebSocket.OPEN, "another caller's connection stays open");
    await other.close();
  });
});

/**
 * The PostgreSQL primary crashes under booking load while `fleet serve` runs as `npm start` runs
 * it (its real process tree, a multi-host DATABASE_URL): the standby is promoted, and the service
 * keeps answering reads and writes throughout (writes never depend on PostgreSQL); once the sync
 * has drained, every acknowledged booking is in the promoted database. Before the fix, a client
 * checked out of the pool for a long time (the webhook dispatcher's leader lock) had no 'error'
 * listener: the server's death was an unhandled 'error' event that ended the primary process, and
 * its API processes with it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { mintToken } from '../../src/api/auth.ts';
import { pgPromote } from '../../src/ha/local.ts';
import { startPgCluster, startPgReplica, type PgCluster } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = 'pg-crash-secret-of-32-bytes-or-more';
const CLIENTS = 8;
const HOUR = 3_600_000;
let primary: PgCluster;
let standby: PgCluster;
let redis: RedisServer;
let fleet: ServedFleet;
let receiver: Server;
/** Subjects (booking ids) of the booking.confirmed events delivered by webhook. */
const delivered = new Set<string>();

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      const event = JSON.parse(body) as { type: string; subject: string };
      if (event.type === 'booking.confirmed') delivered.add(event.subject);
      res.writeHead(204).end();
    });
  }).listen(0, '127.0.0.1');
  primary = await startPgCluster();
  standby = await startPgReplica(primary);
  redis = await startRedis({ external: 'never' });
  fleet = await startServe(
    {
      WEB_CONCURRENCY: '2',
      CITIES: 'blr',
      REDIS_URL: redis.url,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/fleet?target_session_attrs=read-write`,
      JWT_SECRET: SECRET,
      RATE_LIMIT_CUSTOMER: '100000',
      RATE_LIMIT_OPS: '100000',
      // The webhook dispatcher leads, holding its lock on a checked-out client, before the crash.
      WEBHOOK_ALLOW_PRIVATE: '1',
      WEBHOOK_RETRY_BASE_MS: '100',
      WEBHOOK_RETRY_MAX_MS: '1000',
    },
    ['--demo', '--vehicles-per-city', '40'],
  );
});

after(async () => {
  receiver?.close();
  await fleet?.stop();
  await redis?.stop();
  await standby?.destroy();
  await primary?.destroy();
});

interface Tally {
  acknowledged: string[];
  refused: number;
  /** Network-level failures and 5xx: the service not answering. */
  failed: string[];
  reads: number;
}

test('a PostgreSQL primary crash under booking load: fleet serve keeps answering, every acknowledged booking reaches the promoted database', {
  timeout: 240_000,
}, async () => {
  const secret = new TextEncoder().encode(SECRET);
  const ops = await mintToken(secret, { sub: 'olga', role: 'ops' });
  const list = await fetch(`${fleet.base}/v1/cities/blr/vehicles?limit=200`, {
    headers: { authorization: `Bearer ${ops}` },
  });
  assert.equal(list.status, 200, await list.clone().text());
  const vehicles = ((await list.json()) as { vehicles: { id: string }[] }).vehicles.map((v) => v.id);
  assert.ok(vehicles.length >= CLIENTS, `the demo fleet (${vehicles.length} vehicles)`);
  const { port } = receiver.address() as AddressInfo;
  const subscribed = await fetch(`${fleet.base}/v1/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ops}`, 'content-type': 'application/json' },
    body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, types: ['booking.confirmed'], cities: ['blr'] }),
  });
  assert.equal(subscribed.status, 201, await subscribed.clone().text());

  const tally: Tally = { acknowledged: [], refused: 0, failed: [], reads: 0 };
  let running = true;
  const start = Math.ceil((Date.now() + 40 * 24 * HOUR) / HOUR) * HOUR;
  const client = async (c: number) => {
    const token = await mintToken(secret, { sub: `cust-${c}`, role: 'customer' });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let k = 0; running; k++) {
      // Each client books its own vehicles, hour after hour: no two clients race for one slot.
      const vehicleId = vehicles[(c + CLIENTS * (k % 3)) % vehicles.length]!;
      const from = start + Math.floor(k / 3) * 2 * HOUR;
      try {
        const r = await fetch(`${fleet.base}/v1/bookings`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            vehicleId,
            from: new Date(from).toISOString(),
            to: new Date(from + HOUR).toISOString(),
          }),
        });
        const body = (await r.json()) as { id?: string; code?: string };
        if (r.status === 201 && body.id) tally.acknowledged.push(body.id);
        else if (r.status >= 500) tally.failed.push(`book ${r.status} ${body.code}`);
        else tally.refused++;
        const s = await fetch(
          `${fleet.base}/v1/cities/blr/availability?from=${new Date(from).toISOString()}&to=${new Date(from + HOUR).toISOString()}&limit=5`,
          { headers },
        );
        await s.arrayBuffer();
        if (s.status === 200) tally.reads++;
        else tally.failed.push(`search ${s.status}`);
      } catch (err) {
        tally.failed.push(`network: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  };
  const load = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));

  await sleep(3_000);
  const beforeCrash = tally.acknowledged.length;
  await primary.stopImmediate();
  await sleep(1_500);
  await pgPromote({ port: standby.port, dataDir: standby.dataDir, log: `${standby.dataDir}/../pg.log` });
  await sleep(8_000);
  running = false;
  await load;
  const afterCrash = tally.acknowledged.length - beforeCrash;
  console.log(
    `${tally.acknowledged.length} bookings acknowledged (${afterCrash} after the crash), ${tally.refused} refused, ${tally.reads} searches, ${tally.failed.length} failures`,
  );

  assert.equal(fleet.child.exitCode, null, `fleet serve is still running:\n${fleet.output().slice(-3000)}`);
  assert.deepEqual(tally.failed, [], 'no request failed at the network level or with a 5xx');
  assert.ok(afterCrash > CLIENTS, `bookings kept being acknowledged after the crash (${afterCrash})`);
  const health = await fetch(`${fleet.base}/healthz`);
  assert.equal(health.status, 200);

  // The sync drains into the promoted standby: every acknowledged booking is there.
  const promoted = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${standby.port}/fleet` });
  await promoted.connect();
  try {
    let missing = tally.acknowledged;
    const deadline = Date.now() + 60_000;
    while (missing.length && Date.now() < deadline) {
      const { rows } = await promoted.query<{ id: string }>('SELECT id FROM bookings WHERE id = ANY($1)', [missing]);
      const present = new Set(rows.map((r) => r.id));
      missing = missing.filter((id) => !present.has(id));
      if (missing.length) await sleep(500);
    }
    assert.deepEqual(missing, [], 'every acknowledged booking is in the promoted database');
  } finally {
    await promoted.end();
  }
  // The dispatcher lost its leader lock with the crashed primary, took it again on the promoted
  // one, and delivers what was booked after the crash.
  const last = tally.acknowledged.at(-1)!;
  const deadline = Date.now() + 60_000;
  while (!delivered.has(last) && Date.now() < deadline) await sleep(250);
  assert.ok(delivered.has(last), `the last booking's webhook arrived (${delivered.size} delivered)`);
  assert.equal(fleet.child.exitCode, null, 'fleet serve is still running after the drain');
});

/**
 * `fleet serve` started while its stores are away (Redis and PostgreSQL both down) waits for them,
 * saying so, and serves once they are back: it neither exits nor lingers half-started. And one
 * malformed WebSocket upgrade is answered as a problem, not the end of the process.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { startPgCluster, type PgCluster } from '../support/postgres.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { startServe, type ServedFleet } from '../support/serve.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let redis: RedisServer;
let pg: PgCluster;
let fleet: ServedFleet | undefined;

before(async () => {
  redis = await startRedis({ external: 'never' });
  pg = await startPgCluster();
});

after(async () => {
  await fleet?.stop();
  await redis?.stop();
  await pg?.destroy();
});

test('started with Redis and PostgreSQL down, fleet serve waits for them and then serves', {
  timeout: 180_000,
}, async () => {
  await redis.kill9();
  await pg.stopImmediate();
  const serving = startServe(
    {
      WEB_CONCURRENCY: '2',
      CITIES: 'blr',
      REDIS_URL: redis.url,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pg.port}/fleet`,
      JWT_SECRET: 'stores-away-secret-of-32-bytes-or-more',
    },
    ['--demo', '--vehicles-per-city', '10'],
  );
  // Both stores stay away for a while: the process waits, it does not exit.
  await sleep(6_000);
  await redis.restart();
  await sleep(3_000);
  await pg.start();
  fleet = await serving;
  assert.match(fleet.output(), /a store is unreachable; waiting for it/, 'it said what it waited for');
  const health = await fetch(`${fleet.base}/healthz`);
  assert.equal(health.status, 200);
  const ready = await fetch(`${fleet.base}/readyz`);
  assert.equal(ready.status, 200, await ready.clone().text());
});

test('a malformed WebSocket upgrade is refused on its socket; the process serves on', { timeout: 60_000 }, async () => {
  assert.ok(fleet, 'served by the first test');
  const { port } = new URL(fleet.base);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(
        'GET //[ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    );
    let got = '';
    socket.on('data', (d) => {
      got += d.toString();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 4\d\d /, answer);
  await sleep(500);
  for (let i = 0; i < 6; i++) {
    const r: Response = await fetch(`${fleet.base}/healthz`, { headers: { connection: 'close' } });
    assert.equal(r.status, 200);
  }
  assert.equal(fleet.child.exitCode, null);
});

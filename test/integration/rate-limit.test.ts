/**
 * Rate limits are per caller across every API process: two apps on one Redis share each caller's
 * budget (counted locally, added up in Redis every 50 ms), and a burst on one process is cut at
 * the limit exactly.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { buildApp, type App } from '../../src/api/app.ts';
import { authenticator, mintToken } from '../../src/api/auth.ts';
import { keys } from '../../src/redis/keys.ts';
import { CallerBudgets } from '../../src/services/caller-budgets.ts';
import { startRedis, type RedisServer } from '../support/redis.ts';
import { connect, newInventory, testCity } from '../support/engine.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = new TextEncoder().encode('test-secret-of-at-least-32-bytes-long!!');
const LIMITS = { customer: 10, host: 10, ops: 10, admin: 10 };
let server: RedisServer;
let redis: Redis;
const apps: App[] = [];
const connections: Redis[] = [];
const bases: string[] = [];

before(async () => {
  server = await startRedis();
  redis = connect(server.url);
  const inv = newInventory(redis, testCity());
  for (let i = 0; i < 2; i++) {
    // Each app its own Redis connection, as each API process has.
    const own = connect(server.url);
    connections.push(own);
    const app = await buildApp({
      inventory: inv,
      redis: own,
      authenticate: authenticator({ secret: SECRET }),
      rateLimits: LIMITS,
    });
    apps.push(app);
    bases.push(await app.listen({ port: 0, host: '127.0.0.1' }));
  }
});
after(async () => {
  for (const a of apps) await a.close();
  for (const c of connections) c.disconnect();
  redis.disconnect();
  await server.stop();
});

const get = (base: string, token: string) =>
  fetch(`${base}/v1/cities`, { headers: { authorization: `Bearer ${token}` } });

/** The caller's count in Redis: what every process has flushed so far. */
const shared = async (caller: string) => Number(await redis.get(keys.callerBudget(`customer:${caller}`)));

/** Polls until the caller's count in Redis reaches `n` (the processes flush every 50 ms). */
async function flushed(caller: string, n: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await shared(caller)) < n) {
    if (Date.now() > deadline)
      assert.fail(`${caller}: ${await shared(caller)} in Redis, not ${n}, after ${timeoutMs} ms`);
    await sleep(10);
  }
}

test('a burst on one process is cut at the limit exactly', async () => {
  const token = await mintToken(SECRET, { sub: 'burst', role: 'customer' });
  const statuses = await Promise.all(Array.from({ length: 25 }, () => get(bases[0]!, token).then((r) => r.status)));
  assert.equal(statuses.filter((s) => s === 200).length, 10);
  assert.equal(statuses.filter((s) => s === 429).length, 15);
});

test("two processes share a caller's budget; other callers keep theirs", async () => {
  const token = await mintToken(SECRET, { sub: 'shared', role: 'customer' });
  for (let i = 0; i < 6; i++) assert.equal((await get(bases[0]!, token)).status, 200);
  await flushed('shared', 6); // the first process's six are in Redis
  const second = [];
  for (let i = 0; i < 6; i++) second.push((await get(bases[1]!, token)).status);
  assert.deepEqual(second, [200, 200, 200, 200, 429, 429], 'the second process knows of the first six');
  const last = await get(bases[1]!, token);
  assert.ok(Number(last.headers.get('retry-after')) > 0);
  const other = await mintToken(SECRET, { sub: 'other', role: 'customer' });
  assert.equal((await get(bases[1]!, other)).status, 200);
  await flushed('shared', 12); // the counts reached Redis (fails if they do not)
});

test("one flush sends every caller counted meanwhile, each caller's count to its own key", async () => {
  const budgets = new CallerBudgets({ redis, flushMs: 20 });
  const callers = Array.from({ length: 40 }, (_, i) => `batch-${i}`);
  const key = (c: string) => `customer:${c}`;
  // A caller's first request of a window waits for the shared count: one call each.
  await Promise.all(callers.map((c) => budgets.take(key(c), 1, 1_000, 60_000)));
  await redis.config('RESETSTAT');
  // The next ones (within the process's share) are counted here and sent by the timer, together.
  await Promise.all(
    callers.flatMap((c, i) => Array.from({ length: 1 + (i % 3) }, () => budgets.take(key(c), 1, 1_000, 60_000))),
  );
  for (const [i, c] of callers.entries()) await flushed(c, 2 + (i % 3));
  const calls = Number(/cmdstat_fcall:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  assert.ok(calls > 0 && calls <= 5, `${calls} script calls for 40 callers' counts (one per flush expected)`);
  for (const [i, c] of callers.entries()) assert.equal(await shared(c), 2 + (i % 3), c);
  await budgets.close();
});

/**
 * Redis Cluster with a replica per master (issue 10): clients book in cities spread over three
 * shards while one master is killed with kill -9. Its replica is promoted; the cities of that
 * shard are served again; no acknowledged booking is lost (each write waited for its replica);
 * and the failover monitor schedules a verification for exactly the cities of the failed shard.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { CityCatalog } from '../../src/domain/cities.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { keys } from '../../src/redis/keys.ts';
import { configureReplication, connectRedis, type OpenedRedis } from '../../src/redis/topology.ts';
import { loadConfig } from '../../src/config.ts';
import { Inventory } from '../../src/services/inventory.ts';
import type { FailoverCause, VerificationReport } from '../../src/services/failover.ts';
import { FailoverMonitor } from '../../src/workers/failover-monitor.ts';
import { HOUR, SEDAN, futureHour, testCity } from '../support/engine.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let cluster: RedisCluster;
let opened: OpenedRedis;
const cities = Array.from({ length: 9 }, () => testCity());

before(async () => {
  cluster = await startRedisCluster(3, 1);
  const config = loadConfig({ REDIS_CLUSTER_NODES: cluster.nodes });
  opened = await configureReplication(connectRedis(config), config);
});
after(async () => {
  opened?.redis.disconnect();
  await cluster?.stop();
});

/** host:port of the master that owns `city`'s slot, as the cluster says now. */
async function ownerOf(redis: Cluster, city: string): Promise<string> {
  const slot = calculateSlot(keys.events(city));
  const slots = (await redis.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const range = slots.find(([a, b]) => slot >= a && slot <= b)!;
  return `${range[2][0]}:${range[2][1]}`;
}

test('a master killed: its replica takes over, its cities are served again, no acknowledged booking is lost', {
  timeout: 120_000,
}, async () => {
  const redis = opened.redis as Cluster;
  assert.equal(opened.mode, 'cluster');
  assert.equal(opened.syncReplicas, 1, 'every master has a replica: each write waits for it');
  const inv = new Inventory(redis, { cities: new CityCatalog(cities) });
  const vehicles = new Map<string, string[]>();
  for (const c of cities) {
    const list: string[] = [];
    for (let i = 0; i < 3; i++) list.push((await inv.createVehicle(c.id, { ...SEDAN })).vehicleId);
    vehicles.set(c.id, list);
  }
  const owners = new Map<string, string>();
  for (const c of cities) owners.set(c.id, await ownerOf(redis, c.id));
  const victim = [...owners.values()][0]!;
  const victimCities = cities.filter((c) => owners.get(c.id) === victim).map((c) => c.id);
  assert.ok(victimCities.length > 0 && victimCities.length < cities.length, 'the cities spread over several shards');

  const scheduled: { city: string; cause: FailoverCause }[] = [];
  const monitor = new FailoverMonitor(redis, new CityCatalog(cities), async (city, cause) => {
    scheduled.push({ city, cause });
    return { city, cause } as VerificationReport;
  });
  await monitor.check();

  const acknowledged: { id: string; city: string; at: number }[] = [];
  const refused = new Map<string, number>();
  let stop = false;
  const t = futureHour(HOUR);
  const client = async (n: number) => {
    for (let k = 0; !stop; k++) {
      const c = cities[(n + k) % cities.length]!;
      const list = vehicles.get(c.id)!;
      const from = t + Math.floor(k / list.length) * 2 * HOUR + n * 1_000 * HOUR;
      try {
        const b = await inv.book(
          { vehicleId: list[k % list.length]!, customerId: `c${n}`, from, to: from + HOUR },
          { idempotencyKey: `n${n}-k${k}`, actorId: `c${n}` },
        );
        acknowledged.push({ id: b.booking.id, city: c.id, at: Date.now() });
      } catch (err) {
        const code = err instanceof DomainError ? `${err.code} ${err.message.slice(0, 80)}` : (err as Error).message;
        refused.set(code, (refused.get(code) ?? 0) + 1);
      }
    }
  };
  const clients = Array.from({ length: 12 }, (_, n) => client(n));
  await sleep(1_500);

  const [host, port] = victim.split(':');
  const node = cluster.processes.find((p) => p.port === Number(port))!;
  const killedAt = Date.now();
  node.child.kill('SIGKILL');
  // Until the replica is promoted, the shard's cities wait (or answer UNAVAILABLE after the bound).
  let promotedAt = 0;
  for (let i = 0; !promotedAt; i++) {
    assert.ok(i < 300, 'the replica was promoted');
    await sleep(100);
    const probe = new Redis(cluster.processes.find((p) => p.port !== Number(port))!.port, host ?? '127.0.0.1');
    try {
      const owner = await ownerOf(probe as unknown as Cluster, victimCities[0]!);
      if (owner !== victim) promotedAt = Date.now();
    } finally {
      probe.disconnect();
    }
  }
  const served = () => acknowledged.filter((a) => victimCities.includes(a.city) && a.at > promotedAt).length;
  for (let i = 0; served() < 20; i++) {
    assert.ok(
      i < 200,
      `the failed shard's cities are served again (${served()}); refused ${JSON.stringify(Object.fromEntries(refused))}`,
    );
    await sleep(100);
  }
  const firstAgain = acknowledged.find((a) => victimCities.includes(a.city) && a.at > killedAt)!.at;
  stop = true;
  await Promise.all(clients);
  console.log(
    `killed ${victim}; promoted after ${promotedAt - killedAt} ms; its cities booked again after ${firstAgain - killedAt} ms; ${acknowledged.length} acknowledged; refused ${JSON.stringify(Object.fromEntries(refused))}`,
  );

  const missing: string[] = [];
  for (const a of acknowledged) {
    const entry = await inv.getEntry(a.id, 'booking').then(
      (r) => r.entry,
      () => undefined,
    );
    if (entry?.status !== 'confirmed') missing.push(a.id);
  }
  assert.deepEqual(missing, [], 'every acknowledged booking is there after the promotion');

  await monitor.check();
  await monitor.idle();
  assert.deepEqual(
    scheduled.map((s) => s.city).sort(),
    [...victimCities].sort(),
    "only the failed shard's cities are verified",
  );
  assert.ok(scheduled.every((s) => s.cause === 'redis-cluster'));
});

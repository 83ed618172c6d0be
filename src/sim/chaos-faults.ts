/** The faults a chaos run injects, each with the repair a supervisor or an operator would make. */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import {
  asPostgres,
  baseBackup,
  pgPromote,
  pgStart,
  pgStop,
  startRedisNode,
  type HaLayout,
  type PgNodeLayout,
  type RedisNodeLayout,
} from '../ha/local.ts';
import type { Fault } from './chaos-types.ts';
import { pick } from '../domain/random.ts';
import type { Supervisor } from './chaos-supervisor.ts';

async function sentinelPrimary(layout: HaLayout): Promise<RedisNodeLayout> {
  for (const s of layout.redis.sentinels) {
    const c = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
    c.on('error', () => {});
    try {
      await c.connect();
      const [, port] = (await c.call('SENTINEL', 'get-master-addr-by-name', layout.redis.master)) as [string, string];
      const node = layout.redis.nodes.find((n) => n.port === Number(port));
      if (node) return node;
    } catch {
      // the next Sentinel
    } finally {
      c.disconnect();
    }
  }
  throw new Error('no Sentinel names a primary');
}

async function waitForPromotion(layout: HaLayout, old: RedisNodeLayout, timeoutMs = 30_000): Promise<RedisNodeLayout> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await sentinelPrimary(layout).catch(() => old);
    if (p.port !== old.port) return p;
    if (Date.now() > deadline) throw new Error('no Redis failover');
    await sleep(100);
  }
}

/** A new standby from the (new) primary, in place of the one that died. */
async function rebuildStandby(primary: PgNodeLayout, standby: PgNodeLayout): Promise<void> {
  await pgStop(standby, 'immediate');
  await asPostgres('rm', ['-rf', standby.dataDir]);
  await baseBackup(primary.port, standby.dataDir);
  await pgStart(standby, '-c hot_standby=on');
}

/** Sends a signal to a node of the topology (one this run started: its pid is known). */
function signal(node: RedisNodeLayout, sig: NodeJS.Signals): void {
  if (!node.pid) throw new Error(`Redis :${node.port} has no known process`);
  process.kill(node.pid, sig);
}

/**
 * Injects one fault and has the supervisor repair what was killed. Returns what it did. `strike` is
 * told the moment the fault strikes (and the Redis node it strikes), after the look-ups before it.
 */
export async function inject(
  kind: Fault,
  layout: HaLayout,
  sup: Supervisor,
  apiPids: () => number[],
  rand: () => number,
  strike: (port?: number) => void = () => {},
): Promise<string> {
  switch (kind) {
    case 'redis-primary-kill': {
      const p = await sentinelPrimary(layout);
      strike(p.port);
      signal(p, 'SIGKILL');
      const promoted = await waitForPromotion(layout, p);
      await startRedisNode(p); // back as a primary: the Sentinels turn it into a replica
      return `Redis primary :${p.port} killed; :${promoted.port} promoted; :${p.port} restarted`;
    }
    case 'redis-replica-kill': {
      const p = await sentinelPrimary(layout);
      const replicas = layout.redis.nodes.filter((n) => n.port !== p.port);
      const r = pick(replicas, rand);
      strike(r.port);
      signal(r, 'SIGKILL');
      await sleep(2_000);
      await startRedisNode(r, p.port);
      return `Redis replica :${r.port} killed and restarted after 2 s`;
    }
    case 'redis-primary-stop': {
      const p = await sentinelPrimary(layout);
      strike(p.port);
      signal(p, 'SIGSTOP');
      await sleep(5_000);
      signal(p, 'SIGCONT');
      return `Redis primary :${p.port} stopped (SIGSTOP) for 5 s`;
    }
    case 'postgres-primary-crash': {
      const pg = layout.pg;
      if (!pg) throw new Error('the topology has no PostgreSQL to crash');
      strike();
      await pgStop(pg.primary, 'immediate');
      await pgPromote(pg.standby);
      const [oldPrimary, promoted] = [pg.primary, pg.standby];
      pg.primary = promoted;
      pg.standby = oldPrimary;
      await rebuildStandby(pg.primary, pg.standby);
      return `PostgreSQL primary :${oldPrimary.port} crashed; standby :${promoted.port} promoted; a new standby on :${oldPrimary.port}`;
    }
    case 'api-process-kill': {
      const pids = apiPids();
      const pid = pids[Math.floor(rand() * pids.length)];
      if (!pid) return 'no API process known yet';
      strike();
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return `API process ${pid} already gone`;
      }
      return `API process ${pid} killed (the service starts another)`;
    }
    case 'sync-worker-kill': {
      strike();
      await sup.killWorker();
      return 'sync worker killed; restarted after 1 s';
    }
  }
}

/**
 * This service as `npm start` runs it (`fleet serve --demo`): its real process tree, every part
 * on — the primary process with the sync, the resolver, the webhook dispatcher, the sweeper and
 * the failover monitor; one API process per core (each with its read model and live hub). Started
 * from outside, as users start it (test/support/serve.ts), on the scenario's private redis-server
 * and a fresh database, with the stores already seeded (the demo seeds only empty cities).
 *
 * One setting differs from what ships: the per-caller rate limits are raised out of the way (they
 * are still counted on every request), since the bench's callers send far more than 120 a minute.
 */
import path from 'node:path';
import type { RequestSpec } from 'autocannon';
import { childrenOf, type ProfileSummary } from '../lib/cpu.ts';
import type { Redis } from 'ioredis';
import { REFERENCE_CITIES } from '../../src/domain/cities.ts';
import { startServe } from '../../test/support/serve.ts';
import { cityLag } from '../../src/workers/sync.ts';
import { C, CONNECTIONS, QUICK, SECRET, cleanups, summarized, underProfile } from './harness.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const UNLIMITED = '1000000000';

export interface ServedFleet {
  url: string;
  /** The processes of the tree, for CPU accounting: `server` (the primary) and `server:<comm>:<pid>` (what it started). */
  pids(): Record<string, number>;
  stop(): Promise<void>;
}

export async function served(redisUrl: string, databaseUrl: string, nodeArgs: string[] = []): Promise<ServedFleet> {
  const fleet = await startServe(
    {
      REDIS_URL: redisUrl,
      DATABASE_URL: databaseUrl,
      JWT_SECRET: SECRET,
      RATE_LIMIT_CUSTOMER: UNLIMITED,
      RATE_LIMIT_HOST: UNLIMITED,
      RATE_LIMIT_OPS: UNLIMITED,
      RATE_LIMIT_ADMIN: UNLIMITED,
    },
    // A quick run seeds the demo's other cities small, to start in seconds.
    QUICK ? ['--demo', '--vehicles-per-city', '5'] : ['--demo'],
    undefined,
    nodeArgs,
  );
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await fleet.stop();
  };
  cleanups.push(stop);
  const primary = fleet.child.pid ?? 0;
  return {
    url: fleet.base,
    pids: () => ({
      server: primary,
      ...Object.fromEntries(childrenOf(primary).map((c) => [`server:${c.comm}:${c.pid}`, c.pid])),
    }),
    stop,
  };
}

/** Waits until the sync has projected every event (the seed's own, say): a measured run starts from no backlog. */
export async function drained(
  redis: Redis,
  cities: readonly string[] = REFERENCE_CITIES.map((c) => c.id),
  timeoutMs = 180_000,
): Promise<boolean> {
  const t0 = Date.now();
  for (;;) {
    let behind = 0;
    for (const city of cities) behind += (await cityLag(redis, city)).eventsBehind;
    if (behind === 0) return true;
    if (Date.now() - t0 > timeoutMs) return false;
    await sleep(200);
  }
}

export interface ServedProfiles {
  primary?: ProfileSummary;
  api?: ProfileSummary;
}

/**
 * `npm start`'s tree under `request` with `--cpu-prof` (its API processes inherit the flag): the
 * primary's profile (the sync, resolver, webhook dispatcher, sweeper, monitor) and one API
 * process's, summarised, and as flame graphs in docs/profiles/served-<name>-{primary,api}.svg.
 */
export async function profileServed(
  redisUrl: string,
  databaseUrl: string,
  request: RequestSpec,
  name: string,
): Promise<ServedProfiles | undefined> {
  let primaryPid = 0;
  return underProfile(
    async (nodeArgs) => {
      const fleet = await served(redisUrl, databaseUrl, nodeArgs);
      primaryPid = fleet.pids().server ?? 0;
      return fleet;
    },
    request,
    async (files) => {
      const primaryFile = files.find((f) => path.basename(f).includes(`.${primaryPid}.`));
      const apiFile = files.find((f) => f !== primaryFile);
      const out: ServedProfiles = {};
      for (const [role, file] of [
        ['primary', primaryFile],
        ['api', apiFile],
      ] as const) {
        if (!file) continue;
        out[role] = await summarized(file, {
          file: `docs/profiles/served-${name}-${role}.svg`,
          title: `${name}s as npm start runs it, ${CONNECTIONS} clients, ${C.profileSeconds} s: the ${role === 'primary' ? 'primary process (sync, resolver, webhooks, sweeper, monitor)' : 'API process (one of two)'}`,
        });
      }
      return out;
    },
  );
}

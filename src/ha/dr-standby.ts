/**
 * A region's DR standby on this machine (the drill, the region tests): a streaming replica of the
 * region's PostgreSQL primary, in "another region" — it reaches the primary through a delay proxy,
 * so replication pays the inter-region round trip. With DR_ACK=remote the primary names it in
 * `synchronous_standby_names` and the sync's commits wait until it has applied them.
 */
import { writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { setSynchronousStandbyNames, standbyState } from '../pg/settings.ts';
import { asPostgres, PG_BIN, pgStart, type PgNodeLayout } from './local.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/** The name the DR standby streams under (`application_name`), which `synchronous_standby_names` names. */
export const DR_STANDBY_NAME = 'dr_standby';

/** pg_basebackup of the primary through the proxy at `viaPort` into `dataDir`, set to stream under DR_STANDBY_NAME. */
export async function makeDrStandby(viaPort: number, dataDir: string): Promise<void> {
  await asPostgres(`${PG_BIN}/pg_basebackup`, [
    '-h',
    '127.0.0.1',
    '-p',
    String(viaPort),
    '-U',
    'postgres',
    '-D',
    dataDir,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  // The last setting wins: the connection -R wrote, with the name the primary waits for.
  await appendFile(
    path.join(dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = 'host=127.0.0.1 port=${viaPort} user=postgres application_name=${DR_STANDBY_NAME}'\n`,
  );
}

/** A DR standby made and started as a hot standby on `port`. */
export async function startDrStandby(o: {
  viaPort: number;
  dataDir: string;
  port: number;
  log: string;
}): Promise<PgNodeLayout> {
  await makeDrStandby(o.viaPort, o.dataDir);
  const node = { port: o.port, dataDir: o.dataDir, log: o.log };
  await pgStart(node, '-c hot_standby=on');
  return node;
}

/**
 * On the primary: make the DR standby synchronous (DR_ACK=remote) or not (local). Only the sync's
 * transactions ask for `remote_apply`; other commits wait for its flush while it is synchronous.
 */
export async function setSynchronousDrStandby(primaryUrl: string, synchronous: boolean): Promise<void> {
  await setSynchronousStandbyNames(primaryUrl, synchronous ? DR_STANDBY_NAME : '');
}

/** Waits until the primary sees the DR standby streaming (and, when asked, as its synchronous standby). */
export async function waitForDrStandby(primaryUrl: string, synchronous: boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const state = await standbyState(primaryUrl, DR_STANDBY_NAME);
      if (state && (!synchronous || state.syncState === 'sync')) return;
    } catch {
      // the primary is not up yet: asked again until the deadline
    }
    if (Date.now() > deadline) throw new Error(`the DR standby is not streaming${synchronous ? ' synchronously' : ''}`);
    await sleep(200);
  }
}

/** Writes a regions document to `file` (the drill and the tests). */
export async function writeRegionsFile(
  file: string,
  regions: Record<
    string,
    { cities: string[]; url: string; standby?: { region: string; url: string; database?: string } }
  >,
): Promise<void> {
  await writeFile(file, JSON.stringify({ regions }, null, 2));
}

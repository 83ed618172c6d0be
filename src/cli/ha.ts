/**
 * `fleet ha up | down | env`: a highly available topology on this machine (src/ha/local.ts) —
 * Redis primary + 2 replicas + 3 Sentinels, PostgreSQL primary + streaming standby — and the
 * environment that runs the service against it.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { haDown, haEnvironment, haUp, pgPromote, readLayout } from '../ha/local.ts';

export const DEFAULT_HA_DIR = path.join(tmpdir(), 'fleet-ha');

const exports_ = (env: Record<string, string | undefined>) =>
  Object.entries(env)
    .flatMap(([k, v]) => (v === undefined ? [] : [`export ${k}='${v}'`]))
    .join('\n');

export async function haCommand(sub: string | undefined, opts: { dir?: string; basePort?: number }): Promise<number> {
  const dir = opts.dir ?? DEFAULT_HA_DIR;
  switch (sub) {
    case 'up': {
      const layout = await haUp({ dir, basePort: opts.basePort ?? 6391 });
      console.error(
        `Redis primary :${layout.redis.nodes[0]?.port}, replicas ${layout.redis.nodes
          .slice(1)
          .map((n) => `:${n.port}`)
          .join(' ')}, ` +
          `Sentinels ${layout.redis.sentinels.map((n) => `:${n.port}`).join(' ')} (AOF always, min-replicas-to-write 1); ` +
          `PostgreSQL primary :${layout.pg?.primary.port}, standby :${layout.pg?.standby.port}. Layout: ${path.join(layout.dir, 'ha.json')}\n` +
          'Run the service against it with:\n',
      );
      console.log(exports_(haEnvironment(layout)));
      console.error('\n(eval "$(npx fleet ha env)" in another shell; npx fleet ha down stops it all)');
      return 0;
    }
    case 'env':
      console.log(exports_(haEnvironment(await readLayout(dir))));
      return 0;
    case 'promote-pg': {
      // What a PostgreSQL HA manager (Patroni, pg_auto_failover) does when the primary is gone.
      const layout = await readLayout(dir);
      if (!layout.pg) throw new Error('this topology has no PostgreSQL');
      await pgPromote(layout.pg.standby);
      console.error(`standby :${layout.pg.standby.port} promoted`);
      return 0;
    }
    case 'down':
      await haDown(dir);
      console.error(`stopped; ${dir} removed`);
      return 0;
    default:
      console.error('fleet ha up | env | promote-pg | down  [--dir D] [--base-port P]');
      return 1;
  }
}

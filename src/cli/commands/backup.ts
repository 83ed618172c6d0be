/**
 * `fleet backup --dir D`: a base backup of the PostgreSQL primary (DATABASE_URL) into D.
 * `fleet restore --to <ISO time> --dir NEW --backups D --archive WAL [--port P]`: a fresh cluster
 * at NEW restored to that moment from the latest base backup before it and the WAL archive; then
 * `DATABASE_URL=<it> fleet rebuild --city X` makes Redis from it (docs/regions.md).
 */
import { backupBefore, restoreToTime, takeBaseBackup } from '../../ha/backup.ts';
import { freePort } from '../../ha/local.ts';
import { DomainError } from '../../domain/errors.ts';
import { need, print, time, type Command } from '../context.ts';

export const backupCommand: Command = {
  name: 'backup',
  needsStore: false,
  async run({ opt, config }) {
    print(await takeBaseBackup(config.DATABASE_URL, need('--dir', opt.dir)));
  },
};

export const restoreCommand: Command = {
  name: 'restore',
  needsStore: false,
  async run({ opt }) {
    const target = new Date(time('to', opt.to));
    const backups = need('--backups', opt.backups);
    const archive = need('--archive', opt.archive);
    if (opt.port !== undefined && !/^\d{2,5}$/.test(opt.port))
      throw new DomainError('VALIDATION', '--port: a TCP port', { field: 'port' });
    await backupBefore(backups, target); // refuse before touching anything
    const port = opt.port ? Number(opt.port) : await freePort();
    const { backup, node } = await restoreToTime({ backups, archive, target, dataDir: need('--dir', opt.dir), port });
    print({
      restoredTo: target.toISOString(),
      from: backup.name,
      dataDir: node.dataDir,
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/fleet`,
      next: `DATABASE_URL=postgres://postgres@127.0.0.1:${port}/fleet npx fleet rebuild --city <city>`,
    });
  },
};

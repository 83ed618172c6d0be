/**
 * Every `fleet` command, one per file; `main.ts` dispatches by name. Each loads on demand, so a
 * short command (a worker a crash test restarts twenty times) does not pay for the API's imports.
 */
import type { Command } from '../context.ts';

export const COMMANDS: ReadonlyMap<string, () => Promise<Command>> = new Map<string, () => Promise<Command>>([
  ['accept', async () => (await import('./accept.ts')).acceptCommand],
  ['backup', async () => (await import('./backup.ts')).backupCommand],
  ['block', async () => (await import('./block.ts')).blockCommand],
  ['book', async () => (await import('./book.ts')).bookCommand],
  ['cancel', async () => (await import('./cancel.ts')).cancelCommand],
  ['chaos', async () => (await import('./chaos.ts')).chaosCommand],
  ['complete', async () => (await import('./complete.ts')).completeCommand],
  ['counters', async () => (await import('./counters.ts')).countersCommand],
  ['decline', async () => (await import('./decline.ts')).declineCommand],
  ['delist', async () => (await import('./delist.ts')).delistCommand],
  ['dr', async () => (await import('./dr.ts')).drCommand],
  ['durability', async () => (await import('./durability.ts')).durabilityCommand],
  ['events', async () => (await import('./events.ts')).eventsCommand],
  ['extend', async () => (await import('./extend.ts')).extendCommand],
  ['ha', async () => (await import('./ha.ts')).haCliCommand],
  ['hold', async () => (await import('./hold.ts')).holdCommand],
  ['lag', async () => (await import('./lag.ts')).lagCommand],
  ['migrate', async () => (await import('./migrate.ts')).migrateCommand],
  ['offers', async () => (await import('./offers.ts')).offersCommand],
  ['rebuild', async () => (await import('./rebuild.ts')).rebuildCommand],
  ['reconcile', async () => (await import('./reconcile.ts')).reconcileCommand],
  ['restore', async () => (await import('./backup.ts')).restoreCommand],
  ['release', async () => (await import('./release.ts')).releaseCommand],
  ['relist', async () => (await import('./relist.ts')).relistCommand],
  ['resolve', async () => (await import('./resolve.ts')).resolveCommand],
  ['seed', async () => (await import('./seed.ts')).seedCommand],
  ['serve', async () => (await import('./serve.ts')).serveCommand],
  ['simulate', async () => (await import('./simulate.ts')).simulateCommand],
  ['start', async () => (await import('./start.ts')).startCommand],
  ['sweep', async () => (await import('./sweep.ts')).sweepCommand],
  ['token', async () => (await import('./token.ts')).tokenCommand],
  ['trim', async () => (await import('./trim.ts')).trimCommand],
  ['unblock', async () => (await import('./unblock.ts')).unblockCommand],
  ['validate', async () => (await import('./validate.ts')).validateCommand],
  ['vehicle', async () => (await import('./vehicle.ts')).vehicleCommand],
  ['worker', async () => (await import('./worker.ts')).workerCommand],
]);

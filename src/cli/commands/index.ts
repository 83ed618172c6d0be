/** Every `fleet` command, one per file; `main.ts` dispatches by name. */
import type { Command } from '../context.ts';
import { acceptCommand } from './accept.ts';
import { blockCommand } from './block.ts';
import { bookCommand } from './book.ts';
import { cancelCommand } from './cancel.ts';
import { chaosCommand } from './chaos.ts';
import { completeCommand } from './complete.ts';
import { countersCommand } from './counters.ts';
import { declineCommand } from './decline.ts';
import { delistCommand } from './delist.ts';
import { durabilityCommand } from './durability.ts';
import { eventsCommand } from './events.ts';
import { extendCommand } from './extend.ts';
import { haCliCommand } from './ha.ts';
import { holdCommand } from './hold.ts';
import { lagCommand } from './lag.ts';
import { migrateCommand } from './migrate.ts';
import { offersCommand } from './offers.ts';
import { rebuildCommand } from './rebuild.ts';
import { reconcileCommand } from './reconcile.ts';
import { relistCommand } from './relist.ts';
import { releaseCommand } from './release.ts';
import { resolveCommand } from './resolve.ts';
import { seedCommand } from './seed.ts';
import { serveCommand } from './serve.ts';
import { simulateCommand } from './simulate.ts';
import { startCommand } from './start.ts';
import { sweepCommand } from './sweep.ts';
import { tokenCommand } from './token.ts';
import { trimCommand } from './trim.ts';
import { unblockCommand } from './unblock.ts';
import { validateCommand } from './validate.ts';
import { vehicleCommand } from './vehicle.ts';
import { workerCommand } from './worker.ts';

export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    serveCommand,
    workerCommand,
    tokenCommand,
    migrateCommand,
    lagCommand,
    rebuildCommand,
    reconcileCommand,
    seedCommand,
    durabilityCommand,
    sweepCommand,
    trimCommand,
    vehicleCommand,
    countersCommand,
    eventsCommand,
    holdCommand,
    bookCommand,
    releaseCommand,
    cancelCommand,
    startCommand,
    completeCommand,
    extendCommand,
    blockCommand,
    unblockCommand,
    delistCommand,
    relistCommand,
    offersCommand,
    acceptCommand,
    declineCommand,
    resolveCommand,
    validateCommand,
    simulateCommand,
    chaosCommand,
    haCliCommand,
  ].map((c) => [c.name, c]),
);

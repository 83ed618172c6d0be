/**
 * What every command gets (the configuration, the stores, the inventory, the parsed command
 * line) and the small helpers they share to read it.
 */
import type { Config } from '../config.ts';
import { DomainError } from '../domain/errors.ts';
import type { RedisConnection } from '../redis/scripts.ts';
import type { CommandOptions, Inventory } from '../services/inventory.ts';
import type { RegionMap } from '../services/regions.ts';
import type { Options } from './args.ts';

export interface CliContext {
  command: string;
  /** The first positional argument after the command (an id, or `up`/`down` for `ha`). */
  arg: string | undefined;
  opt: Options;
  config: Config;
  redis: RedisConnection;
  inventory: Inventory;
  /** The regions (docs/regions.md): one implicit region without REGIONS_FILE. */
  regions: RegionMap;
  /** How this process reaches Redis (for /readyz), once configured. */
  redisTopology?: { mode: string; syncReplicas: number };
  /** `--idempotency-key K`, scoped to the CLI as its caller. */
  idem: CommandOptions;
}

export interface Command {
  name: string;
  /** False: the command opens no store of its own (a token, the simulator, the HA topology). */
  needsStore?: boolean;
  /** True: a long-running process that waits for its stores at start-up instead of failing (serve, worker). */
  waitsForStores?: boolean;
  /** The exit code (0 when nothing is returned). */
  run(ctx: CliContext): Promise<number | void>;
}

export const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));

/** An instant: ISO 8601 or epoch ms. */
export function time(name: string, v: string | undefined): number {
  if (v === undefined) throw new DomainError('VALIDATION', `--${name} is required`, { field: name });
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t))
    throw new DomainError('VALIDATION', `--${name} must be ISO 8601 or epoch ms`, { field: name });
  return t;
}

/** `60s`, `2m`, `500ms` or plain milliseconds. */
export function duration(v: string): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(v);
  if (!m) throw new DomainError('VALIDATION', '--duration is like 60s, 2m or 500ms', { field: 'duration' });
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 's' || m[2] === undefined ? 1_000 : 1);
}

export function need(name: string, v: string | undefined): string {
  if (!v) throw new DomainError('VALIDATION', `${name} is required`, { field: name });
  return v;
}

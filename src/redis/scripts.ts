/**
 * Loads `lua/*.lua` at start-up into one Redis Functions library: the shared core
 * (`lua/includes/*.lua`) once, then each script as a function named by its file name and the
 * library's hash (`book_<hash>`), loaded on each server once (FUNCTION LOAD) and called with
 * FCALL. An EVAL body would run the core's definitions on every call, on the server's single
 * thread; a function runs only its own body (docs/engine.md, "Scripts as Redis functions").
 * The hash names the library by its content: two versions of the service side by side (a rolling
 * deploy) each call their own. Error replies of the form "CODE {json}" become DomainErrors;
 * anything else is rethrown as is.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { DomainError, isErrorCode, messageOf } from '../domain/errors.ts';
import { describeInterval } from '../domain/calendar.ts';
import { defaults } from '../config.ts';
import { metrics } from '../metrics.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { contextArgument, type CallContext } from './call-context.ts';
import { inSpan } from '../telemetry/spans.ts';

export type RedisConnection = Redis | Cluster;

export const SCRIPT_NAMES = [
  'upsert_vehicle',
  'set_listing',
  'place_hold',
  'release_hold',
  'book',
  'cancel_booking',
  'start_trip',
  'complete_trip',
  'extend_booking',
  'place_block',
  'remove_block',
  'expire_holds',
  'vehicle_state',
  'verify_available',
  'restore_vehicle',
  'make_offers',
  'accept_offer',
  'close_offers',
  'mark_conflicted',
  'trim_calendar',
  'restore_entries',
  'record_system_event',
  'replication_probe',
  'rate_limit_add',
  'reserve_hold',
  'release_hold_reservation',
  'restore_offer_record',
  'unschedule_lapse',
  'wipe_city',
  'trim_stream',
  'hold_standby',
  'clear_at_risk',
  'switch_to_standby',
  'place_reserve',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const READ_ONLY: ReadonlySet<ScriptName> = new Set(['vehicle_state', 'verify_available']);
/** Writes that are not marketplace state: acknowledged without waiting for replicas. */
const NO_WAIT: ReadonlySet<ScriptName> = new Set(['replication_probe', 'rate_limit_add', 'trim_stream']);
/** Scripts that append no event: the call context would only cost a JSON encode and decode. */
const NO_EVENTS: ReadonlySet<ScriptName> = new Set([
  ...READ_ONLY,
  ...NO_WAIT,
  'trim_calendar',
  'unschedule_lapse',
  'reserve_hold',
  'release_hold_reservation',
  'restore_offer_record',
  'wipe_city',
]);
/** The shared core every script opens with, in this order (each part uses the locals of those before). */
const CORE_PARTS = ['engine.lua', 'calendar.lua', 'changes.lua', 'pricing.lua'] as const;
const LUA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lua');

/** The scripts' library: its FUNCTION LOAD source and each script's function name. */
export interface ScriptLibrary {
  code: string;
  functions: ReadonlyMap<ScriptName, string>;
}

/** The shared core as every script sees it: the includes, in order (tests evaluate it too). */
export function scriptCore(dir = LUA_DIR): string {
  return CORE_PARTS.map((f) => readFileSync(path.join(dir, 'includes', f), 'utf8')).join('\n');
}

export function loadScriptLibrary(dir = LUA_DIR): ScriptLibrary {
  const core = withSmallCalendar(scriptCore(dir), smallCalendarEntries);
  const files = new Set(
    readdirSync(dir)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => f.slice(0, -4)),
  );
  const bodies = SCRIPT_NAMES.map((name) => {
    if (!files.has(name)) throw new Error(`missing Lua script ${name}.lua in ${dir}`);
    return { name, body: readFileSync(path.join(dir, `${name}.lua`), 'utf8') };
  });
  const hash = createHash('sha1')
    .update(core)
    .update(JSON.stringify(bodies))
    .update(JSON.stringify([...READ_ONLY]))
    .digest('hex')
    .slice(0, 12);
  const functions = new Map<ScriptName, string>();
  const registered = bodies.map(({ name, body }) => {
    const fn = `${name}_${hash}`;
    functions.set(name, fn);
    // The body is the function's: its KEYS and ARGV are the core's, set by begin_call.
    const flags = READ_ONLY.has(name) ? "'no-writes'" : '';
    return `redis.register_function{function_name='${fn}', flags={${flags}}, callback=function(keys, args)\nbegin_call(keys, args)\n${body}\nend}`;
  });
  return { functions, code: `#!lua name=fleet_${hash}\n${core}\n${registered.join('\n')}\n` };
}

const SMALL_CALENDAR = 2;
const SMALL_CALENDAR_LINE = new RegExp(`^local SMALL_CALENDAR = ${SMALL_CALENDAR}$`, 'm');
let smallCalendarEntries = SMALL_CALENDAR;

function withSmallCalendar(core: string, entries: number): string {
  if (!SMALL_CALENDAR_LINE.test(core))
    throw new Error(`includes/calendar.lua lost its \`local SMALL_CALENDAR = ${SMALL_CALENDAR}\` line`);
  return entries === SMALL_CALENDAR ? core : core.replace(SMALL_CALENDAR_LINE, `local SMALL_CALENDAR = ${entries}`);
}

/**
 * Tests only: calendars of at most `entries` entries are read whole (engine.lua, "Calendar");
 * 0 sends every command through the calendar index, so a test exercises it with few entries.
 * Applies to connections registered after the call.
 */
export function setSmallCalendarForTests(entries: number): void {
  if (!Number.isSafeInteger(entries) || entries < 0) throw new Error(`small calendar ${entries}: a whole number >= 0`);
  smallCalendarEntries = entries;
  cachedLibrary = undefined;
}

const clockOffsets = new WeakMap<object, number>();

/**
 * Shifts the scripts' clock on `conn` by `offsetMs` (src/redis/clock.ts, tests only): every script
 * run on it gets `clock:<offset>` as its last argument, and sees Redis's TIME + offset as now.
 */
export function setClockOffset(conn: RedisConnection, offsetMs: number): void {
  if (!Number.isSafeInteger(offsetMs)) throw new Error(`clock offset ${offsetMs} is not an integer`);
  clockOffsets.set(conn, offsetMs);
}

/**
 * The script's arguments, then the call context (who acts, the request, the trace:
 * redis/call-context.ts) and a test's clock offset: the scripts' core takes both off ARGV, clock
 * first.
 */
function withClock(
  conn: RedisConnection,
  name: ScriptName,
  args: readonly (string | number)[],
  context: CallContext | undefined,
): readonly (string | number)[] {
  const offset = clockOffsets.get(conn);
  const ctx = NO_EVENTS.has(name) ? undefined : contextArgument(name, context);
  if (!offset && !ctx) return args;
  return [...args, ...(ctx ? [ctx] : []), ...(offset ? [`clock:${offset}`] : [])];
}

let cachedLibrary: ScriptLibrary | undefined;
const scriptLibrary = () => (cachedLibrary ??= loadScriptLibrary());

/** Per connection: the library as loaded on its server(s) (settled), or being loaded. */
const loaded = new WeakMap<object, { library: ScriptLibrary; ready: Promise<void>; settled: boolean }>();
const FUNCTION_MISSING = /Function not found|Library .* not found/i;

/**
 * Loads the scripts' library on the connection's server — every primary of a Cluster — once per
 * connection (a server that has it already answers "already exists"); replicas get it by
 * replication. `callScript` waits for it. A connection whose server lost the library (restarted
 * without persistence) loads it again on the next call.
 */
export function loadScripts(conn: RedisConnection): Promise<void> {
  const library = scriptLibrary();
  const known = loaded.get(conn);
  if (known && known.library === library) return known.ready;
  // A Cluster's primaries as the client knows them; none yet (still connecting): the cluster
  // connection itself, which sends the load to one of them — a primary that still lacks the library
  // answers "Function not found" and the retry loads it on every primary known by then.
  const masters = 'nodes' in conn ? conn.nodes('master') : [];
  const servers: { call(...args: string[]): Promise<unknown> }[] = masters.length > 0 ? masters : [conn];
  const entry = {
    library,
    settled: false,
    ready: Promise.all(
      servers.map((server) =>
        server.call('FUNCTION', 'LOAD', library.code).catch((err: unknown) => {
          if (!/already exists/i.test(messageOf(err))) throw err;
        }),
      ),
    ).then(() => {
      entry.settled = true;
    }),
  };
  entry.ready.catch(() => {
    if (loaded.get(conn) === entry) loaded.delete(conn);
  });
  loaded.set(conn, entry);
  return entry.ready;
}

/** Whether the library is loaded on the connection's server(s): a call is then sent at once. */
export function scriptsLoaded(conn: RedisConnection): boolean {
  const entry = loaded.get(conn);
  return entry !== undefined && entry.settled && entry.library === scriptLibrary();
}

/**
 * Calls a script's function on `conn`. Once the library is loaded the command is sent at once, in
 * the order of the calls (the replication probe relies on it: its WAIT follows it); `load: false`
 * (a replica, which cannot load) sends it without loading.
 */
export function callScript(
  conn: RedisConnection,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
  o?: { load: false },
): Promise<unknown> {
  const library = scriptLibrary();
  const fn = library.functions.get(name);
  if (!fn) throw new Error(`script ${name} is not in the library`);
  if (!o && !scriptsLoaded(conn)) return loadScripts(conn).then(() => sendFunction(conn, name, fn, keys, args));
  return sendFunction(conn, name, fn, keys, args);
}

function sendFunction(
  conn: RedisConnection,
  name: ScriptName,
  fn: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  return READ_ONLY.has(name)
    ? conn.fcall_ro(fn, keys.length, ...keys, ...args)
    : conn.fcall(fn, keys.length, ...keys, ...args);
}

/** The connection's server lost the library (it answered "Function not found"): the next call loads it. */
function forgetScripts(conn: RedisConnection): void {
  loaded.delete(conn);
}

/**
 * JSON written by a script (a reply, a calendar entry, an offer record), typed as the script's
 * header documents it. The one cast of script output: the scripts are this service's own code and
 * their headers the contract, so what they wrote is not validated a second time.
 */
export function fromScript<T>(json: unknown): T {
  return JSON.parse(String(json)) as T;
}

/** A command script's reply, `[json, replayed]` (engine.lua's `reply`). */
export function commandReply<T>(reply: unknown): { out: T; replayed: boolean } {
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error('a command script answers [json, replayed]');
  return { out: fromScript<T>(reply[0]), replayed: reply[1] === 1 };
}

/** cjson encodes an empty Lua table as `{}`: the empty list it stood for. */
export function luaList<T>(v: readonly T[] | Record<string, never> | null | undefined): T[] {
  return Array.isArray(v) ? [...v] : [];
}

/** A script's reply that is a list of strings (ids), or an empty table. */
export function stringList(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.map(String) : [];
}

const SCRIPT_ERROR = /^([A-Z_]+) (\{.*\})/s;

/** Turns a script's "CODE {json}" error reply into a DomainError. */
export function toDomainError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const m = SCRIPT_ERROR.exec(err.message);
  if (!m || !m[1] || !m[2] || !isErrorCode(m[1])) return err;
  let detail: Record<string, unknown> = {};
  try {
    detail = JSON.parse(m[2]) as Record<string, unknown>;
  } catch {
    return err;
  }
  return new DomainError(m[1], describe(m[1], detail), detail);
}

function describe(code: string, d: Record<string, unknown>): string {
  const iso = (t: unknown) => (typeof t === 'number' ? new Date(t).toISOString() : 'open-ended');
  switch (code) {
    case 'NOT_FOUND':
      return `${String(d.entity ?? 'entity')} ${String(d.id ?? '')} not found`.trim();
    case 'NOT_AVAILABLE': {
      const b = d.blocking as { kind?: string; from?: number; to?: number } | undefined;
      if (b)
        return `vehicle is taken by a ${b.kind} from ${iso(b.from)} to ${iso(b.to)} (turnaround ${Number(d.turnaroundMs) / 60000} min)`;
      return `vehicle is ${String(d.listing ?? 'not available')}`;
    }
    case 'INVALID_INTERVAL':
      return describeInterval(d);
    case 'INVALID_STATE':
      return `${String(d.entity ?? 'entity')} ${String(d.id ?? '')} is ${String(d.status ?? d.problem)}${d.problem ? ` (${String(d.problem)})` : ''}`;
    case 'VERSION_MISMATCH':
      return `expected version ${String(d.expected)}, found ${String(d.actual)}`;
    case 'HOLD_EXPIRED':
      return `hold ${String(d.id)} lapsed at ${iso(d.expiresAt)}`;
    case 'HOLD_LIMIT':
      return `customer already has ${String(d.live)} live holds (max ${String(d.max)})`;
    case 'IDEMPOTENCY_CONFLICT':
      return 'idempotency key already used for a different command';
    case 'VALIDATION':
      return `invalid ${String(d.field)}`;
    default:
      return code;
  }
}

/** A write its replicas did not confirm (replication.ts): its outcome is unknown, so it is sent again. */
export class ReplicationUnconfirmed extends Error {
  constructor(reason: string) {
    super(`write not confirmed by its replicas: ${reason}`);
    this.name = 'ReplicationUnconfirmed';
  }
}

/** Where a write went, as the confirmer notes it before the write (replication.ts's ticket). */
export type WriteTicket = unknown;

/** What confirms a connection's writes on its replicas (replication.ts's SyncReplication). */
export interface WriteConfirmer {
  readonly enabled: boolean;
  ticket(key: string): WriteTicket | undefined;
  confirm(key: string, before: WriteTicket | undefined): Promise<void>;
}

/** How a connection's writes are confirmed and how long a command may wait through a failover. */
export interface ConnectionPolicy {
  /** WAIT for replicas after every script that changes state (absent or 0 replicas: none). */
  replication?: WriteConfirmer;
  failoverWaitMs: number;
  /**
   * Reads (vehicle_state, verify_available) from a replica, only while `allowed()` — every write
   * waits for every replica (docs/reliability.md, "Reads from replicas"); else, and on any error,
   * from the primary.
   */
  replicaReads?: { conn: RedisConnection; allowed: () => boolean };
}

const policies = new WeakMap<object, ConnectionPolicy>();

/** Set once per connection at start-up (see `connectStores` in src/redis/topology.ts). */
export function setConnectionPolicy(conn: RedisConnection, policy: ConnectionPolicy): void {
  policies.set(conn, policy);
}

export function connectionPolicy(conn: RedisConnection): ConnectionPolicy {
  return policies.get(conn) ?? { failoverWaitMs: defaults.REDIS_FAILOVER_WAIT_MS };
}

/** A write whose outcome is not known (lost connection, replicas silent): sending it again is safe. */
function isUnknownOutcome(err: unknown): boolean {
  if (err instanceof ReplicationUnconfirmed) return true;
  const m = messageOf(err);
  return (
    /^(Connection is closed|Stream isn't writeable)/.test(m) ||
    (err as { name?: string })?.name === 'MaxRetriesPerRequestError'
  );
}

/**
 * Runs a registered script; KEYS and ARGV as documented in its header. A script that changes
 * state is acknowledged only once its replicas hold it (the connection's policy). When the outcome
 * is unknown, the same script with the same arguments — the same idempotency key — is sent again
 * until `failoverWaitMs` has passed: the retry returns the first result if it was applied and
 * applies it once if not. Every writing script is safe to resend: commands carry an idempotency
 * key, the others set a state rather than change one (expire, trim, restore, offers, marks).
 */
export function runScript(
  conn: RedisConnection,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
  context?: CallContext,
): Promise<unknown> {
  // A span of its own (tracing on): its trace context is what the script writes into its events.
  return inSpan(`script ${name}`, { attributes: { 'db.system': 'redis', 'fleet.script': name } }, () =>
    runScriptNow(conn, name, keys, args, context),
  );
}

async function runScriptNow(
  conn: RedisConnection,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
  context: CallContext | undefined,
): Promise<unknown> {
  const policy = connectionPolicy(conn);
  if (READ_ONLY.has(name) && policy.replicaReads?.allowed()) {
    const replica = policy.replicaReads.conn;
    try {
      const reply = await callScript(replica, name, keys, withClock(conn, name, args, context), { load: false });
      metrics.replicaReads.inc({ served: 'replica' });
      return reply;
    } catch (err) {
      const domain = toDomainError(err);
      if (domain instanceof DomainError) throw domain;
      metrics.replicaReads.inc({ served: 'primary_fallback' });
    }
  }
  const replication =
    !READ_ONLY.has(name) && !NO_WAIT.has(name) && policy.replication?.enabled ? policy.replication : undefined;
  const deadline = Date.now() + policy.failoverWaitMs;
  const routing = keys[0] ?? '';
  for (let attempt = 1; ; attempt++) {
    const ticket = replication?.ticket(routing);
    try {
      const reply = await callScript(conn, name, keys, withClock(conn, name, args, context));
      await replication?.confirm(routing, ticket);
      return reply;
    } catch (err) {
      // A server that lost the library (restarted without persistence) ran nothing: load it, send again.
      if (attempt === 1 && FUNCTION_MISSING.test(messageOf(err))) {
        forgetScripts(conn);
        continue;
      }
      if (!isUnknownOutcome(err)) throw toDomainError(err);
      if (Date.now() >= deadline) {
        throw new DomainError(
          'UNAVAILABLE',
          `the outcome of ${name} is unknown after ${policy.failoverWaitMs} ms (${messageOf(err)}); retry with the same Idempotency-Key`,
          { outcome: 'unknown' },
        );
      }
      await sleep(Math.min(50 * attempt, 500));
    }
  }
}

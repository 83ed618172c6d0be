/**
 * Every Redis key of the service is built here. All keys of a city share the hash tag
 * `{c:<city>}`, so on Redis Cluster a city is one slot and every script can touch all of them.
 */
import { createHash } from 'node:crypto';

const tag = (city: string) => `{c:${city}}`;
/** A customer's own slot (their id may hold any character, so the tag is a digest of it). */
const customerTag = (customerId: string) => `{u:${createHash('sha1').update(customerId).digest('hex').slice(0, 16)}}`;

export const keys = {
  /** SET of the city's vehicle ids. */
  vehicles: (city: string) => `${tag(city)}:vehicles`,
  /** HASH of one vehicle: spec, listing, stored status, version. */
  vehicle: (city: string, vehicleId: string) => `${tag(city)}:v:${vehicleId}`,
  /** HASH entryId -> JSON calendar entry (hold, booking, block) of one vehicle. */
  calendar: (city: string, vehicleId: string) => `${tag(city)}:cal:${vehicleId}`,
  /** ZSET entryId -> start of the entries that may take a vehicle's time (-1: read by every command); see includes/engine.lua. */
  calendarIndex: (city: string, vehicleId: string) => `${tag(city)}:cali:${vehicleId}`,
  /** The three keys of one vehicle, in the order every script takes them: hash, calendar documents, calendar index. */
  vehicleKeys: (city: string, vehicleId: string): [string, string, string] => [
    `${tag(city)}:v:${vehicleId}`,
    `${tag(city)}:cal:${vehicleId}`,
    `${tag(city)}:cali:${vehicleId}`,
  ],
  /**
   * The five city keys every vehicle script takes after its vehicle's three, in this order:
   * counters, event stream, status-due zset, entries index, live holds (includes/engine.lua).
   */
  cityScriptKeys: (city: string): string[] => [
    keys.counters(city),
    keys.events(city),
    keys.statusDue(city),
    keys.entries(city),
    keys.liveHolds(city),
  ],
  /** HASH of exact counters: `s:<status>`, `c:<category>`, `cs:<category>:<status>`. */
  counters: (city: string) => `${tag(city)}:counters`,
  /** STREAM: the city's outbox; every change appends its event here, in the same script. */
  events: (city: string) => `${tag(city)}:events`,
  /** ZSET vehicleId -> next instant its status may change by time alone (hold lapse, trip start...). */
  statusDue: (city: string) => `${tag(city)}:status-due`,
  /** HASH entryId -> vehicleId: where a hold, booking or block lives. */
  entries: (city: string) => `${tag(city)}:entries`,
  /** HASH holdId -> vehicleId of holds still in state `held`. */
  liveHolds: (city: string) => `${tag(city)}:live-holds`,
  /** ZSET holdId -> expiresAt of one customer's holds (the per-customer cap). */
  customerHolds: (city: string, customerId: string) => `${tag(city)}:holds:${customerId}`,
  /** SET of a host's vehicle ids in the city. */
  hostVehicles: (city: string, hostId: string) => `${tag(city)}:host:${hostId}`,
  /** GEO set of the city's vehicles, for nearest-first alternatives. */
  geo: (city: string) => `${tag(city)}:geo`,
  /** HASH bookingId -> JSON offer record of a conflicted booking (alternatives, holds, incentives, outcome). */
  offers: (city: string) => `${tag(city)}:offers`,
  /** ZSET bookingId -> expiresAt of offer records still open (lapse schedule). */
  offersDue: (city: string) => `${tag(city)}:offers-due`,
  /** ZSET bookingId -> wait until: conflicts with nothing to offer yet, waiting for a freed vehicle. */
  waitlist: (city: string) => `${tag(city)}:waitlist`,
  /** STRING fingerprint + first result of an idempotent command; 24 h. */
  idempotency: (city: string, scope: string, key: string) => `${tag(city)}:idem:${scope}:${key}`,
  /** ZSET holdId -> expiry of a customer's live holds in every city (the cap across cities). */
  customerHoldReservations: (customerId: string) => `${customerTag(customerId)}:holds`,
  /** STRING holds a customer placed in the current rate window. */
  customerHoldRate: (customerId: string) => `${customerTag(customerId)}:hold-rate`,
  /** STRING counter the replication confirmer writes before each WAIT; `tag` is a city's hash tag on a cluster, or ''. */
  replicationProbe: (tag: string) => (tag ? `${tag}:replication-probe` : 'fleet:replication-probe'),
  /** HASH region -> JSON {region, url, since}: a lost region's cities served by its standby (docs/regions.md). */
  regionRouting: () => 'fleet:regions:served-by',
  /** Placeholder passed as the idempotency KEY when a command has none (never written). */
  noIdempotency: (city: string) => `${tag(city)}:idem:-`,
  /**
   * STRING request count of one caller (`role:id`, `ip:address`, or an API client's `client:<id>` and
   * its one-second `client:<id>:s`) in the current window (rate_limit_add.lua).
   */
  callerBudget: (caller: string) => `fleet-rl:${caller}`,
  /**
   * ZSET jti -> the token's expiry (ms): tokens revoked before they expire. This key, the next and
   * the version share the tag `{fleet-auth}`, so one MULTI writes them together on Redis Cluster.
   */
  revokedTokens: () => '{fleet-auth}:revoked-jti',
  /** HASH clientId -> the oldest generation of that API client's tokens still valid (revoking them all raises it). */
  clientTokenGenerations: () => '{fleet-auth}:client-gen',
  /** STRING counter raised with every revocation: each process reloads the two above when it moves. */
  revocationsVersion: () => '{fleet-auth}:version',
  /**
   * HASH of one API client's usage on one UTC day (`day`: days since the epoch): `r:<minute>`,
   * `u:<minute>`, `x:<minute>` (requests, units charged, refusals; minutes since the epoch). A
   * client's days share its tag, so they are read in one pipeline.
   */
  clientUsage: (clientId: string, day: number) => `fleet-usage:{cl:${clientId}}:${day}`,
};

/** Whether `key` is one of a city's idempotency records (kept by `fleet rebuild`: retries stay answered). */
export const isIdempotencyKey = (city: string, key: string) => key.startsWith(`${tag(city)}:idem:`);

/** Every key of a city matches this pattern (for snapshots, rebuild, and wiping a city). */
export const cityKeyPattern = (city: string) => `${tag(city)}:*`;

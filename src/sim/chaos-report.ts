/** A chaos run's report: its figures, whether it met its targets, as JSON, HTML and the doc's section. */
import { keys } from '../redis/keys.ts';
import type { createRedis } from '../redis/connection.ts';
import { fieldMap } from '../redis/events.ts';
import type { ChaosOptions, FaultRecord, UnexpectedExit } from './chaos-types.ts';
import { escapeHtml } from './report.ts';
import type { checkInvariants } from './simulate.ts';
import type { Recorder } from './stats.ts';
import { percentile, round } from './stats.ts';
import { commitStamp, writeSection } from './stamp.ts';

export interface ChaosFigures {
  o: ChaosOptions;
  recorder: Recorder;
  faults: FaultRecord[];
  invariants: Awaited<ReturnType<typeof checkInvariants>>;
  failoverConflicts: Awaited<ReturnType<typeof conflictsOfFailovers>>;
  started: number;
  elapsed: number;
  unexpectedExits: UnexpectedExit[];
}

/**
 * The run's report, and whether it met every target: nothing acknowledged lost, nothing overlapping,
 * nothing drifting, no process ended by a fault it was not the target of, availability at least
 * `minAvailability`, and every failover window within `maxFailoverWindowMs`. `missed` says which not.
 */
export function chaosReport(figures: ChaosFigures) {
  const { o, recorder, faults, invariants, failoverConflicts, started, elapsed, unexpectedExits } = figures;
  const windows = faults
    .map((f) => f.windowMs)
    .filter((w): w is number => w !== undefined)
    .sort((a, b) => a - b);
  const failovers = faults.filter(
    (f) => f.kind === 'redis-primary-kill' || f.kind === 'redis-primary-stop' || f.kind === 'postgres-primary-crash',
  ).length;
  const failed = recorder.serverErrors;
  const availability = recorder.total ? 1 - failed / recorder.total : 1;
  const report = {
    generatedAt: new Date().toISOString(),
    commit: commitStamp(),
    options: { ...o },
    durationSeconds: round(elapsed),
    requests: recorder.total,
    availability: Math.floor(availability * 1e6) / 1e6,
    failedRequests: failed,
    outcomes: Object.fromEntries([...recorder.codes].sort((a, b) => b[1] - a[1])),
    faults: faults.map((f) => ({
      kind: f.kind,
      atSecond: round((f.at - started) / 1000),
      detail: f.detail,
      windowMs: f.windowMs ?? null,
      ...(f.parts ? { parts: f.parts } : {}),
    })),
    failovers,
    failoverWindowMs: { p50: percentile(windows, 50), p99: percentile(windows, 99), max: windows.at(-1) ?? 0 },
    acknowledgedWritesLost: invariants.acknowledgedMissingFromRedis + invariants.acknowledgedMissingFromPostgres,
    invariants,
    failoverConflicts,
    unexpectedExits,
    targets: { minAvailability: o.minAvailability, maxFailoverWindowMs: o.maxFailoverWindowMs },
    missed: [] as string[],
    endpoints: recorder.endpoints(),
  };
  const missed = report.missed;
  if (report.acknowledgedWritesLost > 0) missed.push(`${report.acknowledgedWritesLost} acknowledged writes lost`);
  if (invariants.overlappingConfirmedBookings > 0)
    missed.push(`${invariants.overlappingConfirmedBookings} overlapping confirmed bookings`);
  if (invariants.driftAfterSync > 0) missed.push(`drift after the sync drained: ${invariants.driftAfterSync}`);
  if (availability < o.minAvailability)
    missed.push(
      `availability ${(report.availability * 100).toFixed(3)}% is below ${(o.minAvailability * 100).toFixed(3)}% (${failed} of ${recorder.total} requests failed)`,
    );
  // A fault in the run's last seconds may have no write after it to measure by: not a miss.
  const measurable = (f: { atSecond: number }) => f.atSecond * 1000 < elapsed * 1000 - o.maxFailoverWindowMs;
  const slow = report.faults.filter((f) => (f.windowMs === null ? measurable(f) : f.windowMs > o.maxFailoverWindowMs));
  for (const f of slow)
    missed.push(
      `${f.kind} at ${f.atSecond} s: ${f.windowMs === null ? 'no acknowledged write after it' : `acknowledgements stopped for ${f.windowMs} ms`} (limit ${o.maxFailoverWindowMs} ms)`,
    );
  for (const e of unexpectedExits)
    missed.push(
      `${e.process} exited at ${e.atSecond} s (code ${e.code}, signal ${e.signal}) without a fault aimed at it`,
    );
  return { report, ok: missed.length === 0 };
}

/** The bookings failover verifications displaced, and what became of each. */
export async function conflictsOfFailovers(redis: ReturnType<typeof createRedis>, cities: string[]) {
  const verifications: Record<string, unknown>[] = [];
  const outcomes: Record<string, number> = {};
  for (const city of cities) {
    for (const [, fields] of await redis.xrange(keys.events(city), '-', '+')) {
      const f = fieldMap(fields);
      if (f.type !== 'system.failover_verified') continue;
      const data = JSON.parse(f.data ?? '{}') as { conflicts?: string[] };
      verifications.push(data);
      for (const id of Array.isArray(data.conflicts) ? data.conflicts : []) {
        const vehicle = await redis.hget(keys.entries(city), id);
        const raw = vehicle ? await redis.hget(keys.calendar(city, vehicle), id) : null;
        const status = raw ? String((JSON.parse(raw) as { status: string }).status) : 'gone';
        outcomes[status] = (outcomes[status] ?? 0) + 1;
      }
    }
  }
  const sum = (k: string) => verifications.reduce((n, v) => n + (Number(v[k]) || 0), 0);
  return {
    verifications: verifications.length,
    vehiclesRestored: sum('vehiclesRestored'),
    entriesRestored: sum('entriesRestored'),
    repairedInPg: sum('repairedInPg'),
    conflicts: Object.values(outcomes).reduce((a, b) => a + b, 0),
    outcomes,
  };
}

export function renderChaosHtml(
  r: Record<string, unknown> & {
    faults: { kind: string; atSecond: number; detail: string; windowMs: number | null }[];
  },
): string {
  const rows = (o: Record<string, unknown>) =>
    Object.entries(o)
      .map(
        ([k, v]) =>
          `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`,
      )
      .join('');
  const { faults, endpoints: _e, options: _o, outcomes, invariants, failoverConflicts, ...top } = r;
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>fleet-inventory chaos run</title>
<style>body{font:14px system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>
<h1>Chaos run</h1><table>${rows(top)}</table>
<h2>Faults</h2><table><tr><th>at (s)</th><th>fault</th><th>what happened</th><th>window (ms)</th></tr>${faults.map((f) => `<tr><td>${f.atSecond}</td><td>${escapeHtml(f.kind)}</td><td>${escapeHtml(f.detail)}</td><td>${f.windowMs ?? '-'}</td></tr>`).join('')}</table>
<h2>Invariants</h2><table>${rows(invariants as Record<string, unknown>)}</table>
<h2>Conflicts raised by failovers</h2><table>${rows(failoverConflicts as Record<string, unknown>)}</table>
<h2>Outcomes</h2><table>${rows(outcomes as Record<string, unknown>)}</table></html>\n`;
}

/** Rewrites the part of `file` between the chaos markers with this run's figures. */
export function updateChaosDoc(file: string, r: Record<string, unknown>): void {
  const f = r as {
    commit: string;
    generatedAt: string;
    durationSeconds: number;
    requests: number;
    availability: number;
    failedRequests: number;
    failovers: number;
    failoverWindowMs: { p50: number; p99: number; max: number };
    acknowledgedWritesLost: number;
    invariants: { overlappingConfirmedBookings: number; driftAfterSync: number; acknowledgedBookings: number };
    failoverConflicts: {
      verifications: number;
      entriesRestored: number;
      vehiclesRestored: number;
      repairedInPg: number;
      conflicts: number;
      outcomes: Record<string, number>;
    };
    faults: { kind: string; atSecond: number; detail: string; windowMs: number | null }[];
    targets: { minAvailability: number; maxFailoverWindowMs: number };
    missed: string[];
    unexpectedExits: UnexpectedExit[];
  };
  const lines = [
    `Latest run: commit \`${f.commit}\`, ${f.generatedAt}, ${f.durationSeconds} s, ${f.faults.length} faults (${f.failovers} store failovers).`,
    '',
    '| figure | value |',
    '|---|---|',
    `| requests | ${f.requests} |`,
    `| answered without a 5xx or a network failure | ${(f.availability * 100).toFixed(3)}% (${f.failedRequests} failed) |`,
    `| failover window p50 / p99 / max | ${f.failoverWindowMs.p50} / ${f.failoverWindowMs.p99} / ${f.failoverWindowMs.max} ms |`,
    `| acknowledged bookings | ${f.invariants.acknowledgedBookings} |`,
    `| acknowledged writes lost | ${f.acknowledgedWritesLost} |`,
    `| overlapping confirmed bookings | ${f.invariants.overlappingConfirmedBookings} |`,
    `| drift after the sync drained | ${f.invariants.driftAfterSync} |`,
    `| verifications / entries restored / vehicles restored / repaired in PostgreSQL | ${f.failoverConflicts.verifications} / ${f.failoverConflicts.entriesRestored} / ${f.failoverConflicts.vehiclesRestored} / ${f.failoverConflicts.repairedInPg} |`,
    `| conflicts raised by failovers (how they ended) | ${f.failoverConflicts.conflicts} ${JSON.stringify(f.failoverConflicts.outcomes)} |`,
    `| processes that exited without a fault aimed at them | ${f.unexpectedExits.length} |`,
    '',
    f.missed.length === 0
      ? `Every target was met: availability at least ${(f.targets.minAvailability * 100).toFixed(1)}%, every failover window within ${f.targets.maxFailoverWindowMs / 1000} s, nothing acknowledged lost, no overlap, no drift, no process ended by a store's failure.`
      : `Targets missed (the run exited non-zero): ${f.missed.join('; ')}.`,
    '',
    '| at (s) | fault | what happened | window (ms) |',
    '|---|---|---|---|',
    ...f.faults.map((x) => `| ${x.atSecond} | ${x.kind} | ${x.detail} | ${x.windowMs ?? '-'} |`),
  ];
  writeSection(file, 'chaos', lines.join('\n'));
}

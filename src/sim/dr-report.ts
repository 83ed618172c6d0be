/** A disaster drill's verdict and its section of docs/regions.md, every figure from the run. */
import { REFERENCE_CITIES } from '../domain/cities.ts';
import type { PitrFigures } from './dr-pitr.ts';
import { DRILL_TARGETS, type AckMode, type DrillOptions, type ModeFigures } from './dr-drill-types.ts';
import { round } from './stats.ts';
import { runStamp } from './stamp.ts';

export function targetsMissed(figures: ModeFigures[], pitr: PitrFigures): string[] {
  const missed: string[] = [];
  for (const f of figures) {
    if (f.rtoMs === null || f.rtoMs > DRILL_TARGETS.rtoMs)
      missed.push(
        `[${f.mode}] RTO ${f.rtoMs === null ? 'not reached' : `${f.rtoMs} ms`} (target ${DRILL_TARGETS.rtoMs} ms)`,
      );
    if (f.mode === 'remote' && f.lost > DRILL_TARGETS.remoteLost)
      missed.push(`[remote] ${f.lost} acknowledged bookings lost (target 0)`);
    if (f.mode === 'local' && f.lostWindowMs && f.syncLagAtKillMs !== null) {
      const bound = (f.syncLagAtKillMs ?? 0) + (f.replicationLagAtKillMs ?? 0) + 1_000;
      if (f.lostWindowMs.earliest > bound)
        missed.push(
          `[local] lost acknowledgements reach ${f.lostWindowMs.earliest} ms before the kill, past the lag bound ${bound} ms`,
        );
    }
    if (f.bP99.outageMs > DRILL_TARGETS.bP99Ratio * f.bP99.baselineMs)
      missed.push(
        `[${f.mode}] region b's p99 ${f.bP99.outageMs} ms while a is down against ${f.bP99.baselineMs} ms before (target ${DRILL_TARGETS.bP99Ratio}x)`,
      );
    if (f.invariants.overlappingConfirmedBookings || f.invariants.driftAfterSync)
      missed.push(`[${f.mode}] invariants: ${JSON.stringify(f.invariants)}`);
  }
  if (!pitr.firstThere || pitr.secondThere) missed.push(`point-in-time restore: ${JSON.stringify(pitr)}`);
  return missed;
}

/** The drill's section of docs/regions.md, every figure from this run. */
export function drillSection(figures: ModeFigures[], pitr: PitrFigures, missed: string[], o: DrillOptions): string {
  const stamp = runStamp();
  const by = (m: AckMode) => figures.find((f) => f.mode === m);
  const local = by('local');
  const remote = by('remote');
  const row = (f: ModeFigures) =>
    `| ${f.mode} | ${f.rtoMs ?? '-'} ms | ${f.acknowledgedInA} | ${f.lost}${f.lostWindowMs ? ` (acknowledged ${f.lostWindowMs.latest}-${f.lostWindowMs.earliest} ms before the kill)` : ''} | ${f.syncLagAtKillMs ?? '-'} / ${f.replicationLagAtKillMs ?? '-'} ms | ${f.bP99.baselineMs} / ${f.bP99.failoverMs} / ${f.bP99.outageMs} ms | ${f.price.perSecond}/s, p50 ${f.price.p50Ms} ms, p99 ${f.price.p99Ms} ms | ${f.invariants.overlappingConfirmedBookings} / ${f.invariants.driftAfterSync} |`;
  const lines = [
    `Latest run: commit \`${stamp.commit}\`, ${stamp.date}: \`npm run dr:drill\`, round trip between regions ${o.rttMs} ms, ${o.vehiclesPerCity} vehicles per city, both regions and every store on this machine's 2 cores.`,
    '',
    '| DR_ACK | RTO | bookings acknowledged in a | lost | sync / DR replication lag at the kill | b p99 before / failing over / a down | bookings on a at full speed | overlaps / drift after |',
    '|---|---|---|---|---|---|---|---|',
    ...figures.map(row),
    '',
  ];
  if (local && remote)
    lines.push(
      `The price of DR_ACK=remote in this run: ${round(remote.price.perSecond / Math.max(local.price.perSecond, 0.01))}x the bookings per second of local (${remote.price.perSecond} against ${local.price.perSecond}), p50 ${remote.price.p50Ms} ms against ${local.price.p50Ms} ms, p99 ${remote.price.p99Ms} ms against ${local.price.p99Ms} ms (${o.priceConcurrency} customers booking at once on region a).`,
      '',
    );
  for (const f of figures)
    if (f.failover)
      lines.push(
        `[${f.mode}] \`fleet dr failover\`: DR standby promoted after ${f.failover.promotedMs} ms, ${REFERENCE_CITIES.length - Math.floor(REFERENCE_CITIES.length / 2)} cities rebuilt and verified after ${f.failover.rebuiltMs} ms, routing published after ${f.failover.publishedMs} ms; the rest of the RTO is the standby deployment starting.`,
      );
  lines.push(
    '',
    `Point-in-time restore: a base backup, two bookings ${pitr.gapMs} ms apart, restored to the moment between them in ${pitr.restoreMs} ms: the first booking ${pitr.firstThere ? 'is there' : 'IS MISSING'}, the second ${pitr.secondThere ? 'IS THERE' : 'is not'}.`,
    '',
    missed.length === 0
      ? `Every target was met: RTO within ${DRILL_TARGETS.rtoMs / 1000} s, no acknowledged booking lost with DR_ACK=remote, with local the loss within the lags at the kill, region b's p99 within ${DRILL_TARGETS.bP99Ratio}x of its own baseline, no overlap, no drift.`
      : `Targets missed (the drill exited 1): ${missed.join('; ')}.`,
  );
  return lines.join('\n');
}

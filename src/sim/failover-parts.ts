/**
 * Where a Redis failover's window goes (issue 27): from the kill -9 of the primary to the next
 * acknowledged write, split at the Sentinels' own log lines (millisecond timestamps, this machine's
 * clock):
 *
 * - detection: the kill to the first `+odown` of the dead primary (down-after-milliseconds, then a
 *   quorum of Sentinels agreeing);
 * - promotion: `+odown` to `+failover-state-send-slaveof-noone` (the Sentinels electing a leader,
 *   the leader choosing a replica and sending it `REPLICAOF NO ONE`);
 * - reconnect: from there to the first acknowledged write (the leader seeing the replica answer as
 *   a primary, `+promoted-slave`, and naming it; the service learning the new address and
 *   reconnecting; a replica attaching to the new primary; the WAIT that confirms the write).
 *
 * Acknowledgements that arrive after the kill but before the leader even sent `REPLICAOF NO ONE`
 * were answered by the dead primary before it died (replies on their way): they do not count as
 * the service being back.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HaLayout } from '../ha/local.ts';

export interface SentinelEvent {
  at: number;
  sentinel: number;
  /** `+sdown`, `+odown`, `+switch-master`, ... */
  event: string;
  /** The rest of the line (`master fleet 127.0.0.1 6379 #quorum 2/2`, ...). */
  detail: string;
}

export interface FailoverParts {
  /** Kill to `+odown` (ms). */
  detectionMs: number;
  /** `+odown` to `REPLICAOF NO ONE` sent (ms). */
  promotionMs: number;
  /** `REPLICAOF NO ONE` sent to the first acknowledged write (ms). */
  reconnectMs: number;
  /** Kill to the first acknowledged write (ms): the three above. */
  windowMs: number;
  /** Milestones, in ms from the kill. */
  sdownMs?: number;
  electedMs?: number;
  promotedMs?: number;
  switchMasterMs?: number;
  /** Elections that failed before the one that promoted (`-failover-abort-*`). */
  abortedAttempts: number;
  /**
   * Another primary (the promoted one) declared down by the Sentinels within 10 s of the kill: a
   * second failover nobody caused, which stops acknowledgements again.
   */
  secondFailovers: number;
}

const LINE = /^\d+:X (\d{2}) (\w{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2})\.(\d{3}) [*#.-] ([+-][\w-]+) (.*)$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** One Sentinel log line as an event (Redis logs in local time, like `new Date(y, m, d, ...)`). */
export function parseSentinelLine(line: string, sentinel = 0): SentinelEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, d, mon, y, h, min, s, ms, event, detail] = m;
  const month = MONTHS.indexOf(mon ?? '');
  if (month < 0 || !event) return undefined;
  const at = new Date(Number(y), month, Number(d), Number(h), Number(min), Number(s), Number(ms)).getTime();
  return { at, sentinel, event, detail: detail ?? '' };
}

/** Every event of every Sentinel of the topology, in time order (a log not there: no events from it). */
export function sentinelEvents(layout: HaLayout): SentinelEvent[] {
  const events: SentinelEvent[] = [];
  layout.redis.sentinels.forEach((s, i) => {
    let text = '';
    try {
      text = readFileSync(path.join(s.dir, 'sentinel.log'), 'utf8');
    } catch {
      return; // no log (yet): this Sentinel said nothing
    }
    for (const line of text.split('\n')) {
      const e = parseSentinelLine(line, i);
      if (e) events.push(e);
    }
  });
  return events.sort((a, b) => a.at - b.at);
}

/**
 * The parts of one failover: the primary on `port` killed at `killedAt`, acknowledgements at
 * `acks` (sorted). Undefined when the Sentinels' logs do not show a replica promoted, or no write
 * was acknowledged after it.
 */
export function failoverParts(
  events: readonly SentinelEvent[],
  port: number,
  killedAt: number,
  acks: readonly number[],
): FailoverParts | undefined {
  const about = (event: string, re: RegExp) =>
    events.find((e) => e.at >= killedAt - 5 && e.event === event && re.test(e.detail))?.at;
  const master = new RegExp(`^master \\S+ 127\\.0\\.0\\.1 ${port}\\b`);
  const slaveOf = new RegExp(`@ \\S+ 127\\.0\\.0\\.1 ${port}\\b`);
  const odown = about('+odown', master);
  const toldToPromote = about('+failover-state-send-slaveof-noone', slaveOf);
  if (odown === undefined || toldToPromote === undefined) return undefined;
  const resumed = acks.find((t) => t > toldToPromote);
  if (resumed === undefined) return undefined;
  const since = (t: number | undefined) => (t === undefined ? undefined : t - killedAt);
  const switched = events.find(
    (e) =>
      e.at >= killedAt && e.event === '+switch-master' && new RegExp(`^\\S+ 127\\.0\\.0\\.1 ${port} `).test(e.detail),
  )?.at;
  return {
    detectionMs: odown - killedAt,
    promotionMs: toldToPromote - odown,
    reconnectMs: resumed - toldToPromote,
    windowMs: resumed - killedAt,
    sdownMs: since(about('+sdown', master)),
    electedMs: since(about('+elected-leader', master)),
    promotedMs: since(about('+promoted-slave', slaveOf)),
    switchMasterMs: since(switched),
    secondFailovers: new Set(
      events
        .filter((e) => e.at > killedAt && e.at < killedAt + 10_000 && e.event === '+odown' && !master.test(e.detail))
        .map((e) => e.detail.split(' ')[3]),
    ).size,
    abortedAttempts: events.filter(
      (e) =>
        e.at >= killedAt && e.at <= toldToPromote && e.event.startsWith('-failover-abort') && master.test(e.detail),
    ).length,
  };
}

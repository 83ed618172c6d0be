/** The failover window's parts from the Sentinels' log lines (src/sim/failover-parts.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failoverParts, parseSentinelLine, type SentinelEvent } from '../../src/sim/failover-parts.ts';

const LOG = [
  '9:X 03 Dec 2026 12:20:10.123 # +sdown master fleet 127.0.0.1 6379',
  '9:X 03 Dec 2026 12:20:10.223 # +odown master fleet 127.0.0.1 6379 #quorum 2/2',
  '9:X 03 Dec 2026 12:20:10.300 # +elected-leader master fleet 127.0.0.1 6379',
  '9:X 03 Dec 2026 12:20:10.400 * +failover-state-send-slaveof-noone slave 127.0.0.1:6380 127.0.0.1 6380 @ fleet 127.0.0.1 6379',
  '9:X 03 Dec 2026 12:20:11.300 # +promoted-slave slave 127.0.0.1:6380 127.0.0.1 6380 @ fleet 127.0.0.1 6379',
  '9:X 03 Dec 2026 12:20:11.350 # +switch-master fleet 127.0.0.1 6379 127.0.0.1 6380',
  '9:X 03 Dec 2026 12:20:15.000 # +odown master fleet 127.0.0.1 6380 #quorum 2/2',
  'not a log line',
];

function events(): SentinelEvent[] {
  return LOG.flatMap((l) => {
    const e = parseSentinelLine(l);
    return e ? [e] : [];
  });
}

test('a Sentinel log line: local time to the millisecond, the event and its detail', () => {
  const e = parseSentinelLine(LOG[1] ?? '');
  assert.ok(e);
  assert.equal(e.at, new Date(2026, 11, 3, 12, 20, 10, 223).getTime());
  assert.equal(e.event, '+odown');
  assert.equal(e.detail, 'master fleet 127.0.0.1 6379 #quorum 2/2');
  assert.equal(parseSentinelLine('not a log line'), undefined);
});

test('the window split at +odown and REPLICAOF NO ONE; replies already on their way do not end it', () => {
  const ev = events();
  const killedAt = new Date(2026, 11, 3, 12, 20, 9, 100).getTime();
  // An acknowledgement 5 ms after the kill was answered by the dead primary; the next one counts.
  const acks = [killedAt + 5, killedAt + 2_400, killedAt + 2_500];
  const parts = failoverParts(ev, 6379, killedAt, acks);
  assert.ok(parts);
  assert.equal(parts.detectionMs, 1_123);
  assert.equal(parts.promotionMs, 177);
  assert.equal(parts.reconnectMs, 1_100);
  assert.equal(parts.windowMs, parts.detectionMs + parts.promotionMs + parts.reconnectMs);
  assert.equal(parts.promotedMs, 2_200);
  assert.equal(parts.switchMasterMs, 2_250);
  assert.equal(parts.secondFailovers, 1, 'the promoted primary declared down within 10 s');
  assert.equal(failoverParts(ev, 6390, killedAt, acks), undefined, 'no failover of that node');
});

/**
 * The console's live connection (web/src/live.ts): the reconnection schedule (exponential, with
 * jitter, reset after a stable connection), the position kept per topic, and the resubscription
 * with `after` — on a fake socket and a fake clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  backoffDelay,
  BACKOFF,
  compareEventIds,
  Live,
  Positions,
  Reconnects,
  type Clock,
  type Socket,
  type SocketEvents,
} from '../../web/src/live.ts';

test('the backoff doubles from 0.5 s to 30 s, each wait drawn in the upper half of its step', () => {
  const low = [0, 1, 2, 3, 4, 5, 6, 7, 20, 1000].map((n) => backoffDelay(n, () => 0));
  const high = [0, 1, 2, 3, 4, 5, 6, 7, 20, 1000].map((n) => backoffDelay(n, () => 1));
  assert.deepEqual(high, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  assert.deepEqual(low, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000]);
  for (let n = 0; n < 12; n++) {
    const d = backoffDelay(n);
    const ceiling = Math.min(30_000, 500 * 2 ** n);
    assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${n}: ${d}`);
  }
  assert.equal(
    backoffDelay(-1, () => 1),
    500,
    'a negative attempt is the first',
  );
});

test('jitter spreads clients that dropped together', () => {
  const waits = new Set(Array.from({ length: 50 }, () => backoffDelay(5)));
  assert.ok(waits.size > 10, `50 clients, ${waits.size} distinct waits`);
});

test('failed attempts grow the wait; a connection that stayed up starts the schedule over', () => {
  const r = new Reconnects(BACKOFF, () => 1);
  // Never opened, or dropped at once: each attempt waits longer.
  assert.deepEqual([r.closed(0), r.closed(0), r.closed(0)], [500, 1000, 2000]);
  r.opened(10_000);
  assert.equal(r.closed(10_000 + BACKOFF.stableMs - 1), 4000, 'open for less than stableMs: still failing');
  r.opened(50_000);
  assert.equal(r.closed(50_000 + BACKOFF.stableMs), 500, 'stable: back to the first step');
  assert.equal(r.closed(70_000), 1000);
});

test('event ids order as stream ids: numerically, time then sequence', () => {
  assert.equal(compareEventIds('1700000000000-10', '1700000000000-9'), 1);
  assert.equal(compareEventIds('999-0', '1000-0'), -1);
  assert.equal(compareEventIds('1000-0', '1000-0'), 0);
  assert.equal(compareEventIds('9007199254740993-0', '9007199254740992-0'), 1, 'beyond 2^53, still exact');
});

test('positions: the latest id seen per topic; host topics and foreign ids are not resumable', () => {
  const p = new Positions();
  assert.deepEqual(p.subscribe('city:blr'), { type: 'subscribe', topic: 'city:blr' });
  p.seen('city:blr', '1700000000000-1');
  p.seen('city:blr', '1700000000000-0');
  p.seen('city:blr', 'not-an-id');
  assert.deepEqual(p.subscribe('city:blr'), { type: 'subscribe', topic: 'city:blr', after: '1700000000000-1' });
  p.seen('host:h1', '1700000000000-5');
  assert.deepEqual(p.subscribe('host:h1'), { type: 'subscribe', topic: 'host:h1' }, 'host topics are live only');
  p.forget('city:blr');
  assert.equal(p.after('city:blr'), undefined);
});

/** A clock whose timers run when the test says, and sockets the test opens, feeds and drops. */
function harness() {
  let now = 0;
  let nextId = 0;
  const timers = new Map<number, { at: number; run: () => void }>();
  const clock: Clock = {
    now: () => now,
    setTimeout: (run, ms) => {
      timers.set(++nextId, { at: now + ms, run });
      return nextId;
    },
    clearTimeout: (id) => {
      timers.delete(id as number);
    },
    random: () => 1,
  };
  const sockets: { events: SocketEvents; sent: unknown[]; open: boolean; closed: boolean }[] = [];
  const connect = (events: SocketEvents): Socket => {
    const s = { events, sent: [] as unknown[], open: false, closed: false };
    sockets.push(s);
    return {
      get open() {
        return s.open;
      },
      send: (data) => s.sent.push(JSON.parse(data)),
      close: () => {
        s.closed = true;
      },
    };
  };
  /** Moves the clock, running the timers due, in order. */
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      const due = [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      timers.delete(due[0]);
      now = due[1].at;
      due[1].run();
    }
    now = until;
  };
  const last = () => {
    const s = sockets.at(-1);
    if (!s) throw new Error('no socket');
    return s;
  };
  const open = () => {
    last().open = true;
    last().events.opened();
  };
  const drop = () => {
    last().open = false;
    last().events.closed();
  };
  const event = (topic: string, id: string) =>
    last().events.message(JSON.stringify({ type: 'event', topic, event: { id, type: 'vehicle.updated' } }));
  return { clock, connect, sockets, advance, open, drop, event, last, timers };
}

test('a drop: the wait grows while the server is away, then every topic resumes after its last event', () => {
  const h = harness();
  const live = new Live(h.connect, h.clock);
  const heard: string[] = [];
  const states: boolean[] = [];
  let resumed = 0;
  live.onEvent = (topic, e) => heard.push(`${topic} ${e.id}`);
  live.onState = (c) => states.push(c);
  live.onResume = () => resumed++;
  live.subscribe('city:blr');
  h.open();
  live.subscribe('booking:bkg_1');
  live.subscribe('vehicle:veh_1');
  assert.deepEqual(h.last().sent, [
    { type: 'subscribe', topic: 'city:blr' },
    { type: 'subscribe', topic: 'booking:bkg_1' },
    { type: 'subscribe', topic: 'vehicle:veh_1' },
  ]);
  h.event('city:blr', '100-0');
  h.event('city:blr', '105-2');
  h.event('booking:bkg_1', '103-0');
  assert.deepEqual(heard, ['city:blr 100-0', 'city:blr 105-2', 'booking:bkg_1 103-0']);

  // The server goes away for a while: attempts after 0.5, 1, 2, 4 s, none of them opening.
  h.advance(1_000);
  h.drop();
  const attempts: number[] = [];
  for (let i = 0; i < 4; i++) {
    const before = h.sockets.length;
    let waited = 0;
    while (h.sockets.length === before) {
      h.advance(50);
      waited += 50;
    }
    attempts.push(waited);
    h.drop();
  }
  assert.deepEqual(attempts, [500, 1000, 2000, 4000]);
  assert.equal(resumed, 0);

  // Back: the next attempt opens; each topic resumes after its own last event (none seen: live).
  h.advance(8_000);
  h.open();
  assert.deepEqual(h.last().sent, [
    { type: 'subscribe', topic: 'city:blr', after: '105-2' },
    { type: 'subscribe', topic: 'booking:bkg_1', after: '103-0' },
    { type: 'subscribe', topic: 'vehicle:veh_1' },
  ]);
  assert.equal(resumed, 1, 'the view is told, for what no event told it');
  assert.deepEqual(states, [true, false, false, false, false, false, true]);

  // Stable for 10 s, then a blip: back to a short wait.
  h.advance(BACKOFF.stableMs);
  h.drop();
  const before = h.sockets.length;
  h.advance(499);
  assert.equal(h.sockets.length, before);
  h.advance(1);
  assert.equal(h.sockets.length, before + 1, 'reconnected after 0.5 s');
  live.close();
});

test('a silent connection (no heartbeat for two periods) is replaced; a closed Live stays closed', () => {
  const h = harness();
  const live = new Live(h.connect, h.clock);
  live.subscribe('city:blr');
  h.open();
  h.last().events.message(JSON.stringify({ type: 'welcome', heartbeatMs: 1_000 }));
  h.event('city:blr', '7-0');
  h.advance(2_900);
  h.last().events.message(JSON.stringify({ type: 'heartbeat' }));
  h.advance(2_900);
  assert.equal(h.sockets.length, 1, 'heartbeats keep it');
  h.advance(200);
  assert.ok(h.sockets[0]?.closed, 'silent for 3 s: given up');
  h.advance(500);
  assert.equal(h.sockets.length, 2, 'and replaced');
  // What the old socket still says is not heard.
  h.sockets[0]?.events.message(JSON.stringify({ type: 'event', topic: 'city:blr', event: { id: '9-0' } }));
  h.open();
  assert.deepEqual(h.last().sent, [{ type: 'subscribe', topic: 'city:blr', after: '7-0' }]);
  live.close();
  h.drop();
  h.advance(60_000);
  assert.equal(h.sockets.length, 2, 'no reconnection after close');
  assert.equal(h.timers.size, 0, 'no timer left');
});

test('a topic the hub refuses for good is not resubscribed', () => {
  const h = harness();
  const live = new Live(h.connect, h.clock);
  live.subscribe('booking:bkg_gone');
  live.subscribe('city:blr');
  h.open();
  h.last().events.message(
    JSON.stringify({ type: 'error', topic: 'booking:bkg_gone', code: 'NOT_FOUND', status: 404, detail: 'gone' }),
  );
  h.last().events.message(JSON.stringify({ type: 'error', topic: 'city:blr', code: 'RATE_LIMITED', status: 429 }));
  h.drop();
  h.advance(500);
  h.open();
  assert.deepEqual(h.last().sent, [{ type: 'subscribe', topic: 'city:blr' }], 'a rate-limited topic is tried again');
  live.close();
});

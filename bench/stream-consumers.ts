/**
 * bench/stream-consumers: what the four readers of the city streams cost when nothing happens,
 * and how soon each hears an event, for this tree and for a baseline commit, in one run. The
 * readers: the read model's tail (which feeds the WebSocket hub), the sync into PostgreSQL, the
 * webhook dispatcher, the conflict resolver.
 *
 * Each side runs `fleet serve --demo` as users run it (its real process tree, one API process) on
 * a private redis-server and a fresh database, then:
 * - idle: 30 s without a request; the CPU time of the service's processes, of redis-server
 *   (`INFO cpu`) and of the database's PostgreSQL backends (/proc), as a share of one core;
 * - latency: 300 bookings, one every 50 ms (paced, so queueing does not hide the wake-up); for
 *   each, from the client's acknowledgement to: its event on a WebSocket subscription (read
 *   model), its webhook arriving (dispatcher), PostgreSQL's sync cursor passing it (polled every
 *   2 ms); and 40 conflicts (a booking, then a block over it): from `booking.conflicted` to
 *   `conflict.offers_ready`, by their stream ids (Redis's clock on both ends).
 *
 * Targets (the run exits 1 when one is missed): at this tree, idle CPU and every reader's p50 no
 * higher than the baseline's (plus 10 % and 1 ms of noise allowance). Writes the "Stream consumers"
 * section of docs/benchmarks.md and bench/results/consumers-latest.json.
 *
 *   npm run bench:consumers -- --baseline <commit>      (default: the last polling commit)
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import { mintToken } from '../src/api/auth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { startRedis } from '../test/support/redis.ts';
import { startServe } from '../test/support/serve.ts';
import { measureAgainst, writeSection } from './lib/baseline.ts';
import { runStamp } from './lib/stamp.ts';

const HOUR = 3_600_000;
const SECRET = 'bench-consumers-secret-of-32-bytes-or-more';
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 30_000);
const SETTLE_MS = 15_000;
const BOOKINGS = Number(process.env.BENCH_BOOKINGS ?? 300);
const CONFLICTS = Number(process.env.BENCH_CONFLICTS ?? 40);
const DEFAULT_BASELINE = '680a1c5';
const TICK_MS = 10;

type Percentiles = { n: number; p50: number; p95: number; p99: number };
interface Measured {
  idle: { service: number; redis: number; postgres: number; total: number };
  latency: { readModel: Percentiles; webhooks: Percentiles; sync: Percentiles; resolver: Percentiles };
}

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN) * 10) / 10;
  return { n: s.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0; // the process is gone: it costs nothing more
  }
}

/** The pid and every descendant (the API processes the primary forks). */
function tree(pid: number): number[] {
  const out = [pid];
  for (const p of out) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) out.push(Number(k));
  }
  return out;
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const n = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (n('used_cpu_sys') + n('used_cpu_user')) * 1000;
}

async function measure(): Promise<Measured> {
  const redisServer = await startRedis({ external: 'never' });
  const db = await createTestDatabase();
  const hooks: Map<string, number> = new Map();
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      const at = performance.now();
      const e = JSON.parse(body) as { type: string; subject: string };
      if (e.type === 'booking.confirmed' && !hooks.has(e.subject)) hooks.set(e.subject, at);
      res.writeHead(204).end();
    });
  }).listen(0, '127.0.0.1');
  const fleet = await startServe(
    {
      WEB_CONCURRENCY: '1',
      CITIES: 'blr',
      REDIS_URL: redisServer.url,
      DATABASE_URL: db.url,
      JWT_SECRET: SECRET,
      RATE_LIMIT_CUSTOMER: '1000000',
      RATE_LIMIT_HOST: '1000000',
      RATE_LIMIT_OPS: '1000000',
      WEBHOOK_ALLOW_PRIVATE: '1',
    },
    ['--demo', '--vehicles-per-city', '120'],
  );
  const redis = new Redis(redisServer.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  let stopPolling = async () => {};
  try {
    const secret = new TextEncoder().encode(SECRET);
    const ops = await mintToken(secret, { sub: 'olga', role: 'ops' });
    const auth = { authorization: `Bearer ${ops}`, 'content-type': 'application/json' };
    const list = (await (await fetch(`${fleet.base}/v1/cities/blr/vehicles?limit=200`, { headers: auth })).json()) as {
      vehicles: { id: string }[];
    };
    const vehicles = list.vehicles.map((v) => v.id);
    if (vehicles.length < 100) throw new Error(`the demo fleet has ${vehicles.length} vehicles`);
    const { port } = receiver.address() as AddressInfo;
    const sub = await fetch(`${fleet.base}/v1/webhooks`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, types: ['booking.confirmed'], cities: ['blr'] }),
    });
    if (sub.status !== 201) throw new Error(`webhook subscription: ${sub.status} ${await sub.text()}`);

    // Idle: the boot's own work (demo seed, first sync) done, then nothing at all.
    await sleep(SETTLE_MS);
    const backends = async () =>
      (
        await pool.query<{ pid: number }>(
          'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
        )
      ).rows.map((r) => r.pid);
    const pids = [...tree(fleet.child.pid ?? 0), ...(await backends())];
    const service = () => tree(fleet.child.pid ?? 0).reduce((n, p) => n + cpuMs(p), 0);
    const pgCpu = (list: number[]) => list.reduce((n, p) => n + cpuMs(p), 0);
    const pgPids = await backends();
    const a = { at: performance.now(), service: service(), redis: await redisCpuMs(redis), pg: pgCpu(pgPids) };
    await sleep(IDLE_MS);
    const b = { at: performance.now(), service: service(), redis: await redisCpuMs(redis), pg: pgCpu(pgPids) };
    const wall = b.at - a.at;
    const share = (x: number) => Math.round((x / wall) * 10_000) / 100; // % of one core
    const idle = {
      service: share(b.service - a.service),
      redis: share(b.redis - a.redis),
      postgres: share(b.pg - a.pg),
      total: 0,
    };
    idle.total = Math.round((idle.service + idle.redis + idle.postgres) * 100) / 100;
    void pids;

    // Latency: events heard on a WebSocket, by webhook, in PostgreSQL, and conflicts offered.
    const wsAt = new Map<string, { at: number; streamId: string }>();
    const conflicted = new Map<string, number>();
    const offered = new Map<string, number>();
    const ws = new WebSocket(`${fleet.base.replace('http', 'ws')}/v1/live`, {
      headers: { authorization: auth.authorization },
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (raw: Buffer) => {
        const m = JSON.parse(raw.toString()) as { type: string; event?: { id: string; type: string; subject: string } };
        if (m.type === 'subscribed') resolve();
        if (m.type !== 'event' || !m.event) return;
        const at = performance.now();
        const streamId = /(\d+-\d+)$/.exec(m.event.id)?.[1] ?? '';
        if (m.event.type === 'booking.confirmed' && !wsAt.has(m.event.subject))
          wsAt.set(m.event.subject, { at, streamId });
        const ms = Number(streamId.split('-')[0]);
        if (m.event.type === 'booking.conflicted') conflicted.set(m.event.subject, ms);
        if (m.event.type === 'conflict.offers_ready' && !offered.has(m.event.subject)) offered.set(m.event.subject, ms);
      });
      ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', topic: 'city:blr' })));
    });
    const cursor: { at: number; id: [number, number] }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const { rows } = await pool.query<{ ms: string; seq: string }>(
          "SELECT last_ms AS ms, last_seq AS seq FROM sync_cursors WHERE city = 'blr'",
        );
        const r = rows[0];
        if (r) cursor.push({ at: performance.now(), id: [Number(r.ms), Number(r.seq)] });
        await sleep(2);
      }
    })();
    stopPolling = async () => {
      polling = false;
      await poller;
    };
    const acked = new Map<string, number>();
    const start = Math.ceil((Date.now() + 60 * 24 * HOUR) / HOUR) * HOUR;
    const customer = await mintToken(secret, { sub: 'bench-customer', role: 'customer' });
    const asCustomer = { authorization: `Bearer ${customer}`, 'content-type': 'application/json' };
    for (let i = 0; i < BOOKINGS; i++) {
      const from = start + Math.floor(i / vehicles.length) * 2 * HOUR;
      const r = await fetch(`${fleet.base}/v1/bookings`, {
        method: 'POST',
        headers: asCustomer,
        body: JSON.stringify({
          vehicleId: vehicles[i % vehicles.length],
          from: new Date(from).toISOString(),
          to: new Date(from + HOUR).toISOString(),
        }),
      });
      const at = performance.now();
      const body = (await r.json()) as { id?: string };
      if (r.status === 201 && body.id) acked.set(body.id, at);
      await sleep(50);
    }
    // Conflicts: a booking far ahead, then a maintenance block over it.
    const later = start + 30 * 24 * HOUR;
    for (let i = 0; i < CONFLICTS; i++) {
      const vehicleId = vehicles[i % vehicles.length];
      // A window of its own: the offers of one conflict hold other vehicles in its window.
      const from = later + i * 6 * HOUR;
      const r = await fetch(`${fleet.base}/v1/bookings`, {
        method: 'POST',
        headers: asCustomer,
        body: JSON.stringify({
          vehicleId,
          from: new Date(from).toISOString(),
          to: new Date(from + HOUR).toISOString(),
        }),
      });
      if (r.status !== 201) throw new Error(`conflict booking: ${r.status} ${await r.text()}`);
      const block = await fetch(`${fleet.base}/v1/vehicles/${vehicleId}/blocks`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({
          reason: 'maintenance',
          from: new Date(from - HOUR).toISOString(),
          to: new Date(from + 2 * HOUR).toISOString(),
        }),
      });
      if (block.status !== 201) throw new Error(`block: ${block.status} ${await block.text()}`);
      await sleep(250);
    }
    const deadline = Date.now() + 30_000;
    const heardAll = () =>
      [...acked.keys()].every((id) => wsAt.has(id) && hooks.has(id)) &&
      [...conflicted.keys()].every((id) => offered.has(id));
    while (!heardAll() && Date.now() < deadline) await sleep(100);
    await sleep(500);
    await stopPolling();
    ws.close();

    const readModel: number[] = [];
    const webhooks: number[] = [];
    const sync: number[] = [];
    for (const [id, at] of acked) {
      const w = wsAt.get(id);
      if (w) readModel.push(Math.max(0, w.at - at));
      const h = hooks.get(id);
      if (h !== undefined) webhooks.push(Math.max(0, h - at));
      if (!w) continue;
      const [ms, seq] = w.streamId.split('-').map(Number) as [number, number];
      const passed = cursor.find((c) => c.id[0] > ms || (c.id[0] === ms && c.id[1] >= seq));
      if (passed) sync.push(Math.max(0, passed.at - at));
    }
    const resolver: number[] = [];
    for (const [id, ms] of conflicted) {
      const o = offered.get(id);
      if (o !== undefined) resolver.push(o - ms);
    }
    return {
      idle,
      latency: {
        readModel: percentiles(readModel),
        webhooks: percentiles(webhooks),
        sync: percentiles(sync),
        resolver: percentiles(resolver),
      },
    };
  } finally {
    await stopPolling();
    receiver.close();
    await fleet.stop();
    redis.disconnect();
    await pool.end();
    await db.drop();
    await redisServer.stop();
  }
}

/** A 0 is not a measuring fault: the reader heard the event before the client had its answer. */
function zeroNote(now: Measured, base: Measured): string {
  const zero = READERS.filter(([k]) => now.latency[k].p50 === 0 || base.latency[k].p50 === 0).map(([, l]) => l);
  return zero.length
    ? `\nA time is counted as 0 when the reader heard the event before the client had the booking's acknowledgement (${zero.join(', ')}: at p50 or more).\n`
    : '';
}

const READERS = [
  ['readModel', 'read model tail (WebSocket event)'],
  ['sync', 'sync (PostgreSQL cursor)'],
  ['webhooks', 'webhook dispatcher (delivery)'],
  ['resolver', 'conflict resolver (offers ready)'],
] as const;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--baseline');
  const baseline = i >= 0 ? (argv[i + 1] ?? DEFAULT_BASELINE) : (process.env.BASELINE ?? DEFAULT_BASELINE);
  const stamp = runStamp();
  const started = Date.now();
  const { now, base } = await measureAgainst<Measured>(baseline, 'bench/stream-consumers.ts', 'CONSUMERS_CHILD');
  const missed: string[] = [];
  const within = (after: number, before: number) => after <= before * 1.1 + 1;
  if (!within(now.idle.total, base.idle.total))
    missed.push(`idle CPU ${now.idle.total}% of a core is above the baseline's ${base.idle.total}%`);
  for (const [k, label] of READERS)
    if (!within(now.latency[k].p50, base.latency[k].p50))
      missed.push(`${label}: p50 ${now.latency[k].p50} ms is above the baseline's ${base.latency[k].p50} ms`);
  const ratio = (a: number, b: number) => (b > 0 ? (Math.round((a / b) * 100) / 100).toString() : '—');
  const rows = READERS.map(([k, label]) => {
    const n = now.latency[k];
    const b = base.latency[k];
    return `| ${label} | ${b.n} / ${n.n} | ${b.p50} / ${n.p50} | ${b.p95} / ${n.p95} | ${b.p99} / ${n.p99} | **${ratio(n.p50, b.p50)}** |`;
  });
  const text = `## Stream consumers

The four readers of the city streams (the read model's tail, feeding the WebSocket hub; the sync
into PostgreSQL; the webhook dispatcher; the conflict resolver), this tree against baseline
\`${baseline}\` (each reader polling with a sleep), each side as \`fleet serve --demo\` (its real
process tree, one API process) on a private redis-server and a fresh database.
\`npm run bench:consumers\`; method in \`bench/stream-consumers.ts\`.

Last run: commit \`${stamp.commit}\`, ${stamp.date}, node ${process.version}, ${os.cpus().length} cores, ${Math.round((Date.now() - started) / 1000)} s.

Idle (${IDLE_MS / 1000} s, no request), % of one core — baseline / this tree:

| | service processes | redis-server | PostgreSQL backends | total |
|---|---|---|---|---|
| baseline \`${baseline}\` | ${base.idle.service} | ${base.idle.redis} | ${base.idle.postgres} | ${base.idle.total} |
| this tree | ${now.idle.service} | ${now.idle.redis} | ${now.idle.postgres} | ${now.idle.total} |
| **this / baseline** | | | | **${ratio(now.idle.total, base.idle.total)}** |

From the client's acknowledgement to the reader hearing the event (resolver: from
\`booking.conflicted\` to \`conflict.offers_ready\`, by stream ids), ms — baseline / this tree
(${BOOKINGS} bookings one every 50 ms, ${CONFLICTS} conflicts):

| reader | events | p50 | p95 | p99 | p50 this / baseline |
|---|---|---|---|---|---|
${rows.join('\n')}
${zeroNote(now, base)}
${missed.length ? `Targets missed: ${missed.join('; ')}.` : 'Targets met: idle CPU and every p50 at or below the baseline (10 % and 1 ms of noise allowed).'}
`;
  await writeSection('## Stream consumers', text);
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(
    path.join('bench', 'results', 'consumers-latest.json'),
    `${JSON.stringify({ ...stamp, baseline, now, base, missed }, null, 2)}\n`,
  );
  console.log(text);
  if (missed.length) {
    console.error(`bench:consumers: targets missed:\n- ${missed.join('\n- ')}`);
    process.exit(1);
  }
}

if (process.env.CONSUMERS_CHILD) {
  console.log(JSON.stringify(await measure()));
  process.exit(0);
} else await main();

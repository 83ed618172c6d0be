/**
 * bench/abuse: the attacks of issue 11 replayed one after another against `fleet serve` (one API
 * process, its own Redis and database), while a legitimate customer keeps searching. For each
 * attack: the customer's p50/p99 against its own baseline from the same run, the service's RSS
 * before, at its peak and 5 s after, and what the attack got back. Results (stamped with the commit
 * and the date) go to bench/results/abuse-latest.json and the generated section of
 * docs/benchmarks.md.
 *
 *   npm run bench:abuse            (BENCH_ABUSE_SECONDS=10 per phase)
 */
import { spawn } from 'node:child_process';
import { commitStamp } from './lib/stamp.ts';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { mintToken } from '../src/api/auth.ts';
import { REFERENCE_CITIES } from '../src/domain/cities.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { freePort, startRedis } from '../test/support/redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.BENCH_ABUSE_SECONDS ?? 10);
const SECRET = 'abuse-bench-secret-of-at-least-32-bytes!';
const CITIES = REFERENCE_CITIES.slice(0, 3);

interface Phase {
  name: string;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  attack: Record<string, unknown>;
}

function rssMb(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(kb / 102.4) / 10;
  } catch {
    return 0;
  }
}

const q = (s: number[], p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;

async function main() {
  const redis = await startRedis({ external: 'never' });
  const db = await createTestDatabase();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const service = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'serve', '--demo', '--vehicles-per-city', '300'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        REDIS_URL: redis.url,
        DATABASE_URL: db.url,
        JWT_SECRET: SECRET,
        CITIES: CITIES.map((c) => c.id).join(','),
        WEB_CONCURRENCY: '1',
        LOG_LEVEL: 'warn',
        RATE_LIMIT_ADMIN: '100000000',
      },
    },
  );
  let out = '';
  service.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  service.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  for (let i = 0; !out.includes('Demo tokens'); i++) {
    if (i > 3000 || service.exitCode !== null) throw new Error(`service did not start:\n${out.slice(-2000)}`);
    await sleep(100);
  }
  const secret = new TextEncoder().encode(SECRET);
  const token = (sub: string, role: 'customer' | 'host' | 'ops' | 'admin' = 'customer', hostId?: string) =>
    mintToken(secret, { sub, role, ...(hostId ? { hostId } : {}) });
  // The legitimate caller searches far more than a customer's budget allows: it is an admin with a
  // budget no attack shares (RATE_LIMIT_ADMIN below), so its errors are 0 and only the attacks can
  // slow it. (Measured as a customer, most of its requests were its own 429s.)
  const legit = await token('legit-caller', 'admin');
  const phases: Phase[] = [];

  /** The legitimate customer: searches, 4 in flight, for `ms`, while `attack` runs. */
  async function phase(
    name: string,
    attack: (signal: { stop: boolean }) => Promise<Record<string, unknown>>,
  ): Promise<void> {
    const rssBefore = rssMb(service.pid!);
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMb(service.pid!));
    }, 100);
    const lat: number[] = [];
    let errors = 0;
    const signal = { stop: false };
    const from = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 24 * 3_600_000);
    const to = new Date(from.getTime() + 4 * 3_600_000);
    const customer = Promise.all(
      Array.from({ length: 4 }, async (_, k) => {
        while (!signal.stop) {
          const t = performance.now();
          try {
            const r = await fetch(
              `${base}/v1/cities/${CITIES[k % CITIES.length]!.id}/availability?from=${from.toISOString()}&to=${to.toISOString()}`,
              { headers: { authorization: `Bearer ${legit}` } },
            );
            await r.arrayBuffer();
            if (r.status !== 200) errors++;
          } catch {
            errors++;
          }
          lat.push(performance.now() - t);
        }
      }),
    );
    const attacking = attack(signal);
    await sleep(SECONDS * 1000);
    signal.stop = true;
    const result = await attacking;
    await customer;
    await sleep(5_000);
    clearInterval(sampler);
    const s = lat.sort((a, b) => a - b);
    phases.push({
      name,
      p50: q(s, 0.5),
      p99: q(s, 0.99),
      requests: s.length,
      errors,
      rssBeforeMb: rssBefore,
      rssPeakMb: peak,
      rssAfterMb: rssMb(service.pid!),
      attack: result,
    });
    console.error(
      `${name}: p50 ${q(s, 0.5).toFixed(1)} ms, p99 ${q(s, 0.99).toFixed(1)} ms; RSS ${rssBefore} -> ${peak} -> ${rssMb(service.pid!)} MB; ${JSON.stringify(result)}`,
    );
  }

  const wsUrl = `${base.replace('http', 'ws')}/v1/live`;
  const openWs = (t: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${t}` } });
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });

  // A warm-up (JIT, connections, the read model's first searches) that is measured but not kept:
  // the baseline must not carry it, or every attack would look cheaper than doing nothing.
  await phase('warm-up', async () => ({}));
  phases.length = 0;
  await phase('baseline', async () => ({}));

  await phase('WebSocket subscribe flood (ops token)', async (signal) => {
    const ws = await openWs(await token('flood-ops', 'ops'));
    let sent = 0;
    let answered = 0;
    let closed = '';
    ws.on('message', () => {
      answered++;
    });
    ws.on('close', (code, reason) => {
      closed = `${code} ${reason.toString()}`;
    });
    while (!signal.stop && ws.readyState === WebSocket.OPEN) {
      for (let i = 0; i < 500 && ws.readyState === WebSocket.OPEN; i++) {
        ws.send(JSON.stringify({ type: 'subscribe', topic: `host:h${sent++}` }));
      }
      await sleep(1);
    }
    for (let i = 0; i < 50 && !closed; i++) await sleep(20); // the server's close frame
    ws.terminate();
    return { sent, answered, closed };
  });

  await phase('topic cap burst (1,000 subscribes)', async () => {
    const ws = await openWs(await token('burst-ops', 'ops'));
    let subscribed = 0;
    ws.on('message', (raw) => {
      if ((JSON.parse(raw.toString()) as { type: string }).type === 'subscribed') subscribed++;
    });
    for (let i = 0; i < 1_000; i++) ws.send(JSON.stringify({ type: 'subscribe', topic: `host:b${i}` }));
    await sleep(2_000);
    ws.terminate();
    return { subscribed };
  });

  await phase('replays to clients that never read (10 connections)', async (signal) => {
    const sockets: WebSocket[] = [];
    const closes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const ws = await openWs(await token(`slow-${i}`, 'ops'));
      (ws as unknown as { _socket: Socket })._socket.pause();
      ws.on('close', (code) => closes.push(String(code)));
      for (const c of CITIES) ws.send(JSON.stringify({ type: 'subscribe', topic: `city:${c.id}`, after: '0-0' }));
      sockets.push(ws);
    }
    while (!signal.stop) await sleep(100);
    for (const ws of sockets) ws.terminate();
    return { connections: sockets.length, closedByServer: closes.length };
  });

  await phase('hold hoarding across cities', async () => {
    const hoarder = await token('hoarder');
    const vehicles: string[] = [];
    for (const c of CITIES) {
      const r = await fetch(
        `${base}/v1/cities/${c.id}/availability?from=${new Date(Date.now() + 7_200_000).toISOString().slice(0, 14)}00:00.000Z&to=${new Date(Date.now() + 10_800_000).toISOString().slice(0, 14)}00:00.000Z&limit=50`,
        { headers: { authorization: `Bearer ${hoarder}` } },
      );
      vehicles.push(
        ...(((await r.json()) as { vehicles?: { vehicleId: string }[] }).vehicles?.map((v) => v.vehicleId) ?? []),
      );
    }
    const from = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 2 * 3_600_000);
    const codes: Record<string, number> = {};
    await Promise.all(
      vehicles.map(async (v) => {
        const r = await fetch(`${base}/v1/holds`, {
          method: 'POST',
          headers: { authorization: `Bearer ${hoarder}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            vehicleId: v,
            from: from.toISOString(),
            to: new Date(from.getTime() + 3_600_000).toISOString(),
          }),
        });
        const key = r.status === 201 ? '201' : `${r.status} ${((await r.json()) as { code?: string }).code}`;
        codes[key] = (codes[key] ?? 0) + 1;
      }),
    );
    return { attempted: vehicles.length, outcomes: codes };
  });

  await phase('slow headers (500 connections, a byte a second)', async (signal) => {
    const sockets: Socket[] = [];
    let closed = 0;
    for (let i = 0; i < 500; i++) {
      const s = tcpConnect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => {
        closed++;
      });
      sockets.push(s);
    }
    const started = Date.now();
    while (!signal.stop) {
      for (const s of sockets) if (!s.destroyed) s.write('X');
      await sleep(1_000);
    }
    for (const s of sockets) s.destroy();
    return { connections: 500, closedByServerWithin: `${Math.round((Date.now() - started) / 1000)} s`, closed };
  });

  await phase('invalid requests flood (one customer)', async (signal) => {
    const bad = await token('bad-customer');
    const codes: Record<string, number> = {};
    while (!signal.stop) {
      const r = await fetch(`${base}/v1/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bad}`, 'content-type': 'application/json' },
        body: '{"vehicleId":1}',
      });
      await r.arrayBuffer();
      codes[r.status] = (codes[r.status] ?? 0) + 1;
    }
    return { outcomes: codes };
  });

  await phase('1,000-item batches (one host)', async (signal) => {
    const host = await token('batch-host', 'host', 'host-batch');
    const codes: Record<string, number> = {};
    const items = Array.from({ length: 1_000 }, () => ({
      city: CITIES[0]!.id,
      category: 'sedan',
      seats: 5,
      transmission: 'automatic',
      fuel: 'petrol',
      make: 'B',
      model: 'C',
      location: { lat: 12.9, lng: 77.6 },
      pricePerHour: 10,
    }));
    while (!signal.stop) {
      const r = await fetch(`${base}/v1/vehicles/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${host}`, 'content-type': 'application/json' },
        body: JSON.stringify({ items }),
      });
      await r.arrayBuffer();
      codes[r.status] = (codes[r.status] ?? 0) + 1;
      if (r.status === 429) await sleep(200);
    }
    return { outcomes: codes };
  });

  service.kill('SIGTERM');
  await new Promise((r) => service.once('exit', r));
  await db.drop();
  await redis.stop();

  const baseline = phases[0]!;
  const result = {
    commit: commitStamp(),
    date: new Date().toISOString(),
    machine: `${os.cpus().length} cores`,
    secondsPerPhase: SECONDS,
    phases: phases.map((p) => ({
      ...p,
      p99VsBaseline: baseline.p99 ? p.p99 / baseline.p99 : null,
      rssGrowthMb: Math.round((p.rssPeakMb - p.rssBeforeMb) * 10) / 10,
      rssGivenBackMb: Math.round((p.rssPeakMb - p.rssAfterMb) * 10) / 10,
    })),
  };
  await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
  await writeFile(path.join(ROOT, 'bench/results/abuse-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  await updateDoc(path.join(ROOT, 'docs/benchmarks.md'), result);
}

async function updateDoc(
  file: string,
  r: {
    commit: string;
    date: string;
    machine: string;
    secondsPerPhase: number;
    phases: (Phase & { p99VsBaseline: number | null; rssGrowthMb: number })[];
  },
) {
  const start = '<!-- abuse:start -->';
  const end = '<!-- abuse:end -->';
  let text = await readFile(file, 'utf8');
  if (!text.includes(start)) text += `\n## Abuse (\`npm run bench:abuse\`)\n\n${start}\n${end}\n`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const f = (n: number) => n.toFixed(1);
  const lines = [
    start,
    `Latest run: commit \`${r.commit}\`, ${r.date}, ${r.machine}; ${r.secondsPerPhase} s per attack, a legitimate caller searching (4 in flight, a budget of its own) throughout; its errors are counted.`,
    '',
    '| attack | caller p50 ms | p99 ms | p99 vs baseline | caller requests / errors | RSS before / peak / 5 s after (MB) | what the attack got |',
    '|---|---|---|---|---|---|---|',
    ...r.phases.map(
      (p) =>
        `| ${p.name} | ${f(p.p50)} | ${f(p.p99)} | ${p.p99VsBaseline === null ? '-' : `${p.p99VsBaseline.toFixed(2)}×`} | ${p.requests} / ${p.errors} | ${p.rssBeforeMb} / ${p.rssPeakMb} / ${p.rssAfterMb} | ${JSON.stringify(p.attack).replace(/\|/g, '/')} |`,
    ),
    '',
    ...r.phases
      .slice(1)
      .filter((p) => (p.p99VsBaseline ?? 0) > 2 || p.rssGrowthMb >= 100)
      .map(
        (p) => `Target missed: ${p.name}: p99 ${p.p99VsBaseline?.toFixed(2)}× the baseline, RSS +${p.rssGrowthMb} MB.`,
      ),
    end,
  ];
  await writeFile(file, text.slice(0, i) + lines.join('\n') + text.slice(j + end.length));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

/**
 * bench/tracing: what tracing costs (issue 26), and that it costs nothing when off. `fleet serve`
 * as users run it (its real process tree, one API process) on a private redis-server and a fresh
 * database, three ways in one run:
 * - baseline: a commit from before tracing and the audit trail (`--baseline`), OTEL_* unset;
 * - off: this tree, OTEL_* unset (nothing of the SDK loads);
 * - on: this tree, OTEL_EXPORTER_OTLP_ENDPOINT at a sink in this process (every span exported,
 *   the default http/protobuf), the default sampler (every trace).
 * Each: bookings (POST /v1/bookings, 16 keep-alive clients, 15 s) then searches (GET
 * availability, 15 s), measured from outside with autocannon.
 *
 * Targets (the run exits 1 when one is missed): off at least 0.9x the baseline's throughput on
 * both, p99 at most 1.1x + 2 ms of it. Tracing on is measured and reported, not judged.
 * Writes the "Tracing" section of docs/benchmarks.md and bench/results/tracing-latest.json.
 *
 *   npm run bench:tracing -- --baseline <commit>     (default: the last commit before issue 26)
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mintToken } from '../src/api/auth.ts';
import { createTestDatabase } from '../test/support/postgres.ts';
import { startRedis } from '../test/support/redis.ts';
import { startServe } from '../test/support/serve.ts';
import { measureAgainst, writeSection } from './lib/baseline.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { runStamp } from './lib/stamp.ts';

const SECRET = 'bench-tracing-secret-of-32-bytes-or-more';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const CONNECTIONS = 16;
const VEHICLES = 400;
const HOUR = 3_600_000;
const DEFAULT_BASELINE = '7facefe';

type Figures = Pick<LoadResult, 'requests' | 'perSec' | 'p50' | 'p99'>;
interface Side {
  bookings: Figures;
  searches: Figures;
  spans?: { batches: number; bytes: number };
}
interface Measured {
  off: Side;
  on?: Side;
}

const figures = (r: LoadResult): Figures => ({
  requests: r.requests,
  perSec: Math.round(r.perSec),
  p50: Math.round(r.p50 * 10) / 10,
  p99: Math.round(r.p99 * 10) / 10,
});

/** One side: the service started with `env`, bookings then searches. */
async function measureSide(env: Record<string, string>): Promise<Side> {
  const redis = await startRedis({ external: 'never' });
  const db = await createTestDatabase();
  const fleet = await startServe(
    {
      WEB_CONCURRENCY: '1',
      CITIES: 'blr',
      REDIS_URL: redis.url,
      DATABASE_URL: db.url,
      JWT_SECRET: SECRET,
      RATE_LIMIT_CUSTOMER: '10000000',
      RATE_LIMIT_OPS: '10000000',
      ...env,
    },
    ['--demo', '--vehicles-per-city', String(VEHICLES)],
  );
  try {
    const secret = new TextEncoder().encode(SECRET);
    const ops = await mintToken(secret, { sub: 'bench-ops', role: 'ops' });
    const list = await fetch(`${fleet.base}/v1/cities/blr/vehicles?limit=1000`, {
      headers: { authorization: `Bearer ${ops}` },
    });
    const ids = ((await list.json()) as { vehicles: { id: string }[] }).vehicles.map((v) => v.id);
    if (ids.length === 0) throw new Error('the demo city has no vehicles');
    const customers = await Promise.all(
      Array.from({ length: 32 }, (_, i) => mintToken(secret, { sub: `bench-c-${i}`, role: 'customer' })),
    );
    const base = Math.ceil((Date.now() + 60 * 24 * HOUR) / HOUR) * HOUR;
    let i = 0;
    const bookings = await runLoad({
      url: fleet.base,
      connections: CONNECTIONS,
      duration: SECONDS,
      request: {
        method: 'POST',
        path: '/v1/bookings',
        setupRequest: (req) => {
          const n = i++;
          const from = base + Math.floor(n / ids.length) * 3 * HOUR;
          return {
            ...req,
            body: JSON.stringify({
              vehicleId: ids[n % ids.length],
              from: new Date(from).toISOString(),
              to: new Date(from + 2 * HOUR).toISOString(),
            }),
            headers: { 'content-type': 'application/json', authorization: `Bearer ${customers[n % customers.length]}` },
          };
        },
      },
    });
    const from = new Date(base + HOUR).toISOString();
    const to = new Date(base + 3 * HOUR).toISOString();
    const searches = await runLoad({
      url: fleet.base,
      connections: CONNECTIONS,
      duration: SECONDS,
      request: {
        method: 'GET',
        path: `/v1/cities/blr/availability?from=${from}&to=${to}&limit=20`,
        headers: { authorization: `Bearer ${customers[0]}` },
      },
    });
    return { bookings: figures(bookings), searches: figures(searches) };
  } finally {
    await fleet.stop();
    await redis.stop();
    await db.drop();
  }
}

/** A collector that takes every export and answers 200: tracing's cost, not a collector's. */
async function sink(): Promise<{ url: string; counts: { batches: number; bytes: number }; close(): void }> {
  const counts = { batches: 0, bytes: 0 };
  const server = createServer((req, res) => {
    counts.batches++;
    req.on('data', (d: Buffer) => {
      counts.bytes += d.length;
    });
    req.on('end', () => res.writeHead(200).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, counts, close: () => server.close() };
}

async function child(): Promise<void> {
  const out: Measured = { off: await measureSide({}) };
  // Tracing exists from issue 26 on: a baseline before it measures off only.
  if (existsSync(path.join('src', 'telemetry', 'tracing.ts'))) {
    const collector = await sink();
    try {
      const on = await measureSide({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_SERVICE_NAME: 'fleet-inventory-bench',
      });
      out.on = { ...on, spans: { ...collector.counts } };
    } finally {
      collector.close();
    }
  }
  console.log(JSON.stringify(out));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--baseline');
  const baseline = at >= 0 ? (argv[at + 1] ?? DEFAULT_BASELINE) : (process.env.BASELINE ?? DEFAULT_BASELINE);
  const stamp = runStamp();
  const started = Date.now();
  const { now, base } = await measureAgainst<Measured>(baseline, 'bench/tracing.ts', 'TRACING_CHILD');
  const on = now.on;
  if (!on) throw new Error('this tree measured no tracing');
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
  const missed: string[] = [];
  for (const k of ['bookings', 'searches'] as const) {
    if (now.off[k].perSec < 0.9 * base.off[k].perSec)
      missed.push(`${k} off: ${now.off[k].perSec}/s, below 0.9x the baseline's ${base.off[k].perSec}/s`);
    if (now.off[k].p99 > base.off[k].p99 * 1.1 + 2)
      missed.push(`${k} off: p99 ${now.off[k].p99} ms, above the baseline's ${base.off[k].p99} ms (1.1x + 2 ms)`);
  }
  const row = (label: string, s: Side, k: 'bookings' | 'searches') =>
    `| ${label} | ${s[k].perSec} | ${s[k].p50} | ${s[k].p99} | ${ratio(s[k].perSec, base.off[k].perSec)} |`;
  const table = (k: 'bookings' | 'searches') =>
    [
      `| ${k} | per second | p50 ms | p99 ms | throughput / baseline |`,
      '|---|---|---|---|---|',
      row(`baseline \`${baseline}\`, OTEL_* unset`, base.off, k),
      row('this tree, OTEL_* unset', now.off, k),
      row('this tree, tracing on', on, k),
    ].join('\n');
  const text = `## Tracing

What tracing costs, and that it costs nothing when off: \`fleet serve\` as users run it (one API
process, ${VEHICLES} vehicles) on a private redis-server and a fresh database, three ways in one
run — a commit from before tracing and the audit trail, this tree with OTEL_* unset, and this tree
exporting every span (the default sampler, http/protobuf) to a sink in the benchmark's process.
${CONNECTIONS} keep-alive clients, ${SECONDS} s of bookings then ${SECONDS} s of searches each.
\`npm run bench:tracing\`; method in \`bench/tracing.ts\`.

Last run: commit \`${stamp.commit}\`, ${stamp.date}, node ${process.version}, ${os.cpus().length} cores, ${Math.round((Date.now() - started) / 1000)} s.

${table('bookings')}

${table('searches')}

With tracing on, bookings ran at ${ratio(on.bookings.perSec, now.off.bookings.perSec)}x and searches at ${ratio(on.searches.perSec, now.off.searches.perSec)}x of this tree with it off (p99 ${on.bookings.p99} against ${now.off.bookings.p99} ms, ${on.searches.p99} against ${now.off.searches.p99} ms); ${on.spans?.batches ?? 0} export requests, ${Math.round((on.spans?.bytes ?? 0) / 1024)} KiB of spans.

${missed.length ? `Targets missed (the run exited 1): ${missed.join('; ')}.` : 'Targets met: with OTEL_* unset, throughput at least 0.9x and p99 within 1.1x + 2 ms of the baseline, on both.'}
`;
  await writeSection('## Tracing', text);
  await mkdir(path.join('bench', 'results'), { recursive: true });
  await writeFile(
    path.join('bench', 'results', 'tracing-latest.json'),
    `${JSON.stringify({ ...stamp, baseline, now, base, missed }, null, 2)}\n`,
  );
  console.log(text);
  if (missed.length) process.exitCode = 1;
}

if (process.env.TRACING_CHILD) await child();
else await main();

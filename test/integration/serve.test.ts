/**
 * `fleet serve` as `npm start` runs it: migrations, demo seed, one API process per core behind
 * one port, the sync worker and the sweeper in the primary; requests land on every process,
 * metrics are summed across them, and SIGTERM stops everything cleanly.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { freePort } from '../support/redis.ts';
import { startStores, type Stores } from '../support/stores.ts';
import { setTimeout as sleep } from 'node:timers/promises';

let stores: Stores;
let child: ChildProcess;
let base: string;
let output = '';
const tokens: Record<string, string> = {};

before(async () => {
  stores = await startStores({ redis: { external: 'never' } });
  const port = await freePort();
  child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'serve', '--demo', '--vehicles-per-city', '4'],
    {
      env: {
        ...process.env,
        PORT: String(port),
        WEB_CONCURRENCY: '2',
        REDIS_URL: stores.server.url,
        DATABASE_URL: stores.db.url,
        LOG_LEVEL: 'warn',
        JWT_SECRET: 'serve-test-secret-of-32-bytes-or-more',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const deadline = Date.now() + 60_000;
  while (!/ops: +(\S+)/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`serve did not start:\n${output}`);
    await sleep(100);
  }
  for (const role of ['customer', 'ops']) tokens[role] = new RegExp(`${role}: +(\\S+)`).exec(output)![1]!;
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  if (child.exitCode === null) child.kill('SIGKILL');
  await stores.stop();
});

test('npm start serves on every API process, with one view of metrics, and stops cleanly on SIGTERM', {
  timeout: 120_000,
}, async () => {
  const pids = new Set<number>();
  for (let i = 0; i < 40 && pids.size < 2; i++) {
    // A fresh connection each time, so the cluster may hand it to either process.
    const r = await fetch(`${base}/healthz`, { headers: { connection: 'close' } });
    pids.add(((await r.json()) as { pid: number }).pid);
  }
  assert.equal(pids.size, 2, 'both API processes answer on the one port');

  const auth = (role: string) => ({
    authorization: `Bearer ${tokens[role]}`,
    'content-type': 'application/json',
    connection: 'close',
  });
  const from = new Date(Math.ceil((Date.now() + 30 * 24 * 3600_000) / 3600_000) * 3600_000);
  const search = await fetch(
    `${base}/v1/cities/blr/availability?from=${from.toISOString()}&to=${new Date(from.getTime() + 40 * 3600_000).toISOString()}`,
    { headers: auth('customer') },
  );
  assert.equal(search.status, 200, await search.clone().text());
  const hit = ((await search.json()) as { vehicles: { vehicleId: string }[] }).vehicles[0];
  assert.ok(hit, 'the demo fleet is searchable');
  const bookOk = async () => {
    const text = await fetch(`${base}/metrics`, { headers: { connection: 'close' } }).then((r) => r.text());
    const line = text.split('\n').find((l) => l.startsWith('fleet_commands_total{command="book",outcome="ok"}'));
    return Number(line?.split(' ')[1] ?? 0);
  };
  // The demo's bookings were made by the primary: count from here.
  const before = await bookOk();
  const BOOKINGS = 20;
  for (let i = 0; i < BOOKINGS; i++) {
    const at = new Date(from.getTime() + i * 5 * 3600_000);
    // A fresh connection each: the bookings spread over both API processes.
    const r: Response = await fetch(`${base}/v1/bookings`, {
      method: 'POST',
      headers: auth('customer'),
      body: JSON.stringify({
        vehicleId: hit.vehicleId,
        from: at.toISOString(),
        to: new Date(at.getTime() + 3600_000).toISOString(),
      }),
    });
    assert.equal(r.status, 201, await r.text());
  }
  // Whichever process answers /metrics, it reports the bookings of both: exactly all of them. (One
  // process's own figure would be about half; all 20 on one process happens once in half a million.)
  for (let i = 0; i < 4; i++) assert.equal((await bookOk()) - before, BOOKINGS, 'metrics sum the processes');

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, output.slice(-2000));
  // Nothing listens any more: every API process is gone too.
  await assert.rejects(fetch(`${base}/healthz`));
});

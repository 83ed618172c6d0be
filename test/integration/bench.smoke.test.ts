/**
 * Smoke: `npm run bench -- --quick` runs every side-by-side scenario at tiny scale (floor, this
 * service, PostgreSQL only, search, seed day, sync lag), exits cleanly and leaves the tree alone.
 * Whether it is fast is the full benchmark's question, not this test's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

/** Runs a bench file under tsx; its exit code and what it printed. */
async function runBench(
  file: string,
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; log: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...file.split(' ')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let log = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    log += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out, log };
}

test('the side-by-side benchmark runs end to end in quick mode', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-bench-smoke-'));
  const out = path.join(dir, 'quick.json');
  try {
    const before = readFileSync('docs/benchmarks.md', 'utf8');
    const { code, log } = await runBench('bench/side-by-side.ts --quick', { BENCH_QUICK_OUT: out });
    assert.equal(code, 0, log.slice(-3000));
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      mode: string;
      writes: unknown;
      reads: unknown;
      seedDay: unknown;
      ratios: Record<string, unknown>;
      targets: unknown[];
    };
    assert.equal(result.mode, 'quick');
    for (const k of ['writes', 'reads', 'seedDay'] as const) assert.ok(result[k], `${k} measured`);
    assert.ok(Object.keys(result.ratios).length >= 3, "ratios b/a, b/c, b'/a'");
    assert.equal(readFileSync('docs/benchmarks.md', 'utf8'), before, 'quick mode writes nothing in the tree');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the search-cost benchmark measures every kind of search in a small city', { timeout: 120_000 }, async () => {
  // Its measuring half only (what it runs in this tree and in the baseline's worktree): no worktree, no docs.
  const { code, out, log } = await runBench('bench/search-cost.ts', {
    SEARCH_COST_CHILD: '1',
    BENCH_SIZES: '60',
    BENCH_SEARCHES: '40',
  });
  assert.equal(code, 0, log.slice(-3000));
  const result = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<
    string,
    Record<string, { cpuUs: number; bytes: number; hits: number; p50: number }>
  >;
  const city = result['60'];
  assert.ok(city, 'the 60-vehicle city measured');
  for (const kind of ['price', 'nearest', 'for_you', 'radius']) {
    const cost = city[kind];
    assert.ok(cost && cost.cpuUs > 0 && cost.bytes > 0 && cost.p50 > 0, `${kind}: ${JSON.stringify(cost)}`);
  }
  assert.ok((city.price?.hits ?? 0) > 0, 'searches found vehicles');
});

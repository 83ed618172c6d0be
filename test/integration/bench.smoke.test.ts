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

test('the side-by-side benchmark runs end to end in quick mode', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleet-bench-smoke-'));
  const out = path.join(dir, 'quick.json');
  try {
    const before = readFileSync('docs/benchmarks.md', 'utf8');
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/side-by-side.ts', '--quick'], {
      env: { ...process.env, BENCH_QUICK_OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
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

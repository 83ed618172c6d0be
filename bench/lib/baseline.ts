/**
 * "This tree against a baseline commit, in one run": a bench file measures itself here and in a
 * temporary git worktree of the baseline (with this tree's copy of the bench file and its
 * helpers), each as a child whose last line of output is its JSON; then its section of
 * docs/benchmarks.md is replaced. Used by bench/calendar-cost.ts and bench/search-cost.ts.
 */
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Runs `file` under tsx in `cwd` with `childVar=1`; parses its last line of output. */
function runChild<T>(cwd: string, file: string, childVar: string): T {
  const out = execFileSync('npx', ['tsx', file], {
    cwd,
    env: { ...process.env, [childVar]: '1' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as T;
}

/** The bench `file`'s measurement in this tree, then at `baseline`. */
export async function measureAgainst<T>(
  baseline: string,
  file: string,
  childVar: string,
): Promise<{ now: T; base: T }> {
  const root = process.cwd();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fleet-bench-baseline-'));
  try {
    execFileSync('git', ['worktree', 'add', '--detach', dir, baseline], { stdio: 'ignore' });
    await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    for (const f of [file, 'bench/lib/baseline.ts', 'bench/lib/stamp.ts', 'bench/lib/stats.ts', 'src/sim/stamp.ts'])
      await copyFile(path.join(root, f), path.join(dir, f));
    const now = runChild<T>(root, file, childVar);
    const base = runChild<T>(dir, file, childVar);
    return { now, base };
  } finally {
    execFileSync('git', ['worktree', 'remove', '--force', dir], { stdio: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replaces the section of docs/benchmarks.md that opens with `heading` (or appends it). */
export async function writeSection(heading: string, text: string): Promise<void> {
  const file = path.join('docs', 'benchmarks.md');
  const doc = await readFile(file, 'utf8');
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`${escaped}[^\\n]*\\n[\\s\\S]*?(?=\\n## |$)`);
  await writeFile(file, re.test(doc) ? doc.replace(re, () => text) : `${doc.trimEnd()}\n\n${text}`);
}

/**
 * What every published result (benchmarks, the simulator's comparison) carries: the commit it
 * measured (with `+changes` when
 * the work tree differed from it) and when it ran.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const git = (args: string[]) =>
  execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

export function commitStamp(): string {
  try {
    const head = git(['rev-parse', '--short=12', 'HEAD']);
    // Results and docs a run rewrites do not count as changes to what was measured.
    const changed = git(['status', '--porcelain', '--', '.', ':!docs', ':!bench/results', ':!node_modules'])
      .split('\n')
      .filter(Boolean);
    return changed.length ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

export function runStamp(): { commit: string; date: string } {
  return { commit: commitStamp(), date: new Date().toISOString() };
}

/**
 * Replaces the text between `<!-- name:start -->` and `<!-- name:end -->` in `file` with `body`:
 * a document keeps its prose, and the figures a run produced are only ever written by that run.
 */
export function writeSection(file: string, name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const text = readFileSync(file, 'utf8');
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${file} has no ${start} ... ${end} section`);
  writeFileSync(file, `${text.slice(0, i)}${start}\n${body}\n${text.slice(j)}`);
}

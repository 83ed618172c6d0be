/**
 * What every published result (benchmarks, the simulator's comparison) carries: the commit it
 * measured (with `+changes` when
 * the work tree differed from it) and when it ran.
 */
import { execFileSync } from 'node:child_process';

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

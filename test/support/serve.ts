/**
 * `fleet serve` as users run it (`npm start`): its real process tree (the primary with the sync,
 * resolver, webhook dispatcher, sweeper and failover monitor; API processes forked per
 * WEB_CONCURRENCY), started from the repository with the environment a test gives it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './redis.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServedFleet {
  base: string;
  child: ChildProcess;
  /** Everything the process tree printed so far. */
  output(): string;
  /** Resolves with the exit code when the primary process exits. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
  /** kill -9 of the whole process tree (the primary and its API processes: one process group). */
  kill9(): Promise<void>;
}

export async function startServe(
  env: Record<string, string>,
  args: string[] = ['--demo'],
  port?: number,
  /** Node's own flags (`--cpu-prof`, say); the API processes it forks inherit them. */
  nodeArgs: string[] = [],
): Promise<ServedFleet> {
  port ??= await freePort();
  // A process group of its own, so that kill9 reaches the API processes it forks too.
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli/main.ts', 'serve', ...args], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  groups.add(child);
  let output = '';
  const hear = (d: Buffer) => {
    output += d.toString();
  };
  child.stdout?.on('data', hear);
  child.stderr?.on('data', hear);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 90_000;
  while (!/ops: +\S+/.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`serve did not start:\n${output}`);
    }
    await sleep(100);
  }
  return {
    base: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    exited,
    async stop() {
      groups.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
    async kill9() {
      groups.delete(child);
      killGroup(child, 'SIGKILL');
      await exited;
    },
  };
}

const groups = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of groups) killGroup(c, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

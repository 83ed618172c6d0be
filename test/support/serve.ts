/**
 * `fleet serve` as users run it (`npm start`): its real process tree (the primary with the sync,
 * resolver, webhook dispatcher, sweeper and failover monitor; API processes forked per
 * WEB_CONCURRENCY), started from the repository with the environment a test gives it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './redis.ts';

export interface ServedFleet {
  base: string;
  child: ChildProcess;
  /** Everything the process tree printed so far. */
  output(): string;
  /** Resolves with the exit code when the primary process exits. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export async function startServe(env: Record<string, string>, args: string[] = ['--demo']): Promise<ServedFleet> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...args], {
    env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base: `http://127.0.0.1:${port}`,
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

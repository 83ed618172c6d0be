/** The chaos run's supervisor: it keeps the service and the sync worker running, as systemd would. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { UnexpectedExit } from './chaos-types.ts';
import { round } from './stats.ts';
import { messageOf } from '../domain/errors.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The processes the supervisor keeps alive, as systemd or Kubernetes would: the service (`fleet
 * serve`) and the sync worker (`fleet worker`). A fault kills the worker on purpose; any other exit
 * is recorded (the run fails on it) and the process started again.
 */
export class Supervisor {
  service?: ChildProcess;
  worker?: ChildProcess;
  private output = '';
  private workerOutput = '';
  private stopping = false;
  private perCity = 0;
  readonly unexpectedExits: UnexpectedExit[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly started: () => number,
  ) {}

  async startService(perCity: number): Promise<void> {
    this.perCity = perCity;
    const service = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'src/cli/main.ts'),
        'serve',
        '--demo',
        '--vehicles-per-city',
        String(perCity),
      ],
      {
        cwd: ROOT,
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.service = service;
    const mark = this.output.length;
    const hear = (d: Buffer) => {
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    service.stdout?.on('data', hear);
    service.stderr?.on('data', hear);
    service.once('exit', (code, signal) => {
      if (this.stopping || this.service !== service) return;
      this.recordExit('fleet serve', code, signal, this.output);
      void this.startService(this.perCity).catch((err: unknown) => {
        this.output += `\n[supervisor] the restart failed: ${messageOf(err)}\n`;
      });
    });
    const deadline = Date.now() + 600_000;
    while (!this.output.slice(Math.max(0, mark - 20)).includes('Demo tokens')) {
      if (service.exitCode !== null || Date.now() > deadline)
        throw new Error(`the service did not start:\n${this.output.slice(-3000)}`);
      await sleep(100);
    }
  }

  startWorker(): void {
    const worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'worker'], {
      cwd: ROOT,
      env: this.env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.worker = worker;
    worker.stderr?.on('data', (d: Buffer) => {
      this.workerOutput = (this.workerOutput + d.toString()).slice(-20_000);
    });
    worker.once('exit', (code, signal) => {
      // A fault's kill is SIGKILL from here (killWorker); anything else is unexpected.
      if (this.stopping || this.worker !== worker || worker.killedOnPurpose) return;
      this.recordExit('fleet worker', code, signal, this.workerOutput);
      this.startWorker();
    });
  }

  /** The fault: kill -9 of the sync worker, restarted after a second. */
  async killWorker(): Promise<void> {
    const worker = this.worker;
    if (worker) {
      worker.killedOnPurpose = true;
      worker.kill('SIGKILL');
    }
    await sleep(1_000);
    this.startWorker();
  }

  private recordExit(name: UnexpectedExit['process'], code: number | null, signal: string | null, out: string) {
    this.unexpectedExits.push({
      process: name,
      atSecond: round((Date.now() - this.started()) / 1000),
      code,
      signal,
      lastWords: out.slice(-1500),
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const child of [this.worker, this.service]) {
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
  }

  get log(): string {
    return this.output;
  }
}

declare module 'node:child_process' {
  interface ChildProcess {
    /** Set by the supervisor before a fault kills the process. */
    killedOnPurpose?: boolean;
  }
}

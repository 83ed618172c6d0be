/**
 * Servers under test run in child processes (`node --import tsx bench/<x>.ts`), so the load
 * generator never shares an event loop with them. Parent and child talk over the IPC channel:
 * the child announces `ready` with its URL, then answers calls (`stats`, `probe`, `stop`, ...).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const live = new Set<ChildProcess>();
// Whatever happens to the parent, no server under test outlives it.
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

type Reply = { id: number; result?: unknown; error?: string };

export interface Child {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  call<T = unknown>(method: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** Asks the child to stop (it closes its server and connections and exits); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export async function spawnChild(
  script: string,
  env: Record<string, string>,
  opts: { nodeArgs?: string[]; readyTimeoutMs?: number } = {},
): Promise<Child> {
  const file = path.join(BENCH_DIR, script);
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(proc);
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      live.delete(proc);
      resolve();
    }),
  );
  let seq = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  proc.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`${script} exited (${code ?? signal})`));
    pending.clear();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} not ready after ${opts.readyTimeoutMs ?? 120_000} ms`)),
      opts.readyTimeoutMs ?? 120_000,
    );
    proc.on('message', (m: { type?: string; url?: string } & Reply) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.url ?? '');
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(`${script}: ${m.error}`));
      else p.resolve(m.result);
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before ready (${code ?? signal})`));
    });
  });
  const call = <T>(method: string, args?: unknown, timeoutMs = 120_000) =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${script}: ${method} timed out`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      proc.send({ id, method, args });
    });
  return {
    name: script,
    url,
    pid: proc.pid ?? 0,
    call,
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      call('stop', undefined, graceMs).catch(() => {});
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The child's side: `handlers` answer the parent's calls; `stop` must release everything, after
 * which the process exits (so `--cpu-prof` gets to write its profile).
 */
export function serveParent(
  url: string,
  handlers: Record<string, (args: unknown) => unknown>,
  stop: () => Promise<void>,
): void {
  if (!process.send) throw new Error('run me through bench/side-by-side.ts (no IPC channel)');
  const send = (m: unknown) =>
    new Promise<void>((resolve) => {
      process.send!(m, undefined, undefined, () => resolve());
    });
  process.on('message', (m: { id: number; method: string; args?: unknown }) => {
    if (m.method === 'stop') {
      void stop()
        .catch((err: unknown) => console.error(err))
        .then(() => send({ id: m.id, result: true }))
        .finally(() => process.exit(0));
      return;
    }
    const h = handlers[m.method];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`no method ${m.method}`);
        return h(m.args);
      })
      .then(
        (result) => send({ id: m.id, result }),
        (err: unknown) => send({ id: m.id, error: (err as Error).message }),
      );
  });
  // The parent died: nothing left to serve.
  process.on('disconnect', () => {
    void stop().finally(() => process.exit(0));
  });
  void send({ type: 'ready', url });
}

/** Per-process CPU time, for the parent's breakdown of where the cores went. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

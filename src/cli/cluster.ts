/**
 * `serve` on every core: the primary process runs the singletons (migrations, demo seed, sync
 * worker, sweeper) and forks one API process per core; the processes share the port (node:cluster)
 * and nothing else: every command goes through Redis, so any process may take any request.
 *
 * Metrics stay one view: `/metrics` of any API process (and METRICS_PORT on the primary) answers
 * the sum over all processes, gathered over the cluster's IPC channel.
 */
import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { registry } from '../metrics.ts';

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];
type Message =
  | { type: 'fleet:metrics?'; id: string }
  | { type: 'fleet:metrics'; id: string; text?: string; json?: MetricsJson }
  | { type: 'fleet:shutdown' };

const TIMEOUT_MS = 2_000;

/** To a worker that may have died meanwhile: the failure is reported by the callback, not thrown. */
function send(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message, undefined, undefined, () => undefined);
}

/** Primary: forks `count` API workers, keeps them alive, answers their metrics requests. */
export class ApiWorkers {
  private stopping = false;
  private recentDeaths: number[] = [];
  private readonly pending = new Map<
    string,
    { left: Set<number>; parts: MetricsJson[]; done: (parts: MetricsJson[]) => void }
  >();

  constructor(
    private readonly count: number,
    private readonly log: Logger,
  ) {}

  /** Forks the workers and resolves with the shared port when all of them listen. */
  async start(): Promise<number> {
    cluster.on('message', (worker, message: Message) => this.onMessage(worker, message));
    // A message to a worker that just died fails with an 'error' event on the Worker: heard here,
    // or it would end this process, and every API process with it.
    cluster.on('fork', (worker) =>
      worker.on('error', (err) => this.log.warn({ pid: worker.process.pid, err: err.message }, 'API process channel')),
    );
    cluster.on('exit', (worker, code, signal) => {
      if (this.stopping) return;
      // An API process died (a crash, an OOM kill): the others keep serving; replace it, backing
      // off when replacements die one after another (a fault that outlives a restart).
      const now = Date.now();
      this.recentDeaths = this.recentDeaths.filter((t) => now - t < 60_000);
      this.recentDeaths.push(now);
      const delayMs = Math.min(10_000, 100 * 2 ** (this.recentDeaths.length - 1));
      this.log.error(
        { pid: worker.process.pid, code, signal, restartInMs: delayMs },
        'API process died; starting another',
      );
      setTimeout(() => {
        if (!this.stopping) cluster.fork();
      }, delayMs);
    });
    const listening = Array.from(
      { length: this.count },
      () =>
        new Promise<number>((resolve, reject) => {
          const w = cluster.fork();
          w.once('listening', (address) => resolve(address.port));
          w.once('exit', (code) => reject(new Error(`API process exited with ${code} before listening`)));
        }),
    );
    const [port] = await Promise.all(listening);
    if (port === undefined) throw new Error('no API process to listen');
    return port;
  }

  /** Asks every worker to finish its requests and exit; kills the ones that do not in time. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const timer = setTimeout(() => {
              w.kill('SIGKILL');
              resolve();
            }, graceMs);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            send(w, { type: 'fleet:shutdown' });
          }),
      ),
    );
  }

  /** The metrics of the primary and every worker, summed. */
  async metrics(): Promise<string> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && w.isConnected());
    const id = randomUUID();
    const parts = await new Promise<MetricsJson[]>((resolve) => {
      const entry = { left: new Set(workers.map((w) => w.id)), parts: [] as MetricsJson[], done: resolve };
      this.pending.set(id, entry);
      for (const w of workers) send(w, { type: 'fleet:metrics?', id });
      if (workers.length === 0) resolve([]);
      // A worker that does not answer in time is left out rather than stalling the scrape.
      setTimeout(() => resolve(entry.parts), TIMEOUT_MS).unref();
    });
    this.pending.delete(id);
    return AggregatorRegistry.aggregate([(await registry.getMetricsAsJSON()) as MetricsJson, ...parts]).metrics();
  }

  private onMessage(worker: Worker, message: Message): void {
    if (message?.type === 'fleet:metrics' && message.json) {
      const p = this.pending.get(message.id);
      if (!p) return;
      p.parts.push(message.json);
      p.left.delete(worker.id);
      if (p.left.size === 0) p.done(p.parts);
    } else if (message?.type === 'fleet:metrics?') {
      void this.metrics().then(
        (text) => send(worker, { type: 'fleet:metrics', id: message.id, text }),
        (err: unknown) => this.log.warn({ err }, 'cluster metrics not gathered'),
      );
    }
  }
}

/** To the primary, while the channel is open (a primary that died ends this process anyway). */
function toPrimary(message: Message): void {
  if (process.connected) process.send?.(message, undefined, undefined, () => undefined);
}

/** Worker side: answers the primary's requests; returns the cluster-wide metrics getter and a shutdown signal. */
export function apiWorkerChannel(): { metrics: () => Promise<string>; shutdown: Promise<void> } {
  const waiting = new Map<string, (text: string) => void>();
  let onShutdown: () => void = () => undefined;
  const shutdown = new Promise<void>((resolve) => {
    onShutdown = resolve;
  });
  process.on('message', (message: Message) => {
    if (message?.type === 'fleet:metrics?') {
      void registry
        .getMetricsAsJSON()
        .then((json) => toPrimary({ type: 'fleet:metrics', id: message.id, json: json as MetricsJson }));
    } else if (message?.type === 'fleet:metrics' && message.text !== undefined) {
      waiting.get(message.id)?.(message.text);
      waiting.delete(message.id);
    } else if (message?.type === 'fleet:shutdown') {
      onShutdown();
    }
  });
  return {
    shutdown,
    metrics: () =>
      new Promise<string>((resolve) => {
        const id = randomUUID();
        waiting.set(id, resolve);
        toPrimary({ type: 'fleet:metrics?', id });
        // The primary is gone or slow: this process's own figures are better than nothing.
        setTimeout(() => {
          if (waiting.delete(id)) void registry.metrics().then(resolve);
        }, TIMEOUT_MS * 2).unref();
      }),
  };
}

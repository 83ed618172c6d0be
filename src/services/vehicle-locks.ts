/**
 * Per-vehicle, in-process ordering of commands (the JVM ReentrantLock of the original system).
 * It keeps one process from sending a pile of doomed commands for one vehicle to Redis at once,
 * and sheds load early: a bounded queue and a bounded wait, then BUSY. Correctness never depends
 * on it: the Lua script is the guard, across any number of processes.
 */
import { DomainError } from '../domain/errors.ts';
import { metrics } from '../metrics.ts';
import { defaults } from '../config.ts';

export interface VehicleLockOptions {
  /** Commands allowed to wait behind the running one, per vehicle. */
  maxQueue: number;
  /** Longest a command may wait for its turn. */
  maxWaitMs: number;
  /** Told how long each command waited (default: the lock-wait histogram). */
  onWait?: (ms: number, outcome: 'acquired' | 'queue_full' | 'timeout') => void;
}

interface Waiter {
  start: () => void;
  timer: NodeJS.Timeout;
}

interface Lane {
  running: boolean;
  queue: Waiter[];
}

export class VehicleLocks {
  private readonly lanes = new Map<string, Lane>();

  private readonly opts: VehicleLockOptions;

  constructor(opts: VehicleLockOptions = { maxQueue: defaults.LOCK_MAX_QUEUE, maxWaitMs: defaults.LOCK_MAX_WAIT_MS }) {
    this.opts = { ...opts, onWait: opts.onWait ?? ((ms, outcome) => metrics.lockWait.observe({ outcome }, ms / 1000)) };
  }

  /** Runs `fn` when no other command of this process holds `vehicleKey`. */
  async run<T>(vehicleKey: string, fn: () => Promise<T>): Promise<T> {
    await this.acquire(vehicleKey);
    try {
      return await fn();
    } finally {
      this.release(vehicleKey);
    }
  }

  /** Vehicles with a command running or waiting (for tests and metrics). */
  get activeLanes(): number {
    return this.lanes.size;
  }

  private acquire(key: string): Promise<void> {
    const lane = this.lanes.get(key);
    if (!lane) {
      this.lanes.set(key, { running: true, queue: [] });
      this.opts.onWait?.(0, 'acquired');
      return Promise.resolve();
    }
    if (lane.queue.length >= this.opts.maxQueue) {
      this.opts.onWait?.(0, 'queue_full');
      return Promise.reject(
        new DomainError('BUSY', `too many commands waiting for vehicle ${key}`, { vehicle: key, reason: 'queue_full' }),
      );
    }
    const queuedAt = performance.now();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: () => {
          clearTimeout(waiter.timer);
          this.opts.onWait?.(performance.now() - queuedAt, 'acquired');
          resolve();
        },
        timer: setTimeout(() => {
          lane.queue.splice(lane.queue.indexOf(waiter), 1);
          this.opts.onWait?.(performance.now() - queuedAt, 'timeout');
          reject(
            new DomainError('BUSY', `waited over ${this.opts.maxWaitMs} ms for vehicle ${key}`, {
              vehicle: key,
              reason: 'timeout',
            }),
          );
        }, this.opts.maxWaitMs),
      };
      lane.queue.push(waiter);
    });
  }

  private release(key: string): void {
    const lane = this.lanes.get(key);
    if (!lane) return;
    const next = lane.queue.shift();
    if (next) next.start();
    else this.lanes.delete(key);
  }
}

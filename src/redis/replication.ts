/**
 * Synchronous replication of acknowledged writes (DESIGN §8): after a script that changed state,
 * `WAIT n timeout` on the same connection confirms that `n` replicas hold it before the caller is
 * answered, so a failover cannot take an acknowledged write back.
 *
 * WAIT covers every write the connection made before it, so one WAIT confirms every script whose
 * reply arrived before it was sent (group commit): while one WAIT is in flight the next scripts
 * queue up and the following WAIT confirms them all. A WAIT blocks its connection until it
 * returns, which is why the waits are coalesced instead of sent one per command.
 *
 * A reply and its confirmation must come from the same connection: a connection that closed in
 * between (a failover) may have lost the write, and a WAIT on the new connection would confirm
 * nothing of it. Each node's connection carries an epoch, bumped on every close; a mismatch (or
 * fewer replicas than required) is `ReplicationUnconfirmed`: the outcome is unknown and the
 * command is sent again with its idempotency key (scripts.ts).
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import { metrics } from '../metrics.ts';
import type { RedisConnection } from './scripts.ts';

export class ReplicationUnconfirmed extends Error {
  constructor(reason: string) {
    super(`write not confirmed by its replicas: ${reason}`);
    this.name = 'ReplicationUnconfirmed';
  }
}

export interface ReplicationOptions {
  /** Replicas that must hold each write (0: no WAIT). */
  replicas: number;
  /**
   * `auto` (REDIS_SYNC_REPLICAS=auto): one replica when the node has one — a primary left without
   * replicas (its replica was promoted after it died) keeps taking writes, protected by its AOF
   * alone until a replica is back. Without `auto` the count is strict: no replicas, no writes.
   */
  auto?: boolean;
  /** WAIT's own timeout (ms). */
  timeoutMs: number;
}

interface Waiter { epoch: number; resolve: () => void; reject: (err: Error) => void }

interface NodeGate { epoch: number; waiting: Waiter[]; inflight: boolean; replicas?: number; replicasAt: number; refreshing?: Promise<void> }

/** Where a write went: the node (and its connection epoch) that answered it. */
export interface WriteTicket { node: Redis; epoch: number }

export class SyncReplication {
  private readonly gates = new WeakMap<Redis, NodeGate>();

  constructor(private readonly conn: RedisConnection, readonly opts: ReplicationOptions) {}

  get enabled(): boolean {
    return this.opts.replicas > 0;
  }

  /** Replicas a write to this node must reach now. */
  private async required(node: Redis, gate: NodeGate): Promise<number> {
    if (!this.opts.auto) return this.opts.replicas;
    if (gate.replicas === undefined || Date.now() - gate.replicasAt > 1_000) {
      gate.refreshing ??= node.info('replication').then((info) => {
        gate.replicas = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0);
        gate.replicasAt = Date.now();
      }).catch(() => undefined).finally(() => { gate.refreshing = undefined; });
      // The first time, wait for the answer; later, the last known count will do meanwhile.
      if (gate.replicas === undefined) await gate.refreshing;
    }
    return Math.min(this.opts.replicas, gate.replicas ?? this.opts.replicas);
  }

  /** Before a write to `key`: the node that owns it and its connection epoch now. */
  ticket(key: string): WriteTicket | undefined {
    const node = this.nodeFor(key);
    return node ? { node, epoch: this.gate(node).epoch } : undefined;
  }

  /**
   * After the write's reply: resolves once `replicas` replicas hold it; rejects with
   * ReplicationUnconfirmed when they do not in time, or when the connection changed meanwhile.
   */
  async confirm(key: string, before: WriteTicket | undefined): Promise<void> {
    if (!this.enabled) return;
    const node = this.nodeFor(key);
    if (!node || !before || node !== before.node) throw new ReplicationUnconfirmed('the key moved to another node');
    const gate = this.gate(node);
    if (gate.epoch !== before.epoch) throw new ReplicationUnconfirmed('the connection was lost during the write');
    if ((await this.required(node, gate)) === 0) return;
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      gate.waiting.push({ epoch: gate.epoch, resolve, reject });
      if (!gate.inflight) void this.flush(node, gate);
    });
    metrics.replicationWait.observe((performance.now() - started) / 1000);
  }

  /** One WAIT for everything that queued up; then the next round, if more did meanwhile. */
  private async flush(node: Redis, gate: NodeGate): Promise<void> {
    gate.inflight = true;
    while (gate.waiting.length > 0) {
      const batch = gate.waiting;
      gate.waiting = [];
      const sentAt = gate.epoch;
      let failure: Error | undefined;
      const required = Math.max(1, await this.required(node, gate));
      try {
        const acked = Number(await node.wait(required, this.opts.timeoutMs));
        if (gate.epoch !== sentAt) failure = new ReplicationUnconfirmed('the connection was lost while waiting');
        else if (acked < required) {
          failure = new ReplicationUnconfirmed(`${acked} of ${required} replicas within ${this.opts.timeoutMs} ms`);
          gate.replicasAt = 0; // look again: a replica may be gone
        }
      } catch (err) {
        failure = new ReplicationUnconfirmed((err as Error).message);
      }
      if (failure) metrics.replicationUnconfirmed.inc();
      for (const w of batch) {
        if (failure) w.reject(failure);
        else if (w.epoch !== sentAt) w.reject(new ReplicationUnconfirmed('the connection was lost during the write'));
        else w.resolve();
      }
    }
    gate.inflight = false;
  }

  private gate(node: Redis): NodeGate {
    let gate = this.gates.get(node);
    if (!gate) {
      const g: NodeGate = { epoch: 0, waiting: [], inflight: false, replicasAt: 0 };
      // Replies that arrive on a connection precede its close event, so a reply always sees the
      // epoch of the connection that carried it.
      node.on('close', () => { g.epoch++; });
      this.gates.set(node, g);
      gate = g;
    }
    return gate;
  }

  private nodeFor(key: string): Redis | undefined {
    if (!(this.conn instanceof Cluster)) return this.conn;
    const owner = this.conn.slots[calculateSlot(key)]?.[0];
    if (!owner) return undefined;
    return this.conn.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  }
}

/**
 * `REDIS_SYNC_REPLICAS` resolved: a number as given, or `auto` — 1 when the primary (every master,
 * on a cluster) has a replica now, else 0.
 */
export async function resolveSyncReplicas(conn: RedisConnection, setting: string): Promise<number> {
  if (setting !== 'auto') return Number(setting);
  await conn.ping(); // a cluster knows its masters once it is ready
  const masters = conn instanceof Cluster ? conn.nodes('master') : [conn];
  if (masters.length === 0) return 0;
  const counts = await Promise.all(masters.map(async (m) => Number(/connected_slaves:(\d+)/.exec(await m.info('replication'))?.[1] ?? 0)));
  return Math.min(...counts) > 0 ? 1 : 0;
}

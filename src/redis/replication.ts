/**
 * Synchronous replication of acknowledged writes (architecture.md §8): a script that changed state is
 * acknowledged only once `n` replicas hold it, so a failover cannot take an acknowledged write back.
 *
 * `WAIT n timeout` waits for the replicas to reach the last write *of the connection it is sent
 * on*, and blocks that connection meanwhile. Sent on the connection that carries the scripts, it
 * would stall them all for a replication round trip; so each node has a second connection, the
 * confirmer, which runs rounds back to back: a tiny write of its own (`replication_probe.lua`, which
 * also answers the node's run id), then `WAIT`. The probe is executed after every script whose reply
 * had arrived when the round began, so its offset covers theirs, and WAIT on it confirms them all
 * (group commit) while the scripts' connection keeps going.
 *
 * A round confirms a write only if the probe ran on the node that ran the write: the run id the
 * probe answers must be the one of the scripts' connection when the write was answered. A
 * connection that closed in between (a failover) may have lost the write; that, a probe on another
 * node, or fewer replicas than required in time, is `ReplicationUnconfirmed`: the outcome is
 * unknown and the command is sent again with its idempotency key (scripts.ts).
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import { metrics } from '../metrics.ts';
import { keys } from './keys.ts';
import {
  callScript,
  loadScripts,
  ReplicationUnconfirmed,
  scriptsLoaded,
  type RedisConnection,
  type WriteConfirmer,
} from './scripts.ts';
import { survived } from '../log.ts';
import { messageOf } from '../domain/errors.ts';

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

interface Waiter {
  runId: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface NodeGate {
  /**
   * Bumped whenever the scripts' connection to this node closes after it was ready: only a ready
   * connection carries commands (ioredis queues them offline until then), so the refused attempts
   * of a reconnect leave it alone, and a write queued meanwhile is confirmed on the connection
   * that sends it instead of being sent a second time (bench/failover.ts: ~60 ms of each window).
   */
  epoch: number;
  /** The run id of the server the scripts' connection reaches, for the current epoch. */
  runId?: Promise<string>;
  confirmer?: Redis;
  waiting: Waiter[];
  inflight: boolean;
  replicas?: number;
  replicasAt: number;
  refreshing?: Promise<void>;
}

/** Where a write went: the node and its connection epoch when the write was sent. */
export interface WriteTicket {
  node: Redis;
  epoch: number;
}

const runIdOf = (info: string) => /run_id:(\w+)/.exec(info)?.[1] ?? '';
const tagOf = (key: string) => /^\{[^}]*\}/.exec(key)?.[0] ?? '';

export class SyncReplication implements WriteConfirmer {
  private readonly gates = new WeakMap<Redis, NodeGate>();
  private readonly confirmers = new Set<Redis>();

  constructor(
    private readonly conn: RedisConnection,
    readonly opts: ReplicationOptions,
  ) {}

  get enabled(): boolean {
    return this.opts.replicas > 0;
  }

  /** Before a write to `key`: the node that owns it and its connection epoch now. */
  ticket(key: string): WriteTicket | undefined {
    if (!this.enabled) return undefined;
    const node = this.nodeFor(key);
    return node ? { node, epoch: this.gate(node).epoch } : undefined;
  }

  /**
   * After the write's reply: resolves once enough replicas hold it; rejects with
   * ReplicationUnconfirmed when they do not in time, or when the write's connection changed.
   */
  async confirm(key: string, before: WriteTicket | undefined): Promise<void> {
    if (!this.enabled) return;
    const node = this.nodeFor(key);
    if (!node || !before || node !== before.node) throw new ReplicationUnconfirmed('the key moved to another node');
    const gate = this.gate(node);
    if (gate.epoch !== before.epoch) throw new ReplicationUnconfirmed('the connection was lost during the write');
    if ((await this.required(node, gate)) === 0) return;
    const runId = (await gate.runId) ?? '';
    if (gate.epoch !== before.epoch) throw new ReplicationUnconfirmed('the connection was lost during the write');
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      gate.waiting.push({ runId, resolve, reject });
      if (!gate.inflight) void this.rounds(node, gate, tagOf(key));
    });
    metrics.replicationWait.observe((performance.now() - started) / 1000);
  }

  /** Closes the confirmers (the scripts' connections belong to the caller). */
  close(): void {
    for (const c of this.confirmers) c.disconnect();
    this.confirmers.clear();
  }

  /** Rounds back to back while writes wait: probe, WAIT, settle everything that queued before the probe. */
  private async rounds(node: Redis, gate: NodeGate, tag: string): Promise<void> {
    gate.inflight = true;
    const confirmer = this.confirmerOf(node, gate);
    while (gate.waiting.length > 0) {
      const batch = gate.waiting;
      gate.waiting = [];
      let failure: Error | undefined;
      let probedOn = '';
      try {
        const required = Math.max(1, await this.required(node, gate));
        metrics.replicationRounds.inc();
        // The probe and the WAIT go out together, in order, on the confirmer's connection: the
        // library is loaded first, so that callScript sends the probe at once, before the WAIT.
        if (!scriptsLoaded(confirmer)) await loadScripts(confirmer);
        const [probe, acked] = await Promise.all([
          callScript(confirmer, 'replication_probe', [keys.replicationProbe(tag)], []),
          confirmer.wait(required, this.opts.timeoutMs),
        ]);
        probedOn = String(probe);
        if (Number(acked) < required) {
          failure = new ReplicationUnconfirmed(`${acked} of ${required} replicas within ${this.opts.timeoutMs} ms`);
          gate.replicasAt = 0; // look again: a replica may be gone
        }
      } catch (err) {
        failure = new ReplicationUnconfirmed(messageOf(err));
      }
      if (failure) metrics.replicationUnconfirmed.inc();
      for (const w of batch) {
        if (failure) w.reject(failure);
        else if (w.runId !== probedOn)
          w.reject(new ReplicationUnconfirmed('the write and its confirmation reached different servers (a failover)'));
        else w.resolve();
      }
    }
    gate.inflight = false;
  }

  /**
   * Replicas a write to this node must reach now. With `auto`, a count of 0 is looked at again
   * before a write goes unconfirmed: it was read before the write, and a replica may have attached
   * since (a promoted primary answers before its replica is back, then takes writes once it is:
   * those must wait for it).
   */
  private async required(node: Redis, gate: NodeGate): Promise<number> {
    if (!this.opts.auto) return this.opts.replicas;
    if (gate.replicas === undefined || gate.replicas === 0 || Date.now() - gate.replicasAt > 1_000) {
      gate.refreshing ??= node
        .info('replication')
        .then((info) => {
          gate.replicas = Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0);
          gate.replicasAt = Date.now();
        })
        .catch((err: unknown) => survived('replication.replicas', err))
        .finally(() => {
          gate.refreshing = undefined;
        });
      // The first time (or when no replica was known), wait for the answer; later, the last known
      // count will do meanwhile.
      if (gate.replicas === undefined || gate.replicas === 0) await gate.refreshing;
    }
    return Math.min(this.opts.replicas, gate.replicas ?? this.opts.replicas);
  }

  private gate(node: Redis): NodeGate {
    let gate = this.gates.get(node);
    if (!gate) {
      const g: NodeGate = { epoch: 0, waiting: [], inflight: false, replicasAt: 0 };
      const learnRunId = () => {
        g.runId = node.info('server').then(runIdOf, () => '');
      };
      // Replies that arrive on a connection precede its close event, so a reply always sees the
      // epoch of the connection that carried it; the run id is asked on the connection itself.
      let carried = node.status === 'ready';
      node.on('close', () => {
        if (carried) g.epoch++;
        carried = false;
      });
      node.on('ready', () => {
        carried = true;
        learnRunId();
      });
      learnRunId();
      this.gates.set(node, g);
      gate = g;
    }
    return gate;
  }

  /** The node's confirmer: a connection of its own to the same server (it follows failovers alike). */
  private confirmerOf(node: Redis, gate: NodeGate): Redis {
    if (!gate.confirmer) {
      const confirmer = node.duplicate();
      confirmer.on('error', () => {}); // its failures reject the rounds, which say why
      this.confirmers.add(confirmer);
      // It lives as long as the connection it confirms for.
      node.once('end', () => {
        confirmer.disconnect();
        this.confirmers.delete(confirmer);
      });
      gate.confirmer = confirmer;
    }
    return gate.confirmer;
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
  const counts = await Promise.all(
    masters.map(async (m) => Number(/connected_slaves:(\d+)/.exec(await m.info('replication'))?.[1] ?? 0)),
  );
  return Math.min(...counts) > 0 ? 1 : 0;
}

/**
 * PostgreSQL pools that follow a promotion (architecture.md §8). `DATABASE_URL` may name several hosts in
 * libpq's syntax — `postgres://u@h1:5432,h2:5432/fleet?target_session_attrs=read-write` — and the
 * pool connects to the first host whose session matches, as libpq does: `read-write` / `primary`
 * (the writers: after a promotion they move to the promoted standby), `read-only` / `standby`,
 * `prefer-standby` (the analytics replica: any host when no standby answers), `any`.
 *
 * Why not another driver: `pg` (node-postgres) is the field's well-kept driver and everything here
 * speaks it, but it takes one host; postgres.js takes several, yet its `read-write` check trusts
 * `default_transaction_read_only`, which a hot standby leaves off (porsager/postgres#815), and it
 * would mean rewriting every query; pg-native hands the string to libpq but its own parser refuses
 * several hosts (brianc/node-pg-native#96). So: `pg`, with host selection here — a client class
 * that picks the current host, and a check of the session on every new connection (pg-pool's
 * `onConnect`). A connection that fails, or lands on the wrong kind of server, moves the pool on
 * to the next host; connections to a server that died are dropped by pg-pool as they fail.
 *
 * The writer's identity (host, port, start time) is watched: a change — a promotion, or a restart
 * of the same server, which may have lost its last transactions if it was a standby promoted
 * without them — is reported to `onWriterChange`, which starts a verification (failover.ts).
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { codeOf, messageOf } from '../domain/errors.ts';
import { inTurn } from '../domain/random.ts';

export type SessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';
const ATTRS: readonly SessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'];

export interface ParsedUrl {
  /** One connection string per host, in order, without `target_session_attrs`. */
  hosts: { host: string; port: number; url: string }[];
  attrs: SessionAttrs;
  database: string;
}

/** Splits a libpq URL with one or several hosts. */
export function parseDatabaseUrl(url: string): ParsedUrl {
  const m = /^(postgres(?:ql)?:\/\/)(?:([^@/]*)@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/.exec(url);
  if (!m)
    throw new Error('DATABASE_URL must be postgres://[user[:password]@]host[:port][,host[:port]...]/database[?params]');
  const [, scheme, auth, hostList, dbPath, query] = m;
  const params = new URLSearchParams(query ?? '');
  const asked = params.get('target_session_attrs') ?? 'any';
  const attrs = ATTRS.find((a) => a === asked);
  if (!attrs) throw new Error(`target_session_attrs must be one of ${ATTRS.join(', ')}`);
  params.delete('target_session_attrs');
  const rest = params.toString();
  const hosts = (hostList ?? '')
    .split(',')
    .filter(Boolean)
    .map((hp) => {
      const i = hp.lastIndexOf(':');
      const host = i < 0 || hp.endsWith(']') ? hp : hp.slice(0, i);
      const port = i < 0 || hp.endsWith(']') ? 5432 : Number(hp.slice(i + 1));
      return {
        host,
        port,
        url: `${scheme}${auth ? `${auth}@` : ''}${host}:${port}${dbPath ?? ''}${rest ? `?${rest}` : ''}`,
      };
    });
  if (hosts.length === 0) throw new Error('DATABASE_URL names no host');
  return { hosts, attrs, database: decodeURIComponent((dbPath ?? '/').slice(1)) };
}

export interface WriterIdentity {
  host: string;
  port: number;
  startedAt: string;
}

interface Session {
  standby: boolean;
  readOnly: boolean;
}

function matches(attrs: SessionAttrs, s: Session, anyAllowed: boolean): boolean {
  switch (attrs) {
    case 'read-write':
      return !s.standby && !s.readOnly;
    case 'primary':
      return !s.standby;
    case 'read-only':
      return s.standby || s.readOnly;
    case 'standby':
      return s.standby;
    case 'prefer-standby':
      return s.standby || anyAllowed;
    default:
      return true;
  }
}

/** Picks hosts in order; a failure moves to the next. */
class HostSelector extends EventEmitter {
  private index = 0;
  private failures = 0;
  writer: WriterIdentity | undefined;

  constructor(readonly parsed: ParsedUrl) {
    super();
  }

  get current(): ParsedUrl['hosts'][number] {
    return inTurn(this.parsed.hosts, this.index);
  }

  /** prefer-standby: after a whole round without a standby, any host will do. */
  get anyAllowed(): boolean {
    return this.failures >= this.parsed.hosts.length;
  }

  failed(host: string, port: number): void {
    const cur = this.current;
    if (cur.host !== host || cur.port !== port) return; // already moved on
    this.index = (this.index + 1) % this.parsed.hosts.length;
    this.failures++;
  }

  succeeded(identity: WriterIdentity): void {
    this.failures = 0;
    if (this.parsed.attrs !== 'read-write' && this.parsed.attrs !== 'primary') return;
    const before = this.writer;
    this.writer = identity;
    if (
      before &&
      (before.host !== identity.host || before.port !== identity.port || before.startedAt !== identity.startedAt)
    ) {
      this.emit('writer-change', before, identity);
    }
  }
}

export interface FollowingPoolOptions extends pg.PoolConfig {
  connectionString: string;
}

/** A pg.Pool on the current host of a (possibly multi-host) URL. */
export class FollowingPool extends pg.Pool {
  readonly selector: HostSelector;

  constructor(options: FollowingPoolOptions) {
    const parsed = parseDatabaseUrl(options.connectionString);
    const selector = new HostSelector(parsed);
    const { connectionString: _url, ...rest } = options;
    class HostClient extends pg.Client {
      readonly target: ParsedUrl['hosts'][number];
      constructor(config: pg.ClientConfig = {}) {
        const target = selector.current;
        super({ ...config, connectionString: target.url });
        this.target = target;
        // Every client, idle or checked out, hears its own death: a checked-out client with no
        // listener makes the server's crash an unhandled 'error' event, which ends the process.
        // Its user learns of it from the next query (which fails); release() then drops it.
        this.on('error', () => selector.failed(target.host, target.port));
      }
    }
    super({
      ...rest,
      Client: HostClient,
      onConnect: async (client: pg.ClientBase) => {
        const target = (client as unknown as HostClient).target;
        const { rows } = await client.query<{ standby: boolean; ro: string; started: string }>(
          `SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro, pg_postmaster_start_time()::text AS started`,
        );
        const [row] = rows;
        if (!row) throw new Error(`${target.host}:${target.port} did not answer the session check`);
        const s = { standby: row.standby, readOnly: row.ro === 'on' };
        if (!matches(parsed.attrs, s, selector.anyAllowed)) {
          selector.failed(target.host, target.port);
          throw Object.assign(
            new Error(
              `${target.host}:${target.port} is ${s.standby ? 'a standby' : 'read-write'}, not ${parsed.attrs}`,
            ),
            { code: '25006' },
          );
        }
        selector.succeeded({ host: target.host, port: target.port, startedAt: row.started });
      },
    });
    this.selector = selector;
    // An idle connection died with its server: the next connection tries the next host. (This
    // listener also keeps an idle client's death from being an unhandled 'error' event.)
    this.on('error', (_err, client) => {
      const target = (client as unknown as HostClient | undefined)?.target;
      if (target) selector.failed(target.host, target.port);
    });
    // Like libpq, one connect tries every host in turn: a host that refuses the connection or
    // has the wrong kind of session moves the pool on to the next.
    const connect = this.connect.bind(this) as (
      cb: (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void,
    ) => void;
    const moveOn = (err: unknown): boolean => {
      const code = codeOf(err);
      if (code === '25006') return true; // onConnect already moved on
      if (code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P03'].includes(code)) {
        selector.failed(selector.current.host, selector.current.port);
        return true;
      }
      return false;
    };
    const attempt = (
      left: number,
      cb: (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void,
    ) => {
      connect((err, client, done) => {
        if (err && moveOn(err) && left > 1) return attempt(left - 1, cb);
        cb(err, client, done);
      });
    };
    // prefer-standby: a whole round looking for a standby, then a round that takes any host.
    const tries = parsed.hosts.length * (parsed.attrs === 'prefer-standby' ? 2 : 1);
    (this as { connect: unknown }).connect = (
      cb?: (err: Error | undefined, client?: pg.PoolClient, done?: (release?: unknown) => void) => void,
    ) => {
      if (cb) return attempt(tries, cb);
      return new Promise<pg.PoolClient>((resolve, reject) =>
        attempt(tries, (err, client) => (client && !err ? resolve(client) : reject(err ?? new Error('no client')))),
      );
    };
  }

  /** Told when the writer this pool reaches changes (a promotion, a restart). */
  onWriterChange(listener: (before: WriterIdentity, after: WriterIdentity) => void): void {
    this.selector.on('writer-change', listener);
  }

  get writer(): WriterIdentity | undefined {
    return this.selector.writer;
  }
}

/** The pool every part of the service uses: single-host URLs behave exactly like pg.Pool. */
/** The name the service's sessions carry (`pg_stat_activity.application_name`): operators and `fleet dr failback` see them. */
export const APPLICATION_NAME = 'fleet-inventory';

export function createPool(
  connectionString: string,
  options: Omit<pg.PoolConfig, 'connectionString'> = {},
): FollowingPool {
  return new FollowingPool({ application_name: APPLICATION_NAME, ...options, connectionString });
}

/** The single-host connection string that a URL's session attributes select right now (one-off clients). */
export async function resolveUrl(url: string): Promise<string> {
  const { hosts } = parseDatabaseUrl(url);
  const [only] = hosts;
  if (hosts.length === 1 && only) return only.url;
  // Session attributes belong to the server: ask through `postgres`, which exists before ours does.
  const pool = createPool(url.replace(/(\/\/[^/?]*)\/[^?]*/, '$1/postgres'), {
    max: 1,
    connectionTimeoutMillis: 5_000,
  });
  const attrs = pool.selector.parsed.attrs;
  try {
    let last: unknown;
    for (let i = 0; i < hosts.length * 2; i++) {
      try {
        const client = await pool.connect();
        client.release();
        const { target } = client as unknown as { target: ParsedUrl['hosts'][number] };
        const found = hosts.find((h) => h.host === target.host && h.port === target.port);
        if (!found) throw new Error(`${target.host}:${target.port} is not a host of the URL`);
        return found.url;
      } catch (err) {
        last = err; // the pool moved on to the next host
      }
    }
    throw new Error(`no host of ${hosts.map((h) => `${h.host}:${h.port}`).join(',')} is ${attrs}: ${messageOf(last)}`);
  } finally {
    await pool.end();
  }
}

/** A round trip to the server (readiness), and which server took the writes when the pool follows one. */
export async function pingPool(pool: pg.Pool): Promise<{ writer?: WriterIdentity }> {
  await pool.query('SELECT 1');
  return pool instanceof FollowingPool && pool.writer ? { writer: pool.writer } : {};
}

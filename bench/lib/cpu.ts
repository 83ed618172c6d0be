/**
 * Where the two cores went during a scenario: CPU time of each process involved (load generator,
 * server, redis-server, sync worker, PostgreSQL backends), read from /proc, and the machine's busy
 * share. Also a small summary of a V8 `--cpu-prof` profile (self time by package and by function).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

const TICK_MS = 10; // USER_HZ = 100 on Linux

function procTimes(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime + stime
  } catch {
    return undefined;
  }
}

/** The processes `pid` started: its API processes (node), and whatever else it runs (esbuild for tsx, say). */
export function childrenOf(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      out.push({ pid: Number(d), comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) });
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** CPU ms of the children `pid` has waited for (ended ones): a PostgreSQL postmaster's ended backends. */
function endedChildrenTimes(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) * TICK_MS; // cutime + cstime
  } catch {
    return 0;
  }
}

/**
 * CPU ms of every process whose command name is `comm` (e.g. all PostgreSQL backends), and of
 * those that ended (counted by their parent): a backend that ends during a run (a connection
 * closed and opened again) would otherwise take its CPU time out of the sum with it.
 */
function commTimes(comm: string): number {
  let total = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== comm) continue;
    } catch {
      continue;
    }
    total += (procTimes(Number(d)) ?? 0) + endedChildrenTimes(Number(d));
  }
  return total;
}

function machine(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

export interface CpuSnapshot {
  at: number;
  pids: Record<string, number>;
  postgres: number;
  machine: { busy: number; total: number };
}

export function cpuSnapshot(pids: Record<string, number | undefined>): CpuSnapshot {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) if (pid) out[name] = procTimes(pid) ?? 0;
  return { at: performance.now(), pids: out, postgres: commTimes('postgres'), machine: machine() };
}

/**
 * Cores used by each process between two snapshots (1.0 = one core fully busy); `other` is what
 * processes outside the benchmark used (another test run on the machine, say), `machine` the total.
 */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): Record<string, number> {
  const wall = b.at - a.at;
  const r = (x: number) => Math.round((x / wall) * 100) / 100;
  const out: Record<string, number> = {};
  let ours = 0;
  for (const [name, ms] of Object.entries(b.pids)) {
    out[name] = r(ms - (a.pids[name] ?? 0));
    ours += ms - (a.pids[name] ?? 0);
  }
  out.postgres = r(b.postgres - a.postgres);
  ours += b.postgres - a.postgres;
  const busy = b.machine.busy - a.machine.busy;
  out.other = r(Math.max(0, busy - ours));
  out.machine = r(busy);
  return out;
}

/** The machine's busy cores over `ms`. */
export async function machineBusy(ms = 1000): Promise<number> {
  const a = machine();
  const t = performance.now();
  await sleep(ms);
  return (machine().busy - a.busy) / (performance.now() - t);
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a package or file sits: `fastify`, `src/services`, `node:internal`, `(gc)`... */
function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/(src\/[^/]+|bench)\//.exec(url);
  if (src) return src[1]!;
  if (url.startsWith('node:'))
    return url.split('/')[0]!.replace(/:.*/, ':') + (url.includes('internal') ? 'internal' : url.slice(5));
  return url;
}

/** Coarse groups of the server's own work, for the reading of the figures. */
const GROUPS: [string, (fn: string, url: string) => boolean][] = [
  [
    'JWT verification (jose, WebCrypto)',
    (_f, u) => /node_modules\/jose\/|node:internal\/crypto|js_transferable|webcrypto/.test(u),
  ],
  ['garbage collection', (f) => f === '(garbage collector)'],
  [
    'socket reads and writes',
    (f, u) =>
      /^(writeUtf8String|writev|writeBuffer|writeLatin1String|readStop|readStart)$/.test(f) ||
      /stream_base_commons|node:net/.test(u),
  ],
  [
    'Redis client (ioredis)',
    (_f, u) => /node_modules\/(ioredis|redis-parser|denque|cluster-key-slot|standard-as-callback|@ioredis)\//.test(u),
  ],
  [
    'HTTP framework (fastify, validation, serialization)',
    (_f, u) =>
      /node_modules\/(fastify|@fastify|find-my-way|avvio|ajv|fast-json-stringify|fast-querystring|fast-uri|light-my-request|secure-json-parse|toad-cache|json-schema-ref-resolver|@sinclair)\/|node:_http|internal\/http/.test(
        u,
      ),
  ],
  ['search read model (src/services/read-model.ts)', (_f, u) => /src\/services\/read-model/.test(u)],
  ['service code (src/)', (_f, u) => /\/src\//.test(u)],
];

export interface ProfileSummary {
  samples: number;
  busyShare: number;
  groups: { group: string; share: number }[];
  /** The largest functions of the `other` group. */
  other: { fn: string; share: number }[];
  byArea: { area: string; share: number }[];
  byFunction: { fn: string; share: number }[];
}

/** Self time by area and by function, as shares of the non-idle time. */
export async function summarizeProfile(file: string, top = 12): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  let idle = 0;
  let busy = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  const groups = new Map<string, number>(GROUPS.map(([g]) => [g, 0]));
  const other = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += t;
      continue;
    }
    busy += t;
    const g = GROUPS.find(([, test]) => test(name, n.callFrame.url))?.[0] ?? 'other';
    groups.set(g, (groups.get(g) ?? 0) + t);
    const a = area(n.callFrame.url, name);
    if (g === 'other') other.set(`${name} (${a})`, (other.get(`${name} (${a})`) ?? 0) + t);
    areas.set(a, (areas.get(a) ?? 0) + t);
    const short = n.callFrame.url
      ? `${name} ${n.callFrame.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${n.callFrame.lineNumber + 1}`
      : name;
    fns.set(short, (fns.get(short) ?? 0) + t);
  }
  const rank = (m: Map<string, number>) =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, top)
      .map(([k, v]) => ({ k, share: Math.round((v / busy) * 1000) / 1000 }));
  return {
    samples: p.samples.length,
    busyShare: Math.round((busy / (busy + idle)) * 1000) / 1000,
    groups: rank(groups).map(({ k, share }) => ({ group: k, share })),
    other: rank(other).map(({ k, share }) => ({ fn: k, share })),
    byArea: rank(areas).map(({ k, share }) => ({ area: k, share })),
    byFunction: rank(fns).map(({ k, share }) => ({ fn: k, share })),
  };
}

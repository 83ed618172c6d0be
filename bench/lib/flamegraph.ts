/**
 * A flame graph (SVG) of a V8 `--cpu-prof` profile: one box per call path, as wide as the time
 * spent in it and below it, callers under callees, the process's idle time left out. Written next
 * to the reading in docs/ so the hottest path can be seen without a profiler at hand. Hovering a
 * box shows the function, its file and line, and its share of the busy time.
 */
import { readFile, writeFile } from 'node:fs/promises';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const WIDTH = 1200;
const ROW = 16;
const MIN_PX = 1;

const xml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** Warm colours for this service's code, cool for libraries, grey for the runtime. */
function colour(url: string, fn: string, depth: number): string {
  const shade = (depth * 37) % 40;
  if (/\/src\//.test(url)) return `hsl(${15 + shade / 2}, 85%, ${55 + shade / 4}%)`;
  if (/node_modules/.test(url)) return `hsl(${200 + shade}, 55%, ${62 + shade / 4}%)`;
  if (fn === '(garbage collector)') return 'hsl(0, 70%, 60%)';
  return `hsl(50, 10%, ${68 + shade / 4}%)`;
}

function shortUrl(url: string): string {
  const nm = /node_modules\/(.*)$/.exec(url);
  if (nm) return nm[1] ?? url;
  const src = /\/((?:src|bench)\/.*)$/.exec(url);
  return src?.[1] ?? url;
}

export async function writeFlameGraph(profileFile: string, svgFile: string, title: string): Promise<void> {
  const p = JSON.parse(await readFile(profileFile, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (const [i, id] of p.samples.entries()) self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  const total = new Map<number, number>();
  const sum = (id: number): number => {
    const n = byId.get(id);
    if (!n || n.callFrame.functionName === '(idle)') return 0;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += sum(c);
    total.set(id, t);
    return t;
  };
  const root = p.nodes[0];
  if (!root) throw new Error(`${profileFile}: no nodes`);
  const busy = sum(root.id);
  const boxes: string[] = [];
  let depthMax = 0;
  const place = (id: number, x: number, depth: number) => {
    const n = byId.get(id);
    const t = total.get(id) ?? 0;
    const w = (t / busy) * WIDTH;
    if (!n || w < MIN_PX) return;
    depthMax = Math.max(depthMax, depth);
    const name = depth === 0 ? 'all (busy time)' : n.callFrame.functionName || '(anonymous)';
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '';
    const share = ((t / busy) * 100).toFixed(2);
    const label = w > 40 ? name.slice(0, Math.floor((w - 6) / 6.5)) : '';
    boxes.push(
      `<g data-depth="${depth}" data-x="${x.toFixed(1)}"><title>${xml(`${name} ${where} — ${share}%`)}</title>` +
        `<rect x="${x.toFixed(1)}" y="@${depth}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${colour(n.callFrame.url, name, depth)}"/>` +
        (label ? `<text x="${(x + 3).toFixed(1)}" y="@${depth}t">${xml(label)}</text>` : '') +
        '</g>',
    );
    let cx = x;
    const kids = [...(n.children ?? [])].sort((a, b) => (total.get(b) ?? 0) - (total.get(a) ?? 0));
    for (const c of kids) {
      place(c, cx, depth + 1);
      cx += ((total.get(c) ?? 0) / busy) * WIDTH;
    }
  };
  place(root.id, 0, 0);
  const height = (depthMax + 1) * ROW + 40;
  // Root at the bottom, as flame graphs are drawn: depth d sits at height - 10 - (d + 1) * ROW.
  const y = (d: number) => height - 10 - (d + 1) * ROW;
  const body = boxes
    .join('\n')
    .replace(/y="@(\d+)t"/g, (_m, d: string) => `y="${y(Number(d)) + ROW - 4}"`)
    .replace(/y="@(\d+)"/g, (_m, d: string) => `y="${y(Number(d))}"`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="monospace" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
<text x="4" y="16" font-size="13">${xml(title)} — ${(busy / 1000).toFixed(0)} ms busy; hover a box for its function, file and share</text>
${body}
</svg>
`;
  await writeFile(svgFile, svg);
}

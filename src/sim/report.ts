/**
 * The simulator's HTML page: one self-contained file (inline SVG, no scripts, nothing fetched) with
 * throughput and latency over time, sync lag, the conflict funnel, and the tables of the JSON report.
 */
import type { SecondSample } from './stats.ts';

interface Report {
  generatedAt: string;
  durationSeconds: number;
  totals: Record<string, number>;
  throughput: Record<string, number>;
  operations: Record<string, number>;
  endpoints: Array<{
    endpoint: string;
    count: number;
    errors: number;
    p50Ms: number;
    p95Ms: number;
    p99Ms: number;
    maxMs: number;
  }>;
  outcomes: Record<string, number>;
  conflicts: Record<string, unknown>;
  invariants: Record<string, number>;
  series: SecondSample[];
}

/** Text made safe inside HTML (an element's content or a quoted attribute). */
const HTML_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
export const escapeHtml = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => HTML_ENTITIES[c] ?? c);

/** A line chart of one or more series over the run's seconds. */
function lineChart(
  title: string,
  unit: string,
  series: Array<{ name: string; color: string; points: number[] }>,
): string {
  const w = 640;
  const h = 200;
  const pad = 40;
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const max = Math.max(1, ...series.flatMap((s) => s.points));
  const x = (i: number) => pad + (i / (n - 1)) * (w - pad - 10);
  const y = (v: number) => h - pad + 10 - (v / max) * (h - pad - 10);
  const lines = series
    .map(
      (s) =>
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${s.points.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}"/>`,
    )
    .join('');
  const legend = series
    .map(
      (s, i) => `<text x="${pad + i * 150}" y="${h - 2}" fill="${s.color}" font-size="12">${escapeHtml(s.name)}</text>`,
    )
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${escapeHtml(title)}">
<line x1="${pad}" y1="${y(0)}" x2="${w - 10}" y2="${y(0)}" stroke="#999"/><line x1="${pad}" y1="10" x2="${pad}" y2="${y(0)}" stroke="#999"/>
<text x="2" y="16" font-size="11">${escapeHtml(round(max))} ${escapeHtml(unit)}</text><text x="2" y="${y(0)}" font-size="11">0</text>
<text x="${w - 60}" y="${y(0) + 14}" font-size="11">${n - 1} s</text>${lines}${legend}</svg></figure>`;
}

/** The conflict funnel as horizontal bars. */
function funnel(stages: Array<[string, number]>): string {
  const max = Math.max(1, ...stages.map(([, v]) => v));
  const rows = stages
    .map(
      ([name, v], i) =>
        `<text x="0" y="${i * 26 + 17}" font-size="12">${escapeHtml(name)}</text><rect x="130" y="${i * 26 + 4}" width="${(v / max) * 480}" height="18" fill="#4a7bd0"/><text x="${136 + (v / max) * 480}" y="${i * 26 + 17}" font-size="12">${v}</text>`,
    )
    .join('');
  return `<figure><figcaption>Conflict funnel</figcaption><svg viewBox="0 0 660 ${stages.length * 26 + 8}" width="660" height="${stages.length * 26 + 8}" role="img" aria-label="conflict funnel">${rows}</svg></figure>`;
}

function table(head: string[], rows: unknown[][]): string {
  return `<table><thead><tr>${head.map((x) => `<th>${escapeHtml(x)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

export function renderHtml(report: Report): string {
  const s = report.series;
  const c = report.conflicts as Record<string, number>;
  const inv = report.invariants;
  const invRows = Object.entries(inv).map(([k, v]) => [
    k,
    v,
    /^(overlapping|acknowledgedMissing|drift)/.test(k) ? (v === 0 ? 'ok' : 'VIOLATED') : '',
  ]);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fleet-inventory simulation</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}figure{margin:1em 0}figcaption{font-weight:600}</style></head><body>
<h1>Marketplace simulation</h1>
<p>${escapeHtml(report.generatedAt)} · ${escapeHtml(report.durationSeconds)} s · ${escapeHtml(report.totals.requests)} requests (${escapeHtml(report.throughput.requestsPerSecond)}/s) · ${escapeHtml(report.totals.serverErrors)} server errors</p>
<h2>Invariants</h2>${table(['invariant', 'value', ''], invRows)}
${lineChart('Throughput', 'requests/s', [{ name: 'requests/s', color: '#2a6', points: s.map((x) => x.ops) }])}
${lineChart('Latency', 'ms', [
  { name: 'p50', color: '#48c', points: s.map((x) => x.p50Ms) },
  { name: 'p99', color: '#c44', points: s.map((x) => x.p99Ms) },
])}
${lineChart('Sync lag', 'ms', [{ name: 'oldest unsynced event', color: '#a6a', points: s.map((x) => x.syncLagMs) }])}
${funnel([
  ['conflicts', c.conflicts ?? 0],
  ['offered', c.offered ?? 0],
  ['accepted', c.accepted ?? 0],
  ['declined', c.declined ?? 0],
  ['lapsed', c.lapsed ?? 0],
  ['no alternative', c.noAlternative ?? 0],
])}
<p>Resolution rate (accepted / conflicts): ${escapeHtml(c.resolutionRate ?? '–')}</p>
<h2>Endpoints</h2>${table(
    ['endpoint', 'count', '5xx', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
    report.endpoints.map((e) => [e.endpoint, e.count, e.errors, e.p50Ms, e.p95Ms, e.p99Ms, e.maxMs]),
  )}
<h2>Operations</h2>${table(['operation', 'count'], Object.entries(report.operations))}
<h2>Answers by status and code</h2>${table(['answer', 'count'], Object.entries(report.outcomes))}
</body></html>
`;
}

const round = (n: number) => Math.round(n * 100) / 100;

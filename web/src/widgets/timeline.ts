/** A vehicle's calendar as a timeline: holds, bookings, blocks and the turnaround after trips (SVG). */
import { html, svg, type TemplateResult } from 'lit';

export interface TimelineEntry {
  id: string;
  kind: string;
  status: string;
  from: string;
  to?: string | null;
}

const W = 720;
const H = 64;
const COLOURS: Record<string, string> = {
  hold: '#f9a825',
  booking: '#1565c0',
  active: '#6a1b9a',
  block: '#c62828',
  turnaround: '#b0bec5',
};

export function timeline(
  entries: readonly TimelineEntry[],
  window: { from: number; to: number },
  turnaroundMs: number,
  label: string,
): TemplateResult {
  const span = window.to - window.from;
  const x = (t: number) => Math.max(0, Math.min(W, ((t - window.from) / span) * W));
  const live = entries.filter(
    (e) => !['cancelled', 'released', 'expired', 'converted', 'reaccommodated', 'cleared'].includes(e.status),
  );
  const days = [];
  for (let t = Math.ceil(window.from / 86_400_000) * 86_400_000; t < window.to; t += 86_400_000) days.push(t);
  return html`<svg class="timeline" viewBox="0 0 ${W} ${H}" role="img" aria-label=${label}>
    <rect width=${W} height=${H} class="timeline-bg"></rect>
    ${days.map((d) => svg`<line x1=${x(d)} x2=${x(d)} y1="0" y2=${H} class="tick"></line><text x=${x(d) + 2} y="10" class="tick-label">${new Date(d).toISOString().slice(5, 10)}</text>`)}
    ${live.map((e) => {
      const from = Date.parse(e.from);
      const to = e.to ? Date.parse(e.to) : window.to;
      const colour = e.kind === 'booking' && e.status === 'active' ? COLOURS.active : COLOURS[e.kind];
      const trip = e.kind !== 'block';
      return svg`<g>
        ${trip ? svg`<rect x=${x(to)} y="20" width=${Math.max(0, x(to + turnaroundMs) - x(to))} height="30" fill=${COLOURS.turnaround}><title>turnaround</title></rect>` : ''}
        <rect x=${x(from)} y="20" width=${Math.max(2, x(to) - x(from))} height="30" fill=${colour ?? '#555'}>
          <title>${e.kind} ${e.status} ${e.from} → ${e.to ?? 'open'}</title>
        </rect></g>`;
    })}
  </svg>`;
}

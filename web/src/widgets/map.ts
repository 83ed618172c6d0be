/** A city drawn without tiles: vehicles as points on their lat/lng, coloured by status (SVG). */
import { html, svg, type TemplateResult } from 'lit';
import { VEHICLE_STATUSES, type VehicleStatus } from '../types.ts';

const STATUS_COLOURS: Record<VehicleStatus, string> = {
  available: '#2e7d32',
  held: '#f9a825',
  booked: '#1565c0',
  in_trip: '#6a1b9a',
  maintenance: '#ef6c00',
  accident: '#c62828',
  blocked: '#546e7a',
  delisted: '#9e9e9e',
};

/** A vehicle status's colour (any other label: a neutral one). */
function colourOf(status: string | undefined): string {
  const known = VEHICLE_STATUSES.find((s) => s === status);
  return known ? STATUS_COLOURS[known] : '#37474f';
}

export interface MapPoint {
  id: string;
  lat: number;
  lng: number;
  status?: string;
  label?: string;
}

const W = 640;
const H = 420;

/** Points projected into the box of the city (longitude scaled by the latitude's cosine). */
export function cityMap(
  points: readonly MapPoint[],
  opts: {
    title: string;
    onPick?: (at: { lat: number; lng: number }) => void;
    marker?: { lat: number; lng: number };
  } = {
    title: 'map',
  },
): TemplateResult {
  const all = opts.marker ? [...points, { id: 'marker', ...opts.marker }] : points;
  if (!all.length) return html`<p class="muted">No vehicles to draw.</p>`;
  const lats = all.map((p) => p.lat);
  const lngs = all.map((p) => p.lng);
  const pad = 0.01;
  const [south, north] = [Math.min(...lats) - pad, Math.max(...lats) + pad];
  const [west, east] = [Math.min(...lngs) - pad, Math.max(...lngs) + pad];
  const k = Math.cos(((south + north) / 2) * (Math.PI / 180));
  const scale = Math.min(W / ((east - west) * k), H / (north - south));
  const x = (lng: number) => (lng - west) * k * scale;
  const y = (lat: number) => (north - lat) * scale;
  const pick = (e: MouseEvent) => {
    if (!opts.onPick) return;
    const box = (e.currentTarget as SVGSVGElement).getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * W;
    const py = ((e.clientY - box.top) / box.height) * H;
    opts.onPick({ lat: north - py / scale, lng: west + px / (k * scale) });
  };
  const legend = [...new Set(points.map((p) => p.status).filter((s): s is string => !!s))].sort();
  return html`<figure class="map">
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label=${opts.title} @click=${pick} class=${opts.onPick ? 'pickable' : ''}>
      <rect width=${W} height=${H} class="map-bg"></rect>
      ${points.map(
        (p) =>
          svg`<circle cx=${x(p.lng).toFixed(1)} cy=${y(p.lat).toFixed(1)} r="4" fill=${colourOf(p.status)}><title>${p.label ?? p.id}${p.status ? ` (${p.status})` : ''}</title></circle>`,
      )}
      ${
        opts.marker
          ? svg`<g class="marker"><circle cx=${x(opts.marker.lng)} cy=${y(opts.marker.lat)} r="9" fill="none" stroke="#000" stroke-width="2"></circle><title>chosen place</title></g>`
          : ''
      }
    </svg>
    ${
      legend.length
        ? html`<figcaption>${legend.map((s) => html`<span class="dot" style="background:${colourOf(s)}"></span>${s} `)}</figcaption>`
        : ''
    }
  </figure>`;
}

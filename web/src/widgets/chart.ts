/** Utilization over time (uPlot), drawn into a container the view owns. */
import uPlot from 'uplot';

export function drawUtilization(
  el: HTMLElement,
  buckets: readonly { start: string; utilization: number; blockedShare: number }[],
): void {
  el.replaceChildren();
  if (!buckets.length) return;
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const used = buckets.map((b) => Math.round(b.utilization * 1000) / 10);
  const blocked = buckets.map((b) => Math.round(b.blockedShare * 1000) / 10);
  new uPlot(
    {
      width: Math.min(720, Math.max(300, el.clientWidth || 600)),
      height: 220,
      title: 'Utilization (%)',
      scales: { y: { range: [0, 100] } },
      series: [{}, { label: 'booked', stroke: '#1565c0', width: 2 }, { label: 'blocked', stroke: '#c62828', width: 2 }],
    },
    [xs, used, blocked],
    el,
  );
}

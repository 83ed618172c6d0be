/** `fleet chaos [...]`: the marketplace against the HA topology under a seeded fault schedule (docs/reliability.md). */
import path from 'node:path';
import { DomainError } from '../../domain/errors.ts';
import { duration, print, type Command } from '../context.ts';

/** --min-availability 0.999 or 99.9%. */
function fraction(v: string): number {
  const n = v.endsWith('%') ? Number(v.slice(0, -1)) / 100 : Number(v);
  if (!(n > 0 && n <= 1))
    throw new DomainError('VALIDATION', '--min-availability: a fraction (0.999) or a percentage (99.9%)');
  return n;
}

export const chaosCommand: Command = {
  name: 'chaos',
  needsStore: false,
  async run({ opt }) {
    const { chaos, DEFAULT_CHAOS, FAULTS } = await import('../../sim/chaos.ts');
    const faults = opt.faults ? opt.faults.split(',') : DEFAULT_CHAOS.faults;
    const known = (f: string): f is (typeof FAULTS)[number] => (FAULTS as readonly string[]).includes(f);
    if (!faults.every(known))
      throw new DomainError('VALIDATION', `--faults: one of ${FAULTS.join(', ')}`, { field: 'faults' });
    const { report, ok } = await chaos({
      ...DEFAULT_CHAOS,
      faults,
      ...(opt.duration ? { durationMs: duration(opt.duration) } : {}),
      ...(opt['fault-every'] ? { faultEveryMs: duration(opt['fault-every']) } : {}),
      ...(opt.cities ? { cities: Number(opt.cities) } : {}),
      ...(opt['vehicles-per-city'] ? { vehiclesPerCity: Number(opt['vehicles-per-city']) } : {}),
      ...(opt.rate ? { rate: Number(opt.rate) } : {}),
      ...(opt.seed ? { seed: Number(opt.seed) } : {}),
      ...(opt.out ? { out: opt.out } : {}),
      ...(opt['update-doc'] ? { updateDoc: opt['update-doc'] } : {}),
      ...(opt['min-availability'] ? { minAvailability: fraction(opt['min-availability']) } : {}),
      progress: !opt.json,
    });
    const { endpoints: _endpoints, ...summary } = report;
    print(opt.json ? report : summary);
    const where = path.join(opt.out ?? DEFAULT_CHAOS.out, 'report.html');
    if (ok)
      console.error(
        `report: ${where}; every target met (availability, failover windows, no loss, no overlap, no drift, no process ended)`,
      );
    else console.error(`report: ${where}; TARGETS MISSED:\n  ${(report.missed as string[]).join('\n  ')}`);
    return ok ? 0 : 1;
  },
};

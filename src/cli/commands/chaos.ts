/** `fleet chaos [...]`: the marketplace against the HA topology under a seeded fault schedule (docs/reliability.md). */
import path from 'node:path';
import { DomainError } from '../../domain/errors.ts';
import { duration, print, type Command } from '../context.ts';

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
      progress: !opt.json,
    });
    const { endpoints: _endpoints, ...summary } = report;
    print(opt.json ? report : summary);
    console.error(
      `report: ${path.join(opt.out ?? DEFAULT_CHAOS.out, 'report.html')}; acknowledged writes lost, overlaps, drift: ${ok ? 'none' : 'SEE THE REPORT'}`,
    );
    return ok ? 0 : 1;
  },
};

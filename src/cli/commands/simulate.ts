/** `fleet simulate [...]`: a marketplace against a fresh service (docs/simulation.md). */
import path from 'node:path';
import { DomainError } from '../../domain/errors.ts';
import { duration, print, type Command } from '../context.ts';

export const simulateCommand: Command = {
  name: 'simulate',
  needsStore: false,
  async run({ opt }) {
    if (opt.compare && (opt.seeds || opt.demand)) {
      const { compareConflicts, DEFAULT_CONFLICTS_COMPARE, writeConflictsDoc } = await import(
        '../../sim/conflicts-compare.ts'
      );
      const demands = opt.demand ? opt.demand.split(',').map(Number) : DEFAULT_CONFLICTS_COMPARE.demands;
      if (!demands.every((d) => d > 0 && d < 100))
        throw new DomainError('VALIDATION', '--demand: multiples of the searches per hour, like 0.5,1,2', {
          field: 'demand',
        });
      const report = await compareConflicts(
        {
          week: {
            ...DEFAULT_CONFLICTS_COMPARE.week,
            ...(opt.seed ? { seed: Number(opt.seed) } : {}),
            ...(opt.days ? { days: Number(opt.days) } : {}),
            ...(opt.vehicles ? { vehicles: Number(opt.vehicles) } : {}),
            ...(process.env.SIM_REDIS_URL ? { redisUrl: process.env.SIM_REDIS_URL } : {}),
          },
          seeds: opt.seeds ? Number(opt.seeds) : DEFAULT_CONFLICTS_COMPARE.seeds,
          demands,
        },
        (line) => console.error(line),
      );
      print({ levels: report.levels.map(({ runs: _r, ...l }) => l), targets: report.targets });
      if (!opt['no-doc']) writeConflictsDoc(report, path.join('docs', 'conflicts.md'));
      return report.targets.every((t) => t.met) ? 0 : 1;
    }
    if (opt.compare) {
      const { compare, DEFAULT_COMPARE, writeComparison } = await import('../../sim/compare.ts');
      const report = await compare({
        ...DEFAULT_COMPARE,
        ...(opt.seed ? { seed: Number(opt.seed) } : {}),
        ...(opt.days ? { days: Number(opt.days) } : {}),
        ...(opt.vehicles ? { vehicles: Number(opt.vehicles) } : {}),
        ...(process.env.SIM_REDIS_URL ? { redisUrl: process.env.SIM_REDIS_URL } : {}),
      });
      print(report);
      if (!opt['no-doc']) await writeComparison(report, path.join('docs', 'prediction.md'));
      return 0;
    }
    const { simulate, DEFAULT_SIM } = await import('../../sim/simulate.ts');
    const { report, ok } = await simulate({
      ...DEFAULT_SIM,
      ...(opt.cities ? { cities: Number(opt.cities) } : {}),
      ...(opt['vehicles-per-city'] ? { vehiclesPerCity: Number(opt['vehicles-per-city']) } : {}),
      ...(opt.duration ? { durationMs: duration(opt.duration) } : {}),
      ...(opt.rate ? { rate: Number(opt.rate) } : {}),
      ...(opt.concurrency ? { concurrency: Number(opt.concurrency) } : {}),
      ...(opt.seed ? { seed: Number(opt.seed) } : {}),
      ...(opt.out ? { out: opt.out } : {}),
      ...(process.env.SIM_REDIS_URL ? { redisUrl: process.env.SIM_REDIS_URL } : {}),
      ...(process.env.SIM_DATABASE_URL ? { databaseUrl: process.env.SIM_DATABASE_URL } : {}),
      ...(opt['update-doc'] ? { updateDoc: opt['update-doc'] } : {}),
      progress: !opt.json,
    });
    const summary = {
      throughput: report.throughput,
      totals: report.totals,
      invariants: report.invariants,
      conflicts: report.conflicts,
      endpoints: report.endpoints,
    };
    print(opt.json ? report : summary);
    console.error(
      `report: ${path.join(opt.out ?? DEFAULT_SIM.out, 'report.html')} (and report.json); invariants ${ok ? 'hold' : 'VIOLATED'}`,
    );
    return ok ? 0 : 1;
  },
};

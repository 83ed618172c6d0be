/**
 * The learning offer policy's memory (src/domain/incentives.ts): per city and kind of alternative,
 * how each credit level converted. Counted in process as conflicts end here (the desk tells it),
 * and read from PostgreSQL's offers and conflicts by `refresh`, so every process learns from all.
 */
import type pg from 'pg';
import type { Incentive } from '../domain/calendar.ts';
import { chooseLevel, summarize, type ArmStats, type LearningPolicy } from '../domain/incentives.ts';
import type { AlternativeKind } from '../domain/offers.ts';
import { rng } from '../domain/random.ts';
import { incentiveOutcomes } from '../pg/history.ts';
import { learningPolicy } from '../config.ts';

export class IncentiveLearner {
  /** Off: the configured credits, unchanged (the simulator's comparison turns it on and off). */
  enabled = true;
  readonly policy: LearningPolicy;
  private readonly stats = new Map<string, ArmStats[]>();
  private readonly rand: () => number;

  constructor(
    private readonly pool: pg.Pool | undefined,
    opts: Partial<LearningPolicy> & { seed?: number } = {},
  ) {
    this.policy = { ...learningPolicy(), ...opts };
    this.rand = opts.seed !== undefined ? rng(opts.seed) : Math.random;
  }

  /** The incentive with its credit scaled to the chosen level (upgrades are priced, not chosen). */
  adjust(city: string, kind: AlternativeKind, incentive: Incentive): Incentive {
    if (!this.enabled || incentive.kind !== 'credit') return incentive;
    const level = chooseLevel(this.stats.get(`${city}|${kind}`) ?? [], this.policy, this.rand);
    return { ...incentive, amount: Math.round(incentive.amount * level * 100) / 100, level };
  }

  /** A conflict ended: the offers made, and the one accepted (none: declined or lapsed). */
  observe(
    city: string,
    offers: readonly { kind?: AlternativeKind; incentive: Incentive; id: string }[],
    acceptedId?: string,
  ) {
    for (const o of offers) {
      if (o.incentive.level === undefined || !o.kind) continue;
      // An offer passed over for another one says nothing of its own level's pull.
      if (acceptedId !== undefined && o.id !== acceptedId) continue;
      this.count(city, o.kind, o.incentive.level, o.id === acceptedId);
    }
  }

  private count(city: string, kind: string, level: number, accepted: boolean) {
    const key = `${city}|${kind}`;
    const arms = this.stats.get(key) ?? [];
    let arm = arms.find((a) => a.level === level);
    if (!arm) {
      arm = { level, offers: 0, accepted: 0 };
      arms.push(arm);
    }
    arm.offers++;
    if (accepted) arm.accepted++;
    this.stats.set(key, arms);
  }

  /** Reads every ended conflict's offers from PostgreSQL (the counts of all processes). */
  async refresh(): Promise<void> {
    if (!this.pool) return;
    const rows = await incentiveOutcomes(this.pool);
    this.stats.clear();
    for (const r of rows) {
      const key = `${r.city}|${r.kind}`;
      const arms = this.stats.get(key) ?? [];
      arms.push({ level: r.level, offers: r.offers, accepted: r.accepted });
      this.stats.set(key, arms);
    }
  }

  /** What it has learnt: per city and kind, each level's conversion and posterior mean. */
  report(): { city: string; kind: string; arms: ReturnType<typeof summarize> }[] {
    return [...this.stats].map(([key, arms]) => {
      const [city = '', kind = ''] = key.split('|');
      return { city, kind, arms: summarize(arms, this.policy) };
    });
  }
}

/**
 * The late-return model, on a synthetic history whose habits are known: a fifth of the hosts and
 * a tenth of the customers run late often (and longer), the rest rarely. Trained on the first
 * trips, it must rank the later trips that came back late above those that did not (AUC), well
 * above what a random ranking of the same trips reaches, and explain a risky trip by its habits.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auc, fitLateReturns, lateRisk, pOverrunPast, type EndedTrip } from '../../src/domain/late-returns.ts';
import { rng } from '../../src/domain/random.ts';
import { seeded } from '../support/random.ts';

const HOUR = 3_600_000;

function history(n: number, rand: () => number): EndedTrip[] {
  const lateHost = (h: number) => h % 5 === 0;
  const lateCustomer = (c: number) => c % 10 === 0;
  const out: EndedTrip[] = [];
  const t0 = Date.UTC(2026, 0, 5);
  for (let i = 0; i < n; i++) {
    const h = Math.floor(rand() * 40);
    const c = Math.floor(rand() * 300);
    const v = h * 5 + Math.floor(rand() * 5);
    const hours = 2 + Math.floor(rand() * 70);
    const p = 0.04 + (lateHost(h) ? 0.45 : 0) + (lateCustomer(c) ? 0.3 : 0);
    const late = rand() < p;
    const mean = lateHost(h) ? 90 : 25;
    out.push({
      hostId: `h${h}`,
      vehicleId: `v${v}`,
      customerId: `c${c}`,
      scheduledEnd: t0 + i * 1_800_000 + hours * HOUR,
      hours,
      lateMinutes: late ? Math.max(2, Math.round(-mean * Math.log(1 - rand()))) : -Math.floor(rand() * 60),
    });
  }
  return out;
}

test('ranks risky trips above safe ones (AUC), far above a random ranking', () => {
  const rand = seeded('late-returns');
  const all = history(6000, rand);
  const train = all.slice(0, 4000);
  const later = all.slice(4000);
  const model = fitLateReturns(train);
  const late = later.map((t) => t.lateMinutes > 1);
  const modelAuc = auc(
    later.map((t) => lateRisk(model, t).pLate),
    late,
  );
  const randomAuc = auc(
    later.map(() => rand()),
    late,
  );
  const FLOOR = 0.7;
  console.log(
    `# late-return model AUC ${modelAuc.toFixed(3)} (random ranking ${randomAuc.toFixed(3)}; floor ${FLOOR})`,
  );
  assert.ok(modelAuc >= FLOOR, `model AUC ${modelAuc}`);
  assert.ok(randomAuc < FLOOR, `a random ranking fails the floor (${randomAuc})`);
});

test('explains a risky trip by its habits, and sizes its overrun', () => {
  // A fixed history (seed 7): the explanation of one trip is checked, not a property of all histories.
  const model = fitLateReturns(history(4000, rng(7)));
  const risky = lateRisk(model, {
    hostId: 'h0',
    vehicleId: 'v0',
    customerId: 'c0',
    scheduledEnd: Date.UTC(2026, 2, 1, 10),
    hours: 10,
  });
  const safe = lateRisk(model, {
    hostId: 'h1',
    vehicleId: 'v5',
    customerId: 'c1',
    scheduledEnd: Date.UTC(2026, 2, 1, 10),
    hours: 10,
  });
  assert.ok(risky.pLate > 0.5 && safe.pLate < 0.3 && risky.pLate > 3 * safe.pLate, `${risky.pLate} vs ${safe.pLate}`);
  // Its host's habits lead the reasons (they show on the host's vehicles too); the customer's add to them.
  const effect = (kind: string) => risky.reasons.find((r) => r.factor.startsWith(`${kind} `))?.effect ?? 0;
  const top = risky.reasons.slice(0, 3).map((r) => r.factor.split(' ')[0]);
  assert.ok(top.includes('host'), `reasons: ${risky.reasons.map((r) => r.factor).join(', ')}`);
  assert.ok(effect('host') > 0 && effect('customer') > 0, 'both make it riskier');
  assert.ok(risky.reasons.every((r) => r.trips > 0));
  assert.ok(risky.meanOverrunMinutes > safe.meanOverrunMinutes, 'late hosts run later');
  // Further from the booked end, less likely to still be out.
  assert.ok(pOverrunPast(risky, 30) > pOverrunPast(risky, 180));
  assert.ok(pOverrunPast(risky, 0) === risky.pLate);
});

test('AUC: a perfect ranking is 1, a reversed one 0, ties count half', () => {
  assert.equal(auc([1, 2, 3, 4], [false, false, true, true]), 1);
  assert.equal(auc([4, 3, 2, 1], [false, false, true, true]), 0);
  assert.equal(auc([1, 1], [true, false]), 0.5);
});

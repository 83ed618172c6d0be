/**
 * The learning offer policy: on levels whose conversion is known, Thompson sampling settles on
 * the cheapest that reaches the target, never goes past the budget, and tries what it does not
 * know yet.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { betaSample, chooseLevel, summarize } from '../../src/domain/incentives.ts';
import { seeded } from '../support/random.ts';

test('settles on the cheapest level that converts at the target, within the budget', () => {
  const rand = seeded('incentives');
  // Simulated customers: conversion rises with the level.
  const truth: Record<number, number> = { 0.5: 0.5, 1: 0.7, 1.5: 0.86, 2: 0.93, 3: 0.97 };
  const stats = new Map<number, { level: number; offers: number; accepted: number }>();
  const chosen: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const level = chooseLevel([...stats.values()], { target: 0.8, maxLevel: 2 }, rand);
    assert.ok(level <= 2, 'never past the budget');
    const arm = stats.get(level) ?? { level, offers: 0, accepted: 0 };
    arm.offers++;
    if (rand() < (truth[level] ?? 0)) arm.accepted++;
    stats.set(level, arm);
    chosen.push(level);
  }
  const last = chosen.slice(-1000);
  const share = (l: number) => last.filter((x) => x === l).length / last.length;
  assert.ok(share(1.5) > 0.7, `mostly ×1.5 at the end: ${share(1.5)}`);
  assert.ok(stats.has(0.5) && stats.has(2), 'every level was tried');
  const s = summarize([...stats.values()], { target: 0.8, maxLevel: 2 });
  assert.deepEqual(
    s.map((a) => a.level),
    [0.5, 1, 1.5, 2],
  );
});

test('Beta samples have the right mean', () => {
  const rand = seeded('beta');
  let sum = 0;
  for (let i = 0; i < 20000; i++) sum += betaSample(8, 2, rand);
  assert.ok(Math.abs(sum / 20000 - 0.8) < 0.01);
});

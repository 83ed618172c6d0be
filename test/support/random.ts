/**
 * Seeded randomness for tests: every test that draws random numbers takes them from here, and
 * prints its seed, so a failing run can be replayed exactly with `TEST_SEED=<seed> npm test`.
 */
import { createHash, randomInt } from 'node:crypto';
import { rng } from '../../src/domain/random.ts';

/** A generator for `name`, seeded by TEST_SEED when set (else a fresh seed), which it prints. */
export function seeded(name: string): (() => number) & { seed: number } {
  const seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : randomInt(2 ** 31);
  const mixed = createHash('sha1').update(`${name}:${seed}`).digest().readUInt32LE(0);
  console.log(`# ${name}: TEST_SEED=${seed}`);
  return Object.assign(rng(mixed), { seed });
}

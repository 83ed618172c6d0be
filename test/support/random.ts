/**
 * Seeded randomness for tests: every test that draws random numbers takes them from here, and
 * prints its seed, so a failing run can be replayed exactly with `TEST_SEED=<seed> npm test`.
 */
import { createHash, randomInt } from 'node:crypto';

/** mulberry32: small, fast, good enough for test schedules. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A generator for `name`, seeded by TEST_SEED when set (else a fresh seed), which it prints. */
export function seeded(name: string): (() => number) & { seed: number } {
  const seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : randomInt(2 ** 31);
  const mixed = createHash('sha1').update(`${name}:${seed}`).digest().readUInt32LE(0);
  console.log(`# ${name}: TEST_SEED=${seed}`);
  return Object.assign(mulberry32(mixed), { seed });
}

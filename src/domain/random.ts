/** A small seeded generator (xorshift32): a run can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** One of `items`, drawn with `rand` (weighted by `skew`: rand() ** skew favours the first). */
export function pick<T>(items: readonly T[], rand: () => number, skew = 1): T {
  const item = items[Math.floor(rand() ** skew * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

/** The item at `i`, counting round: `i` modulo the length (a worker's turn through a list). */
export function inTurn<T>(items: readonly T[], i: number): T {
  const item = items[i % items.length];
  if (item === undefined) throw new Error('a turn through an empty list');
  return item;
}

/** New entity ids: `<prefix>_<city>_<time-ordered random>` (see src/domain/ids.ts). */
import { randomBytes } from 'node:crypto';
import { ID_PREFIXES, type IdKind } from '../domain/ids.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32

function timeOrderedToken(): string {
  let t = Date.now();
  let time = '';
  for (let i = 0; i < 9; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rand = randomBytes(10);
  let tail = '';
  for (const b of rand) tail += ALPHABET[b % 32];
  return time + tail;
}

export function newId(kind: IdKind, city: string): string {
  return `${ID_PREFIXES[kind]}_${city}_${timeOrderedToken()}`;
}

/** New entity ids: `<prefix>_<city>_<time-ordered random>` (see src/domain/ids.ts). */
import { randomBytes } from 'node:crypto';
import { ID_PREFIXES, type IdKind } from '../domain/ids.ts';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32

// Random bytes drawn 4 KB at a time (as nanoid does): one call into the CSPRNG per 409 ids rather
// than one per id, which was 3% of a booking's CPU.
const POOL = 4096;
const TOKEN_BYTES = 10;
let pool = Buffer.alloc(0);
let used = POOL;

function randomTail(): string {
  if (used + TOKEN_BYTES > pool.length) {
    pool = randomBytes(POOL);
    used = 0;
  }
  let tail = '';
  for (let i = used; i < used + TOKEN_BYTES; i++) tail += ALPHABET[(pool[i] ?? 0) % 32];
  used += TOKEN_BYTES;
  return tail;
}

function timeOrderedToken(): string {
  let t = Date.now();
  let time = '';
  for (let i = 0; i < 9; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + randomTail();
}

export function newId(kind: IdKind, city: string): string {
  return `${ID_PREFIXES[kind]}_${city}_${timeOrderedToken()}`;
}

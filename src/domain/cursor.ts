/**
 * Keyset cursors (search pages, trip lists): where a page ended — a sort key and an id — as
 * opaque base64url JSON. A cursor this API did not issue is a VALIDATION refusal.
 */
import { DomainError } from './errors.ts';

export interface PageKey {
  key: number;
  id: string;
}

export function encodeCursor(k: PageKey): string {
  return Buffer.from(JSON.stringify([k.key, k.id])).toString('base64url');
}

export function decodeCursor(cursor: string): PageKey {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && Number.isFinite(v[0]) && typeof v[1] === 'string')
      return { key: v[0], id: v[1] };
  } catch {
    // Not base64url JSON: refused below like any other malformed cursor.
  }
  throw new DomainError('VALIDATION', `cursor ${cursor.slice(0, 40)} is not one this API issued`, { field: 'cursor' });
}

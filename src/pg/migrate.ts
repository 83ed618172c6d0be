/**
 * Numbered, append-only SQL migrations (`migrations/NNN_name.sql`), each applied once in its
 * own transaction and recorded in a ledger with its checksum. An advisory lock keeps two
 * starters from racing; the database is created when it does not exist.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { resolveUrl } from './pool.ts';
import { codeOf } from '../domain/errors.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
const LOCK_KEY = 7_421_001; // pg_advisory_lock key of the migrator

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir = DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(path.join(dir, file), 'utf8');
      return {
        version: Number(file.slice(0, 3)),
        name: file.slice(4, -4),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

/** Creates the database named in `url` when it does not exist (connecting to `postgres`). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsupported database name ${JSON.stringify(name)}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  c.on('error', () => {}); // a server dying mid-way fails the pending query, which says why
  await c.connect();
  try {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } catch (err) {
        const code = codeOf(err);
        if (code !== '42P04' && code !== '23505') throw err; // created meanwhile by another starter
      }
    }
  } finally {
    await c.end();
  }
}

export async function migrate(databaseUrl: string): Promise<{ applied: string[] }> {
  // Several hosts: the one the URL's session attributes select (the primary, for writers).
  const url = await resolveUrl(databaseUrl);
  await ensureDatabase(url);
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {}); // a server dying mid-way fails the pending query, which says why
  await c.connect();
  const applied: string[] = [];
  try {
    await c.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Map(
      (
        await c.query<{ version: number; checksum: string }>('SELECT version, checksum FROM schema_migrations')
      ).rows.map((r) => [r.version, r.checksum]),
    );
    for (const m of loadMigrations()) {
      const prior = done.get(m.version);
      if (prior !== undefined) {
        if (prior !== m.checksum)
          throw new Error(`migration ${m.version}_${m.name} changed after it was applied; add a new migration instead`);
        continue;
      }
      await c.query('BEGIN');
      try {
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      }
      applied.push(`${String(m.version).padStart(3, '0')}_${m.name}`);
    }
  } finally {
    await c.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {}); // the session ends next: its locks go with it
    await c.end();
  }
  return { applied };
}

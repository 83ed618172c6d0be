/** The registry of API clients (migration 008; docs/api.md, "API clients"). */
import type pg from 'pg';

export interface ApiClientRecord {
  id: string;
  name: string;
  role: 'customer' | 'host' | 'ops';
  hostId?: string;
  scopes?: string[];
  cities?: string[];
  quotaPerMinute: number;
  burst: number;
  createdBy: string;
  createdAt: number;
}

/** A client as stored: its record and the hash of its secret. */
export interface StoredApiClient extends ApiClientRecord {
  secretHash: string;
}

interface ClientRow {
  id: string;
  name: string;
  role: ApiClientRecord['role'];
  host_id: string | null;
  scopes: string[] | null;
  cities: string[] | null;
  quota_per_minute: number;
  burst: number;
  secret_hash: string;
  created_by: string;
  created_at: Date;
}

function fromRow(r: ClientRow): StoredApiClient {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    quotaPerMinute: r.quota_per_minute,
    burst: r.burst,
    secretHash: r.secret_hash,
    createdBy: r.created_by,
    createdAt: r.created_at.getTime(),
    ...(r.host_id !== null ? { hostId: r.host_id } : {}),
    ...(r.scopes !== null ? { scopes: r.scopes } : {}),
    ...(r.cities !== null ? { cities: r.cities } : {}),
  };
}

export async function insertApiClient(pool: pg.Pool, c: Omit<StoredApiClient, 'createdAt'>): Promise<StoredApiClient> {
  const { rows } = await pool.query<ClientRow>(
    `INSERT INTO api_clients (id, name, role, host_id, scopes, cities, quota_per_minute, burst, secret_hash, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
    [
      c.id,
      c.name,
      c.role,
      c.hostId ?? null,
      c.scopes ?? null,
      c.cities ?? null,
      c.quotaPerMinute,
      c.burst,
      c.secretHash,
      c.createdBy,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('INSERT ... RETURNING answered no row');
  return fromRow(row);
}

/** Every client, oldest first. */
export async function listApiClients(pool: pg.Pool): Promise<StoredApiClient[]> {
  const { rows } = await pool.query<ClientRow>('SELECT * FROM api_clients ORDER BY created_at, id');
  return rows.map(fromRow);
}

export async function getApiClient(pool: pg.Pool, id: string): Promise<StoredApiClient | undefined> {
  const { rows } = await pool.query<ClientRow>('SELECT * FROM api_clients WHERE id = $1', [id]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Whether there was such a client. */
export async function deleteApiClient(pool: pg.Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query('DELETE FROM api_clients WHERE id = $1', [id]);
  return (rowCount ?? 0) > 0;
}

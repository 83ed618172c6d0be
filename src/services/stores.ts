/**
 * The stores' handles as the layers above the services name them: the Redis connection and the
 * PostgreSQL pool a process opens and hands to its services, and the shapes of what those report.
 * Types only: nothing above src/services issues a store command (the dependency rule of
 * .dependency-cruiser.cjs; docs/codebase.md).
 */
export type { Pool as PgPool } from 'pg';
export type { RedisConnection } from '../redis/scripts.ts';
export type { CityLag } from '../redis/sync-state.ts';
export type { StreamEvent } from '../domain/events.ts';

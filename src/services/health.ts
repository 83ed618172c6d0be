/** What /readyz reports of the stores: whether Redis can lose an acknowledged write. */
export { inspectDurability, type DurabilityReport } from '../redis/connection.ts';

/** `fleet migrate`: apply the PostgreSQL migrations (creating the database) and record the cities served. */
import { migrate } from '../../pg/migrate.ts';
import { recordCities } from '../../services/durable.ts';
import { print, type Command } from '../context.ts';
import { withPool } from '../wiring.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  async run({ config, inventory }) {
    const result = await migrate(config.DATABASE_URL);
    await withPool(config, (pool) => recordCities(pool, inventory.cities.all()));
    print(result);
  },
};

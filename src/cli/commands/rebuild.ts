/** `fleet rebuild --city X`: restore a city's Redis state from PostgreSQL. */
import { rebuildCity } from '../../services/durable.ts';
import { need, print, type Command } from '../context.ts';
import { withPool } from '../wiring.ts';

export const rebuildCommand: Command = {
  name: 'rebuild',
  async run({ config, redis, opt }) {
    print(
      await withPool(config, (pool) =>
        rebuildCity(redis, pool, need('--city', opt.city), config.CALENDAR_RETENTION_MS),
      ),
    );
  },
};

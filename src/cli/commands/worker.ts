/** `fleet worker`: the sync worker (streams -> PostgreSQL), the failover monitor and a standby webhook dispatcher, as their own process. */
import { pino } from 'pino';
import type { CliContext, Command } from '../context.ts';
import { newFailoverMonitor, newPool, newSyncWorker, newWebhookDispatcher, serveMetrics } from '../wiring.ts';

export const workerCommand: Command = { name: 'worker', run: runWorker, waitsForStores: true };

async function runWorker({ config, inventory, redis }: CliContext): Promise<void> {
  const log = pino({ level: config.LOG_LEVEL });
  const pool = newPool(config, log);
  const sync = newSyncWorker(config, redis, pool, inventory, log);
  sync.start();
  // Stands by for the webhook dispatcher of `fleet serve` (one leader at a time).
  const dispatcher = newWebhookDispatcher(config, redis, pool, inventory, log);
  dispatcher.start();
  // Without the resolver here, overlaps found after a failover are marked by the next post-validation pass.
  const monitor = newFailoverMonitor(config, redis, pool, inventory, log);
  monitor.start();
  const metricsServer = serveMetrics(config, log);
  log.info({ consumer: sync.consumer }, 'sync worker running; Ctrl-C stops');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  metricsServer.close();
  await monitor.stop();
  await dispatcher.stop();
  await sync.stop();
  await pool.end();
}

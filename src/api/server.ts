/** The only place that listens: `fleet api` / `npm start`. */
import type { App } from './app.ts';

export async function listen(app: App, port: number, host = '0.0.0.0'): Promise<string> {
  return app.listen({ port, host });
}

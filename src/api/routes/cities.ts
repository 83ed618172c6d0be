import { Type } from '@sinclair/typebox';
import type { App, AppDeps } from '../app.ts';
import { City } from '../schemas.ts';

export function cityRoutes(app: App, deps: AppDeps): void {
  app.get('/v1/cities', {
    schema: { tags: ['cities'], summary: 'The cities served', response: { 200: Type.Object({ cities: Type.Array(City) }) } },
  }, async () => ({
    cities: deps.inventory.cities.all().map((c) => ({ id: c.id, name: c.name, timeZone: c.timeZone, turnaroundMinutes: c.turnaroundMs / 60_000 })),
  }));
}

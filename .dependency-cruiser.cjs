/**
 * The layers of src/ (docs/codebase.md), held by `npm test` (`npm run deps`). From the bottom:
 * domain (pure rules) <- pg, redis (the stores) <- services (orchestration) <- workers <- api <-
 * cli; sim and ha (the simulator, chaos, the local topologies) drive the service from outside.
 */
const layer = (name) => `^src/${name}/`;
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle ties modules that should be apart: break it (a type moved down, a value passed in).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'domain-is-pure',
      comment: 'src/domain holds rules and types: no store, no service, no I/O (node:net only for isIP).',
      severity: 'error',
      from: { path: layer('domain') },
      to: { pathNot: [layer('domain'), '^node:crypto$', '^net$', '^node_modules/@sinclair'] },
    },
    {
      name: 'stores-below-services',
      comment: 'src/pg and src/redis are reached through services; they know nothing above them.',
      severity: 'error',
      from: { path: '^src/(pg|redis)/' },
      to: { path: '^src/(services|workers|api|cli|sim|ha)/' },
    },
    {
      name: 'services-below-workers-and-api',
      comment: 'Services are what workers, the API and the CLI call: never the other way.',
      severity: 'error',
      from: { path: layer('services') },
      to: { path: '^src/(workers|api|cli|sim)/' },
    },
    {
      name: 'workers-below-api',
      severity: 'error',
      from: { path: layer('workers') },
      to: { path: '^src/(api|cli|sim)/' },
    },
    {
      name: 'api-calls-services',
      comment: 'Routes parse, authorise and call a service: no SQL, no Redis command, no worker in src/api (not even a type).',
      severity: 'error',
      from: { path: layer('api') },
      to: {
        path: ['^src/(pg|redis|workers|cli|sim)/', '^node_modules/(pg|ioredis)/'],
      },
    },
    {
      name: 'api-types-from-services',
      comment: 'Even a type of a worker or of the CLI has no place in src/api.',
      severity: 'error',
      from: { path: layer('api') },
      to: { path: '^src/(workers|cli|sim)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js'], conditionNames: ['import', 'node', 'default'] },
    exclude: { path: '\\.d\\.ts$' },
  },
};

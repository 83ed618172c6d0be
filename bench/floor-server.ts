/**
 * The floor: the least an HTTP booking service on Redis can do, on the same stack as the real
 * one (fastify 5 + ioredis), without authentication, validation, rate limits or a read model.
 *
 *   POST /book          {vehicleId, from, to} (ISO) -> one EVALSHA: is the vehicle there, does
 *                       the nearest earlier interval of its sorted set overlap (turnaround
 *                       included)? if not ZADD the interval and XADD the event. 201 or 409.
 *   GET  /vehicles/:id  HGETALL of the vehicle hash (`HASH_PREFIX` + id), as JSON.
 *
 * Env: REDIS_URL, BENCH_VEHICLES (how many of the benchmark's vehicles to create, see
 * lib/workload.ts), HASH_PREFIX (read path).
 * Started by bench/side-by-side.ts; talks to it over IPC (bench/lib/child.ts).
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { cpuMs, serveParent } from './lib/child.ts';
import { vehicleIds } from './lib/workload.ts';

const BOOK = `
local from, to, pad = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOT_FOUND') end
local prev = redis.call('ZREVRANGEBYSCORE', KEYS[2], '(' .. (to + pad), '-inf', 'LIMIT', 0, 1)[1]
if prev then
  local pto = tonumber(string.match(prev, '^%d+:(%d+):'))
  if pto + pad > from then return redis.error_reply('NOT_AVAILABLE') end
end
redis.call('ZADD', KEYS[2], from, from .. ':' .. to .. ':' .. ARGV[1])
redis.call('XADD', KEYS[3], '*', 'type', 'booking.confirmed', 'booking', ARGV[1], 'vehicle', ARGV[6], 'customer', ARGV[2], 'from', ARGV[3], 'to', ARGV[4])
return ARGV[1]
`;
const TURNAROUND_MS = 30 * 60_000;

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 3 });
const sha = String(await redis.script('LOAD', BOOK));
const ids = vehicleIds(Number(process.env.BENCH_VEHICLES ?? 0));
for (let i = 0; i < ids.length; i += 1000) {
  const m = redis.pipeline();
  for (const id of ids.slice(i, i + 1000))
    m.hset(`floor:v:${id}`, { id, listing: 'active', category: 'sedan', seats: '5', pricePerHour: '10' });
  await m.exec();
}
const hashPrefix = process.env.HASH_PREFIX ?? 'floor:v:';

const app = Fastify({ logger: false });
app.post('/book', async (request, reply) => {
  const b = request.body as { vehicleId: string; from: string; to: string };
  const id = randomUUID();
  try {
    await redis.evalsha(
      sha,
      3,
      `floor:v:${b.vehicleId}`,
      `floor:cal:${b.vehicleId}`,
      'floor:events',
      id,
      'c1',
      Date.parse(b.from),
      Date.parse(b.to),
      TURNAROUND_MS,
      b.vehicleId,
    );
  } catch (err) {
    const code = (err as Error).message;
    return reply.code(code.startsWith('NOT_FOUND') ? 404 : 409).send({ code });
  }
  return reply.code(201).send({ id, vehicleId: b.vehicleId, from: b.from, to: b.to });
});
app.get('/vehicles/:id', async (request, reply) => {
  const h = await redis.hgetall(hashPrefix + (request.params as { id: string }).id);
  if (!h.id) return reply.code(404).send({ code: 'NOT_FOUND' });
  return h;
});

const url = await app.listen({ port: 0, host: '127.0.0.1' });
serveParent(url, { cpu: () => cpuMs() }, async () => {
  await app.close();
  redis.disconnect();
});

--[[
  place_reserve: keep one vehicle back from instant booking for the conflict resolver over
  [from, to) (the conflict reserve, docs/conflicts.md): a hold of the service's (customer
  `system:reserve`) that lapses at ARGV[8], so the vehicle goes back to search before the hour.
  Only the resolver takes a reserved vehicle (make_offers releases the reserve in the step that
  places its offer). The hold id is the reserve's slot: placing it again answers `exists`.

  KEYS[1] vehicle hash      KEYS[2] calendar documents      KEYS[3] calendar index
  KEYS[4] city counters     KEYS[5] city event stream       KEYS[6] status-due zset
  KEYS[7] entries index     KEYS[8] live holds
  ARGV[1] command id   ARGV[2] city   ARGV[3] vehicle id   ARGV[4] turnaround (ms)
  ARGV[5] hold id      ARGV[6] from   ARGV[7] to           ARGV[8] released at (ms)
  ARGV[9] area         ARGV[10] category

  Returns  json { outcome = placed | exists | taken }
  Events   hold.placed (data.reserve {area, category, hour}, data.expiresAt)
]]
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[2])
local ctx = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[3], num(ARGV[4], 'buffer'))
if entry(ctx, ARGV[5]) ~= nil then return cjson.encode({ outcome = 'exists' }) end
local from, to, release = num(ARGV[6], 'from'), num(ARGV[7], 'to'), num(ARGV[8], 'releasedAt')
if release <= NOW or not is_free(ctx, from, to) then return cjson.encode({ outcome = 'taken' }) end
local reserve = { area = ARGV[9], category = ARGV[10], hour = from }
local hold = { id = ARGV[5], kind = 'hold', status = 'held', from = from, to = to, customerId = 'system:reserve',
               expiresAt = release, reserve = reserve }
put(ctx, hold)
emit(ctx, 'hold.placed', hold.id, { customerId = hold.customerId, from = from, to = to, expiresAt = release,
  reserve = reserve })
commit(ctx, shared)
return cjson.encode({ outcome = 'placed' })

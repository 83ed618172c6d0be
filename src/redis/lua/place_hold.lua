--[[
  place_hold: a checkout hold on [from, to) that lapses at now + ttl unless converted.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  KEYS[10]    the customer's holds zset in this city (holdId -> expiresAt); other scripts
              never touch it: a member whose hold left `held` is dropped here, lazily
  ARGV[1..5]  common prefix
  ARGV[6]     hold id   ARGV[7] customer id   ARGV[8] from   ARGV[9] to
  ARGV[10]    ttl (ms)  ARGV[11] max live holds per customer in the city
  ARGV[12]    '1' when the caller may write the past (ops)
  ARGV[13]    the city's currency (ISO 4217)   ARGV[14] its minor-unit exponent

  The hold carries its price (includes/pricing.lua), fixed now at the vehicle's rates.

  Returns  { json { hold, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_INTERVAL, NOT_AVAILABLE (overlap incl. turnaround; delisted), HOLD_LIMIT
  Events   hold.placed
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local from, to = num(ARGV[8], 'from'), num(ARGV[9], 'to')
local ttl, cap = num(ARGV[10], 'ttl'), num(ARGV[11], 'maxLiveHolds')
local pricing = pricing_arg(ARGV[13], ARGV[14])
check_interval(from, to, ARGV[12] == '1', false)
require_listed(ctx)
require_free(ctx, from, to, true, nil)

-- Count the customer's live holds: the zset may keep members another script released.
local live = 0
local stale = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[10], 0, -1)) do
  if redis.call('HEXISTS', shared.live, id) == 1 and tonumber(redis.call('ZSCORE', KEYS[10], id)) > NOW then
    live = live + 1
  else
    stale[#stale + 1] = id
  end
end
if live >= cap then fail('HOLD_LIMIT', { live = live, max = cap }) end

local hold = { id = ARGV[6], kind = 'hold', status = 'held', from = from, to = to,
               customerId = ARGV[7], expiresAt = NOW + ttl, price = price_window(pricing, ctx.vehicle, from, to) }
put(ctx, hold)
emit(ctx, 'hold.placed', hold.id, { customerId = hold.customerId, from = from, to = to, expiresAt = hold.expiresAt,
  price = { currency = hold.price.currency, total = hold.price.total } })
if #stale > 0 then redis.call('ZREM', KEYS[10], unpack(stale)) end
redis.call('ZADD', KEYS[10], hold.expiresAt, hold.id)
-- The zset lives as long as the customer's latest hold; released members are dropped lazily above.
if redis.call('PEXPIRETIME', KEYS[10]) < hold.expiresAt then redis.call('PEXPIREAT', KEYS[10], hold.expiresAt) end
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { hold = entry_json(ctx, hold) })

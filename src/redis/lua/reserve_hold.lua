--[[
  reserve_hold: a customer's place for one more hold, across every city (the per-city cap is
  place_hold's). Cities live in different slots, so a hold is reserved here first, in the
  customer's own slot, then placed in its city; a hold that is refused there gives its place back
  (release_hold_reservation), and a reservation whose hold lapses frees itself when it expires.

  KEYS[1]  ZSET hold id -> expiry (ms) of the customer's live holds, every city
  KEYS[2]  STRING the customer's holds placed in the current rate window
  ARGV[1]  hold id   ARGV[2] its lifetime (ms)   ARGV[3] most live holds   ARGV[4] most holds per window
  ARGV[5]  the rate window (ms)

  Returns  { live holds now, holds placed in the window }
  Errors   HOLD_LIMIT { live, max, retryAfterMs }, HOLD_RATE_LIMITED { placed, max, retryAfterMs }
  Events   none: a reservation is not marketplace state (the hold's own events follow in its city)
]]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', NOW)
local live = redis.call('ZCARD', KEYS[1])
local max_live = num(ARGV[3], 'maxLive')
if live >= max_live then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  fail('HOLD_LIMIT', { live = live, max = max_live, scope = 'all_cities', retryAfterMs = math.max(1000, tonumber(first[2]) - NOW) })
end
local placed = tonumber(redis.call('GET', KEYS[2]) or '0')
local max_rate = num(ARGV[4], 'maxRate')
if placed >= max_rate then
  fail('HOLD_RATE_LIMITED', { placed = placed, max = max_rate, retryAfterMs = math.max(1000, redis.call('PTTL', KEYS[2])) })
end
if redis.call('INCR', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
local ttl = num(ARGV[2], 'ttl')
redis.call('ZADD', KEYS[1], NOW + ttl, ARGV[1])
-- The set lives as long as its longest reservation.
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return { live + 1, placed + 1 }

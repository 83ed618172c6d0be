--[[
  unschedule_lapse: a booking whose offers are no longer open (accepted, declined, closed or gone)
  leaves the lapse schedule; one still open stays.

  KEYS[1]  offers hash   KEYS[2] offers-due zset
  ARGV[1]  booking id

  Returns  1 when removed, 0 when its offers are still open
  Events   none: the schedule is bookkeeping, the outcome was published by its own script
]]
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw and cjson.decode(raw).status == 'open' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1

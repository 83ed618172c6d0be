--[[
  restore_offer_record: a conflicted booking's open offers, back into Redis after a rebuild (the
  record rebuilt from the event log; its holds came back with the calendars), lapse rescheduled.
  A record Redis already holds is left as it is.

  KEYS[1]  offers hash (bookingId -> record)   KEYS[2] offers-due zset (bookingId -> expiresAt)
  ARGV[1]  booking id   ARGV[2] record JSON   ARGV[3] expiresAt (ms)

  Returns  1 when restored, 0 when a record was already there
  Events   none: the offers were published when they were made; Redis catches up with them
]]
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], num(ARGV[3], 'expiresAt'), ARGV[1])
return 1

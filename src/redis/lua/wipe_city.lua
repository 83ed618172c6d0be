--[[
  wipe_city: removes a city's operational keys before `fleet rebuild` restores them from
  PostgreSQL (the event stream and the idempotency records are never passed here: they are kept).

  KEYS[1..n]  the keys to remove, all of one city

  Returns  how many existed
  Events   none: every vehicle restored next writes vehicle.restored
]]
local n = 0
for i = 1, #KEYS do n = n + redis.call('DEL', KEYS[i]) end
return n

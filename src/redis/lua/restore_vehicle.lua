--[[
  restore_vehicle: put a vehicle and its calendar back into Redis from the durable copy
  (PostgreSQL), for `fleet rebuild` and `fleet reconcile --repair`. It records no event: the
  marketplace did not change, Redis is catching up with what was already published.
  The status is derived again at the server's now; counters move from whatever Redis held.

  KEYS[1] vehicle hash   KEYS[2] calendar   KEYS[3] counters   KEYS[4] status-due
  KEYS[5] entries index   KEYS[6] live holds   KEYS[7] city vehicles set   KEYS[8] host set
  KEYS[9] geo
  ARGV[1] vehicle JSON (spec fields, listing, version, createdAt)   ARGV[2] JSON array of entries
  ARGV[3] vehicle id

  Returns  json { status, version, entries }
  Events   none
]]
local vid = ARGV[3]
local v = cjson.decode(ARGV[1])
local list = cjson.decode(ARGV[2])
local old = load_vehicle(KEYS[1])
for _, raw in ipairs(redis.call('HVALS', KEYS[2])) do
  local e = cjson.decode(raw)
  if e.kind == 'hold' then redis.call('HDEL', KEYS[6], e.id) end
end
redis.call('DEL', KEYS[2])
local entries = {}
for _, e in ipairs(list) do
  entries[#entries + 1] = e
  redis.call('HSET', KEYS[2], e.id, cjson.encode(e))
  redis.call('HSET', KEYS[5], e.id, vid)
  if e.kind == 'hold' and e.status == 'held' then redis.call('HSET', KEYS[6], e.id, vid) end
end
local status, due = derive(v.listing, entries, NOW)
local old_status, old_category = nil, nil
if old then old_status, old_category = old.status, old.category end
move_counters(KEYS[3], old_category, old_status, v.category, status)
write_vehicle(KEYS[1], KEYS[4], vid, v, status, due)
redis.call('SADD', KEYS[7], vid)
redis.call('SADD', KEYS[8], vid)
redis.call('GEOADD', KEYS[9], v.lng, v.lat, vid)
return cjson.encode({ status = status, version = v.version, entries = #entries })

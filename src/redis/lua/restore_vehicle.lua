--[[
  restore_vehicle: put a vehicle and its whole calendar back into Redis from the durable copy
  (PostgreSQL) — `fleet rebuild`, `fleet reconcile --repair`, and a failover verification that
  finds a vehicle Redis lost. The calendar is replaced: entries Redis held that the copy lacks
  leave it, with their index rows. The status is derived again at the server's now; counters move
  from whatever Redis held; the version moves on from the copy's.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  KEYS[10]    city vehicles set   KEYS[11] host vehicles set   KEYS[12] city geo set
  ARGV[1..5]  common prefix
  ARGV[6]     vehicle JSON (spec fields, listing, version, createdAt)
  ARGV[7]     JSON array of calendar entries
  ARGV[8]     why: rebuild | repair | failover

  Returns  json { status, version, entries, events }
  Events   vehicle.restored (state: the vehicle; data: { reason, entries = the whole calendar }),
           so read models and WebSocket subscribers learn the restored calendar
]]
local ctx, shared = open_command()
local doc = cjson.decode(ARGV[6])
local list = cjson.decode(ARGV[7])
local vanished = {}
read_all(ctx)
for _, e in ipairs(ctx.entries) do vanished[e.id] = e end

local v = ctx.vehicle or {}
for _, f in ipairs(VEHICLE_FIELDS) do
  if doc[f] ~= nil then v[f] = doc[f] end
end
v.id, v.city = ctx.vid, shared.city
v.version = tonumber(doc.version) or 0
if not ctx.vehicle then
  ctx.vehicle = v
  ctx.old_category = v.category
end

for id, e in pairs(vanished) do remove(ctx, e) end
for _, e in ipairs(list) do
  vanished[e.id] = nil
  local created, updated = e.createdAt, e.updatedAt
  put(ctx, e)
  -- The copy's times stand: they order bookings (the later-made one yields in an overlap).
  e.createdAt, e.updatedAt = created, updated
end
for id, e in pairs(vanished) do
  redis.call('HDEL', shared.index, id)
  if e.kind == 'hold' then redis.call('HDEL', shared.live, id) end
end

emit(ctx, 'vehicle.restored', ctx.vid, { reason = ARGV[8], entries = list })
redis.call('SADD', KEYS[10], ctx.vid)
redis.call('SADD', KEYS[11], ctx.vid)
redis.call('GEOADD', KEYS[12], v.lng, v.lat, ctx.vid)
-- Every entry of the restored calendar is written again (put above), so its index is rebuilt from them.
redis.call('DEL', KEYS[3])
ctx.reach = 0
local out = commit(ctx, shared)
out.entries = #list
return cjson.encode(out)

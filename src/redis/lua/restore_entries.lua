--[[
  restore_entries: after a failover, put back the calendar entries (and vehicle changes) that
  Redis lost but PostgreSQL holds — each only if Redis has no newer state of it. Nothing is
  checked against the calendar here: an overlap a restored entry makes is found right after by
  the post-validation pass, which turns it into a conflict with offers (architecture.md §8).

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     JSON array of entries (holds, bookings, blocks) as PostgreSQL holds them
  ARGV[7]     vehicle JSON with the listing and spec PostgreSQL holds ('' = keep Redis's)
  ARGV[8]     why (failover)

  Returns  json { restored = [entry ids], vehicle = 0|1, version?, status?, events? }
  Errors   NOT_FOUND (vehicle)
  Events   hold.restored | booking.restored | block.restored per entry, vehicle.restored when the
           listing or spec came back (data: { reason })
]]
local ctx, shared = open_command()
require_vehicle(ctx)
local list = cjson.decode(ARGV[6])
local restored = {}
for _, e in ipairs(list) do
  local cur = entry(ctx, e.id)
  if cur == nil or (tonumber(cur.updatedAt) or 0) < (tonumber(e.updatedAt) or 0) then
    if cur then remove(ctx, cur) end
    local created, updated = e.createdAt, e.updatedAt
    put(ctx, e)
    e.createdAt, e.updatedAt = created, updated
    emit(ctx, e.kind .. '.restored', e.id, { reason = ARGV[8], customerId = e.customerId })
    restored[#restored + 1] = e.id
  end
end

local vehicle_back = 0
if ARGV[7] ~= '' then
  local doc = cjson.decode(ARGV[7])
  for _, f in ipairs({ 'category', 'seats', 'transmission', 'fuel', 'make', 'model', 'lat', 'lng', 'pricePerHour',
                      'pricePerDay', 'listing' }) do
    -- A field the hash lacks (a daily cap never set) is '' in the copy.
    if doc[f] ~= nil and tostring(doc[f]) ~= tostring(ctx.vehicle[f] or '') then
      ctx.vehicle[f] = doc[f]
      vehicle_back = 1
    end
  end
  if vehicle_back == 1 then emit(ctx, 'vehicle.restored', ctx.vid, { reason = ARGV[8] }) end
end

if #restored == 0 and vehicle_back == 0 then
  return cjson.encode({ restored = restored, vehicle = 0, at = NOW })
end
local out = commit(ctx, shared)
out.restored = restored
out.vehicle = vehicle_back
out.at = NOW
return cjson.encode(out)

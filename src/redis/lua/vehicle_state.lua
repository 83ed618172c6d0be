--[[
  vehicle_state (read-only): a vehicle, its calendar, and its status derived at the server's now.

  KEYS[1..3] the vehicle's three keys; a query answers the whole calendar, so it reads the
  documents (KEYS[2]) and not the index
  Returns  json { vehicle, entries (sorted by start), status, due, at } or nil when unknown
]]
local v = load_vehicle(KEYS[1])
if v == nil then return nil end
local entries = load_entries(KEYS[2])
local status, due = derive(v.listing, entries, NOW)
return cjson.encode({ vehicle = v, entries = entries, status = status, due = due, at = NOW })

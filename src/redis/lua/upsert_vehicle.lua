--[[
  upsert_vehicle: create a vehicle, or update its spec, with an optional expected-version check.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  KEYS[10]    city vehicles set
  KEYS[11]    host vehicles set (of the host in ARGV[7]'s hostId)
  KEYS[12]    city geo set
  ARGV[1..5]  common prefix
  ARGV[6]     expected version: '' = any, '0' = must not exist yet, n = must be exactly n
  ARGV[7]     JSON spec; on create every field of VehicleSpec (pricePerDay optional), on update
              any subset (hostId may be repeated but never changed; pricePerDay null removes the cap)

  Returns  { json { vehicleId, created, version, status, events }, replayed }
  Errors   VERSION_MISMATCH, VALIDATION (missing fields on create), INVALID_STATE (owner change)
  Events   vehicle.created | vehicle.updated (data: the fields set)
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
local expected = opt_num(ARGV[6], 'expectedVersion')
local spec = cjson.decode(ARGV[7])
local actual = 0
if ctx.vehicle then actual = ctx.vehicle.version end
if expected ~= nil and expected ~= actual then
  fail('VERSION_MISMATCH', { expected = expected, actual = actual })
end

local SPEC_FIELDS = { 'category', 'seats', 'transmission', 'fuel', 'make', 'model', 'pricePerHour' }
local created = ctx.vehicle == nil
local v = ctx.vehicle
if created then
  for _, f in ipairs({ 'hostId', 'category', 'seats', 'transmission', 'fuel', 'make', 'model', 'pricePerHour', 'location' }) do
    if spec[f] == nil then fail('VALIDATION', { field = f, problem = 'required' }) end
  end
  v = { id = ctx.vid, city = shared.city, hostId = spec.hostId, listing = 'active', version = 0, createdAt = NOW }
  ctx.vehicle = v
  ctx.old_category = spec.category
elseif spec.hostId ~= nil and spec.hostId ~= v.hostId then
  fail('INVALID_STATE', { problem = 'owner_change', hostId = v.hostId })
end

local changed = {}
for _, f in ipairs(SPEC_FIELDS) do
  if spec[f] ~= nil then
    v[f] = spec[f]
    changed[f] = spec[f]
  end
end
-- The daily cap is optional: null removes it ('' on the hash and in the event's state).
if spec.pricePerDay == cjson.null then
  v.pricePerDay = ''
  changed.pricePerDay = cjson.null
elseif spec.pricePerDay ~= nil then
  v.pricePerDay = spec.pricePerDay
  changed.pricePerDay = spec.pricePerDay
end
if spec.location ~= nil then
  v.lat = spec.location.lat
  v.lng = spec.location.lng
  changed.location = spec.location
end

if created then
  changed.hostId = v.hostId
  emit(ctx, 'vehicle.created', ctx.vid, changed)
  redis.call('SADD', KEYS[10], ctx.vid)
  redis.call('SADD', KEYS[11], ctx.vid)
else
  emit(ctx, 'vehicle.updated', ctx.vid, changed)
end
if spec.location ~= nil then
  redis.call('GEOADD', KEYS[12], spec.location.lng, spec.location.lat, ctx.vid)
end
local out = commit(ctx, shared)
out.created = created
out.vehicleId = ctx.vid
return finish(KEYS[9], ARGV[2], out)

--[[
  set_listing: delist or relist a vehicle. Delisting is a fact the host may always record: every
  confirmed booking not yet started becomes `conflicted` (cause `delisted`) and live holds are
  released; a trip under way keeps the car.

  KEYS[1..8]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     'delisted' | 'active'
  ARGV[7]     reason (free text, recorded in the event)

  Returns  { json { version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (already in that listing state)
  Events   vehicle.delisted | vehicle.relisted, booking.conflicted*, hold.released*
]]
local replay = idem_replay(KEYS[8], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
local v = require_vehicle(ctx)
local target = ARGV[6]
if target ~= 'delisted' and target ~= 'active' then fail('VALIDATION', { field = 'listing' }) end
if v.listing == target then
  fail('INVALID_STATE', { entity = 'vehicle', id = ctx.vid, status = v.listing })
end

v.listing = target
if target == 'delisted' then
  emit(ctx, 'vehicle.delisted', ctx.vid, { reason = ARGV[7] })
  displace(ctx, NOW, FOREVER, false, 'delisted', ctx.vid)
else
  emit(ctx, 'vehicle.relisted', ctx.vid, { reason = ARGV[7] })
end
return finish(KEYS[8], ARGV[2], commit(ctx, shared))

--[[
  set_listing: delist, relist or retire a vehicle. Delisting is a fact the host may always record:
  every confirmed booking not yet started becomes `conflicted` (cause `delisted`) and live holds
  are released; a trip under way keeps the car. Retiring is delisting for good (no relist); it is
  refused while the vehicle has trips to come, unless forced, which displaces them as a delisting
  does (cause `retired`), so that the resolver offers alternatives.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     'delisted' | 'active' | 'retired'
  ARGV[7]     reason (free text, recorded in the event)
  ARGV[8]     '1' to retire over future bookings

  Returns  { json { version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (already in that listing state; retired for good),
           HAS_FUTURE_BOOKINGS (retire without force: data.bookings lists them)
  Events   vehicle.delisted | vehicle.relisted | vehicle.retired, booking.conflicted*, hold.released*
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
local v = require_vehicle(ctx)
local target = ARGV[6]
if target ~= 'delisted' and target ~= 'active' and target ~= 'retired' then fail('VALIDATION', { field = 'listing' }) end
if v.listing == target or v.listing == 'retired' then
  fail('INVALID_STATE', { entity = 'vehicle', id = ctx.vid, status = v.listing })
end

if target == 'retired' and ARGV[8] ~= '1' then
  local ahead = {}
  read_window(ctx, NOW, FOREVER)
  for _, e in ipairs(ctx.entries) do
    if e.kind == 'booking' and (e.status == 'active' or (e.status == 'confirmed' and e.to > NOW)) then
      ahead[#ahead + 1] = e.id
    end
  end
  if #ahead > 0 then fail('HAS_FUTURE_BOOKINGS', { entity = 'vehicle', id = ctx.vid, bookings = ahead }) end
end

v.listing = target
if target == 'retired' then
  emit(ctx, 'vehicle.retired', ctx.vid, { reason = ARGV[7] })
  displace(ctx, NOW, FOREVER, false, 'retired', ctx.vid)
elseif target == 'delisted' then
  emit(ctx, 'vehicle.delisted', ctx.vid, { reason = ARGV[7] })
  displace(ctx, NOW, FOREVER, false, 'delisted', ctx.vid)
else
  emit(ctx, 'vehicle.relisted', ctx.vid, { reason = ARGV[7] })
end
return finish(KEYS[9], ARGV[2], commit(ctx, shared))

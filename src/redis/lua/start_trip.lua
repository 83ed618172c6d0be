--[[
  start_trip: the customer picks the car up; the booking becomes `active`.
  Allowed from START_EARLY before the window until its end, and only once the previous trip
  has been completed (one car, one driver).

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id   ARGV[7] customer id ('' = any: host, ops)

  Returns  { json { booking, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (not confirmed, or outside the pickup window),
           NOT_AVAILABLE (another trip still under way, or an active block now)
  Events   booking.started
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local booking = require_entry(ctx, ARGV[6], 'booking', ARGV[7])
require_status(booking, { 'confirmed' })
if NOW < booking.from - START_EARLY or NOW >= booking.to then
  fail('INVALID_STATE', { entity = 'booking', id = booking.id, status = booking.status,
                          problem = 'outside_pickup_window', from = booking.from, to = booking.to })
end
-- Trips under way are always read (STICKY); blocks that cover now are read here.
read_window(ctx, NOW, NOW + 1)
for _, e in ipairs(ctx.entries) do
  if e.id ~= booking.id and occupies(e, NOW) then
    local trip_under_way = e.kind == 'booking' and e.status == 'active'
    local blocked_now = e.kind == 'block' and e.from <= NOW and NOW < occupied_until(e, NOW)
    if trip_under_way or blocked_now then
      fail('NOT_AVAILABLE', { blocking = window_of(e), turnaroundMs = ctx.buffer })
    end
  end
end

booking.status = 'active'
booking.startedAt = NOW
put(ctx, booking)
emit(ctx, 'booking.started', booking.id, { customerId = booking.customerId, startedAt = NOW })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { booking = entry_json(ctx, booking) })

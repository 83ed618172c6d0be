--[[
  complete_trip: the car is back; the trip ends now.
  - early (now < to): the rest of the window is freed (to = now, or `from` when the trip,
    started early, ends before its window even began);
  - on time: the window stays;
  - late (now > to): the trip is extended to now, and every confirmed booking it now overlaps
    (turnaround included) becomes `conflicted` (cause `late_return`); live holds there are released.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id   ARGV[7] customer id ('' = any: host, ops)

  Returns  { json { booking, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (not active)
  Events   booking.completed (data.completion: early | on_time | late), booking.conflicted*, hold.released*
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local booking = require_entry(ctx, ARGV[6], 'booking', ARGV[7])
require_status(booking, { 'active' })

local scheduled = booking.to
local completion = 'on_time'
if NOW < scheduled - MINUTE then completion = 'early' elseif NOW > scheduled then completion = 'late' end
booking.status = 'completed'
booking.completedAt = NOW
booking.completion = completion
if completion ~= 'on_time' then
  booking.scheduledTo = scheduled
  -- A trip started early (up to START_EARLY) may also end before its window: the window then
  -- closes at its start, never before it (an interval never ends before it begins).
  booking.to = math.max(NOW, booking.from)
end
put(ctx, booking)
emit(ctx, 'booking.completed', booking.id,
  { customerId = booking.customerId, completion = completion, scheduledTo = scheduled, to = booking.to })
if completion == 'late' then
  displace(ctx, scheduled, NOW, true, 'late_return', booking.id)
end
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { booking = entry_json(ctx, booking) })

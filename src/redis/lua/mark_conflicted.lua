--[[
  mark_conflicted: the post-validation pass found a confirmed booking overlapping another
  occupying entry (an overlap that slipped in another way, e.g. a write lost in a failover).
  Re-checked here, atomically: only a booking that still overlaps becomes `conflicted`.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id

  Returns  { json { outcome = conflicted | clean, booking?, by?, version?, status?, events? }, replayed }
  Errors   NOT_FOUND
  Events   booking.conflicted (cause overlap, data.by = the entry it overlaps)
]]
local ctx, shared = open_command()
require_vehicle(ctx)
local booking = require_entry(ctx, ARGV[6], 'booking', nil)
if booking.status ~= 'confirmed' then return { cjson.encode({ outcome = 'clean', at = NOW }), 0 } end
local by = nil
read_window(ctx, booking.from, booking.to)
for _, e in ipairs(ctx.entries) do
  if e.id ~= booking.id and e.kind ~= 'hold' and occupies(e, NOW) and overlaps(e, booking.from, booking.to, e.kind ~= 'block', ctx.buffer, NOW) then
    by = e
    break
  end
end
if not by then return { cjson.encode({ outcome = 'clean', at = NOW }), 0 } end
booking.status = 'conflicted'
booking.conflictCause = 'overlap'
booking.conflictedBy = by.id
booking.conflictedAt = NOW
put(ctx, booking)
emit(ctx, 'booking.conflicted', booking.id, { cause = 'overlap', by = by.id, customerId = booking.customerId, from = booking.from, to = booking.to })
local out = commit(ctx, shared)
out.outcome = 'conflicted'
out.booking = booking
out.by = by.id
return finish(KEYS[9], ARGV[2], out)

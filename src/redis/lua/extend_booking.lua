--[[
  extend_booking: move a confirmed or active booking's end later.
  Refused when the extra time overlaps another trip (turnaround included) or a block; an
  ops-forced extension instead marks the overlapped confirmed bookings `conflicted` (cause
  `forced_extension`) and releases the holds there. A block or a trip under way is never overridden.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id   ARGV[7] customer id ('' = any)   ARGV[8] new end   ARGV[9] '1' = forced
  ARGV[10]    the city's currency (ISO 4217)   ARGV[11] its minor-unit exponent

  The added time is priced now, at the vehicle's rates, on its own (its 24 h periods from the old
  end), and added to the booking's price: total and breakdown (includes/pricing.lua). A booking
  made before prices existed is priced whole now.

  Returns  { json { booking, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE, INVALID_INTERVAL (not later, not on a minute, > 30 days), NOT_AVAILABLE
  Events   booking.conflicted*, hold.released* (forced only), then booking.extended
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local booking = require_entry(ctx, ARGV[6], 'booking', ARGV[7])
require_status(booking, { 'confirmed', 'active' })
local new_to = num(ARGV[8], 'to')
local forced = ARGV[9] == '1'
local pricing = pricing_arg(ARGV[10], ARGV[11])
if new_to <= booking.to then fail('INVALID_INTERVAL', { problem = 'not_later', to = booking.to }) end
check_interval(booking.from, new_to, true, false)

local old_to = booking.to
read_window(ctx, old_to, new_to)
for _, e in ipairs(ctx.entries) do
  if e.id ~= booking.id and occupies(e, NOW) and overlaps(e, old_to, new_to, true, ctx.buffer, NOW) then
    local overridable = forced and ((e.kind == 'booking' and e.status == 'confirmed') or e.kind == 'hold')
    if not overridable then
      fail('NOT_AVAILABLE', { blocking = window_of(e), turnaroundMs = ctx.buffer })
    end
  end
end

local added
if booking.price then
  booking.price, added = extend_price(pricing, ctx.vehicle, booking.price, old_to, new_to)
else
  booking.price = price_window(pricing, ctx.vehicle, booking.from, new_to)
  added = booking.price.total
end
booking.to = new_to
put(ctx, booking)
-- The displaced bookings' events come first: a consumer applying any prefix of this command's
-- events (a sync batch may end between them) never sees two confirmed bookings overlap.
if forced then displace(ctx, old_to, new_to, true, 'forced_extension', booking.id) end
emit(ctx, 'booking.extended', booking.id,
  { customerId = booking.customerId, previousTo = old_to, to = new_to, forced = forced,
    price = { currency = booking.price.currency, total = booking.price.total, added = added } })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { booking = entry_json(ctx, booking) })

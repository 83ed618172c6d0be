--[[
  book: confirm a booking on [from, to), directly or by converting the customer's live hold.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id   ARGV[7] customer id
  ARGV[8]     from   ARGV[9] to   (ignored when converting a hold: the hold's window is booked)
  ARGV[10]    hold id ('' = direct booking)
  ARGV[11]    '1' when the caller may write the past (ops)
  ARGV[12]    minutes the customer allows the trip to move, should it be displaced (0-120; '' = 0)
  ARGV[13]    the city's currency (ISO 4217)   ARGV[14] its minor-unit exponent

  The booking carries its price: the hold's, fixed when it was placed; a direct booking's is fixed
  now, at the vehicle's rates (includes/pricing.lua).

  Returns  { json { booking, version, status, events }, replayed }
  Errors   NOT_FOUND (vehicle, or hold not this customer's), INVALID_INTERVAL, NOT_AVAILABLE,
           INVALID_STATE (hold not live), HOLD_EXPIRED
  Events   hold.converted (when from a hold), booking.confirmed
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local booking = { id = ARGV[6], kind = 'booking', status = 'confirmed', customerId = ARGV[7] }
local pricing = pricing_arg(ARGV[13], ARGV[14])
local flex = tonumber(ARGV[12] or '') or 0
if flex < 0 or flex > 120 or flex % 1 ~= 0 then fail('VALIDATION', { field = 'flexibleMinutes' }) end
if flex > 0 then booking.flexMinutes = flex end
local hold = nil
if ARGV[10] ~= '' then
  hold = require_entry(ctx, ARGV[10], 'hold', ARGV[7])
  require_status(hold, { 'held' })
  -- An offer's hold is taken by accepting the offer (the conflicted booking moves), never booked anew.
  if hold.offerFor then fail('INVALID_STATE', { entity = 'hold', id = hold.id, reason = 'offer_hold', bookingId = hold.offerFor }) end
  if hold.expiresAt <= NOW then fail('HOLD_EXPIRED', { id = hold.id, expiresAt = hold.expiresAt }) end
  require_listed(ctx)
  -- The hold kept the window exclusive; check again all the same (a block may not release it).
  require_free(ctx, hold.from, hold.to, true, hold.id)
  booking.from, booking.to, booking.holdId = hold.from, hold.to, hold.id
else
  booking.from, booking.to = num(ARGV[8], 'from'), num(ARGV[9], 'to')
  check_interval(booking.from, booking.to, ARGV[11] == '1', false)
  require_listed(ctx)
  require_free(ctx, booking.from, booking.to, true, nil)
end

-- A hold placed before prices existed has none: the booking is priced now, like a direct one.
booking.price = (hold and hold.price) or price_window(pricing, ctx.vehicle, booking.from, booking.to)
if hold then
  hold.status = 'converted'
  hold.bookingId = booking.id
  put(ctx, hold)
  emit(ctx, 'hold.converted', hold.id, { bookingId = booking.id, customerId = hold.customerId })
end
put(ctx, booking)
emit(ctx, 'booking.confirmed', booking.id,
  { customerId = booking.customerId, from = booking.from, to = booking.to, holdId = booking.holdId,
    price = { currency = booking.price.currency, total = booking.price.total } })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { booking = entry_json(ctx, booking) })

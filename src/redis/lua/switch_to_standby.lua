--[[
  switch_to_standby: the customer of an at-risk booking takes the vehicle held for them. In one
  step the booking leaves its vehicle and becomes the standby vehicle's booking (same id, same
  window, a record of where it came from), and the standby hold converts.

  KEYS[1..3]  the booking's vehicle   KEYS[4..8] as hold_standby
  KEYS[9]     idempotency record (or the unused placeholder)
  KEYS[10..12] the standby vehicle's three keys
  ARGV[1] command id   ARGV[2] idempotency fingerprint   ARGV[3] city   ARGV[4] turnaround (ms)
  ARGV[5] booking id   ARGV[6] the booking's vehicle id   ARGV[7] customer id ('' = any: staff)

  Returns  { json { booking }, replayed }
  Errors   NOT_FOUND (booking, or not this customer's), INVALID_STATE (not confirmed, not at
           risk, no standby), HOLD_EXPIRED (the standby hold is gone)
  Events   booking.reaccommodated (its vehicle; state: the booking as it left, data.cause
           late_return_risk), hold.converted + booking.confirmed (data.reaccommodatedFrom) on the standby vehicle
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local buffer = num(ARGV[4], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[3])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[6], buffer)
require_vehicle(orig)
local booking = require_entry(orig, ARGV[5], 'booking', ARGV[7])
require_status(booking, { 'confirmed' })
local sb = booking.atRisk and not booking.atRisk.cleared and booking.atRisk.standby
if not sb then fail('INVALID_STATE', { entity = 'booking', id = booking.id, reason = 'no_standby' }) end
local target = open_vehicle(KEYS[10], KEYS[11], KEYS[12], sb.vehicleId, buffer)
local hold = entry(target, sb.holdId)
if hold == nil or hold.status ~= 'held' or hold.expiresAt <= NOW then
  fail('HOLD_EXPIRED', { entity = 'hold', id = sb.holdId, holdStatus = hold and hold.status })
end

local moved = move_booking(orig, target, shared, booking, hold,
  { customerId = booking.customerId, toVehicle = sb.vehicleId, cause = 'late_return_risk', standbyHoldId = hold.id },
  { bookingId = booking.id, customerId = hold.customerId, standbyFor = booking.id },
  -- The customer keeps the price they booked at (the standby is the service's doing).
  { flexMinutes = booking.flexMinutes, price = booking.price,
    reaccommodatedFrom = { vehicleId = ARGV[6], cause = 'late_return_risk', offerId = hold.id, at = NOW } })
emit(target, 'booking.confirmed', booking.id, { customerId = moved.customerId, from = moved.from, to = moved.to,
  holdId = hold.id, reaccommodatedFrom = ARGV[6], switchedAtRisk = true })
commit(target, shared)
return finish(KEYS[9], ARGV[2], { booking = moved })

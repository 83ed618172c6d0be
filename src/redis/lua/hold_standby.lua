--[[
  hold_standby: a confirmed booking whose car may not be back in time (the trip before it is
  likely to run late past its start, turnaround included) is marked at risk, and the first free
  of the candidate vehicles is held quietly for the booking's window, in the customer's name, so
  they can switch now or wait (docs/prediction.md).

  KEYS[1..3]  the booking's vehicle (hash, calendar documents, calendar index)
  KEYS[4] city counters   KEYS[5] city event stream   KEYS[6] status-due zset
  KEYS[7] entries index   KEYS[8] live holds
  KEYS[9 + 3(i-1)] .. KEYS[11 + 3(i-1)]  the three keys of candidate i (best first)
  ARGV[1] command id   ARGV[2] city   ARGV[3] turnaround (ms)
  ARGV[4] booking id   ARGV[5] the booking's vehicle id   ARGV[6] the trip under way before it
  ARGV[7] probability the car is not back in time   ARGV[8] expected return (ms)
  ARGV[9] JSON candidates [{vehicleId, holdId}], in KEYS order
  ARGV[10] when the standby hold lapses (ms)

  A booking marked before without a standby (nothing similar was free then) is tried again: when
  a vehicle is free now it is held and the customer told again; otherwise nothing changes.

  Returns  json { outcome = at_risk | standby_added | exists | not_confirmed | not_found, booking?, standby? }
  Events   hold.placed (data.standbyFor) on the standby vehicle when one is free, then
           booking.at_risk (data: probability, tripId, expectedReturn, standby) on the booking
]]
local buffer = num(ARGV[3], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[2])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[5], buffer)
local booking = entry(orig, ARGV[4])
if not orig.vehicle or booking == nil or booking.kind ~= 'booking' then return cjson.encode({ outcome = 'not_found' }) end
if booking.status ~= 'confirmed' then return cjson.encode({ outcome = 'not_confirmed' }) end
-- Marked already: only a booking still without a standby is tried again (a vehicle may have freed up).
local again = booking.atRisk and not booking.atRisk.cleared
if again and booking.atRisk.standby then return cjson.encode({ outcome = 'exists', booking = booking }) end

local standby = nil
for i, c in ipairs(cjson.decode(ARGV[9])) do
  if c.vehicleId ~= ARGV[5] then
    local ctx = open_vehicle(KEYS[9 + 3 * (i - 1)], KEYS[10 + 3 * (i - 1)], KEYS[11 + 3 * (i - 1)], c.vehicleId, buffer)
    if is_free(ctx, booking.from, booking.to) then
      local hold = { id = c.holdId, kind = 'hold', status = 'held', from = booking.from, to = booking.to,
                     customerId = booking.customerId, expiresAt = num(ARGV[10], 'expiresAt'), standbyFor = booking.id }
      put(ctx, hold)
      emit(ctx, 'hold.placed', hold.id, { customerId = hold.customerId, from = hold.from, to = hold.to,
        expiresAt = hold.expiresAt, standbyFor = booking.id })
      commit(ctx, shared)
      standby = { vehicleId = c.vehicleId, holdId = hold.id, expiresAt = hold.expiresAt }
      break
    end
  end
end

if again and not standby then return cjson.encode({ outcome = 'exists', booking = booking }) end
booking.atRisk = { probability = num(ARGV[7], 'probability'), tripId = ARGV[6],
                   expectedReturn = num(ARGV[8], 'expectedReturn'), since = again and booking.atRisk.since or NOW,
                   standby = standby }
put(orig, booking)
emit(orig, 'booking.at_risk', booking.id, { customerId = booking.customerId, probability = booking.atRisk.probability,
  tripId = ARGV[6], expectedReturn = booking.atRisk.expectedReturn, from = booking.from, to = booking.to, standby = standby })
commit(orig, shared)
return cjson.encode({ outcome = again and 'standby_added' or 'at_risk', booking = booking, standby = standby })

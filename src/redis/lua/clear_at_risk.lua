--[[
  clear_at_risk: a booking stops being at risk — the trip before it came back in time, the
  booking was displaced after all (its offers take over), or it ended — and its standby hold,
  if still held, is released.

  KEYS[1..3]  the booking's vehicle   KEYS[4..8] as hold_standby
  KEYS[9..11] the standby vehicle's three keys (the booking's own again when it has none)
  ARGV[1] command id   ARGV[2] city   ARGV[3] turnaround (ms)
  ARGV[4] booking id   ARGV[5] the booking's vehicle id   ARGV[6] why: trip_back | conflicted | ended | risk_fell
  ARGV[7] the standby vehicle id ('' = none)

  Returns  json { outcome = cleared | not_at_risk | not_found, released = 0|1 }
  Events   hold.released (reason = ARGV[6], standbyFor) on the standby vehicle;
           booking.risk_cleared (data.reason) on the booking while it is confirmed
]]
local buffer = num(ARGV[3], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[2])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[5], buffer)
local booking = entry(orig, ARGV[4])
if not orig.vehicle or booking == nil or booking.kind ~= 'booking' then return cjson.encode({ outcome = 'not_found' }) end
if not booking.atRisk or booking.atRisk.cleared then return cjson.encode({ outcome = 'not_at_risk', released = 0 }) end

local released = 0
local sb = booking.atRisk.standby
if sb and ARGV[7] == sb.vehicleId then
  local ctx = ARGV[7] == ARGV[5] and orig or open_vehicle(KEYS[9], KEYS[10], KEYS[11], ARGV[7], buffer)
  local h = entry(ctx, sb.holdId)
  if h and h.status == 'held' then
    h.status = 'released'
    h.releaseReason = ARGV[6]
    put(ctx, h)
    emit(ctx, 'hold.released', h.id, { reason = ARGV[6], customerId = h.customerId, standbyFor = booking.id })
    commit(ctx, shared)
    released = 1
  end
end

booking.atRisk.cleared = ARGV[6]
booking.atRisk.clearedAt = NOW
put(orig, booking)
if booking.status == 'confirmed' then
  emit(orig, 'booking.risk_cleared', booking.id, { customerId = booking.customerId, reason = ARGV[6],
    tripId = booking.atRisk.tripId, standbyReleased = released == 1 })
end
commit(orig, shared)
return cjson.encode({ outcome = 'cleared', released = released })

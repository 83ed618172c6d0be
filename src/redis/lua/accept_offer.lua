--[[
  accept_offer: the customer takes one offer. In one step the booking leaves the original
  vehicle and becomes the offered vehicle's booking (same id, the held window, a record of where
  it came from), the offer's hold converts, and every other offer hold is released.

  KEYS[1] original vehicle hash      KEYS[2] original calendar      KEYS[3] its calendar index
  KEYS[4] city counters              KEYS[5] city event stream
  KEYS[6] status-due zset            KEYS[7] entries index
  KEYS[8] live holds                 KEYS[9] offers hash
  KEYS[10] offers-due zset           KEYS[11] idempotency record (or the unused placeholder)
  KEYS[12 + 3(i-1)] .. KEYS[14 + 3(i-1)]  the three keys of offer i's vehicle, in the record's order
  ARGV[1] command id   ARGV[2] idempotency fingerprint   ARGV[3] city   ARGV[4] turnaround (ms)
  ARGV[5] booking id   ARGV[6] offer id   ARGV[7] customer id ('' = any: staff)

  Returns  { json { booking, record }, replayed }
  Errors   NOT_FOUND (no offers for this booking / this customer, unknown offer),
           INVALID_STATE (offers already accepted, declined, lapsed; booking no longer conflicted),
           HOLD_EXPIRED (the offers lapsed, or the offered hold is gone)
  Events   booking.reaccommodated (original vehicle; state: the booking as it left),
           hold.converted + booking.confirmed (data.reaccommodatedFrom) on the offered vehicle,
           hold.released* (reason offer_not_chosen) on the others
]]
local replay = idem_replay(KEYS[11], ARGV[2])
if replay then return { replay, 1 } end

local raw = redis.call('HGET', KEYS[9], ARGV[5])
if not raw then fail('NOT_FOUND', { entity = 'offers', id = ARGV[5] }) end
local rec = cjson.decode(raw)
if ARGV[7] ~= '' and rec.customerId ~= ARGV[7] then fail('NOT_FOUND', { entity = 'offers', id = ARGV[5] }) end
if rec.status ~= 'open' then fail('INVALID_STATE', { entity = 'offers', id = ARGV[5], status = rec.status }) end
local chosen, chosen_i = nil, nil
for i, o in ipairs(rec.offers) do
  if o.id == ARGV[6] then chosen, chosen_i = o, i end
end
if not chosen then fail('NOT_FOUND', { entity = 'offer', id = ARGV[6] }) end
if rec.expiresAt <= NOW then fail('HOLD_EXPIRED', { entity = 'offer', id = ARGV[6], expiresAt = rec.expiresAt }) end

local buffer = num(ARGV[4], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[3])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], rec.vehicleId, buffer)
local booking = entry(orig, rec.bookingId)
if booking == nil then fail('NOT_FOUND', { entity = 'booking', id = rec.bookingId }) end
require_status(booking, { 'conflicted' })
local ctxs = {}
-- An offer of the original vehicle (at a shifted window) is worked on through `orig` itself.
for i, o in ipairs(rec.offers) do
  ctxs[i] = o.vehicleId == rec.vehicleId and orig
    or open_vehicle(KEYS[12 + 3 * (i - 1)], KEYS[13 + 3 * (i - 1)], KEYS[14 + 3 * (i - 1)], o.vehicleId, buffer)
end
local target = ctxs[chosen_i]
local hold = entry(target, chosen.holdId)
if hold == nil or hold.status ~= 'held' or hold.expiresAt <= NOW then
  fail('HOLD_EXPIRED', { entity = 'offer', id = chosen.id, holdStatus = hold and hold.status })
end

-- The booking leaves its vehicle and becomes the offered vehicle's, on the window its hold kept.
local moved = move_booking(orig, target, shared, booking, hold,
  { customerId = booking.customerId, offerId = chosen.id, toVehicle = chosen.vehicleId, incentive = chosen.incentive,
    cause = booking.conflictCause },
  { bookingId = booking.id, customerId = hold.customerId, offerFor = booking.id },
  { incentive = chosen.incentive,
    reaccommodatedFrom = { vehicleId = rec.vehicleId, cause = booking.conflictCause, offerId = chosen.id, at = NOW } })
emit(target, 'booking.confirmed', booking.id, { customerId = moved.customerId, from = moved.from, to = moved.to,
  holdId = hold.id, reaccommodatedFrom = rec.vehicleId, offerId = chosen.id, incentive = chosen.incentive })
commit(target, shared)

for i, o in ipairs(rec.offers) do
  if i ~= chosen_i then
    local ctx = ctxs[i]
    local h = entry(ctx, o.holdId)
    if h and h.status == 'held' then
      h.status = 'released'
      h.releaseReason = 'offer_not_chosen'
      put(ctx, h)
      emit(ctx, 'hold.released', h.id, { reason = 'offer_not_chosen', customerId = h.customerId, offerFor = booking.id })
      commit(ctx, shared)
    end
    o.status = 'released'
  else
    o.status = 'accepted'
  end
end
rec.status = 'accepted'
rec.acceptedOfferId = chosen.id
rec.resolvedAt = NOW
redis.call('HSET', KEYS[9], rec.bookingId, cjson.encode(rec))
redis.call('ZREM', KEYS[10], rec.bookingId)
return finish(KEYS[11], ARGV[2], { booking = moved, record = rec })

--[[
  accept_offer: the customer takes one offer. In one step the booking leaves the original
  vehicle and becomes the offered vehicle's booking (same id, the held window, a record of where
  it came from), the offer's hold converts, and every other offer hold is released.

  KEYS[1] original vehicle hash      KEYS[2] original calendar      KEYS[3] its calendar index
  KEYS[4] city counters              KEYS[5] city event stream
  KEYS[6] status-due zset            KEYS[7] entries index
  KEYS[8] live holds                 KEYS[9] offers hash
  KEYS[10] offers-due zset           KEYS[11] idempotency record (or the unused placeholder)
  KEYS[12 + 3(i-1)] .. KEYS[14 + 3(i-1)]  the three keys of the i-th vehicle the record's offers name,
          in order: each offer's vehicle, then its second vehicle when it has one (back to back)
  ARGV[1] command id   ARGV[2] idempotency fingerprint   ARGV[3] city   ARGV[4] turnaround (ms)
  ARGV[5] booking id   ARGV[6] offer id   ARGV[7] customer id ('' = any: staff)

  The moved booking's price is what the offer said the customer pays: the alternative's breakdown
  (both vehicles' for back to back; the continuation booking carries none), and an adjustment from
  the alternative's price to what the customer pays. An offer made before prices existed keeps the
  booking's price.

  Returns  { json { booking, record, continuation? }, replayed }
  Errors   NOT_FOUND (no offers for this booking / this customer, unknown offer),
           INVALID_STATE (offers already accepted, declined, lapsed; booking no longer conflicted),
           HOLD_EXPIRED (the offers lapsed, or the offered hold is gone)
  Events   booking.reaccommodated (original vehicle; state: the booking as it left),
           hold.converted + booking.confirmed (data.reaccommodatedFrom) on the offered vehicle,
           hold.released* (reason offer_not_chosen) on the others; back to back: on the second vehicle
           hold.converted + booking.confirmed (data.continuationOf) of the rest of the trip
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
local vehicle = vehicle_pool(12, offer_vehicle_ids(rec.offers), buffer, { [rec.vehicleId] = orig })
local target = vehicle(chosen.vehicleId)
local hold = entry(target, chosen.holdId)
if hold == nil or hold.status ~= 'held' or hold.expiresAt <= NOW then
  fail('HOLD_EXPIRED', { entity = 'offer', id = chosen.id, holdStatus = hold and hold.status })
end
-- Back to back: the second vehicle's hold must be there too, checked before anything is written.
local second, second_hold = nil, nil
if chosen.legs then
  second = vehicle(chosen.legs.vehicleId)
  second_hold = entry(second, chosen.legs.holdId)
  if second_hold == nil or second_hold.status ~= 'held' or second_hold.expiresAt <= NOW then
    fail('HOLD_EXPIRED', { entity = 'offer', id = chosen.id, holdStatus = second_hold and second_hold.status })
  end
end

-- What the customer pays from now on (includes/pricing.lua; the offer fixed it when it was made).
local price = booking.price
if chosen.price and chosen.customerPays then
  price = { currency = chosen.price.currency, total = chosen.customerPays.total, breakdown = chosen.price.breakdown }
  local adjustment = chosen.customerPays.total - chosen.price.total
  if adjustment ~= 0 then price.adjustment = { amount = adjustment, offerId = chosen.id } end
end

-- The booking leaves its vehicle and becomes the offered vehicle's, on the window its hold kept.
local moved = move_booking(orig, target, shared, booking, hold,
  { customerId = booking.customerId, offerId = chosen.id, toVehicle = chosen.vehicleId, incentive = chosen.incentive,
    cause = booking.conflictCause },
  { bookingId = booking.id, customerId = hold.customerId, offerFor = booking.id },
  { incentive = chosen.incentive, price = price,
    reaccommodatedFrom = { vehicleId = rec.vehicleId, cause = booking.conflictCause, offerId = chosen.id, at = NOW } })
emit(target, 'booking.confirmed', booking.id, { customerId = moved.customerId, from = moved.from, to = moved.to,
  holdId = hold.id, reaccommodatedFrom = rec.vehicleId, offerId = chosen.id, incentive = chosen.incentive })
commit(target, shared)
local continuation = nil
if second then
  -- The rest of the trip: a booking of its own on the second vehicle, from the change-over on.
  second_hold.status = 'converted'
  second_hold.bookingId = chosen.legs.bookingId
  put(second, second_hold)
  emit(second, 'hold.converted', second_hold.id, { bookingId = chosen.legs.bookingId, customerId = second_hold.customerId,
    offerFor = booking.id })
  continuation = { id = chosen.legs.bookingId, kind = 'booking', status = 'confirmed', customerId = booking.customerId,
                   from = second_hold.from, to = second_hold.to, holdId = second_hold.id, continuationOf = booking.id }
  put(second, continuation)
  continuation.createdAt = NOW
  emit(second, 'booking.confirmed', continuation.id, { customerId = continuation.customerId, from = continuation.from,
    to = continuation.to, holdId = second_hold.id, continuationOf = booking.id, offerId = chosen.id })
  commit(second, shared)
end

for i, o in ipairs(rec.offers) do
  if i ~= chosen_i then
    local holds = { { vehicle(o.vehicleId), o.holdId } }
    if o.legs then holds[2] = { vehicle(o.legs.vehicleId), o.legs.holdId } end
    for _, x in ipairs(holds) do
      local ctx, h = x[1], entry(x[1], x[2])
      if h and h.status == 'held' then
        h.status = 'released'
        h.releaseReason = 'offer_not_chosen'
        put(ctx, h)
        emit(ctx, 'hold.released', h.id, { reason = 'offer_not_chosen', customerId = h.customerId, offerFor = booking.id })
        commit(ctx, shared)
      end
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
return finish(KEYS[11], ARGV[2], { booking = moved, record = rec, continuation = continuation })

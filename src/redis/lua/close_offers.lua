--[[
  close_offers: the customer declines the offers, or they lapse. The conflicted booking is
  cancelled with a full-refund flag and every offer hold still live is released.

  KEYS[1..11]  as accept_offer
  KEYS[12 + 3(i-1)] .. KEYS[14 + 3(i-1)]  the three keys of the i-th vehicle the record's offers name
          (each offer's vehicle, then its second vehicle when it has one)
  ARGV[1] command id   ARGV[2] idempotency fingerprint   ARGV[3] city   ARGV[4] turnaround (ms)
  ARGV[5] booking id   ARGV[6] customer id ('' = any)   ARGV[7] declined | lapsed

  Returns  { json { booking?, record }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (not open; a lapse before the offers' expiry),
           HOLD_EXPIRED (declining offers that already lapsed: the lapse will record it)
  Events   booking.cancelled (reason offers_declined | offers_lapsed, refund full) on the original
           vehicle — unless the booking was cancelled meanwhile — and hold.released* on the offers
]]
local replay = idem_replay(KEYS[11], ARGV[2])
if replay then return { replay, 1 } end

local outcome = ARGV[7]
if outcome ~= 'declined' and outcome ~= 'lapsed' then fail('VALIDATION', { field = 'outcome' }) end
local raw = redis.call('HGET', KEYS[9], ARGV[5])
if not raw then fail('NOT_FOUND', { entity = 'offers', id = ARGV[5] }) end
local rec = cjson.decode(raw)
if ARGV[6] ~= '' and rec.customerId ~= ARGV[6] then fail('NOT_FOUND', { entity = 'offers', id = ARGV[5] }) end
if rec.status ~= 'open' then fail('INVALID_STATE', { entity = 'offers', id = ARGV[5], status = rec.status }) end
if outcome == 'lapsed' and rec.expiresAt > NOW then fail('INVALID_STATE', { entity = 'offers', id = ARGV[5], reason = 'not_due', expiresAt = rec.expiresAt }) end
if outcome == 'declined' and rec.expiresAt <= NOW then fail('HOLD_EXPIRED', { entity = 'offers', id = ARGV[5], expiresAt = rec.expiresAt }) end

local buffer = num(ARGV[4], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[3])
local reason = 'offers_' .. outcome
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], rec.vehicleId, buffer)
local booking = entry(orig, rec.bookingId)
if booking and booking.status == 'conflicted' then
  booking.status = 'cancelled'
  booking.cancelReason = reason
  booking.refund = 'full'
  put(orig, booking)
  emit(orig, 'booking.cancelled', booking.id, { customerId = booking.customerId, reason = reason,
    previousStatus = 'conflicted', refund = 'full' })
  commit(orig, shared)
end
local vehicle = vehicle_pool(12, offer_vehicle_ids(rec.offers), buffer, { [rec.vehicleId] = orig })
for _, o in ipairs(rec.offers) do
  local holds = { { o.vehicleId, o.holdId } }
  if o.legs then holds[2] = { o.legs.vehicleId, o.legs.holdId } end
  for _, x in ipairs(holds) do
    local ctx = vehicle(x[1])
    local h = entry(ctx, x[2])
    if h and h.status == 'held' then
      h.status = 'released'
      h.releaseReason = reason
      put(ctx, h)
      emit(ctx, 'hold.released', h.id, { reason = reason, customerId = h.customerId, offerFor = rec.bookingId })
      commit(ctx, shared)
    end
  end
  o.status = 'released'
end
rec.status = outcome
rec.resolvedAt = NOW
redis.call('HSET', KEYS[9], rec.bookingId, cjson.encode(rec))
redis.call('ZREM', KEYS[10], rec.bookingId)
return finish(KEYS[11], ARGV[2], { booking = booking, record = rec })

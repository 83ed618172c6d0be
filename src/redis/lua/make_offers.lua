--[[
  make_offers: turn a conflicted booking into real offers — a hold on each of the best free
  alternatives (up to ARGV[7]) for the booking's whole window, or for a shifted window when the
  customer allowed the trip to move (a candidate's `from`/`to`) — or, when none is free, cancel
  it with reason NO_ALTERNATIVE and a credit. Runs once per conflict: a second call answers the
  record it made.

  KEYS[1] original vehicle hash      KEYS[2] original calendar      KEYS[3] its calendar index
  KEYS[4] city counters              KEYS[5] city event stream
  KEYS[6] status-due zset            KEYS[7] entries index
  KEYS[8] live holds                 KEYS[9] offers hash (bookingId -> record)
  KEYS[10] offers-due zset
  KEYS[11 + 3(i-1)] .. KEYS[13 + 3(i-1)]  the three keys of candidate i (best first)
  ARGV[1] command id   ARGV[2] city   ARGV[3] turnaround (ms)
  ARGV[4] booking id   ARGV[5] original vehicle id
  ARGV[6] offer ttl (ms)   ARGV[7] most offers to make
  ARGV[8] JSON candidates [{vehicleId, offerId, holdId, category, distanceKm, incentive, kind,
          from?, to?, shiftMinutes?}], in KEYS order (one per vehicle)
  ARGV[9] JSON credit given when nothing is free ({kind, amount})

  Returns  json { outcome = offered | no_alternative | exists | not_conflicted | not_found, record? }
  Events   hold.placed* (data.offerFor, data.offerId) on each alternative, then on the original
           vehicle conflict.offers_ready (data.offers) — or booking.cancelled (reason NO_ALTERNATIVE)
]]
local buffer = num(ARGV[3], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[2])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[5], buffer)
local booking = entry(orig, ARGV[4])
if not orig.vehicle or booking == nil or booking.kind ~= 'booking' then return cjson.encode({ outcome = 'not_found' }) end
if booking.status ~= 'conflicted' then return cjson.encode({ outcome = 'not_conflicted' }) end
-- One record per conflict: a booking moved by an accepted offer may be displaced again later,
-- and that new conflict gets offers of its own (the old record is history, in the stream).
local existing = redis.call('HGET', KEYS[9], ARGV[4])
if existing then
  local rec = cjson.decode(existing)
  if rec.status == 'open' or rec.conflictedAt == booking.conflictedAt then
    return cjson.encode({ outcome = 'exists', record = rec })
  end
end

local ttl, most = num(ARGV[6], 'ttl'), num(ARGV[7], 'maxOffers')
local candidates = cjson.decode(ARGV[8])
local expires = NOW + ttl
local offers = {}
for i, c in ipairs(candidates) do
  if #offers >= most then break end
  -- The original vehicle itself is a candidate only at a shifted window (after a maintenance, say):
  -- it is then worked on through its one open context, never a second copy of it.
  if c.vehicleId ~= ARGV[5] or c.from then
    local ctx = c.vehicleId == ARGV[5] and orig
      or open_vehicle(KEYS[11 + 3 * (i - 1)], KEYS[12 + 3 * (i - 1)], KEYS[13 + 3 * (i - 1)], c.vehicleId, buffer)
    -- The search may be a moment behind: only a vehicle free now, in this step, gets an offer.
    local from, to = c.from or booking.from, c.to or booking.to
    -- A shifted window never starts in the past; the booked one may (a late return displaces it at pickup).
    if (c.from == nil or from >= NOW - (NOW % 60000)) and is_free(ctx, from, to) then
      local hold = { id = c.holdId, kind = 'hold', status = 'held', from = from, to = to,
                     customerId = booking.customerId, expiresAt = expires, offerFor = booking.id, offerId = c.offerId }
      put(ctx, hold)
      emit(ctx, 'hold.placed', hold.id, { customerId = hold.customerId, from = hold.from, to = hold.to,
        expiresAt = expires, offerFor = booking.id, offerId = c.offerId })
      commit(ctx, shared)
      offers[#offers + 1] = { id = c.offerId, vehicleId = c.vehicleId, holdId = c.holdId, category = c.category,
                              distanceKm = c.distanceKm, incentive = c.incentive, status = 'open',
                              kind = c.kind, from = from, to = to, shiftMinutes = c.shiftMinutes }
    end
  end
end

local record = { bookingId = booking.id, city = ARGV[2], vehicleId = ARGV[5], hostId = orig.vehicle.hostId,
                 customerId = booking.customerId, cause = booking.conflictCause, conflictedAt = booking.conflictedAt,
                 from = booking.from, to = booking.to, offeredAt = NOW }
if #offers == 0 then
  local credit = cjson.decode(ARGV[9])
  booking.status = 'cancelled'
  booking.cancelReason = 'NO_ALTERNATIVE'
  booking.refund = 'full'
  booking.credit = credit
  put(orig, booking)
  emit(orig, 'booking.cancelled', booking.id, { customerId = booking.customerId, reason = 'NO_ALTERNATIVE',
    previousStatus = 'conflicted', refund = 'full', credit = credit })
  record.status = 'no_alternative'
  record.credit = credit
  record.resolvedAt = NOW
else
  booking.offers = { count = #offers, expiresAt = expires }
  put(orig, booking)
  emit(orig, 'conflict.offers_ready', booking.id, { customerId = booking.customerId, cause = booking.conflictCause,
    conflictedAt = booking.conflictedAt, expiresAt = expires, offers = offers })
  record.status = 'open'
  record.expiresAt = expires
  record.offers = offers
  redis.call('ZADD', KEYS[10], expires, booking.id)
end
commit(orig, shared)
redis.call('HSET', KEYS[9], booking.id, cjson.encode(record))
return cjson.encode({ outcome = record.status == 'open' and 'offered' or 'no_alternative', record = record })

--[[
  make_offers: turn a conflicted booking into real offers — a hold on each of the best free
  alternatives (up to ARGV[7]) for the booking's whole window, or for a shifted window when the
  customer allowed the trip to move (a candidate's `from`/`to`), or two holds one after the other
  (a back-to-back candidate's `legs`). A vehicle kept in the conflict reserve is used: its reserve
  hold is released in the same step (the resolver is the one user of the reserve). When nothing is
  free: until ARGV[10] the booking waits (the wait list: the first vehicle freed for it is offered
  by calling this again), after it is cancelled with reason NO_ALTERNATIVE and a credit. Runs once
  per conflict: a second call answers the record it made (a waiting record is tried again).

  KEYS[1] original vehicle hash      KEYS[2] original calendar      KEYS[3] its calendar index
  KEYS[4] city counters              KEYS[5] city event stream
  KEYS[6] status-due zset            KEYS[7] entries index
  KEYS[8] live holds                 KEYS[9] offers hash (bookingId -> record)
  KEYS[10] offers-due zset           KEYS[11] wait list zset (bookingId -> wait until)
  KEYS[12 + 3(i-1)] .. KEYS[14 + 3(i-1)]  the three keys of the i-th vehicle the candidates name:
          each candidate's vehicle, then its second vehicle when it has one (back to back)
  ARGV[1] command id   ARGV[2] city   ARGV[3] turnaround (ms)
  ARGV[4] booking id   ARGV[5] original vehicle id
  ARGV[6] offer ttl (ms)   ARGV[7] most offers to make
  ARGV[8] JSON candidates [{vehicleId, offerId, holdId, category, distanceKm, incentive, kind,
          from?, to?, shiftMinutes?, legs? {vehicleId, holdId, bookingId, at, category, distanceKm}}],
          best first
  ARGV[9] JSON credit given when nothing is free ({kind, amount})
  ARGV[10] wait until (ms): with nothing free before it, the booking waits (0: never waits)
  ARGV[11] the city's currency (ISO 4217)   ARGV[12] its minor-unit exponent

  Prices (includes/pricing.lua): each offer's hold carries the alternative's price for its window,
  at the vehicle's rates now; the offer states that price (`price`, both holds' for back to back)
  and what the customer pays if they take it (`customerPays`: the booking's price, less the
  incentive's credit or refund).

  Returns  json { outcome = offered | waiting | no_alternative | exists | not_conflicted | not_found, record? }
  Events   hold.released (reason reserve_used) on a reserved alternative; hold.placed* (data.offerFor,
           data.offerId) on each alternative; then on the original vehicle conflict.offers_ready
           (data.offers, data.waited when it had waited) — or conflict.waiting (data.until) — or
           booking.cancelled (reason NO_ALTERNATIVE)
]]
local buffer = num(ARGV[3], 'buffer')
local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[2])
local orig = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[5], buffer)
local booking = entry(orig, ARGV[4])
-- A booking no longer conflicted (or gone) waits for nothing: off the wait list (bookkeeping, no event).
if not orig.vehicle or booking == nil or booking.kind ~= 'booking' then
  redis.call('ZREM', KEYS[11], ARGV[4])
  return cjson.encode({ outcome = 'not_found' })
end
if booking.status ~= 'conflicted' then
  redis.call('ZREM', KEYS[11], ARGV[4])
  return cjson.encode({ outcome = 'not_conflicted' })
end
-- One record per conflict: a booking moved by an accepted offer may be displaced again later,
-- and that new conflict gets offers of its own (the old record is history, in the stream).
local existing = redis.call('HGET', KEYS[9], ARGV[4])
local waited = nil
if existing then
  local rec = cjson.decode(existing)
  if rec.status == 'waiting' and rec.conflictedAt == booking.conflictedAt then
    waited = rec.waitingSince
  elseif rec.status == 'open' or rec.conflictedAt == booking.conflictedAt then
    return cjson.encode({ outcome = 'exists', record = rec })
  end
end

local ttl, most = num(ARGV[6], 'ttl'), num(ARGV[7], 'maxOffers')
local pricing = pricing_arg(ARGV[11], ARGV[12])
-- What the booking costs the customer: its price as booked (one made before prices existed: now).
local booked = booking.price or price_window(pricing, orig.vehicle, booking.from, booking.to)
local wait_until = num(ARGV[10], 'waitUntil')
local candidates = cjson.decode(ARGV[8])
local vehicle = vehicle_pool(12, offer_vehicle_ids(candidates), buffer, { [ARGV[5]] = orig })
local expires = NOW + ttl

-- A vehicle free for [from, to) once any reserve kept on it is let go; nil when something else occupies it.
local function usable(ctx, from, to)
  if not ctx.vehicle or ctx.vehicle.listing ~= 'active' then return nil end
  local reserves = reserves_in(ctx, from, to)
  for _, e in ipairs(ctx.entries) do
    if occupies(e, NOW) and overlaps(e, from, to, true, ctx.buffer, NOW) and not (e.kind == 'hold' and e.reserve) then
      return nil
    end
  end
  return reserves
end

-- A hold kept for this booking on `ctx` over [from, to), with the alternative's price; returns the hold.
local function hold_for(ctx, id, offer_id, from, to)
  local hold = { id = id, kind = 'hold', status = 'held', from = from, to = to, customerId = booking.customerId,
                 expiresAt = expires, offerFor = booking.id, offerId = offer_id,
                 price = price_window(pricing, ctx.vehicle, from, to) }
  put(ctx, hold)
  emit(ctx, 'hold.placed', hold.id, { customerId = hold.customerId, from = from, to = to, expiresAt = expires,
    offerFor = booking.id, offerId = offer_id, price = { currency = hold.price.currency, total = hold.price.total } })
  return hold
end

local offers = {}
for _, c in ipairs(candidates) do
  if #offers >= most then break end
  -- The original vehicle itself is a candidate only at a shifted window (after a maintenance, say).
  if c.vehicleId ~= ARGV[5] or c.from then
    local from, to = c.from or booking.from, c.to or booking.to
    local first_to = c.legs and c.legs.at or to
    local ctx = vehicle(c.vehicleId)
    local second = c.legs and c.legs.vehicleId ~= c.vehicleId and vehicle(c.legs.vehicleId) or nil
    -- The search may be a moment behind: only what is free now, in this step, is offered. A shifted
    -- window never starts in the past; the booked one may (a late return displaces it at pickup).
    local r1 = (c.from == nil or from >= NOW - (NOW % 60000)) and usable(ctx, from, first_to) or nil
    local r2 = c.legs and second and usable(second, c.legs.at, to) or nil
    if r1 and (not c.legs or r2) then
      use_reserves(ctx, r1, booking.id)
      local price = hold_for(ctx, c.holdId, c.offerId, from, first_to).price
      commit(ctx, shared)
      local offer = { id = c.offerId, vehicleId = c.vehicleId, holdId = c.holdId, category = c.category,
                      distanceKm = c.distanceKm, incentive = c.incentive, status = 'open', kind = c.kind,
                      from = from, to = to, shiftMinutes = c.shiftMinutes, price = price,
                      customerPays = { currency = pricing.currency,
                                       total = customer_pays(booked.total, c.incentive, pricing.exponent) } }
      if c.legs then
        use_reserves(second, r2, booking.id)
        local rest = hold_for(second, c.legs.holdId, c.offerId, c.legs.at, to).price
        commit(second, shared)
        local both = { currency = price.currency, total = price.total + rest.total, breakdown = {} }
        for _, i in ipairs(price.breakdown) do both.breakdown[#both.breakdown + 1] = i end
        for _, i in ipairs(rest.breakdown) do both.breakdown[#both.breakdown + 1] = i end
        offer.price = both
        offer.legs = { vehicleId = c.legs.vehicleId, holdId = c.legs.holdId, bookingId = c.legs.bookingId,
                       at = c.legs.at, category = c.legs.category, distanceKm = c.legs.distanceKm }
      end
      offers[#offers + 1] = offer
    end
  end
end

local record = { bookingId = booking.id, city = ARGV[2], vehicleId = ARGV[5], hostId = orig.vehicle.hostId,
                 customerId = booking.customerId, cause = booking.conflictCause, conflictedAt = booking.conflictedAt,
                 from = booking.from, to = booking.to, offeredAt = NOW, waitingSince = waited }
if #offers == 0 and wait_until > NOW then
  -- Nothing free yet: the booking waits for a vehicle to be freed (a cancellation, an early return,
  -- a lapsed hold, a released reserve), until its start minus the cut-off.
  record.status = 'waiting'
  record.waitingSince = waited or NOW
  record.waitUntil = wait_until
  record.offeredAt = nil
  if waited == nil then
    booking.waiting = { since = NOW, ['until'] = wait_until }
    put(orig, booking)
    emit(orig, 'conflict.waiting', booking.id, { customerId = booking.customerId, cause = booking.conflictCause,
      conflictedAt = booking.conflictedAt, ['until'] = wait_until })
  end
  redis.call('ZADD', KEYS[11], wait_until, booking.id)
  if waited ~= nil then
    -- Still nothing: the booking and its vehicle stay as they were (no write, no version, no event).
    redis.call('HSET', KEYS[9], booking.id, cjson.encode(record))
    return cjson.encode({ outcome = 'waiting', record = record })
  end
elseif #offers == 0 then
  local credit = cjson.decode(ARGV[9])
  booking.status = 'cancelled'
  booking.cancelReason = 'NO_ALTERNATIVE'
  booking.refund = 'full'
  booking.credit = credit
  booking.waiting = nil
  put(orig, booking)
  emit(orig, 'booking.cancelled', booking.id, { customerId = booking.customerId, reason = 'NO_ALTERNATIVE',
    previousStatus = 'conflicted', refund = 'full', credit = credit, waited = waited ~= nil })
  record.status = 'no_alternative'
  record.credit = credit
  record.resolvedAt = NOW
  redis.call('ZREM', KEYS[11], booking.id)
else
  booking.offers = { count = #offers, expiresAt = expires }
  booking.waiting = nil
  put(orig, booking)
  emit(orig, 'conflict.offers_ready', booking.id, { customerId = booking.customerId, cause = booking.conflictCause,
    conflictedAt = booking.conflictedAt, expiresAt = expires, offers = offers, waited = waited ~= nil })
  record.status = 'open'
  record.expiresAt = expires
  record.offers = offers
  redis.call('ZADD', KEYS[10], expires, booking.id)
  redis.call('ZREM', KEYS[11], booking.id)
end
commit(orig, shared)
redis.call('HSET', KEYS[9], booking.id, cjson.encode(record))
local outcome = record.status == 'open' and 'offered' or record.status
return cjson.encode({ outcome = outcome, record = record })

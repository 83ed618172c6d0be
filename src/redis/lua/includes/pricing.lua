-- Part of the scripts' shared core (after includes/changes.lua): the one pricing rule, twin of
-- src/domain/pricing.ts (test/unit/pricing.test.ts runs both on the same windows). Amounts are
-- integers in minor units of the city's currency; the script that makes a hold, a booking, an
-- extension or an offer prices it, so the price is fixed with the event.
--
-- A window [from, to) is cut into 24 h periods from its start (the last one partial); each period
-- costs its started hours x the hourly rate, capped by the daily rate when the vehicle has one.

local PRICE_PERIOD = 24 * 3600 * 1000
local PRICE_HOUR = 3600 * 1000

-- The city's currency and its minor-unit exponent, as the pricing scripts take them (last in ARGV).
local function pricing_arg(currency, exponent)
  if currency == nil or currency == '' then fail('VALIDATION', { field = 'currency' }) end
  return { currency = currency, exponent = num(exponent, 'exponent') }
end

-- A major-unit amount (a vehicle's rate, an incentive) in minor units, rounded to the nearest.
local function to_minor(major, exponent)
  return math.floor(major * 10 ^ exponent + 0.5)
end

-- The vehicle's rates in minor units; day is nil without a daily cap ('' on the hash).
local function rates_of(v, exponent)
  local day = tonumber(v.pricePerDay)
  local r = { hour = to_minor(tonumber(v.pricePerHour) or 0, exponent) }
  if day ~= nil then r.day = to_minor(day, exponent) end
  return r
end

-- An item of `periods` whole 24 h periods, or of one partial period (`periods` 0).
local function price_item(r, from, to, periods)
  local hours = math.ceil((to - from) / PRICE_HOUR)
  local by_hour = hours
  if periods > 0 then by_hour = 24 end
  if r.day ~= nil and r.day < by_hour * r.hour then
    return { from = from, to = to, hours = hours, unitAmount = r.day, amount = r.day * math.max(1, periods),
             kind = 'daily_cap' }
  end
  return { from = from, to = to, hours = hours, unitAmount = r.hour, amount = hours * r.hour, kind = 'hourly' }
end

-- The breakdown of [from, to): the whole periods as one item, then the partial one.
local function window_items(r, from, to)
  local items = {}
  local span = to - from
  if span <= 0 then return items end
  local full = math.floor(span / PRICE_PERIOD)
  local cut = from + full * PRICE_PERIOD
  if full > 0 then items[#items + 1] = price_item(r, from, cut, full) end
  if cut < to then items[#items + 1] = price_item(r, cut, to, 0) end
  return items
end

local function items_total(items)
  local total = 0
  for _, i in ipairs(items) do total = total + i.amount end
  return total
end

-- { currency, total, breakdown } of [from, to) on the vehicle `v` (its hash) at its rates now.
local function price_window(pricing, v, from, to)
  local items = window_items(rates_of(v, pricing.exponent), from, to)
  return { currency = pricing.currency, total = items_total(items), breakdown = items }
end

-- The price of `e` extended from old_to to new_to: the added time priced on its own, at the
-- vehicle's rates now, and added to the price it had. Returns the new price and what was added.
local function extend_price(pricing, v, price, old_to, new_to)
  local more = window_items(rates_of(v, pricing.exponent), old_to, new_to)
  local added = items_total(more)
  local breakdown = {}
  for _, i in ipairs(price.breakdown or {}) do breakdown[#breakdown + 1] = i end
  for _, i in ipairs(more) do breakdown[#breakdown + 1] = i end
  return { currency = price.currency, total = price.total + added, breakdown = breakdown, adjustment = price.adjustment },
    added
end

-- What a displaced customer pays for an offer: the booked total less the money the incentive
-- gives back (credit, refund; a free upgrade keeps the booked price), never below zero.
local function customer_pays(booked, incentive, exponent)
  if incentive == nil or incentive.kind == 'free_upgrade' then return booked end
  return math.max(0, booked - to_minor(tonumber(incentive.amount) or 0, exponent))
end

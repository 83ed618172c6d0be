-- Part of the scripts' shared core (after includes/engine.lua): a vehicle's calendar as a
-- command reads it, and the checks on it.

-- Calendar --------------------------------------------------------------------------------
-- A command reads the entries near its window, never the whole calendar, so its cost does not
-- grow with the calendar. The documents stay in the calendar hash; the calendar index (a zset)
-- names the entries that may take time (`indexed`), scored by start. Three kinds are scored
-- STICKY instead and read by every command, because their reach is not their window: live
-- holds (their expiry is a due instant wherever they sit), trips under way (an overdue one
-- occupies until now) and open-ended blocks. Every other indexed entry ends at most `calReach`
-- (on the vehicle hash: the longest window the index has held) after its start, so whatever
-- touches [from, to), turnaround included, starts in (from - buffer - reach, to + buffer).
-- A calendar of at most SMALL_CALENDAR entries (`calSize` on the vehicle hash) is read whole
-- instead: one HVALS costs less than the index's lookups while there are few entries to decode
-- (a priced entry takes microseconds to decode: past two entries, the lookups cost less).
-- Both ways read every entry that matters; the index is kept either way. (Tests set SMALL_CALENDAR to 0: src/redis/scripts.ts.)
local STICKY = -1
local SMALL_CALENDAR = 2

local function indexed(e)
  if e.kind == 'hold' then return e.status == 'held' end
  if e.kind == 'booking' then return e.status == 'confirmed' or e.status == 'active' or e.status == 'completed' end
  return e.status == 'active'
end

local function index_score(e)
  if e.kind == 'hold' or (e.kind == 'booking' and e.status == 'active') or e.to == nil then return STICKY end
  return e.from
end

local function bound(x)
  if x >= FOREVER then return '+inf' end
  return string.format('%d', x)
end

-- Adds to the context the documents of `ids` it does not hold yet (nor took out).
local function take(ctx, ids)
  local missing = {}
  for _, id in ipairs(ids) do
    if ctx.by_id[id] == nil and not ctx.removed[id] then missing[#missing + 1] = id end
  end
  if #missing == 0 then return end
  for i = 1, #missing, 1000 do
    local part = { unpack(missing, i, math.min(i + 999, #missing)) }
    local raw = redis.call('HMGET', ctx.calkey, unpack(part))
    for k = 1, #part do
      if raw[k] then
        local e = cjson.decode(raw[k])
        ctx.by_id[e.id] = e
        ctx.entries[#ctx.entries + 1] = e
      end
    end
  end
  table.sort(ctx.entries, by_start)
end

-- After this the context holds every entry that may take time on [from, to).
local function read_window(ctx, from, to)
  if ctx.all or not ctx.vehicle then return end
  take(ctx, redis.call('ZRANGEBYSCORE', ctx.idxkey,
    '(' .. bound(from - ctx.buffer - ctx.reach), '(' .. bound(to + ctx.buffer)))
end

-- The whole calendar, for the few commands that rewrite it (restore).
local function read_all(ctx)
  if ctx.all then return end
  ctx.all = true
  if not ctx.vehicle then return end
  local raw = redis.call('HVALS', ctx.calkey)
  local ids = {}
  for i = 1, #raw do
    local e = cjson.decode(raw[i])
    if ctx.by_id[e.id] == nil and not ctx.removed[e.id] then
      ctx.by_id[e.id] = e
      ctx.entries[#ctx.entries + 1] = e
    end
  end
  table.sort(ctx.entries, by_start)
end

-- A calendar written before the index existed (no calReach) is indexed once, on first touch.
local function index_calendar(ctx)
  read_all(ctx)
  ctx.reach = 0
  for _, e in ipairs(ctx.entries) do
    if indexed(e) then
      local score = index_score(e)
      redis.call('ZADD', ctx.idxkey, score, e.id)
      if score ~= STICKY and e.to - e.from > ctx.reach then ctx.reach = e.to - e.from end
    end
  end
  ctx.size = #ctx.entries
  redis.call('HSET', ctx.vkey, 'calReach', ctx.reach, 'calSize', ctx.size)
end

-- An entry of this vehicle by id (nil when it has none).
local function entry(ctx, id)
  if id == nil then return nil end
  if ctx.by_id[id] == nil and ctx.vehicle then take(ctx, { id }) end
  return ctx.by_id[id]
end

-- shared: the city-wide keys and the command id, for commit.
local function city_shared(counters, events, due, index, live, cmd, city)
  return { counters = counters, events = events, due = due, index = index, live = live, cmd = cmd, city = city }
end

local function open_vehicle(vkey, calkey, idxkey, vid, buffer)
  local vehicle, stored = load_vehicle(vkey)
  local ctx = { vkey = vkey, calkey = calkey, idxkey = idxkey, vid = vid, buffer = buffer, reach = 0,
                vehicle = vehicle, stored = stored or {}, entries = {}, by_id = {}, dirty = {}, events = {},
                removed = {}, json = {} }
  if ctx.vehicle then
    ctx.old_status = ctx.vehicle.status
    ctx.old_category = ctx.vehicle.category
    ctx.reach = tonumber(ctx.vehicle.calReach)
    ctx.size = tonumber(ctx.vehicle.calSize)
    if ctx.reach == nil then
      index_calendar(ctx)
    elseif ctx.size ~= nil and ctx.size <= SMALL_CALENDAR then
      read_all(ctx)
    else
      take(ctx, redis.call('ZRANGEBYSCORE', idxkey, STICKY, STICKY))
    end
  end
  return ctx
end

-- The usual opening of a single-vehicle command (layout above).
local function open_command()
  local shared = city_shared(KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], ARGV[1], ARGV[3])
  local ctx = open_vehicle(KEYS[1], KEYS[2], KEYS[3], ARGV[4], num(ARGV[5], 'buffer'))
  return ctx, shared
end

-- "Status now" of the vehicle and the next instant it may change by time alone: it reads the
-- entries around now and the first to start after it (any later one starts and ends later).
local function status_now(ctx)
  if not ctx.all and ctx.vehicle then
    read_window(ctx, NOW, NOW + 1)
    take(ctx, redis.call('ZRANGEBYSCORE', ctx.idxkey, '(' .. bound(NOW), '+inf', 'LIMIT', 0, 1))
  end
  return derive(ctx.vehicle.listing, ctx.entries, NOW)
end

local function require_vehicle(ctx)
  if not ctx.vehicle then fail('NOT_FOUND', { entity = 'vehicle', id = ctx.vid }) end
  return ctx.vehicle
end

-- An entry of this vehicle, of the expected kind, owned by `customer` when one is given.
-- A foreign entry answers NOT_FOUND, like a missing one: ids of others are not confirmed.
local function require_entry(ctx, id, kind, customer)
  local e = entry(ctx, id)
  if e == nil or e.kind ~= kind or (customer ~= nil and customer ~= '' and e.customerId ~= customer) then
    fail('NOT_FOUND', { entity = kind, id = id })
  end
  return e
end

local function require_status(e, allowed)
  for _, s in ipairs(allowed) do
    if e.status == s then return end
  end
  fail('INVALID_STATE', { entity = e.kind, id = e.id, status = e.status, allowed = allowed })
end

local function require_free(ctx, from, to, trip, except_id)
  read_window(ctx, from, to)
  for _, e in ipairs(ctx.entries) do
    if e.id ~= except_id and occupies(e, NOW) and overlaps(e, from, to, trip, ctx.buffer, NOW) then
      fail('NOT_AVAILABLE', { blocking = window_of(e), turnaroundMs = ctx.buffer })
    end
  end
end

local function require_listed(ctx)
  if ctx.vehicle.listing ~= 'active' then
    fail('NOT_AVAILABLE', { listing = ctx.vehicle.listing })
  end
end

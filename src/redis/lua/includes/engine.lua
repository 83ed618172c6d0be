--[[
  Shared core of every script, prepended to each script body by scripts.ts.

  Conventions
  - Every key comes in KEYS. A vehicle is always three keys, in this order (keys.vehicleKeys):
    its hash, its calendar documents (hash entryId -> JSON entry) and its calendar index (zset,
    see "Calendar" below). Single-vehicle commands share this layout:
      KEYS[1] vehicle hash          KEYS[6] status-due zset
      KEYS[2] calendar documents    KEYS[7] entries index (entryId -> vehicleId)
      KEYS[3] calendar index        KEYS[8] live holds (holdId -> vehicleId)
      KEYS[4] city counters         KEYS[9] idempotency record (or the unused placeholder)
      KEYS[5] city event stream
    and this ARGV prefix:
      ARGV[1] command id (correlates events with the command)
      ARGV[2] idempotency fingerprint ('' = not idempotent; `auto:` prefix = a key the service
              generated for its own retries, kept 15 min instead of 24 h)
      ARGV[3] city id   ARGV[4] vehicle id   ARGV[5] turnaround buffer (ms)
  - Validate first, write after: `fail` raises before any write, so a refused command leaves
    no trace. Writes happen only in `commit` and `finish`.
  - The clock is the server's: NOW is read once with TIME (plus a test's offset: the optional last
    ARGV `clock:<ms>`, removed before the script reads its arguments).
]]

local FOREVER = 99999999999999 -- end of an open-ended block; never encoded
local MINUTE = 60000
local MAX_SPAN = 30 * 24 * 3600 * 1000
local MAX_TIME = 99999999999999
local START_EARLY = 15 * MINUTE
local IDEM_TTL = 86400
-- A key the service made up itself (the client sent none; fingerprint `auto:...`) only has to
-- outlive a failover's retries.
local AUTO_IDEM_TTL = 900

-- The scripts' clock: Redis's TIME, plus an offset that a test on a shifted clock passes as the
-- last argument, `clock:<ms>` (src/redis/clock.ts), taken off ARGV here so that the script sees
-- its own arguments. Production passes none. Data, not source: Redis keeps one copy of each
-- script however often a test moves its clock.
local CLOCK_OFFSET_MS = 0
if #ARGV > 0 and string.sub(ARGV[#ARGV], 1, 6) == 'clock:' then
  CLOCK_OFFSET_MS = tonumber(string.sub(table.remove(ARGV), 7))
end
local NOW
do
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + CLOCK_OFFSET_MS
end

-- Abort with a stable code; the reply is "CODE {json detail}".
local function fail(code, detail)
  detail = detail or {}
  detail.at = NOW
  error({ err = code .. ' ' .. cjson.encode(detail) })
end

local function num(s, name)
  local n = tonumber(s)
  if n == nil then fail('VALIDATION', { field = name }) end
  return n
end

local function opt_num(s, name)
  if s == nil or s == '' then return nil end
  return num(s, name)
end

-- Idempotency -----------------------------------------------------------------------------

local function idem_replay(key, fingerprint)
  if fingerprint == '' then return nil end
  local stored = redis.call('GET', key)
  if not stored then return nil end
  local sep = string.find(stored, '\n', 1, true)
  if string.sub(stored, 1, sep - 1) ~= fingerprint then
    fail('IDEMPOTENCY_CONFLICT', {})
  end
  return string.sub(stored, sep + 1)
end

-- Calendar rules (mirrored in src/domain/calendar.ts) -------------------------------------

local function is_trip(e) return e.kind ~= 'block' end

-- Does the entry take the vehicle's time? A completed trip still does: its turnaround follows it.
local function occupies(e, now)
  if e.kind == 'hold' then return e.status == 'held' and e.expiresAt > now end
  if e.kind == 'booking' then return e.status == 'confirmed' or e.status == 'active' or e.status == 'completed' end
  return e.status == 'active'
end

local function occupied_until(e, now)
  if e.to == nil then return FOREVER end
  if e.kind == 'booking' and e.status == 'active' and e.to < now then return now end
  return e.to
end

local function overlaps(e, from, to, trip, buffer, now)
  local pad = 0
  if trip and is_trip(e) then pad = buffer end
  return e.from < to + pad and from < occupied_until(e, now) + pad
end

local function window_of(e)
  return { kind = e.kind, from = e.from, to = e.to, reason = e.reason, status = e.status }
end

-- The refusal names the problem, the field at fault and its value (scripts.ts words the detail).
local function check_interval(from, to, allow_past, open_ok)
  if from == nil then fail('INVALID_INTERVAL', { problem = 'missing', field = 'from' }) end
  if to == nil and not open_ok then fail('INVALID_INTERVAL', { problem = 'missing', field = 'to' }) end
  if from < 0 or from > MAX_TIME then fail('INVALID_INTERVAL', { problem = 'range', field = 'from', value = from }) end
  if to ~= nil and to > MAX_TIME then fail('INVALID_INTERVAL', { problem = 'range', field = 'to', value = to }) end
  if from % MINUTE ~= 0 then fail('INVALID_INTERVAL', { problem = 'minute', field = 'from', value = from }) end
  if to ~= nil and to % MINUTE ~= 0 then fail('INVALID_INTERVAL', { problem = 'minute', field = 'to', value = to }) end
  if to ~= nil and to <= from then fail('INVALID_INTERVAL', { problem = 'order', field = 'to', value = to }) end
  if to ~= nil and to - from > MAX_SPAN then fail('INVALID_INTERVAL', { problem = 'too_long', field = 'to', value = to }) end
  if not allow_past and from < NOW - (NOW % MINUTE) then
    fail('INVALID_INTERVAL', { problem = 'past', field = 'from', value = from })
  end
end

local BLOCK_STATUS = { accident = 'accident', maintenance = 'maintenance', host = 'blocked' }
local STATUS_ORDER = { 'accident', 'in_trip', 'maintenance', 'delisted', 'blocked', 'booked', 'held' }

-- "Status now" and the next instant it may change by time alone.
local function derive(listing, entries, now)
  local present = {}
  if listing ~= 'active' then present.delisted = true end
  local due = nil
  local function consider(t)
    if t ~= nil and t > now and (due == nil or t < due) then due = t end
  end
  for _, e in ipairs(entries) do
    -- A hold that lapsed but was not yet expired is due at once: the sweeper must expire it.
    if e.kind == 'hold' and e.status == 'held' and e.expiresAt <= now then due = now end
    if occupies(e, now) and e.status ~= 'completed' then
      if e.kind == 'booking' and e.status == 'active' then
        present.in_trip = true
      elseif e.from <= now and (e.to == nil or now < e.to) then
        if e.kind == 'block' then present[BLOCK_STATUS[e.reason]] = true
        elseif e.kind == 'booking' then present.booked = true
        else present.held = true end
      end
      consider(e.from)
      consider(e.to)
      if e.kind == 'hold' then consider(e.expiresAt) end
    end
  end
  for _, s in ipairs(STATUS_ORDER) do
    if present[s] then return s, due end
  end
  return 'available', due
end

-- Vehicle context -------------------------------------------------------------------------

local function load_vehicle(vkey)
  local flat = redis.call('HGETALL', vkey)
  if #flat == 0 then return nil end
  local v = {}
  for i = 1, #flat, 2 do v[flat[i]] = flat[i + 1] end
  v.version = tonumber(v.version) or 0
  return v
end

local function by_start(a, b)
  if a.from == b.from then return a.id < b.id end
  return a.from < b.from
end

local function load_entries(calkey)
  local raw = redis.call('HVALS', calkey)
  local list = {}
  for i = 1, #raw do list[i] = cjson.decode(raw[i]) end
  table.sort(list, by_start)
  return list
end

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
-- instead: one HVALS costs less than the index's lookups. Both ways read every entry that
-- matters; the index is kept either way. (Tests set SMALL_CALENDAR to 0: src/redis/scripts.ts.)
local STICKY = -1
local SMALL_CALENDAR = 8

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
  local ctx = { vkey = vkey, calkey = calkey, idxkey = idxkey, vid = vid, buffer = buffer, reach = 0,
                vehicle = load_vehicle(vkey), entries = {}, by_id = {}, dirty = {}, events = {}, removed = {} }
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

-- In-memory changes, written by commit ----------------------------------------------------

local function put(ctx, e)
  e.updatedAt = NOW
  if ctx.by_id[e.id] == nil then
    e.createdAt = NOW
    ctx.by_id[e.id] = e
    table.insert(ctx.entries, e)
    table.sort(ctx.entries, by_start)
  end
  ctx.dirty[e.id] = e
end

-- `state` overrides what the event carries as the subject's state (for an entry that left).
local function emit(ctx, etype, subject, data, state)
  table.insert(ctx.events, { etype, subject or '', data or {}, state })
end

-- Take an entry out of this vehicle's calendar (a booking moving to another vehicle).
local function remove(ctx, e)
  ctx.by_id[e.id] = nil
  ctx.dirty[e.id] = nil
  for i, x in ipairs(ctx.entries) do
    if x.id == e.id then table.remove(ctx.entries, i) break end
  end
  ctx.removed[e.id] = true
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- The conflict reserve's holds on this vehicle that touch [from, to) (turnaround included): a
-- reserve is kept back from everyone but the conflict resolver (docs/conflicts.md).
local function reserves_in(ctx, from, to)
  local out = {}
  if not ctx.vehicle then return out end
  read_window(ctx, from, to)
  for _, e in ipairs(ctx.entries) do
    if e.kind == 'hold' and e.reserve and occupies(e, NOW) and overlaps(e, from, to, true, ctx.buffer, NOW) then
      out[#out + 1] = e
    end
  end
  return out
end

-- Releases the reserve holds `reserves_in` found, for the conflict resolver: `hold.released`
-- (reason reserve_used) with the reserve's area, category and hour.
local function use_reserves(ctx, reserves, for_booking)
  for _, e in ipairs(reserves) do
    e.status = 'released'
    e.releaseReason = 'reserve_used'
    put(ctx, e)
    emit(ctx, 'hold.released', e.id, { reason = 'reserve_used', customerId = e.customerId, reserve = e.reserve,
      usedFor = for_booking })
  end
end

-- Contexts of the vehicles named in `ids`, whose keys follow in KEYS from `first` (three each, in
-- `ids` order), opened when first asked for; a vehicle named twice (or open already in `known`) is
-- opened once, so that one vehicle is never worked on through two contexts.
local function vehicle_pool(first, ids, buffer, known)
  local open = {}
  for id, ctx in pairs(known or {}) do open[id] = ctx end
  local pos = {}
  for i, id in ipairs(ids) do
    if pos[id] == nil then pos[id] = i end
  end
  return function(id)
    if open[id] == nil then
      local i = pos[id]
      if i == nil then fail('VALIDATION', { field = 'vehicle keys', vehicleId = id }) end
      local k = first + 3 * (i - 1)
      open[id] = open_vehicle(KEYS[k], KEYS[k + 1], KEYS[k + 2], id, buffer)
    end
    return open[id]
  end
end

-- The vehicles an offer record works on, in KEYS order: each offer's vehicle, then its second
-- vehicle when it has one (back to back).
local function offer_vehicle_ids(offers)
  local ids = {}
  for _, o in ipairs(offers) do
    ids[#ids + 1] = o.vehicleId
    if o.legs then ids[#ids + 1] = o.legs.vehicleId end
  end
  return ids
end

-- Is [from, to) free on this vehicle (listed, nothing occupying it, turnaround included)?
local function is_free(ctx, from, to)
  if not ctx.vehicle or ctx.vehicle.listing ~= 'active' then return false end
  read_window(ctx, from, to)
  for _, e in ipairs(ctx.entries) do
    if occupies(e, NOW) and overlaps(e, from, to, true, ctx.buffer, NOW) then return false end
  end
  return true
end

-- The fact recorded on [from, to) cannot be refused: every confirmed booking it overlaps becomes
-- `conflicted` (handed to the resolver) and every live hold there is released. Trips already
-- under way keep the car.
local function displace(ctx, from, to, trip, cause, by_id)
  read_window(ctx, from, to)
  for _, e in ipairs(ctx.entries) do
    if e.id ~= by_id and occupies(e, NOW) and overlaps(e, from, to, trip, ctx.buffer, NOW) then
      if e.kind == 'booking' and e.status == 'confirmed' then
        e.status = 'conflicted'
        e.conflictCause = cause
        e.conflictedBy = by_id
        e.conflictedAt = NOW
        put(ctx, e)
        emit(ctx, 'booking.conflicted', e.id,
          { cause = cause, by = by_id, customerId = e.customerId, from = e.from, to = e.to })
      elseif e.kind == 'hold' then
        e.status = 'released'
        e.releaseReason = cause
        put(ctx, e)
        emit(ctx, 'hold.released', e.id, { reason = cause, by = by_id, customerId = e.customerId })
      end
    end
  end
end

local function move_counters(key, old_cat, old_status, new_cat, new_status)
  if old_cat == new_cat and old_status == new_status then return end
  if old_status ~= nil then
    redis.call('HINCRBY', key, 's:' .. old_status, -1)
    redis.call('HINCRBY', key, 'c:' .. old_cat, -1)
    redis.call('HINCRBY', key, 'cs:' .. old_cat .. ':' .. old_status, -1)
  end
  redis.call('HINCRBY', key, 's:' .. new_status, 1)
  redis.call('HINCRBY', key, 'c:' .. new_cat, 1)
  redis.call('HINCRBY', key, 'cs:' .. new_cat .. ':' .. new_status, 1)
end

local VEHICLE_FIELDS = { 'id', 'city', 'hostId', 'category', 'seats', 'transmission', 'fuel', 'make',
  'model', 'lat', 'lng', 'pricePerHour', 'listing', 'createdAt' }

-- The vehicle hash and its place in the status-due schedule.
local function write_vehicle(vkey, due_key, vid, v, status, due, reach, size)
  local fields = { 'status', status, 'version', v.version, 'updatedAt', NOW, 'statusDue', due or '',
                   'calReach', reach, 'calSize', size }
  for _, f in ipairs(VEHICLE_FIELDS) do
    if v[f] ~= nil then
      table.insert(fields, f)
      table.insert(fields, v[f])
    end
  end
  redis.call('HSET', vkey, unpack(fields))
  if due then redis.call('ZADD', due_key, due, vid) else redis.call('ZREM', due_key, vid) end
end

-- Write the changed entries, re-derive the status, keep counters exact, bump the version and
-- append the events. Returns { version, status, events = { stream ids } }.
local function commit(ctx, shared)
  local v = ctx.vehicle
  for id in pairs(ctx.removed) do
    redis.call('HDEL', ctx.calkey, id)
    redis.call('ZREM', ctx.idxkey, id)
  end
  ctx.removed = {}
  for id, e in pairs(ctx.dirty) do
    redis.call('HSET', ctx.calkey, id, cjson.encode(e))
    if indexed(e) then
      local score = index_score(e)
      redis.call('ZADD', ctx.idxkey, score, id)
      if score ~= STICKY and e.to - e.from > ctx.reach then ctx.reach = e.to - e.from end
    else
      redis.call('ZREM', ctx.idxkey, id)
    end
    redis.call('HSET', shared.index, id, ctx.vid)
    if e.kind == 'hold' then
      if e.status == 'held' then redis.call('HSET', shared.live, id, ctx.vid)
      else redis.call('HDEL', shared.live, id) end
    end
  end
  local status, due = status_now(ctx)
  move_counters(shared.counters, ctx.old_category, ctx.old_status, v.category, status)
  v.status = status
  v.version = v.version + 1
  ctx.size = redis.call('HLEN', ctx.calkey)
  write_vehicle(ctx.vkey, shared.due, ctx.vid, v, status, due, ctx.reach, ctx.size)
  -- Events carry the state they leave behind (the entry, or the vehicle), so a consumer can
  -- project the calendar exactly without reading Redis.
  local vstate = {}
  for _, f in ipairs(VEHICLE_FIELDS) do vstate[f] = v[f] end
  vstate.status, vstate.version = status, v.version
  local ids = {}
  for _, ev in ipairs(ctx.events) do
    local state = ev[4] or ctx.by_id[ev[2]]
    local state_json
    if state then state_json = cjson.encode(state) else state_json = cjson.encode(vstate) end
    ids[#ids + 1] = redis.call('XADD', shared.events, '*',
      'type', ev[1], 'city', shared.city, 'vehicle', ctx.vid, 'subject', ev[2],
      'version', v.version, 'time', NOW, 'status', status, 'cmd', shared.cmd, 'data', cjson.encode(ev[3]),
      'state', state_json)
  end
  ctx.old_status = status
  ctx.old_category = v.category
  ctx.dirty = {}
  ctx.events = {}
  return { version = v.version, status = status, events = ids }
end

-- Record the result under the idempotency key and reply { result json, replayed = 0 }.
local function finish(idem_key, fingerprint, result)
  result.at = NOW
  local json = cjson.encode(result)
  if fingerprint ~= '' then
    local ttl = IDEM_TTL
    if string.sub(fingerprint, 1, 5) == 'auto:' then ttl = AUTO_IDEM_TTL end
    redis.call('SET', idem_key, fingerprint .. '\n' .. json, 'EX', ttl)
  end
  return { json, 0 }
end

-- A booking leaves its vehicle for the hold kept for it on another (an accepted offer, a switch
-- away from an at-risk booking), in one step: the same id, on the hold's window. The original
-- vehicle records `booking.reaccommodated` (data `left_data`; state: the booking as it left), the
-- hold converts (`hold.converted`, data `converted_data`); `extra` adds to the moved booking.
-- Returns the moved booking, put but not yet committed: the caller emits `booking.confirmed`.
local function move_booking(orig, target, shared, booking, hold, left_data, converted_data, extra)
  local left = copy(booking)
  left.status = 'reaccommodated'
  left.movedTo = target.vid
  left.updatedAt = NOW
  remove(orig, booking)
  emit(orig, 'booking.reaccommodated', booking.id, left_data, left)
  commit(orig, shared)
  hold.status = 'converted'
  hold.bookingId = booking.id
  put(target, hold)
  emit(target, 'hold.converted', hold.id, converted_data)
  local moved = { id = booking.id, kind = 'booking', status = 'confirmed', customerId = booking.customerId,
                  from = hold.from, to = hold.to, holdId = hold.id }
  for k, v in pairs(extra) do moved[k] = v end
  put(target, moved)
  moved.createdAt = booking.createdAt
  return moved
end

-- Part of the scripts' shared core (after includes/calendar.lua): changes a command makes in
-- memory, then writes in `commit` and `finish` with its events.

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

-- pricePerDay is '' when the vehicle has no daily cap.
local VEHICLE_FIELDS = { 'id', 'city', 'hostId', 'category', 'seats', 'transmission', 'fuel', 'make',
  'model', 'lat', 'lng', 'pricePerHour', 'pricePerDay', 'listing', 'createdAt' }

-- The vehicle hash and its place in the status-due schedule. Of the vehicle's own fields, only those
-- that differ from the hash as it was read (`stored`) are written: a booking changes none of them.
local function write_vehicle(vkey, due_key, vid, v, stored, status, due, reach, size)
  local fields = { 'status', status, 'version', v.version, 'updatedAt', NOW, 'statusDue', due or '',
                   'calReach', reach, 'calSize', size }
  for _, f in ipairs(VEHICLE_FIELDS) do
    local value = v[f]
    if value ~= nil and tostring(value) ~= stored[f] then
      fields[#fields + 1] = f
      fields[#fields + 1] = value
      stored[f] = tostring(value)
    end
  end
  redis.call('HSET', vkey, unpack(fields))
  if due then redis.call('ZADD', due_key, due, vid) else redis.call('ZREM', due_key, vid) end
end

-- Write the changed entries, re-derive the status, keep counters exact, bump the version and
-- append the events. Returns { version, status, events = { stream ids } }. Each changed entry is
-- encoded once (`ctx.json[id]`): the calendar, its event's state and `finish`'s reply share it.
local function commit(ctx, shared)
  local v = ctx.vehicle
  for id in pairs(ctx.removed) do
    redis.call('HDEL', ctx.calkey, id)
    redis.call('ZREM', ctx.idxkey, id)
  end
  ctx.removed = {}
  for id, e in pairs(ctx.dirty) do
    local json = cjson.encode(e)
    ctx.json[id] = json
    redis.call('HSET', ctx.calkey, id, json)
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
  write_vehicle(ctx.vkey, shared.due, ctx.vid, v, ctx.stored, status, due, ctx.reach, ctx.size)
  -- Events carry the state they leave behind (the entry, or the vehicle), so a consumer can
  -- project the calendar exactly without reading Redis.
  local vstate_json = nil
  local ids = {}
  for _, ev in ipairs(ctx.events) do
    local state_json
    if ev[4] then
      state_json = cjson.encode(ev[4])
    elseif ctx.dirty[ev[2]] then
      state_json = ctx.json[ev[2]]
    elseif ctx.by_id[ev[2]] then
      state_json = cjson.encode(ctx.by_id[ev[2]])
    else
      if vstate_json == nil then
        local vstate = {}
        for _, f in ipairs(VEHICLE_FIELDS) do vstate[f] = v[f] end
        vstate.status, vstate.version = status, v.version
        vstate_json = cjson.encode(vstate)
      end
      state_json = vstate_json
    end
    ids[#ids + 1] = redis.call('XADD', shared.events, '*', unpack(context_fields({
      'type', ev[1], 'city', shared.city, 'vehicle', ctx.vid, 'subject', ev[2],
      'version', v.version, 'time', NOW, 'status', status, 'cmd', shared.cmd, 'data', cjson.encode(ev[3]),
      'state', state_json })))
  end
  ctx.old_status = status
  ctx.old_category = v.category
  ctx.dirty = {}
  ctx.events = {}
  return { version = v.version, status = status, events = ids }
end

-- An entry as `commit` last encoded it (or encoded now, if it was not written).
local function entry_json(ctx, e)
  return ctx.json[e.id] or cjson.encode(e)
end

-- Record the result under the idempotency key and reply { result json, replayed = 0 }. `encoded`
-- (optional) adds fields already encoded as JSON (an entry `commit` encoded: `ctx.json[id]`), spliced
-- in rather than encoded again.
local function finish(idem_key, fingerprint, result, encoded)
  result.at = NOW
  local json = cjson.encode(result)
  if encoded then
    local parts = {}
    for k, raw in pairs(encoded) do parts[#parts + 1] = '"' .. k .. '":' .. raw end
    if #parts > 0 then json = string.sub(json, 1, -2) .. ',' .. table.concat(parts, ',') .. '}' end
  end
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

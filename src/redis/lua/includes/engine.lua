--[[
  Shared core of every script. scripts.ts builds one Redis Functions library of it (FUNCTION LOAD,
  once per server): this file, then includes/calendar.lua (reading a vehicle's calendar),
  includes/changes.lua (changing it, committing, the events) and includes/pricing.lua (the pricing
  rule), in that order — one chunk, so a later part uses an earlier one's locals — then every
  script body as a function (`FCALL <name>_<library hash>`). The core is therefore defined once per
  library, not on every call as an EVAL body's prelude is; each call starts with `begin_call`,
  which sets what belongs to the call alone (KEYS, ARGV, NOW, the call context). Nothing else in
  the core may change between calls: its tables are constants.

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

-- What belongs to one call, set by `begin_call` as the call starts. KEYS and ARGV are the call's
-- keys and arguments (a function gets them as parameters, an EVAL as globals: either way they are
-- these locals to the core and to the body).
local KEYS, ARGV = {}, {}
-- The scripts' clock: Redis's TIME, plus an offset that a test on a shifted clock passes as the
-- last argument, `clock:<ms>` (src/redis/clock.ts), taken off ARGV so that the script sees its own
-- arguments. Production passes none. Data, not source: the library is the same however often a
-- test moves its clock.
local NOW
-- Who the change is made for, in which request and trace (src/redis/call-context.ts): an optional
-- argument `ctx:<request id>\31<traceparent>\31<actor json>` before the clock's, taken off ARGV the
-- same way; its parts go into every event the script appends (`req`, `tp`, `actor`) as they came:
-- the script never decodes them, so passing who acted costs a string split, not a JSON round trip.
local CTX_REQ, CTX_TP, CTX_ACTOR = '', '', ''

local function begin_call(keys, args)
  KEYS, ARGV = keys, args
  local offset = 0
  if #ARGV > 0 and string.sub(ARGV[#ARGV], 1, 6) == 'clock:' then
    offset = tonumber(string.sub(table.remove(ARGV), 7))
  end
  CTX_REQ, CTX_TP, CTX_ACTOR = '', '', ''
  if #ARGV > 0 and string.sub(ARGV[#ARGV], 1, 4) == 'ctx:' then
    local s = table.remove(ARGV)
    local a = string.find(s, '\31', 5, true)
    local b = a and string.find(s, '\31', a + 1, true)
    if b then
      CTX_REQ, CTX_TP, CTX_ACTOR = string.sub(s, 5, a - 1), string.sub(s, a + 1, b - 1), string.sub(s, b + 1)
    end
  end
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + offset
end

-- The event fields of the call context, to append to an XADD's field list.
local function context_fields(fields)
  if CTX_ACTOR ~= '' then
    fields[#fields + 1] = 'actor'
    fields[#fields + 1] = CTX_ACTOR
  end
  if CTX_REQ ~= '' then
    fields[#fields + 1] = 'req'
    fields[#fields + 1] = CTX_REQ
  end
  if CTX_TP ~= '' then
    fields[#fields + 1] = 'tp'
    fields[#fields + 1] = CTX_TP
  end
  return fields
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
-- Final states: nothing can happen to such an entry any more (domain/calendar.ts FINAL_STATUSES).
local FINAL_STATUS = { completed = true, cancelled = true, reaccommodated = true, converted = true,
                       released = true, expired = true, cleared = true }

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

-- The vehicle's hash as a table, and the hash as stored (a commit writes only the fields that differ).
local function load_vehicle(vkey)
  local flat = redis.call('HGETALL', vkey)
  if #flat == 0 then return nil, nil end
  local v, stored = {}, {}
  for i = 1, #flat, 2 do
    v[flat[i]] = flat[i + 1]
    stored[flat[i]] = flat[i + 1]
  end
  v.version = tonumber(v.version) or 0
  return v, stored
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

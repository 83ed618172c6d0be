--[[
  verify_available (read-only): which of the candidate vehicles are free for [from, to) right
  now — listed, and no live hold, confirmed/active booking (turnaround included) or active block
  overlapping. Search uses it to check a page against the truth before answering: it reads, per
  candidate, only the entries its calendar index places near the window (includes/engine.lua).

  KEYS[1 + 3i] .. KEYS[3 + 3i]  the three keys of the i-th candidate (i from 0)
  ARGV[1] from   ARGV[2] to   ARGV[3] turnaround (ms)   ARGV[4 + i] id of the i-th candidate
  Returns  array of the free candidates' ids, in candidate order
]]
local from, to, buffer = num(ARGV[1], 'from'), num(ARGV[2], 'to'), num(ARGV[3], 'buffer')
local free = {}
for i = 0, #KEYS / 3 - 1 do
  local head = redis.call('HMGET', KEYS[1 + 3 * i], 'listing', 'calReach', 'calSize')
  if head[1] == 'active' then
    local docs
    local reach, size = tonumber(head[2]), tonumber(head[3])
    if size == 0 then
      docs = {}
    elseif reach == nil or (size ~= nil and size <= SMALL_CALENDAR) then
      -- Small, or not indexed yet (the next command indexes it): read whole.
      docs = redis.call('HVALS', KEYS[2 + 3 * i])
    else
      local ids = redis.call('ZRANGEBYSCORE', KEYS[3 + 3 * i], STICKY, STICKY)
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3 + 3 * i],
          '(' .. bound(from - buffer - reach), '(' .. bound(to + buffer))) do
        ids[#ids + 1] = id
      end
      docs = #ids > 0 and redis.call('HMGET', KEYS[2 + 3 * i], unpack(ids)) or {}
    end
    local ok = true
    for _, raw in ipairs(docs) do
      if raw then
        local e = cjson.decode(raw)
        if occupies(e, NOW) and overlaps(e, from, to, true, buffer, NOW) then
          ok = false
          break
        end
      end
    end
    if ok then free[#free + 1] = ARGV[4 + i] end
  end
end
return free

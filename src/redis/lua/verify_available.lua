--[[
  verify_available (read-only): which of the candidate vehicles are free for [from, to) right
  now — listed, and no live hold, confirmed/active booking (turnaround included) or active block
  overlapping. Search uses it to check a page against the truth before answering.

  KEYS[1 + 2i], KEYS[2 + 2i]  vehicle hash and calendar of the i-th candidate (i from 0)
  ARGV[1] from   ARGV[2] to   ARGV[3] turnaround (ms)   ARGV[4 + i] id of the i-th candidate
  Returns  array of the free candidates' ids, in candidate order
]]
local from, to, buffer = num(ARGV[1], 'from'), num(ARGV[2], 'to'), num(ARGV[3], 'buffer')
local free = {}
for i = 0, #KEYS / 2 - 1 do
  local listing = redis.call('HGET', KEYS[1 + 2 * i], 'listing')
  if listing == 'active' then
    local ok = true
    for _, raw in ipairs(redis.call('HVALS', KEYS[2 + 2 * i])) do
      local e = cjson.decode(raw)
      if occupies(e, NOW) and overlaps(e, from, to, true, buffer, NOW) then
        ok = false
        break
      end
    end
    if ok then free[#free + 1] = ARGV[4 + i] end
  end
end
return free

--[[
  trim_calendar: past, final entries leave Redis (architecture.md §3: Redis holds the present and the
  future; PostgreSQL keeps history), so a city's memory stays flat as months go by. An entry goes
  only when it is final (completed, cancelled, converted, released, expired, cleared), its window
  ended before ARGV[1], and its last change is already in PostgreSQL (updatedAt < ARGV[2]).
  Status, counters and versions do not move: such entries no longer count for either.

  KEYS[1] entries index (entryId -> vehicleId)
  KEYS[2i], KEYS[2i + 1]  calendar documents and calendar index of vehicle i (i from 1)
  ARGV[1] window end before which entries may go (ms)
  ARGV[2] synced through: every change before this instant is in PostgreSQL (ms)

  Returns  number of entries removed
  Events   none (history is not a change of the inventory; PostgreSQL keeps it)
]]
local before, synced = num(ARGV[1], 'before'), num(ARGV[2], 'synced')
local removed = 0
for i = 2, #KEYS, 2 do
  local raw = redis.call('HVALS', KEYS[i])
  local doomed = {}
  for _, json in ipairs(raw) do
    local e = cjson.decode(json)
    if FINAL_STATUS[e.status] and e.to ~= nil and e.to < before and (e.updatedAt or 0) < synced then
      doomed[#doomed + 1] = e.id
    end
  end
  if #doomed > 0 then
    redis.call('HDEL', KEYS[i], unpack(doomed))
    redis.call('ZREM', KEYS[i + 1], unpack(doomed))
    redis.call('HDEL', KEYS[1], unpack(doomed))
    removed = removed + #doomed
  end
end
return removed

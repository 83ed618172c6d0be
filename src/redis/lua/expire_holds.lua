--[[
  expire_holds: the sweeper's tick for a batch of vehicles of one city. Lapsed holds become
  `expired`; then, since "status now" moves with the clock (a trip window opens, a block ends),
  each vehicle's status is derived again and the counters follow it.

  KEYS[1] counters   KEYS[2] event stream   KEYS[3] status-due zset
  KEYS[4] entries index   KEYS[5] live holds
  KEYS[6 + 3i] .. KEYS[8 + 3i]  the three keys of the i-th vehicle (i from 0)
  ARGV[1] command id   ARGV[2] city   ARGV[3 + i] id of the i-th vehicle

  Returns  json { expired = n, changed = n, events = { stream ids } }
  Events   hold.expired* ; vehicle.status_changed when time alone changed the status
]]
local shared = city_shared(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2])
local expired, changed, all_ids = 0, 0, {}
local n = (#KEYS - 5) / 3
for i = 0, n - 1 do
  local vid = ARGV[3 + i]
  local ctx = open_vehicle(KEYS[6 + 3 * i], KEYS[7 + 3 * i], KEYS[8 + 3 * i], vid, 0)
  if ctx.vehicle == nil then
    redis.call('ZREM', shared.due, vid)
  else
    for _, e in ipairs(ctx.entries) do
      if e.kind == 'hold' and e.status == 'held' and e.expiresAt <= NOW then
        e.status = 'expired'
        put(ctx, e)
        emit(ctx, 'hold.expired', e.id, { customerId = e.customerId, expiresAt = e.expiresAt })
        expired = expired + 1
      end
    end
    local status, due = status_now(ctx)
    if #ctx.events == 0 and status ~= ctx.old_status then
      emit(ctx, 'vehicle.status_changed', vid, { from = ctx.old_status, to = status })
    end
    if #ctx.events > 0 then
      changed = changed + 1
      for _, id in ipairs(commit(ctx, shared).events) do all_ids[#all_ids + 1] = id end
    elseif due then
      redis.call('ZADD', shared.due, due, vid)
      redis.call('HSET', ctx.vkey, 'statusDue', due)
    else
      redis.call('ZREM', shared.due, vid)
      redis.call('HSET', ctx.vkey, 'statusDue', '')
    end
  end
end
return cjson.encode({ expired = expired, changed = changed, events = all_ids, at = NOW })

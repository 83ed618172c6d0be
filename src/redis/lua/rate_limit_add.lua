--[[
  rate_limit_add: adds a process's requests to callers' budgets for their current windows
  (src/services/caller-budgets.ts). Counted locally, sent here every few milliseconds, every caller
  counted since the last send in one call: each caller's count across every process, and how long
  its window still runs.

  KEYS[i]      a caller's window counter (`fleet-rl:<role>:<id>` or `fleet-rl:ip:<address>`)
  ARGV[2i-1]   requests (or their weight) to add to KEYS[i]
  ARGV[2i]     KEYS[i]'s window (ms), started when the key is new

  Returns  { count in KEYS[1]'s window, ms left in it, count in KEYS[2]'s, ms left, ... }
  Events   none: a budget is not marketplace state
]]
local out = {}
for i = 1, #KEYS do
  local current = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
    ttl = tonumber(ARGV[2 * i])
  end
  out[#out + 1] = current
  out[#out + 1] = ttl
end
return out

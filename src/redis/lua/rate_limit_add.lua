--[[
  rate_limit_add: adds a process's requests to a caller's budget for the current window
  (src/services/caller-budgets.ts). Counted locally, sent here every few milliseconds: the caller's
  count across every process, and how long its window still runs.

  KEYS[1]  the caller's window counter (`fleet-rl:<role>:<id>` or `fleet-rl:ip:<address>`)
  ARGV[1]  requests (or their weight) to add   ARGV[2] the window (ms), started when the key is new

  Returns  { count in the window, ms left in it }
  Events   none: a budget is not marketplace state
]]
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return { current, ttl }

--[[
  replication_probe: a tiny write on the node's confirmer connection, so that the WAIT sent right
  after it covers every write the node had answered before (src/redis/replication.ts).

  KEYS[1]  the probe counter (`<hash tag>:replication-probe`: on a cluster, the slot of the
           writes it confirms)

  Returns  the run id of the server that ran it: a confirmation counts only on the server that ran
           the write (after a failover it is another one)
  Events   none: it changes nothing of the marketplace
]]
redis.call('INCR', KEYS[1])
return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')

--[[
  trim_stream: drops a city stream's entries below an id every consumer group has acknowledged
  and the retention window has passed (the sync worker computes it; never a blind MAXLEN).

  KEYS[1]  the city event stream
  ARGV[1]  the lowest id to keep

  Returns  how many entries were removed
  Events   none: the events are in PostgreSQL's event log
]]
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])

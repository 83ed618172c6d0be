--[[
  record_system_event: a fact about the service itself, appended to a city's stream so that every
  process tailing it (read models, WebSocket hubs, the sync into PostgreSQL) learns it in order:
  a failover detected in the city's store, its verification and the figures it found.

  KEYS[1]  city event stream
  ARGV[1]  event type (system.*)   ARGV[2] city id   ARGV[3] data JSON   ARGV[4] command id

  Returns  the event's stream id
  Events   ARGV[1] (vehicle '-', no subject, no state)
]]
if string.sub(ARGV[1], 1, 7) ~= 'system.' then fail('VALIDATION', { field = 'type' }) end
cjson.decode(ARGV[3])
return redis.call('XADD', KEYS[1], '*', unpack(context_fields({ 'type', ARGV[1], 'city', ARGV[2], 'vehicle', '-',
  'subject', '', 'version', 0, 'time', NOW, 'status', '', 'cmd', ARGV[4], 'data', ARGV[3] })))

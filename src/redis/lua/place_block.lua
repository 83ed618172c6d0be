--[[
  place_block: record that the vehicle cannot be rented on [from, to):
  `accident` (open-ended until cleared; starts now unless told), `maintenance` and `host`
  (intervals). A block is a fact, never refused for overlap: every confirmed booking it overlaps
  becomes `conflicted` (cause = the reason) and live holds there are released. Blocks may
  overlap each other. Trips already under way keep the car.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     block id   ARGV[7] reason
  ARGV[8]     from ('' = now, accidents only)   ARGV[9] to ('' = open-ended, accidents only)
  ARGV[10]    '1' when the caller may write the past (ops)   ARGV[11] note (e.g. an iCal UID)

  Returns  { json { block, version, status, events }, replayed }
  Errors   NOT_FOUND, VALIDATION (reason), INVALID_INTERVAL
  Events   block.placed, booking.conflicted*, hold.released*
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local reason = ARGV[7]
if reason ~= 'accident' and reason ~= 'maintenance' and reason ~= 'host' then
  fail('VALIDATION', { field = 'reason' })
end
local from, to = opt_num(ARGV[8], 'from'), opt_num(ARGV[9], 'to')
if from == nil and reason == 'accident' then from = NOW - (NOW % MINUTE) end
check_interval(from, to, ARGV[10] == '1', reason == 'accident')

local block = { id = ARGV[6], kind = 'block', status = 'active', reason = reason, from = from, to = to }
if ARGV[11] ~= '' then block.note = ARGV[11] end
put(ctx, block)
emit(ctx, 'block.placed', block.id, { reason = reason, from = from, to = to, note = block.note })
displace(ctx, from, to or FOREVER, false, reason, block.id)
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { block = entry_json(ctx, block) })

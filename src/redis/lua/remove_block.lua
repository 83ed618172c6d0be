--[[
  remove_block: clear a block that has begun (it ends now) or cancel one not yet begun.
  Bookings the block displaced stay `conflicted`: their customers have been offered alternatives.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     block id

  Returns  { json { block, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (already cleared or cancelled)
  Events   block.cleared | block.cancelled
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local block = require_entry(ctx, ARGV[6], 'block', nil)
require_status(block, { 'active' })

local etype
if block.from <= NOW then
  block.status = 'cleared'
  if block.to == nil or block.to > NOW then block.to = NOW end
  etype = 'block.cleared'
else
  block.status = 'cancelled'
  etype = 'block.cancelled'
end
put(ctx, block)
emit(ctx, etype, block.id, { reason = block.reason, from = block.from, to = block.to })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { block = entry_json(ctx, block) })

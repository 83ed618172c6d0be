--[[
  cancel_booking: the customer (or ops) cancels a booking that has not started.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     booking id   ARGV[7] customer id ('' = any: ops)   ARGV[8] reason

  Returns  { json { booking, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (active, completed, cancelled, reaccommodated)
  Events   booking.cancelled
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local booking = require_entry(ctx, ARGV[6], 'booking', ARGV[7])
require_status(booking, { 'confirmed', 'conflicted' })

local previous = booking.status
booking.status = 'cancelled'
booking.cancelReason = ARGV[8]
put(ctx, booking)
emit(ctx, 'booking.cancelled', booking.id,
  { customerId = booking.customerId, reason = ARGV[8], previousStatus = previous })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { booking = entry_json(ctx, booking) })

--[[
  release_hold: the customer lets a live hold go before it lapses.

  KEYS[1..9]  common single-vehicle layout (see includes/engine.lua)
  ARGV[1..5]  common prefix
  ARGV[6]     hold id   ARGV[7] customer id ('' = any: ops)

  Returns  { json { hold, version, status, events }, replayed }
  Errors   NOT_FOUND, INVALID_STATE (converted/released/expired), HOLD_EXPIRED (lapsed, not yet swept)
  Events   hold.released
]]
local replay = idem_replay(KEYS[9], ARGV[2])
if replay then return { replay, 1 } end

local ctx, shared = open_command()
require_vehicle(ctx)
local hold = require_entry(ctx, ARGV[6], 'hold', ARGV[7])
require_status(hold, { 'held' })
if hold.offerFor then fail('INVALID_STATE', { entity = 'hold', id = hold.id, reason = 'offer_hold', bookingId = hold.offerFor }) end
if hold.expiresAt <= NOW then fail('HOLD_EXPIRED', { id = hold.id, expiresAt = hold.expiresAt }) end

hold.status = 'released'
hold.releaseReason = 'customer'
put(ctx, hold)
emit(ctx, 'hold.released', hold.id, { reason = 'customer', customerId = hold.customerId })
local out = commit(ctx, shared)
return finish(KEYS[9], ARGV[2], out, { hold = entry_json(ctx, hold) })

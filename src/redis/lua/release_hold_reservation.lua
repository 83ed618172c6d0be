--[[
  release_hold_reservation: a hold no longer live (refused in its city, released, booked) gives its
  place among the customer's live holds back (see reserve_hold).

  KEYS[1]  ZSET hold id -> expiry of the customer's live holds
  ARGV[1]  hold id

  Returns  1 when the reservation was there, else 0
  Events   none
]]
return redis.call('ZREM', KEYS[1], ARGV[1])

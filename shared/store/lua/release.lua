-- release: drop a lease and everything it holds, only for the holder of its current token.
-- ARGV: lease_id, token, last_trade_ms. Returns 1 if released, else 0 with nothing changed.
-- A lease that expired but was not yet dropped is still its holder's: nobody else can have
-- claimed what it holds, because every acquire drops expired leases first.
-- last_trade_ms > 0 raises LAST_TRADE[triangle] to it (never lowers it): the stale rule.
local lease_id, token, last_trade_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])

local record = redis.call('HGET', K_DATA, lease_id)
if not record then return 0 end
local lease = cjson.decode(record)
if lease.token ~= token then return 0 end
drop_lease(lease_id, lease)
if last_trade_ms > 0 then
  local previous_ms = tonumber(redis.call('HGET', K_LAST, lease.triangle) or '0')
  if last_trade_ms > previous_ms then
    redis.call('HSET', K_LAST, lease.triangle, int_str(last_trade_ms))
  end
end
return 1

-- renew: push a live lease's expiry to now + ttl_ms, only for the holder of its current token.
-- ARGV: lease_id, token, ttl_ms. Returns 1 if extended, 0 if the lease is unknown, expired
-- (even if not yet swept: another acquire may drop it at any moment) or fenced by a newer token.
local lease_id, token, ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])

local now = now_ms()
local expires_ms = redis.call('ZSCORE', K_LEASES, lease_id)
if not expires_ms or tonumber(expires_ms) < now then return 0 end
local record = redis.call('HGET', K_DATA, lease_id)
if not record or cjson.decode(record).token ~= token then return 0 end
redis.call('ZADD', K_LEASES, int_str(now + ttl_ms), lease_id)
return 1

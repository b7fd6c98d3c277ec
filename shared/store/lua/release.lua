-- release: drop a lease and everything it holds, only for the holder of its current token.
-- ARGV: lease_id, token, last_trade_ms, outcome. Returns 1 if released, else 0 with nothing changed.
-- outcome (a report status) is recorded in the id's once-per-id marker (KEYS[13]), keeping its
-- TTL, so a repeat is refused naming it; an empty outcome means the execution never started
-- (no worker took it) and forgets the marker, so the signal may be sent again.
-- A lease that expired but was not yet dropped is still its holder's: nobody else can have
-- claimed what it holds, because every acquire drops expired leases first.
-- last_trade_ms > 0 (the execution traded) raises LAST_TRADE[triangle] to the Redis clock's now
-- (never lowers it): the stale rule. The releasing host's own time of the trade is not used:
-- the mark is compared with signals admitted on other hosts, so it is on the one shared clock,
-- and a host whose clock runs ahead cannot make a triangle's books look stale to everyone.
local lease_id, token, last_trade_ms, outcome = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] or ''

local record = redis.call('HGET', K_DATA, lease_id)
if not record then return 0 end
local lease = cjson.decode(record)
if lease.token ~= token then return 0 end
drop_lease(lease_id, lease)
if K_SEEN then
  if outcome == '' then
    redis.call('DEL', K_SEEN)
  elseif redis.call('EXISTS', K_SEEN) == 1 then
    redis.call('SET', K_SEEN, outcome, 'KEEPTTL')
  end
end
if last_trade_ms > 0 then
  local traded_ms = now_ms()
  local previous_ms = tonumber(redis.call('HGET', K_LAST, lease.triangle) or '0')
  if traded_ms > previous_ms then
    redis.call('HSET', K_LAST, lease.triangle, int_str(traded_ms))
  end
end
return 1

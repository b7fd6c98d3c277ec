-- Take `weight` from the fleet's exchange rate budget (hash `k_budget`: limit, remaining,
-- window_end_ms), or take nothing. Merged into the same EVALSHA
-- as the lease, by acquire.lua. Returns granted (0/1), remaining, ms until the refill.
--
-- KuCoin's pools are fixed windows refilled whole at their reset, so the bucket is refilled whole
-- when its window ends, never continuously: a continuously refilled bucket of the same size lets
-- up to twice the limit through across one exchange window and earns 429s.
local function budget_take(k_budget, weight, configured_limit, window_ms, now)
  local state = redis.call('HMGET', k_budget, 'limit', 'remaining', 'window_end_ms')
  local limit = math.min(tonumber(state[1]) or configured_limit, configured_limit)
  local remaining = tonumber(state[2]) or limit
  local window_end = tonumber(state[3]) or 0
  if now >= window_end then
    remaining = limit
    window_end = now + window_ms
  end
  local granted = 0
  if weight <= remaining then
    remaining = remaining - weight
    granted = 1
  end
  redis.call('HSET', k_budget, 'limit', string.format('%d', limit), 'remaining', string.format('%d', remaining),
    'window_end_ms', string.format('%d', window_end))
  return granted, remaining, window_end - now
end

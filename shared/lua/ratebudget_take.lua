-- ratebudget_take: take `weight` from the fleet's exchange rate budget, or say how long to wait.
-- KEYS[1]: the budget hash (fields limit, remaining, window_end_ms; see shared/ratebudget.py).
-- ARGV: weight, configured limit, window_ms.
-- Returns {1, remaining, reset_ms} when taken, {0, remaining, reset_ms} when the window cannot
-- cover it (nothing taken). reset_ms is the time until the budget refills.
--
-- KuCoin's pools are fixed windows refilled whole at their reset, so the bucket is refilled whole
-- when its window ends, never continuously: a continuously refilled bucket of the same size lets
-- up to twice the limit through across one exchange window and earns 429s.
local K_BUDGET = KEYS[1]
local weight, configured_limit, window_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HMGET', K_BUDGET, 'limit', 'remaining', 'window_end_ms')
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
redis.call('HSET', K_BUDGET, 'limit', string.format('%d', limit), 'remaining', string.format('%d', remaining),
  'window_end_ms', string.format('%d', window_end))
return {granted, remaining, window_end - now}

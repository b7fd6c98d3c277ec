-- ratebudget_take: take `weight` from the fleet's exchange rate budget, or say how long to wait.
-- shared/ratebudget.py prepends budget.lua (the budget_take function) to this file.
-- KEYS[1]: the budget hash (fields limit, remaining, window_end_ms; see shared/ratebudget.py).
-- ARGV: weight, configured limit, window_ms.
-- Returns {1, remaining, reset_ms} when taken, {0, remaining, reset_ms} when the window cannot
-- cover it (nothing taken). reset_ms is the time until the budget refills.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local granted, remaining, reset_ms = budget_take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), now)
return {granted, remaining, reset_ms}

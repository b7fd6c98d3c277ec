-- ratebudget_observe: correct the fleet's budget with what the exchange said (gw-ratelimit-*).
-- KEYS[1]: the budget hash. ARGV: header limit, header remaining, header reset_ms, configured
-- limit, window_ms. Returns {applied, remaining, reset_ms}: applied 0 for an ignored header.
--
-- Every correction errs towards waiting: the exchange's remaining only ever lowers ours (ours
-- already counts reservations whose calls have not reached the exchange yet), and the window
-- ends at the later of our estimate and the exchange's. A header from an earlier window (a late
-- answer: its reset lies more than half a window before our window's end) says nothing about
-- this one and is ignored, or one slow response could empty a fresh window.
local K_BUDGET = KEYS[1]
local header_limit, header_remaining, reset_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local configured_limit, window_ms = tonumber(ARGV[4]), tonumber(ARGV[5])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exchange_end = now + reset_ms

local state = redis.call('HMGET', K_BUDGET, 'remaining', 'window_end_ms')
local limit = math.min(header_limit, configured_limit)
local remaining = tonumber(state[1])
local window_end = tonumber(state[2]) or 0
local applied = 1
if remaining == nil or now >= window_end then
  -- our window is over (or never began): the exchange's current window is the truth
  remaining = math.min(header_remaining, limit)
  window_end = exchange_end
elseif exchange_end > window_end - window_ms / 2 then
  remaining = math.min(remaining, header_remaining)
  window_end = math.max(window_end, exchange_end)
else
  applied = 0
end
redis.call('HSET', K_BUDGET, 'limit', string.format('%d', limit), 'remaining', string.format('%d', remaining),
  'window_end_ms', string.format('%d', window_end))
return {applied, remaining, math.max(window_end - now, 0)}

-- acquire: grant a lease (slot + isolation claims + capital) or say why not, atomically.
-- ARGV: lease_id, ttl_ms, triangle_id, quote, pairs (comma-separated), notional (decimal
-- string), book_ts_ms, owner, and the exchange weight to take from the rate budget with that
-- budget's limit and window_ms (weight 0: no budget), and how long the id's once-per-id marker
-- (KEYS[13]) is kept after a grant (seen_ms), and what each leg of a live triangle spends
-- ("CUR:amount,..."; empty for paper).
-- Returns {1, fencing_token, live strategy} or {0, reason, what blocked it (for the refusal trail)}; reasons
-- are checked in this order:
-- paused, duplicate (then {0, 'duplicate', first outcome}: 'running' while it runs), stale, no_slot, triangle_busy, quote_busy, pair_busy, capital_cap,
-- no_inventory, inventory_busy (parallel live strategy only: the spends are claimed against the
-- inventory held, target:<CUR> lowered to the workers' view: not held at all / claimed by others),
-- rate_budget (then {0, 'rate_budget', ms until the refill}). The budget comes last so an
-- isolation refusal spends no weight, and it shares this one round trip with the lease.
local lease_id, ttl_ms, triangle, quote = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local pairs_csv, notional, book_ts_ms, owner = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
local weight, budget_limit, budget_window_ms = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local seen_ms = tonumber(ARGV[12])
local spends_csv = ARGV[13] or ''

local now = now_ms()
drop_expired(now)

local config = redis.call('HMGET', K_CONFIG, 'paused', 'slots', 'enforce_same_quote', 'enforce_pair', 'cap:' .. quote,
                         'live_strategy')
if flag(config[1], false) then return {0, 'paused'} end
local strategy = config[6]
if not strategy or strategy == '' then strategy = 'sequential' end
if strategy ~= 'sequential' and strategy ~= 'parallel' then
  error('trident: config live_strategy is not "sequential" or "parallel": "' .. strategy .. '"')
end
-- Once per id, fleet-wide: the marker outlives the lease by the retention window.
local first_outcome = redis.call('GET', K_SEEN)
if first_outcome then return {0, 'duplicate', first_outcome} end
if redis.call('ZSCORE', K_LEASES, lease_id) then return {0, 'duplicate', 'running'} end
-- Staleness is a fact about the signal itself, so it is reported before any refusal that only
-- depends on what else happens to be running.
if book_ts_ms > 0 then
  local last_trade_ms = tonumber(redis.call('HGET', K_LAST, triangle) or '0')
  if last_trade_ms > 0 and book_ts_ms < last_trade_ms then return {0, 'stale', int_str(last_trade_ms)} end
end

local slots = tonumber(config[2] or '4')
if not slots or slots ~= math.floor(slots) then
  error('trident: config slots is not a whole number: "' .. config[2] .. '"')
end
if redis.call('ZCARD', K_LEASES) >= slots then return {0, 'no_slot', int_str(slots)} end

local triangle_holder = redis.call('HGET', K_TRI, triangle)
if triangle_holder then return {0, 'triangle_busy', triangle_holder} end
local quote_holders = redis.call('HGET', K_QUOTE, quote)
if quote_holders and flag(config[3], false) then return {0, 'quote_busy', quote_holders} end

local pair_list = split_csv(pairs_csv)
local pair_holders = {}
if #pair_list > 0 then pair_holders = redis.call('HMGET', K_PAIR, unpack(pair_list)) end
if flag(config[4], true) then
  for i = 1, #pair_list do
    if pair_holders[i] then return {0, 'pair_busy', pair_list[i] .. ' ' .. pair_holders[i]} end
  end
end

local in_use = limbs_add(capital_in_use(quote), amount_to_limbs(notional, 'notional'))
if config[5] and limbs_cmp(in_use, amount_to_limbs(config[5], 'cap:' .. quote)) > 0 then
  return {0, 'capital_cap', config[5] .. ' ' .. limbs_to_amount(capital_in_use(quote))}
end

-- Parallel: every leg spends inventory at once, so each currency's spend is claimed against what
-- is held, minus what other leases already claimed: two executions never spend the same coins.
local spends = {}
if strategy == 'parallel' and spends_csv ~= '' then
  spends = split_spends(spends_csv)
  for i, spend in ipairs(spends) do
    local currency = spend[1]
    -- what may be spent: the target, lowered to what a worker last saw available if that is less
    local held_text = redis.call('HGET', K_CONFIG, 'target:' .. currency)
    local held
    if held_text then held = amount_to_limbs(held_text, 'target:' .. currency) end
    local seen_text = redis.call('HGET', K_INVENTORY, currency)
    if seen_text then
      local seen = amount_to_limbs(seen_text, 'inventory ' .. currency)
      if not held or limbs_cmp(seen, held) < 0 then held, held_text = seen, seen_text end
    end
    if not held then return {0, 'no_inventory', currency .. ' none held (no target:' .. currency .. ')'} end
    local amount = amount_to_limbs(spend[2], 'spend')
    if limbs_cmp(amount, held) > 0 then
      return {0, 'no_inventory', currency .. ' ' .. spend[2] .. ' > ' .. held_text .. ' held'}
    end
    local claimed = inventory_claimed(currency)
    spend[3] = limbs_add(claimed, amount)
    if limbs_cmp(spend[3], held) > 0 then
      return {0, 'inventory_busy', currency .. ' ' .. limbs_to_amount(claimed) .. ' in flight of ' .. held_text}
    end
  end
end

if weight > 0 then
  local granted, _, reset_ms = budget_take(K_BUDGET, weight, budget_limit, budget_window_ms, now)
  if granted == 0 then return {0, 'rate_budget', reset_ms} end
end

local token = redis.call('INCR', K_TOKEN)
redis.call('SET', K_SEEN, 'running', 'PX', seen_ms)
redis.call('ZADD', K_LEASES, int_str(now + ttl_ms), lease_id)
redis.call('HSET', K_DATA, lease_id, cjson.encode({
  token = int_str(token), triangle = triangle, quote = quote, pairs = pairs_csv,
  notional = notional, owner = owner, started_ms = int_str(now), spend = (#spends > 0) and spends_csv or nil,
}))
for _, spend in ipairs(spends) do inventory_store(spend[1], spend[3]) end
redis.call('HSET', K_TRI, triangle, lease_id)
redis.call('HSET', K_QUOTE, quote, claim_joined(quote_holders, lease_id))
-- Pair claims are written even while enforce_pair is off, so switching it on binds at once.
if #pair_list > 0 then
  local fields = {}
  for i, pair in ipairs(pair_list) do
    fields[#fields + 1] = pair
    fields[#fields + 1] = claim_joined(pair_holders[i], lease_id)
  end
  redis.call('HSET', K_PAIR, unpack(fields))
end
capital_store(quote, in_use)
return {1, token, (#spends > 0) and 'parallel' or 'sequential'}

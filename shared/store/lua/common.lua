-- Helpers shared by the registry scripts; shared/registry.py prepends this file to each of them.
-- Only Lua 5.1 and commands present in both Redis 6.2 and 7.x are used. Since Redis 5, scripts
-- are replicated by their effects, so reading TIME before writing is allowed.
--
-- Every script receives the same KEYS, in this order (see shared/keys.py):
local K_CONFIG, K_LEASES, K_DATA = KEYS[1], KEYS[2], KEYS[3]
local K_TRI, K_QUOTE, K_PAIR = KEYS[4], KEYS[5], KEYS[6]
local K_CAPITAL, K_LAST, K_TOKEN = KEYS[7], KEYS[8], KEYS[9]
local K_BUDGET = KEYS[10]
-- Parallel live strategy: per currency, what leases have claimed to spend (exact decimal strings),
-- and the inventory the live workers last saw held (absent: the config's target:<CUR> stands in).
local K_INV_CLAIM, K_INVENTORY = KEYS[11], KEYS[12]
-- acquire and release also get the lease's once-per-id marker (keys.seen_key); the others do not.
local K_SEEN = KEYS[13]

-- Server clock in epoch ms: every lease time comes from this one clock, never a host's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Integers as exact decimal strings: tostring() on a Lua number keeps only 14 digits.
local function int_str(n)
  return string.format('%.0f', n)
end

-- A config flag: absent means `default`; "0" or "" means off; any other value means on, so a
-- typo like "true" or "yes" errs towards pausing / enforcing.
local function flag(value, default)
  if not value then return default end
  return value ~= '0' and value ~= ''
end

local function split_csv(csv)
  local items = {}
  for item in string.gmatch(csv, '[^,]+') do items[#items + 1] = item end
  return items
end

-- Money. Lua numbers are doubles (0.1 + 0.2 > 0.3), so an amount is held exactly as an integer
-- count of 10^-18 units, split into base-10^9 limbs (least significant first): each limb and
-- each limb sum is far below 2^53, so every step is exact at any size, to 18 decimal places.
local LIMB_DIGITS, LIMB_BASE = 9, 1000000000

local function trim_limbs(limbs)
  while #limbs > 0 and limbs[#limbs] == 0 do limbs[#limbs] = nil end
  return limbs
end

local function amount_to_limbs(text, what)
  local whole, frac = string.match(text, '^(%d*)%.?(%d*)$')
  if not whole or (whole == '' and frac == '') or #frac > 2 * LIMB_DIGITS then
    error('trident: ' .. what .. ' is not a non-negative decimal with at most 18 places: "' .. text .. '"')
  end
  frac = frac .. string.rep('0', 2 * LIMB_DIGITS - #frac)
  local limbs = {tonumber(string.sub(frac, LIMB_DIGITS + 1)), tonumber(string.sub(frac, 1, LIMB_DIGITS))}
  local stop = #whole
  while stop > 0 do
    local start = math.max(1, stop - LIMB_DIGITS + 1)
    limbs[#limbs + 1] = tonumber(string.sub(whole, start, stop))
    stop = start - 1
  end
  return trim_limbs(limbs)
end

local function limbs_to_amount(limbs)
  local whole = {}
  for k = #limbs, 3, -1 do
    whole[#whole + 1] = string.format(#whole == 0 and '%d' or '%09d', limbs[k])
  end
  local frac = string.gsub(string.format('%09d%09d', limbs[2] or 0, limbs[1] or 0), '0+$', '')
  local text = #whole == 0 and '0' or table.concat(whole)
  if frac == '' then return text end
  return text .. '.' .. frac
end

local function limbs_cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for k = #a, 1, -1 do
    if a[k] ~= b[k] then return a[k] < b[k] and -1 or 1 end
  end
  return 0
end

local function limbs_add(a, b)
  local sum, carry = {}, 0
  for k = 1, math.max(#a, #b) do
    local limb = (a[k] or 0) + (b[k] or 0) + carry
    if limb >= LIMB_BASE then limb, carry = limb - LIMB_BASE, 1 else carry = 0 end
    sum[k] = limb
  end
  if carry > 0 then sum[#sum + 1] = carry end
  return sum
end

-- a - b, floored at zero (capital in use never goes negative, even after a hand edit).
local function limbs_sub(a, b)
  if limbs_cmp(a, b) <= 0 then return {} end
  local diff, borrow = {}, 0
  for k = 1, #a do
    local limb = a[k] - (b[k] or 0) - borrow
    if limb < 0 then limb, borrow = limb + LIMB_BASE, 1 else borrow = 0 end
    diff[k] = limb
  end
  return trim_limbs(diff)
end

local function capital_in_use(quote)
  return amount_to_limbs(redis.call('HGET', K_CAPITAL, quote) or '0', 'capital in use for ' .. quote)
end

local function capital_store(quote, limbs)
  if #limbs == 0 then
    redis.call('HDEL', K_CAPITAL, quote)
  else
    redis.call('HSET', K_CAPITAL, quote, limbs_to_amount(limbs))
  end
end

-- A claim field holds the comma-separated ids of the leases holding that thing. With its rule
-- on, a new lease never joins a held claim, so the list has one id; with the rule off several
-- leases share it, and releasing one removes only its own id.
local function claim_joined(holders, lease_id)
  if holders then return holders .. ',' .. lease_id end
  return lease_id
end

local function claim_remove(key, field, lease_id)
  local holders = redis.call('HGET', key, field)
  if not holders then return end
  if holders == lease_id then
    redis.call('HDEL', key, field)
    return
  end
  local kept = {}
  for holder in string.gmatch(holders, '[^,]+') do
    if holder ~= lease_id then kept[#kept + 1] = holder end
  end
  if #kept == 0 then
    redis.call('HDEL', key, field)
  else
    redis.call('HSET', key, field, table.concat(kept, ','))
  end
end

-- "CUR:amount,CUR:amount" -> {{cur, amount}, ...} (the spends a parallel lease claims).
local function split_spends(csv)
  local spends = {}
  for item in string.gmatch(csv or '', '[^,]+') do
    local currency, amount = string.match(item, '^([^:]+):(.+)$')
    if currency then spends[#spends + 1] = {currency, amount} end
  end
  return spends
end

local function inventory_claimed(currency)
  return amount_to_limbs(redis.call('HGET', K_INV_CLAIM, currency) or '0', 'inventory claimed for ' .. currency)
end

local function inventory_store(currency, limbs)
  if #limbs == 0 then
    redis.call('HDEL', K_INV_CLAIM, currency)
  else
    redis.call('HSET', K_INV_CLAIM, currency, limbs_to_amount(limbs))
  end
end

-- Remove a lease with everything it holds: claims, capital, inventory claims, record, expiry entry.
local function drop_lease(lease_id, lease)
  for _, spend in ipairs(split_spends(lease.spend)) do
    inventory_store(spend[1], limbs_sub(inventory_claimed(spend[1]), amount_to_limbs(spend[2], 'spend')))
  end
  claim_remove(K_TRI, lease.triangle, lease_id)
  claim_remove(K_QUOTE, lease.quote, lease_id)
  for _, pair in ipairs(split_csv(lease.pairs)) do claim_remove(K_PAIR, pair, lease_id) end
  capital_store(lease.quote, limbs_sub(capital_in_use(lease.quote), amount_to_limbs(lease.notional, 'notional')))
  redis.call('HDEL', K_DATA, lease_id)
  redis.call('ZREM', K_LEASES, lease_id)
end

-- Drop every lease whose expiry is before `now`; returns their ids.
local function drop_expired(now)
  local expired = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', '(' .. int_str(now))
  for _, lease_id in ipairs(expired) do
    local record = redis.call('HGET', K_DATA, lease_id)
    if record then
      drop_lease(lease_id, cjson.decode(record))
    else
      redis.call('ZREM', K_LEASES, lease_id)
    end
  end
  return expired
end

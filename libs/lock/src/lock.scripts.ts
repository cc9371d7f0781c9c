/**
 * Lua scripts run atomically by Redis. KEYS hold n lock keys followed by their n fence-counter keys,
 * so every key a script touches is declared (Redis Cluster routes by them; callers put the shared
 * hash tag inside their keys).
 *
 * Fencing: the token is max(every counter + 1, Redis TIME in microseconds). Seeding from the clock
 * keeps tokens increasing after Redis lost its keys (restart, flush, failover to a replica that
 * missed writes), which is also why the counters may expire. Lua numbers are doubles: microsecond
 * time stays exact (< 2^53) for another two centuries; tokens leave as decimal strings.
 */
export const ACQUIRE_MANY_SCRIPT = `
local n = #KEYS / 2
local owner = ARGV[1]
if n == 1 then
  -- The common case, one key: SET NX does the check and the write in one command.
  if not redis.call('SET', KEYS[1], owner, 'NX', 'PX', ARGV[2]) then
    if redis.call('GET', KEYS[1]) ~= owner then return {0, {1}} end
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
else
  local busy = {}
  for i = 1, n do
    local holder = redis.call('GET', KEYS[i])
    if holder and holder ~= owner then busy[#busy + 1] = i end
  end
  if #busy > 0 then return {0, busy} end
  for i = 1, n do
    redis.call('SET', KEYS[i], owner, 'PX', ARGV[2])
  end
end
local now = redis.call('TIME')
local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
for i = 1, n do
  local counter = tonumber(redis.call('GET', KEYS[n + i]) or '0')
  if counter + 1 > token then token = counter + 1 end
end
local text = string.format('%.0f', token)
for i = 1, n do
  redis.call('SET', KEYS[n + i], text, 'PX', ARGV[3])
end
return {1, text}
`;

/** Deletes only the keys still owned by this owner; safe to call twice. Returns how many it freed. */
export const RELEASE_SCRIPT = `
local freed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    freed = freed + 1
  end
end
return freed
`;

/** All-or-nothing: extends only if every key is still owned, so an expired lease is never revived. */
export const EXTEND_SCRIPT = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
`;

/** Raises fence counters to at least ARGV[1] (used when PostgreSQL knows a larger token). */
export const RATCHET_SCRIPT = `
for i = 1, #KEYS do
  local counter = tonumber(redis.call('GET', KEYS[i]) or '0')
  if counter < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  end
end
return 1
`;

/**
 * Counting permits (an admission counter): takes ARGV[1] permits from KEYS[1] if that many are
 * left. Returns {1, left after} or {0, left}; {-1, 0} when the counter does not exist (never seeded,
 * expired or lost), so the caller seeds it from its source of truth. With ARGV[2] (a seed) and
 * ARGV[3] (its TTL in ms) a missing counter is first set to the seed.
 */
export const TAKE_PERMITS_SCRIPT = `
local want = tonumber(ARGV[1])
local left = redis.call('GET', KEYS[1])
if not left then
  if not ARGV[2] then return {-1, 0} end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  left = ARGV[2]
end
left = tonumber(left)
if left < want then return {0, left} end
return {1, redis.call('DECRBY', KEYS[1], want)}
`;

/** Gives permits back, unless the counter is gone (its next seed counts them). */
export const RETURN_PERMITS_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return -1
`;

/**
 * A fixed-window counter: adds ARGV[1] hits (0 only reads) to a window of ARGV[2] ms that starts
 * with its first hit. Returns the count and the milliseconds left in the window.
 */
export const COUNT_HITS_SCRIPT = `
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  left = tonumber(ARGV[2])
end
return {count, left}
`;

import { LUA_NOW_MS } from '@livebus/publisher/redis';

/**
 * Lua shared by the presence scripts and the detach decision. Every script that
 * touches a user's presence declares the same three keys, all on the user's slot:
 * KEYS[1] presence hash, KEYS[2] expiry zset, KEYS[3] legacy registry hash.
 *
 * `prune(now)` drops the entries whose expiry has passed from the presence hash,
 * and the same session ids from the legacy registry hash, so the registry
 * sessions of a dead instance go with its presence entries.
 *
 * `settle()` makes the keys expire with their last entry (PEXPIREAT its expiry
 * score), or deletes the presence keys when no entry is left; the legacy registry
 * hash gets the same expiry, so it never outlives the presence that vouches for it.
 */
export const PRESENCE_LUA_PRELUDE = `${LUA_NOW_MS}
local function prune(now)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
  for i = 1, #expired do
    redis.call('HDEL', KEYS[1], expired[i])
    redis.call('HDEL', KEYS[3], expired[i])
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
  return #expired
end
local function settle()
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
    return
  end
  redis.call('PEXPIREAT', KEYS[1], last[2])
  redis.call('PEXPIREAT', KEYS[2], last[2])
  redis.call('PEXPIREAT', KEYS[3], last[2])
end
local function instance_of(raw)
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' then return entry['instanceId'] end
  return nil
end
`;

import { fleetUserKeys, instanceKeys, type RedisClient } from '@livebus/publisher/redis';

// Time passing for presence in Redis, without waiting for it: the tests that see an entry
// expire move its expiry into the past instead of sleeping through a short TTL (a busy machine
// could starve the heartbeat that was to keep another entry alive for longer than that TTL).
// Redis's clock cannot be moved; what time would do to the keys is done to them instead.

// Every key given: its TTL shortened by ARGV[1] ms, deleted when that is all it had left (as
// Redis would have expired it); a key without a TTL is left. KEYS[1], a zset of expiries (a
// user's lb:{uid}:pz), first has every score moved ARGV[1] ms back.
const ELAPSE_USER = `
local ms = tonumber(ARGV[1])
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('ZINCRBY', KEYS[1], -ms, member)
end
for _, key in ipairs(KEYS) do
  local left = redis.call('PTTL', key)
  if left > 0 then
    if left > ms then redis.call('PEXPIRE', key, left - ms) else redis.call('DEL', key) end
  end
end
`;

// KEYS[1]: the instances zset. ARGV: ms, instance id. Its expiry moved ARGV[1] ms back, if listed.
const ELAPSE_INSTANCE = `
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then redis.call('ZINCRBY', KEYS[1], -tonumber(ARGV[1]), ARGV[2]) end
`;

// KEYS[1]: one key; its TTL shortened by ARGV[1] ms (see ELAPSE_USER).
const ELAPSE_KEY = `
local ms = tonumber(ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  if left > ms then redis.call('PEXPIRE', KEYS[1], left - ms) else redis.call('DEL', KEYS[1]) end
end
`;

/**
 * Makes `ms` pass for the presence of `users` (standalone Redis or Cluster, default prefixes):
 * the expiry of each of their session entries moves `ms` into the past, and the TTLs of their
 * presence keys and legacy registry hash shrink by `ms` (a key left with none is deleted). The
 * next script on a user prunes what expired, as it would have after `ms` of waiting.
 */
export async function elapseUsers(redis: RedisClient, users: Iterable<string>, ms: number): Promise<void> {
  for (const uid of users) {
    const k = fleetUserKeys(uid);
    // One slot per user: the three keys go to one node in a Cluster.
    await redis.eval(ELAPSE_USER, 3, k.presenceExpiry, k.presence, k.registrySessions, ms);
  }
}

/**
 * Makes `ms` pass for the announcements of `instances`: their expiry in `lb:instances` moves
 * `ms` into the past and the TTL of their info key shrinks by `ms` (the list's own TTL, shared
 * by every instance, is left).
 */
export async function elapseInstances(redis: RedisClient, instances: Iterable<string>, ms: number): Promise<void> {
  for (const id of instances) {
    // Different slots in a Cluster: one script each.
    await redis.eval(ELAPSE_INSTANCE, 1, instanceKeys.list(), ms, id);
    await redis.eval(ELAPSE_KEY, 1, instanceKeys.info(id), ms);
  }
}

import { PRESENCE_LUA_PRELUDE } from '../presence/presence-lua';
import type { DetachDecision, DetachOutcome } from './detach-decision';
import { type RedisClient, RedisScript } from './redis-script';
import { type UserKeyPrefixes, userKeys } from './user-keys';

/** Options of {@link RedisDetachDecision}. */
export interface RedisDetachDecisionOptions {
  /** Key prefixes; must match RedisPresence's and RedisRegistryStore's. @default {} */
  prefixes?: UserKeyPrefixes;
}

// KEYS: presence hash, presence zset, legacy registry hash, unified doc (one slot).
// Returns 1 (present) or 0 (cleaned).
const CLEANUP_IF_ABSENT = new RedisScript(`${PRESENCE_LUA_PRELUDE}
prune(now_ms())
-- Live sessions are the hash; the zset may still hold sessions in their leave grace.
if redis.call('HLEN', KEYS[1]) > 0 then
  settle()
  return 1
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local raw = redis.call('GET', KEYS[4])
if raw then
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and type(doc['user_info']) == 'table' then
    doc['user_info']['status'] = 'offline'
    redis.call('SET', KEYS[4], cjson.encode(doc), 'KEEPTTL')
  end
end
return 0
`);

/**
 * The detach decision in Redis: ONE script on the user's slot reads the
 * presence keys (`lb:{uid}:p`, `lb:{uid}:pz`) and writes the registry keys
 * (`registry:user:{uid}`, `registry:unified:{uid}`), so it is atomic against
 * every instance's presence adds, and no gateway clock takes part.
 */
export class RedisDetachDecision implements DetachDecision {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;

  constructor(redis: RedisClient, options: RedisDetachDecisionOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
  }

  async cleanupIfAbsent(userId: string): Promise<DetachOutcome> {
    const k = userKeys(userId, this.#prefixes);
    const present = await CLEANUP_IF_ABSENT.run(
      this.#redis,
      [k.presence, k.presenceExpiry, k.registrySessions, k.registryUnified],
      [],
    );
    return present === 1 ? 'present' : 'cleaned';
  }
}

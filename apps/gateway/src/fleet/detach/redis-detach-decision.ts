import { fleetUserKeys, type RedisClient, RedisScript, type UserKeyPrefixes } from '@livebus/publisher/redis';
import { PRESENCE_LUA_PRELUDE } from '../presence/presence-lua';
import {
  DEFAULT_CLAIM_TTL_MS,
  type DetachClaim,
  type DetachDecision,
  type DetachDecisionOptions,
  type DetachOutcome,
} from './detach-decision';

/** Options of {@link RedisDetachDecision}. */
export interface RedisDetachDecisionOptions extends DetachDecisionOptions {
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

// KEYS: presence hash, presence zset, legacy registry hash, detach claim (one slot).
// ARGV: claimant, claim ttl ms. Returns 0 (won), 1 (present) or 2 (taken).
const CLAIM = new RedisScript(`${PRESENCE_LUA_PRELUDE}
prune(now_ms())
settle()
if redis.call('HLEN', KEYS[1]) > 0 then return 1 end
-- The presence add deletes the claim: one set since then means this departure is someone's.
if redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
-- The winner asking again (its answer lost with the connection) has it still.
if redis.call('GET', KEYS[4]) == ARGV[1] then return 0 end
return 2
`);

const CLAIMS: readonly DetachClaim[] = ['won', 'present', 'taken'];

/**
 * The detach decision in Redis: ONE script on the user's slot reads the
 * presence keys (`lb:{uid}:p`, `lb:{uid}:pz`) and sets the claim
 * (`lb:{uid}:dc`, NX), so exactly one instance wins each departure, atomically
 * against every instance's presence adds (which delete the claim). The winner's
 * cleanup, one more script, writes the registry keys (`registry:user:{uid}`,
 * `registry:unified:{uid}`) unless a session was added meanwhile. No gateway
 * clock takes part.
 */
export class RedisDetachDecision implements DetachDecision {
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;
  readonly #claimTtlMs: number;

  constructor(redis: RedisClient, options: RedisDetachDecisionOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
    this.#claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  }

  async claim(userId: string, claimant: string): Promise<DetachClaim> {
    const k = fleetUserKeys(userId, this.#prefixes);
    const answer = await CLAIM.run(
      this.#redis,
      [k.presence, k.presenceExpiry, k.registrySessions, k.detachClaim],
      [claimant, this.#claimTtlMs],
    );
    const claim = CLAIMS[answer as number];
    if (!claim) throw new TypeError(`detach claim script answered ${String(answer)}`);
    return claim;
  }

  async cleanupIfAbsent(userId: string): Promise<DetachOutcome> {
    const k = fleetUserKeys(userId, this.#prefixes);
    const present = await CLEANUP_IF_ABSENT.run(
      this.#redis,
      [k.presence, k.presenceExpiry, k.registrySessions, k.registryUnified],
      [],
    );
    return present === 1 ? 'present' : 'cleaned';
  }
}

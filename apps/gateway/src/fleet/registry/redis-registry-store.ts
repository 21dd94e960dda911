import { type RegistrySession, RegistrySessionSchema, type UserRegistry, UserRegistrySchema } from '@livebus/protocol';
import {
  FLEET_KEY_PREFIX,
  fleetUserKeys,
  REGISTRY_KEY_PREFIX,
  type RedisClient,
  RedisScript,
} from '@livebus/publisher/redis';
import { PRESENCE_LUA_PRELUDE } from '../presence/presence-lua';
import type { RegistryStore } from './registry-store';

/** Options of {@link RedisRegistryStore}. */
export interface RedisRegistryStoreOptions {
  /** Prefix of the fleet's presence keys, read when registering a session. @default FLEET_KEY_PREFIX (`lb:`) */
  fleetPrefix?: string;
  /**
   * Expiry of the legacy sessions hash of a user nobody holds in presence (a
   * backstop for deployments without presence: every key expires).
   * @default 86_400
   */
  sessionsTtlS?: number;
}

// KEYS: presence hash, presence zset, legacy registry hash (one slot, as every presence script).
// ARGV: session id, session JSON, backstop ttl s, most sessions. First prunes what presence
// prunes (the entries of sessions whose leave grace is over, a dead instance's), so the count
// never includes an entry due to go. Returns 0, storing nothing, for a new session id of a
// user who has the most already (counted and written in one step: concurrent calls cannot
// pass it together), else 1. The hash expires with the user's presence: the heartbeats that
// keep presence alive keep it alive, and a dead instance's ghosts go with its presence entries.
const REGISTER = new RedisScript(`${PRESENCE_LUA_PRELUDE}
if prune(now_ms()) > 0 then settle() end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 and redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last > 0 then
  redis.call('PEXPIREAT', KEYS[3], last[2])
else
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return 1
`);

// KEYS: as REGISTER's. Returns the user's entries (HVALS), after pruning what presence prunes:
// a read never lists an entry due to go (a left session past its grace, a dead instance's) that
// no presence script or registration has pruned yet (the embedded store's reads prune too).
const SESSIONS = new RedisScript(`${PRESENCE_LUA_PRELUDE}
if prune(now_ms()) > 0 then settle() end
return redis.call('HVALS', KEYS[3])
`);

/**
 * The registry in Redis (standalone or Cluster), shared by every gateway instance.
 * Keys carry the user id as hash tag so they share the slot of the user's
 * presence (`lb:{uid}:*`) and one script can span them:
 * - `registry:user:{<user_id>}`: hash of session id to session JSON (legacy
 *   registry); expires with the user's presence entries (see docs/redis-keys.md),
 *   and RedisPresence (and a registration or a read, first) prunes the sessions whose presence
 *   entry expired or whose leave grace is over;
 * - `registry:unified:{<user_id>}`: the unified document as JSON, with a TTL that live sessions refresh.
 */
export class RedisRegistryStore implements RegistryStore {
  readonly sharedAcrossInstances = true;
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #fleetPrefix: string;
  readonly #sessionsTtlS: number;

  /** @param prefix key prefix. @default REGISTRY_KEY_PREFIX (`registry:`) */
  constructor(redis: RedisClient, prefix = REGISTRY_KEY_PREFIX, options: RedisRegistryStoreOptions = {}) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#fleetPrefix = options.fleetPrefix ?? FLEET_KEY_PREFIX;
    this.#sessionsTtlS = options.sessionsTtlS ?? 86_400;
  }

  #keys = (userId: string) => fleetUserKeys(userId, { registry: this.#prefix, fleet: this.#fleetPrefix });

  async registerSession(
    userId: string,
    session: RegistrySession,
    maxSessions = Number.MAX_SAFE_INTEGER,
  ): Promise<boolean> {
    const k = this.#keys(userId);
    const stored = await REGISTER.run(
      this.#redis,
      [k.presence, k.presenceExpiry, k.registrySessions],
      [session.session_id, JSON.stringify(session), this.#sessionsTtlS, maxSessions],
    );
    return Number(stored) === 1;
  }

  async unregisterSession(userId: string, sessionId: string): Promise<boolean> {
    return (await this.#redis.hdel(this.#keys(userId).registrySessions, sessionId)) > 0;
  }

  async getSessions(userId: string): Promise<RegistrySession[]> {
    const k = this.#keys(userId);
    const all = (await SESSIONS.run(this.#redis, [k.presence, k.presenceExpiry, k.registrySessions], [])) as string[];
    // Data in Redis is outside our process: parse it, skip (never crash on) foreign entries.
    return all
      .flatMap((raw) => {
        try {
          const parsed = RegistrySessionSchema.safeParse(JSON.parse(raw));
          return parsed.success ? [parsed.data] : [];
        } catch {
          return [];
        }
      })
      .sort((a, b) => a.registered_at.localeCompare(b.registered_at));
  }

  async getUnified(userId: string): Promise<UserRegistry | undefined> {
    const raw = await this.#redis.get(this.#keys(userId).registryUnified);
    if (raw === null) return undefined;
    const parsed = UserRegistrySchema.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new Error(`corrupt unified registry for ${userId}`);
    return parsed.data;
  }

  async putUnified(userId: string, doc: UserRegistry, ttlS: number): Promise<void> {
    await this.#redis.set(this.#keys(userId).registryUnified, JSON.stringify(doc), 'EX', ttlS);
  }

  async touchUnified(userId: string, ttlS: number): Promise<void> {
    await this.#redis.expire(this.#keys(userId).registryUnified, ttlS);
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    // The connection is owned by whoever created it (main.ts or a test).
  }
}

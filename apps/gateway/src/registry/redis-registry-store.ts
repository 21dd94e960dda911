import { type RegistrySession, RegistrySessionSchema, type UserRegistry, UserRegistrySchema } from '@livebus/protocol';
import type { Cluster, Redis } from 'ioredis';
import type { RegistryStore } from './registry-store';

/**
 * The registry in Redis, shared by every gateway instance:
 * - `registry:user:<user_id>`: hash of session id to session JSON (legacy registry);
 * - `registry:unified:<user_id>`: the unified document as JSON, with a TTL that live sessions refresh.
 */
export class RedisRegistryStore implements RegistryStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;

  /** @param prefix key prefix. @default 'registry:' */
  constructor(redis: Redis | Cluster, prefix = 'registry:') {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  #userKey = (userId: string) => `${this.#prefix}user:${userId}`;
  #unifiedKey = (userId: string) => `${this.#prefix}unified:${userId}`;

  async registerSession(userId: string, session: RegistrySession): Promise<void> {
    await this.#redis.hset(this.#userKey(userId), session.session_id, JSON.stringify(session));
  }

  async unregisterSession(userId: string, sessionId: string): Promise<boolean> {
    return (await this.#redis.hdel(this.#userKey(userId), sessionId)) > 0;
  }

  async getSessions(userId: string): Promise<RegistrySession[]> {
    const all = await this.#redis.hvals(this.#userKey(userId));
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
    const raw = await this.#redis.get(this.#unifiedKey(userId));
    if (raw === null) return undefined;
    const parsed = UserRegistrySchema.safeParse(JSON.parse(raw));
    if (!parsed.success) throw new Error(`corrupt unified registry for ${userId}`);
    return parsed.data;
  }

  async putUnified(userId: string, doc: UserRegistry, ttlS: number): Promise<void> {
    await this.#redis.set(this.#unifiedKey(userId), JSON.stringify(doc), 'EX', ttlS);
  }

  async touchUnified(userId: string, ttlS: number): Promise<void> {
    await this.#redis.expire(this.#unifiedKey(userId), ttlS);
  }

  async cleanupUser(userId: string, registeredBefore: string): Promise<void> {
    // One atomic script: a session registering while it runs is either before it or after it.
    // ISO 8601 times in UTC compare correctly as strings. Entries that do not parse are removed.
    const script = `
      local all = redis.call('HGETALL', KEYS[1])
      local left = 0
      for i = 1, #all, 2 do
        local ok, session = pcall(cjson.decode, all[i + 1])
        if ok and type(session) == 'table' and type(session['registered_at']) == 'string'
            and session['registered_at'] >= ARGV[1] then
          left = left + 1
        else
          redis.call('HDEL', KEYS[1], all[i])
        end
      end
      if left == 0 then
        local raw = redis.call('GET', KEYS[2])
        if raw then
          local doc = cjson.decode(raw)
          doc['user_info']['status'] = 'offline'
          redis.call('SET', KEYS[2], cjson.encode(doc), 'KEEPTTL')
        end
      end
      return left`;
    await this.#redis.eval(script, 2, this.#userKey(userId), this.#unifiedKey(userId), registeredBefore);
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    // The connection is owned by whoever created it (main.ts or a test).
  }
}

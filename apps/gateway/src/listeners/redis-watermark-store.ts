import { type RedisClient, RedisScript } from '../fleet/redis-script';
import { type UserKeyPrefixes, userKeys } from '../fleet/user-keys';
import type { LeaseHolder } from '../lease/lease';
import type { WatermarkStore } from './watermark-store';

/** Options of {@link RedisWatermarkStore}. */
export interface RedisWatermarkStoreOptions {
  /** Key prefixes (only `fleet` is used). @default {} */
  prefixes?: UserKeyPrefixes;
  /** Marks of a user nobody owns any more are forgotten after this long. @default 86_400_000 */
  ttlMs?: number;
}

// KEYS: lease, marks. ARGV: owner|token, listener, mark, ttl ms. Returns 1 when written.
const SET_FENCED = new RedisScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`);

/**
 * Marks in Redis, `lb:{uid}:lw` (hash listener -> mark), in the user's slot with
 * the lease, so one script checks the lease and writes the mark atomically.
 */
export class RedisWatermarkStore implements WatermarkStore {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;
  readonly #ttlMs: number;

  constructor(redis: RedisClient, options: RedisWatermarkStoreOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
    this.#ttlMs = options.ttlMs ?? 86_400_000;
  }

  async get(userId: string): Promise<Record<string, string>> {
    return this.#redis.hgetall(userKeys(userId, this.#prefixes).listenerMarks);
  }

  async set(userId: string, listener: string, mark: string, fence: LeaseHolder): Promise<boolean> {
    const k = userKeys(userId, this.#prefixes);
    const written = await SET_FENCED.run(
      this.#redis,
      [k.lease, k.listenerMarks],
      [`${fence.owner}|${fence.token}`, listener, mark, this.#ttlMs],
    );
    return written === 1;
  }

  async clear(userId: string): Promise<void> {
    await this.#redis.del(userKeys(userId, this.#prefixes).listenerMarks);
  }
}

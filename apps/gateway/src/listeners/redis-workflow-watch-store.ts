import { fleetUserKeys, type RedisClient, RedisScript, type UserKeyPrefixes } from '@livebus/publisher/redis';
import type { WorkflowWatchStore } from './workflow-watch-store';

/** Options of {@link RedisWorkflowWatchStore}. */
export interface RedisWorkflowWatchStoreOptions {
  /** Key prefixes (only `fleet` is used). @default {} */
  prefixes?: UserKeyPrefixes;
  /** Watches of a user who never came back are forgotten after this long (renewed by each watch). @default 86_400_000 */
  ttlMs?: number;
}

// KEYS: the user's watch set. ARGV: job id, ttl ms, most watches (0: no bound). Returns 0, adding
// nothing, for a new job of a user who watches the most already (counted and written in one
// step), else 1.
const ADD = new RedisScript(`
local max = tonumber(ARGV[3])
if max > 0 and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('SCARD', KEYS[1]) >= max then
  return 0
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** Watches in Redis: the set `lb:{uid}:wf` of job ids, in the user's slot. */
export class RedisWorkflowWatchStore implements WorkflowWatchStore {
  readonly #redis: RedisClient;
  readonly #prefixes: UserKeyPrefixes;
  readonly #ttlMs: number;

  constructor(redis: RedisClient, options: RedisWorkflowWatchStoreOptions = {}) {
    this.#redis = redis;
    this.#prefixes = options.prefixes ?? {};
    this.#ttlMs = options.ttlMs ?? 86_400_000;
  }

  async add(userId: string, jobId: string, max = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    const key = fleetUserKeys(userId, this.#prefixes).workflowWatches;
    return Number(await ADD.run(this.#redis, [key], [jobId, this.#ttlMs, max])) === 1;
  }

  async remove(userId: string, jobId: string): Promise<boolean> {
    return (await this.#redis.srem(fleetUserKeys(userId, this.#prefixes).workflowWatches, jobId)) === 1;
  }

  async list(userId: string): Promise<string[]> {
    return this.#redis.smembers(fleetUserKeys(userId, this.#prefixes).workflowWatches);
  }

  async clear(userId: string): Promise<void> {
    await this.#redis.del(fleetUserKeys(userId, this.#prefixes).workflowWatches);
  }
}

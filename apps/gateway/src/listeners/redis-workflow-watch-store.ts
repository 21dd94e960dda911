import { fleetUserKeys, type RedisClient, type UserKeyPrefixes } from '@livebus/publisher/redis';
import type { WorkflowWatchStore } from './workflow-watch-store';

/** Options of {@link RedisWorkflowWatchStore}. */
export interface RedisWorkflowWatchStoreOptions {
  /** Key prefixes (only `fleet` is used). @default {} */
  prefixes?: UserKeyPrefixes;
  /** Watches of a user who never came back are forgotten after this long (renewed by each watch). @default 86_400_000 */
  ttlMs?: number;
}

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

  async add(userId: string, jobId: string): Promise<void> {
    const key = fleetUserKeys(userId, this.#prefixes).workflowWatches;
    await this.#redis.multi().sadd(key, jobId).pexpire(key, this.#ttlMs).exec();
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

import { instanceKeys, type RedisClient, RedisScript } from '@livebus/publisher/redis';
import type { InstanceLiveness } from './instance-liveness';

// KEYS: alive key. ARGV: incarnation. Deletes the key only when it is still that incarnation's.
const RETIRE = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * Liveness keys in Redis: `lb:alive:{<instance id>}` holding the incarnation, PX the failover
 * window. Each key is in a slot of its own: reads of several instances are one GET each
 * (pipelined by the client), a handful per check whatever the number of users.
 */
export class RedisInstanceLiveness implements InstanceLiveness {
  readonly #redis: RedisClient;

  constructor(redis: RedisClient) {
    this.#redis = redis;
  }

  async beat(instanceId: string, incarnation: string, ttlMs: number): Promise<void> {
    await this.#redis.set(instanceKeys.alive(instanceId), incarnation, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async read(instanceIds: readonly string[]): Promise<Map<string, string | undefined>> {
    const values = await Promise.all(instanceIds.map((id) => this.#redis.get(instanceKeys.alive(id))));
    return new Map(instanceIds.map((id, i) => [id, values[i] ?? undefined]));
  }

  async retire(instanceId: string, incarnation: string): Promise<void> {
    await RETIRE.run(this.#redis, [instanceKeys.alive(instanceId)], [incarnation]);
  }
}

import type { Redis } from 'ioredis';
import { LIVEBUS_LIBRARY } from './livebus-library';
import { isCluster, type RedisClient } from './redis-client';

// Redis answers FCALL of an unknown function with "ERR Function not found"; after
// FUNCTION FLUSH, a restart without persistence, or a new shard in a cluster.
const NOT_LOADED = /Function not found|NOSCRIPT/i;

/** How long a cluster client may take to learn its nodes before the library is loaded. */
const CLUSTER_READY_TIMEOUT_MS = 10_000;

/**
 * Calls the functions of the `livebus` library, loading it on demand.
 *
 * FUNCTION LOAD rather than EVALSHA: a function is named and versioned as a
 * library, survives restarts with persistence and reaches replicas, so a
 * failover does not lose it. The library is loaded (REPLACE, so the newest
 * code wins) on first use and again whenever a node answers that it does not
 * know the function; in a cluster, on every master, since FUNCTION LOAD is not
 * propagated across shards.
 */
export class LivebusFunctions {
  readonly #client: RedisClient;
  #loaded: Promise<void> | undefined;

  constructor(client: RedisClient) {
    this.#client = client;
  }

  /** Calls `name` with the keys (all of one slot) and arguments. */
  async call(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    await this.#ensureLoaded();
    try {
      return await this.#client.fcall(name, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !NOT_LOADED.test(error.message)) throw error;
      this.#loaded = undefined;
      await this.#ensureLoaded();
      return await this.#client.fcall(name, keys.length, ...keys, ...args);
    }
  }

  #ensureLoaded(): Promise<void> {
    if (!this.#loaded) {
      const loading = this.#load();
      this.#loaded = loading;
      // A failed load (Redis away) must be retried by the next call, not remembered.
      loading.catch(() => {
        if (this.#loaded === loading) this.#loaded = undefined;
      });
    }
    return this.#loaded;
  }

  async #load(): Promise<void> {
    const client = this.#client;
    if (!isCluster(client)) {
      await client.call('FUNCTION', 'LOAD', 'REPLACE', LIVEBUS_LIBRARY);
      return;
    }
    if (client.status !== 'ready') await waitReady(client);
    const masters = client.nodes('master');
    if (masters.length === 0) throw new Error("Cluster isn't ready: no master known");
    await Promise.all(masters.map((node: Redis) => node.call('FUNCTION', 'LOAD', 'REPLACE', LIVEBUS_LIBRARY)));
  }
}

function waitReady(client: RedisClient): Promise<void> {
  if (client.status === 'wait') client.connect().catch(() => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error("Cluster isn't ready: timed out waiting for the cluster client"));
    }, CLUSTER_READY_TIMEOUT_MS);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

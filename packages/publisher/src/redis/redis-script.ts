import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './client';
import type { CommandWatch } from './command-delivery';

/**
 * Lua prelude shared by the fleet's scripts. Times come from the Redis server that
 * owns the user's slot (`TIME`), never from a process's clock, so instances with
 * skewed clocks still agree on what has expired. (Redis 7 replicates script
 * effects, so `TIME` is allowed in scripts that write.)
 */
export const LUA_NOW_MS = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * A Lua script run with EVALSHA, falling back to EVAL when the node does not
 * know it yet (fresh node, failover, new shard, SCRIPT FLUSH, restart). The one
 * way the fleet runs Lua; docs/redis.md says why scripts rather than functions.
 *
 * It does not use ioredis `defineCommand`, which would add methods to a
 * connection that other parts of the process share.
 */
export class RedisScript {
  /** Every script this process made, for {@link loadScripts}. */
  static get all(): ReadonlySet<RedisScript> {
    return made;
  }

  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
    made.add(this);
  }

  /** The Lua text (to build a variant of a script from it, e.g. the fenced append or the company fan-out). */
  get source(): string {
    return this.#source;
  }

  /** The SHA1 Redis knows the script by (`SCRIPT EXISTS`). */
  get sha(): string {
    return this.#sha;
  }

  /**
   * Runs the script; all `keys` must be in one slot (one user's keys, see `keyspace.ts`). With
   * `watch`, its commands are sent through it, which tells whether Redis may have run them when
   * they fail (see {@link CommandWatch}).
   */
  async run(
    redis: RedisClient,
    keys: readonly string[],
    args: readonly (string | number)[],
    watch?: CommandWatch,
  ): Promise<unknown> {
    try {
      if (watch) return await watch.send(redis, 'evalsha', [this.#sha, keys.length, ...keys, ...args]);
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      if (watch) return await watch.send(redis, 'eval', [this.#source, keys.length, ...keys, ...args]);
      return await redis.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}

const made = new Set<RedisScript>();

/**
 * Loads every script this process made (`SCRIPT LOAD`) on `node`: a standalone server,
 * or one master of a Cluster. Without it, the first burst of commands after a start or
 * a Redis restart all meet NOSCRIPT at once (each sent before the first answer came),
 * and each is sent again with its source (EVAL): hundreds of errors and script texts
 * in a reconnect storm. Failures are ignored: `run` still falls back to EVAL.
 */
export async function loadScripts(node: Redis): Promise<void> {
  await Promise.all([...made].map((script) => node.script('LOAD', script.source).catch(() => undefined)));
}

/**
 * Keeps the scripts loaded on a connection: each time it is ready (its start, every
 * reconnect: a restarted Redis has none) and, on a Cluster, on every node it adds (a
 * promoted replica, a new shard). Commands sent after the load on the same connection
 * find their script.
 */
export function keepScriptsLoaded(client: RedisClient): void {
  if (isCluster(client)) {
    client.on('+node', (node: Redis) => {
      // A node connects on its first command; the load is queued on it before any other.
      void loadScripts(node);
    });
    return;
  }
  client.on('ready', () => void loadScripts(client));
}

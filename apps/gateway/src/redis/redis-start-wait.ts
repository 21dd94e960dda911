import { describeRedisError, isConnectionError } from '@livebus/publisher';
import { openRedis } from '@livebus/publisher/redis';
import { ConfigError, type GatewayConfig } from '../config';

/** Redis did not answer within REDIS_START_TIMEOUT_MS at start; the message names REDIS_URL, never its password. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
  readonly code = 'redis_unreachable';
}

/** Options of {@link waitForRedisAtStart} beyond the configuration. */
export interface RedisStartWaitOptions {
  /** Told once, at the first failed attempt, why Redis cannot be reached yet (for a log line). */
  onFirstFailure?: (message: string) => void;
}

/**
 * Waits until the Redis of REDIS_URL answers (connected and authenticated), at
 * most `redisStartTimeoutMs`, on a connection of its own that is closed before
 * returning. With REDIS_CLUSTER the URL's node is asked as a standalone server:
 * an ioredis `Cluster` reports an unreachable seed only as "Connection is
 * closed", where a plain connection says ECONNREFUSED, ENOTFOUND or WRONGPASS. Called before anything else opens a
 * connection, so a wrong URL, a wrong password or a Redis that is not there
 * stops the process with one clear line instead of a gateway that never becomes
 * ready (or ioredis' "Reached the max retries per request limit"). The bounded
 * wait covers a Redis that starts alongside the gateway.
 *
 * Once it answers, REDIS_CLUSTER is checked against what the server is: a cluster client on a
 * server with cluster support disabled could never reach a slot, and the gateway would look
 * alive and never be ready. A standalone Redis must be a primary: a replica refuses every write.
 *
 * @throws RedisUnreachableError "cannot reach Redis at HOST:PORT (CODE); check REDIS_URL ..."
 * @throws ConfigError with REDIS_CLUSTER=true and a Redis that is not a cluster, or a standalone
 * Redis that is a replica
 */
export async function waitForRedisAtStart(
  config: Pick<GatewayConfig, 'redisUrl' | 'redisStartTimeoutMs' | 'instanceId' | 'redisCluster'>,
  options: RedisStartWaitOptions = {},
): Promise<void> {
  const url = config.redisUrl;
  if (!url) return;
  // Standalone even with REDIS_CLUSTER (see above); the fleet's retry policy until the timer stops it.
  const client = openRedis(url, {
    role: 'start-probe',
    name: `${config.instanceId}-start`,
    connectTimeoutMs: Math.min(2_000, config.redisStartTimeoutMs),
  });
  let last: unknown;
  client.on('error', (error: unknown) => {
    if (last === undefined) options.onFirstFailure?.(describeRedisError(error, { where: url }));
    last = error;
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        // No error yet: the connection attempt itself is still hanging (a firewall dropping packets).
        const why = last ?? Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' });
        const waited = `gave up after REDIS_START_TIMEOUT_MS=${config.redisStartTimeoutMs}`;
        reject(
          new RedisUnreachableError(`${describeRedisError(why, { where: url, setting: 'REDIS_URL' })} (${waited})`),
        );
      }, config.redisStartTimeoutMs);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
      client.connect().catch(() => {
        // Reported through 'error'; ioredis keeps trying until the timer stops it.
      });
    });
    // A replica answers, and refuses every write with READONLY: the fleet would start, report
    // Redis up, and fail each hello and publish (a task worker would take no job, silently).
    const primary = config.redisCluster ? undefined : await replicaOf(client);
    if (primary !== undefined) {
      const { hostname, port } = new URL(url);
      throw new ConfigError(
        `the Redis at ${hostname}:${port || 6379} is a read-only replica (of ${primary}); point REDIS_URL at the primary (on ElastiCache, the primary endpoint, not the reader endpoint)`,
      );
    }
    // A node of a cluster of several shards through a plain client: every user whose keys another
    // shard holds would be refused MOVED (a single shard serves every slot, and works as it is).
    const shards = config.redisCluster ? 0 : await clusterShards(client);
    if (shards > 1) {
      const { hostname, port } = new URL(url);
      throw new ConfigError(
        `the Redis at ${hostname}:${port || 6379} is a node of a Redis Cluster of ${shards} shards; set REDIS_CLUSTER=true (on ElastiCache, with its configuration endpoint)`,
      );
    }
    if (config.redisCluster && !(await clusterEnabled(client))) {
      const { hostname, port } = new URL(url);
      throw new ConfigError(
        `REDIS_CLUSTER=true, but the Redis at ${hostname}:${port || 6379} is not a cluster (its cluster support is disabled); unset REDIS_CLUSTER, or point REDIS_URL at a node of a Redis Cluster`,
      );
    }
  } finally {
    client.disconnect();
  }
}

/** The primary a replica follows (`INFO replication`: `role:slave`, `master_host`, `master_port`), or undefined for a primary. */
async function replicaOf(client: { info(section: string): Promise<string> }): Promise<string | undefined> {
  // A user whose ACL leaves out INFO (`-@dangerous`) cannot ask: its writes will tell.
  const info = await client.info('replication').catch(() => '');
  if (!/^role:slave\s*$/m.test(info)) return undefined;
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  return `${field('master_host') ?? '?'}:${field('master_port') ?? '?'}`;
}

/** How many shards serve slots in the server's cluster (`CLUSTER INFO`: `cluster_size`); 0 when it is not one, or cannot say. */
async function clusterShards(client: {
  info(section: string): Promise<string>;
  call(...args: string[]): Promise<unknown>;
}): Promise<number> {
  // A user whose ACL leaves out INFO or CLUSTER cannot ask: its commands will tell (MOVED).
  if (!(await clusterEnabled(client).catch(() => false))) return 0;
  const info = String(await client.call('CLUSTER', 'INFO').catch(() => ''));
  return Number(/^cluster_size:(\d+)\s*$/m.exec(info)?.[1] ?? 0);
}

/** Whether the server runs with cluster support (`INFO cluster`: `cluster_enabled:1`). */
async function clusterEnabled(client: { info(section: string): Promise<string> }): Promise<boolean> {
  return /^cluster_enabled:1\s*$/m.test(await client.info('cluster'));
}

/**
 * A start-up failure as the user should read it: a Redis connection error
 * (Redis lost after {@link waitForRedisAtStart} succeeded) becomes a
 * {@link RedisUnreachableError} naming REDIS_URL; anything else is returned as is.
 */
export function startError(error: unknown, config: Pick<GatewayConfig, 'redisUrl'>): unknown {
  if (!config.redisUrl || !isConnectionError(error)) return error;
  return new RedisUnreachableError(describeRedisError(error, { where: config.redisUrl, setting: 'REDIS_URL' }), {
    cause: error,
  });
}

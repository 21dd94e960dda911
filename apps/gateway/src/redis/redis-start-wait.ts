import { describeRedisError, isConnectionError } from '@livebus/publisher';
import { openRedis } from '@livebus/publisher/redis';
import type { GatewayConfig } from '../config';

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
 * @throws RedisUnreachableError "cannot reach Redis at HOST:PORT (CODE); check REDIS_URL ..."
 */
export async function waitForRedisAtStart(
  config: Pick<GatewayConfig, 'redisUrl' | 'redisStartTimeoutMs' | 'instanceId'>,
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
  } finally {
    client.disconnect();
  }
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

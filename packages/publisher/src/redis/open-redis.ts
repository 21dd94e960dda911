import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { withRedisTimeout } from '../connection-error';
import { isCluster, type RedisClient } from './client';
import { keepScriptsLoaded } from './redis-script';

/**
 * What a connection is for; each role differs from the others in one setting only:
 * - `gateway`: the gateway's shared connection; auto-pipelining, since heartbeats
 *   refresh many users' TTLs at once and should cost one round trip per tick;
 * - `publisher`: a publisher's own connection; connects on the first publish;
 * - `tasks`: task snapshots, the queue and worker heartbeats;
 * - `bullmq-worker`: a BullMQ worker's connection, which BullMQ requires to have
 *   `maxRetriesPerRequest: null` (its blocking reads wait through a reconnect);
 * - `start-probe`: the gateway's wait for Redis at start; connects when told to.
 */
export type RedisRole = 'gateway' | 'publisher' | 'tasks' | 'bullmq-worker' | 'start-probe';

/** Options of {@link openRedis}. */
export interface OpenRedisOptions {
  /** The URL is a seed node of a Redis Cluster. @default false */
  cluster?: boolean;
  /** What the connection is for (see {@link RedisRole}). */
  role: RedisRole;
  /** Connection name in `CLIENT LIST`, after `livebus-`. @default the role */
  name?: string;
  /** How long a connection attempt may take before it counts as failed. @default {@link REDIS_CONNECT_TIMEOUT_MS} */
  connectTimeoutMs?: number;
}

/**
 * The fleet's one reconnect policy: attempts 50 ms, 100 ms, then every 200 ms,
 * for ever. With `maxRetriesPerRequest: 0` a command fails at the next failed
 * attempt (so a call during an outage answers within a fraction of a second and
 * the caller's own retries, outbox or `unavailable` answer take over), yet one
 * that meets a connection Redis just closed (CLIENT KILL, an idle timeout) waits
 * for the reconnect that follows and succeeds.
 */
export function redisRetryDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** (attempt - 1), 200);
}

/**
 * How often a Redis Cluster client reads the slot map again (ioredis
 * `slotsRefreshInterval`): a planned failover or a resharding moves slots without
 * closing a connection, and ioredis does not read the map again when the commands
 * of an auto-pipeline are `MOVED` to different slots; every command to the moved
 * slots would fail until something else made it read the map.
 */
export const CLUSTER_SLOTS_REFRESH_MS = 1_000;

/**
 * For a connection that waits through an outage (`bullmq-worker`): ioredis' Cluster
 * gives up on a command after `maxRedirections` retries ("Too many Cluster
 * redirections"), 16 × 100 ms by default, shorter than a failover (node timeout
 * plus election). About 30 s instead, so a running job's next step waits for the
 * promoted replica rather than failing its attempt.
 */
const WAIT_THROUGH_FAILOVER = {
  maxRedirections: 150,
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 200,
  retryDelayOnMoved: 100,
} as const;

/** How long a connection attempt may take before it counts as failed (ms). */
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;

/**
 * Opens a connection of the fleet (gateway, task worker, publisher) to a
 * standalone Redis or a Redis Cluster, with the one retry policy
 * ({@link redisRetryDelayMs}). The caller owns it: `quit()` it (see {@link closeRedis}).
 * Errors are listened to (ioredis reconnects by itself, and a failed command
 * rejects where it was issued), so Node never prints "Unhandled error event".
 */
export function openRedis(url: string, options: OpenRedisOptions): RedisClient {
  const { role } = options;
  // Connected by the first command (publisher) or explicitly (start probe), not at once.
  const lazy = role === 'publisher' || role === 'start-probe';
  const bullmq = role === 'bullmq-worker';
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: bullmq ? null : 0,
    enableOfflineQueue: true,
    connectTimeout: options.connectTimeoutMs ?? REDIS_CONNECT_TIMEOUT_MS,
    retryStrategy: redisRetryDelayMs,
    connectionName: `livebus-${options.name ?? role}`,
    ...(lazy ? { lazyConnect: true } : {}),
  };
  const autoPipelining = role === 'gateway';
  const client = options.cluster
    ? new Cluster([url], {
        // The URL's credentials and TLS for every node the slot map names, not only the seed.
        redisOptions: { ...redisOptions, ...clusterNodeOptions(url) },
        // TLS: the seed is dialled by its name, so that the certificate's name matches (ioredis
        // would dial the address it resolves to). The other nodes are dialled as the slot map
        // announces them: ElastiCache announces names; a cluster announcing IP addresses needs
        // certificates that name those addresses.
        ...(url.startsWith('rediss:') ? { dnsLookup: keepHostName } : {}),
        clusterRetryStrategy: redisRetryDelayMs,
        slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
        ...(autoPipelining ? { enableAutoPipelining: true } : {}),
        ...(bullmq ? { maxRetriesPerRequest: null, ...WAIT_THROUGH_FAILOVER } : {}),
        ...(lazy ? { lazyConnect: true } : {}),
      })
    : new Redis(url, {
        ...redisOptions,
        reconnectOnError: reconnectOnReadOnly,
        ...(autoPipelining ? { enableAutoPipelining: true } : {}),
      });
  client.on('error', () => {});
  // BullMQ runs scripts of its own; a start probe runs none.
  if (role !== 'bullmq-worker' && role !== 'start-probe') keepScriptsLoaded(client);
  return client;
}

/**
 * What every node of a Cluster needs from the seed URL: ioredis takes a seed URL's password for
 * the seed alone, and its `rediss://` not at all, so the nodes it learns from the slot map were
 * reached without TLS and without the password (`NOAUTH` on every command).
 */
export function clusterNodeOptions(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** A Cluster's `dnsLookup` that leaves the name as it is (TLS checks the certificate against it). */
function keepHostName(address: string, callback: (error: Error | null, address: string) => void): void {
  callback(null, address);
}

/**
 * A standalone connection answered `READONLY` is on a node that became a replica: a failover
 * behind a DNS name (ElastiCache's primary endpoint, a Sentinel-managed alias) moves the name to
 * the new primary, but a connection made before stays on the demoted node, and every write on
 * it fails for as long as it lives. Reconnecting resolves the name again. The command fails as
 * it is (`READONLY` is transient: the outbox and the gateway's callers retry it).
 */
export function reconnectOnReadOnly(error: Error): boolean {
  return error.message.startsWith('READONLY');
}

/**
 * Closes a connection: politely (`QUIT`) when it is up, at once otherwise (QUIT would wait
 * for a connection). A QUIT not answered within `timeoutMs` (a frozen or blackholed Redis
 * keeps the connection open and never answers) is given up: the connection is ended.
 */
export async function closeRedis(client: RedisClient, timeoutMs = REDIS_CONNECT_TIMEOUT_MS): Promise<void> {
  if (client.status === 'ready') await withRedisTimeout(client.quit(), timeoutMs).catch(() => client.disconnect());
  else client.disconnect();
  endSlotRefreshes(client);
}

/** Cluster clients whose slot-map refresh {@link endSlotRefreshes} guards already. */
const refreshGuarded = new WeakSet<object>();

/** What {@link endSlotRefreshes} uses of an ioredis Cluster beyond its typings (5.11.1). */
interface ClusterRefreshInternals {
  status: string;
  refreshSlotsCache(callback?: (error?: Error) => void): void;
  clearNodesRefreshInterval?(): void;
}

/**
 * Ends a closed Cluster client's periodic refresh of the slot map. ioredis 5 (read in 5.11.1's
 * `cluster/index.js`) re-arms that refresh's timer from the callback of a refresh in flight, even
 * after the client ended, and then every `slotsRefreshInterval` forever: a process that closed
 * everything never exited. From here on a refresh asked of the client while it is closed or
 * closing answers at once that it is disconnected and clears the timer (one armed already fires
 * once more, within `slotsRefreshInterval`); a client connected again refreshes as before. A
 * standalone client is left as it is. Call it after `quit()` or `disconnect()`.
 */
export function endSlotRefreshes(client: RedisClient): void {
  if (!isCluster(client)) return;
  const cluster = client as unknown as ClusterRefreshInternals;
  if (!refreshGuarded.has(client)) {
    refreshGuarded.add(client);
    const refresh = cluster.refreshSlotsCache;
    cluster.refreshSlotsCache = function (this: ClusterRefreshInternals, callback?: (error?: Error) => void) {
      if (this.status === 'end' || this.status === 'close' || this.status === 'disconnecting') {
        // The callback of the periodic refresh arms the next one: cleared right after.
        callback?.(new Error('Cluster is disconnected.'));
        this.clearNodesRefreshInterval?.();
        return;
      }
      refresh.call(this, callback);
    };
  }
  cluster.clearNodesRefreshInterval?.();
}
